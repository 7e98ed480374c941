"""langchain-bytez benchmark suite: ratios measured side by side against raw httpx.

Usage::

    .venv/bin/python benchmarks/run.py            # full suite (make bench), a few minutes
    .venv/bin/python benchmarks/run.py --quick    # smoke mode: every row once, small cases
    .venv/bin/python benchmarks/run.py --json out.json

The local Bytez-compatible server (``python -m langchain_bytez.server``) runs in its own
processes (one per timing profile), bound to 127.0.0.1. Absolute times are noise on a
shared machine, so every figure that is compared to a target is a RATIO or a DIFFERENCE
measured in the same run, with the library call and the raw httpx call interleaved.

Sections (``--only`` names in brackets):

1. call overhead [overhead]: ``BytezClient.run`` vs a raw pooled httpx POST of the same
   body; ``BytezLLM.invoke`` / ``ainvoke``, ``ChatBytez.invoke`` and
   ``BytezEmbeddings.embed_query`` each vs the raw POST and vs its LangChain floor (a
   minimal langchain-core subclass whose call is that same raw POST), three-way
   interleaved;
2. streaming [streaming]: first ``on_llm_new_token`` callback vs raw httpx time to first
   byte, and client CPU per streamed chunk above raw ``iter_raw`` iteration;
3. concurrency [concurrency]: wall time of N concurrent streams / one stream (abatch,
   gather of astream, threaded batch);
4. scale [scale]: a 1 MB answer through ``BytezClient.stream``, ``BytezLLM.stream`` and
   ``BytezLLM.astream`` (CPU ratio and peak RSS), a 1 MB prompt, RSS trend over 10,000
   calls (each in a fresh subprocess);
5. auto-load [autoload]: extra latency of ``auto_load=True`` on the first call (status
   check) and on later calls, vs ``auto_load=False``;
6. anchors [anchors]: Bytez's ``bytez`` SDK and its old ``langchain-bytez`` 0.0.7 (in a
   scratch venv subprocess), each as a ratio to a raw POST in its own process
   (``sections/anchors.py``);
7. transports [transports]: 5 rounds of 128 and one of 512 concurrent streams per async
   transport (httpcore, httpx-aiohttp, httpcore2, httpx2), raw and through
   ``BytezLLM.astream`` (``sections/transports.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout even without an editable install
    sys.path.insert(0, str(ROOT))

KEY = "bench-key"
LLM_MODEL = "openai-community/gpt2"
AUTOLOAD_MODEL = "gpt2"  # own model id, so forgetting its cache does not disturb others
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
PROMPT = "Once upon a time"
CHAT_TEXT = "Hello there"
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_TEXT = "The quick brown fox"
SERVER_START_TIMEOUT = 30.0
CASE_TIMEOUT = 240.0


# ----------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    calls: int  # interleaved pairs per call-overhead row
    ttfb_runs: int
    chunks: int  # chunks of the CPU-per-chunk stream
    cpu_reps: int
    concurrency: tuple[int, ...]
    conc_reps: int
    answer_bytes: int
    prompt_bytes: int
    leak_calls: int
    leak_samples: tuple[int, ...]
    autoload_runs: int
    conc_ttfb: float  # the concurrency server's time to first byte (s)
    conc_token_delay: float  # ...and its delay between tokens (s)


FULL = Sizes(
    calls=500,
    ttfb_runs=50,
    chunks=10_000,
    cpu_reps=3,
    concurrency=(1, 8, 32, 128),
    conc_reps=3,
    answer_bytes=1_000_000,
    prompt_bytes=1_000_000,
    leak_calls=10_000,
    leak_samples=(1_000, 5_000, 10_000),
    autoload_runs=200,
    conc_ttfb=0.2,
    conc_token_delay=0.01,
)
# Smoke mode: every row once, on small cases (a loaded 2-core machine runs it in well
# under a minute). Its numbers show the table works, not the targets.
QUICK = Sizes(
    calls=20,
    ttfb_runs=4,
    chunks=500,
    cpu_reps=1,
    concurrency=(1, 8, 32, 128),
    conc_reps=1,
    answer_bytes=20_000,
    prompt_bytes=200_000,
    leak_calls=200,
    leak_samples=(50, 100, 200),
    autoload_runs=10,
    # The same stream profile as the full run: shorter streams made no run faster (the
    # 128-stream runs are CPU-bound) and only distorted the ratios.
    conc_ttfb=0.2,
    conc_token_delay=0.01,
)


# ----------------------------------------------------------------------------- server


class Server:
    """``python -m langchain_bytez.server`` in its own process, on 127.0.0.1."""

    def __init__(self, name: str, *, ttfb: float, token_delay: float) -> None:
        self.name = name
        self.ttfb = ttfb
        self.token_delay = token_delay
        self._dir = tempfile.mkdtemp(prefix=f"bytez-bench-{name}-")
        self._port_file = os.path.join(self._dir, "port")
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "langchain_bytez.server",
            "--port",
            "0",
            "--port-file",
            self._port_file,
            "--api-key",
            KEY,
            "--ttfb",
            str(self.ttfb),
            "--token-delay",
            str(self.token_delay),
            "--load-delay",
            "0.05",
            # The concurrency and auto-load rows measure loaded clusters (capacity N and
            # "already running"): the server mode with cluster routes. Its default (404,
            # like the documented service) leaves every model at one serverless instance.
            "--cluster-routes",
            "on",
            "--quiet",
        ]
        self._proc = subprocess.Popen(  # our own interpreter and module
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return self

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"server {self.name} exited: {err}")
            with contextlib.suppress(OSError, ValueError):
                port = int(Path(self._port_file).read_text().strip())
                self.url = f"http://127.0.0.1:{port}"
                return self
            time.sleep(0.02)
        raise RuntimeError(f"server {self.name} did not start in {SERVER_START_TIMEOUT} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# ----------------------------------------------------------------------------- helpers


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def headers() -> dict[str, str]:
    return {"Authorization": f"Key {KEY}", "Content-Type": "application/json"}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def interleaved(
    n: int, lib: Callable[[], Any], raw: Callable[[], Any]
) -> tuple[list[float], list[float]]:
    """Time ``lib`` and ``raw`` alternately (order swapped every pair); seconds each."""
    clock = time.perf_counter
    a: list[float] = []
    b: list[float] = []
    for i in range(n):
        for which in (0, 1) if i % 2 == 0 else (1, 0):
            started = clock()
            (lib if which == 0 else raw)()
            (a if which == 0 else b).append(clock() - started)
    return a, b


async def ainterleaved(
    n: int, lib: Callable[[], Any], raw: Callable[[], Any]
) -> tuple[list[float], list[float]]:
    clock = time.perf_counter
    a: list[float] = []
    b: list[float] = []
    for i in range(n):
        for which in (0, 1) if i % 2 == 0 else (1, 0):
            started = clock()
            await (lib if which == 0 else raw)()
            (a if which == 0 else b).append(clock() - started)
    return a, b


def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class PeakSampler:
    """Samples RSS in a thread; ``peak`` is the highest value seen."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        proc = psutil.Process()
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, proc.memory_info().rss)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_bytes())


# ----------------------------------------------------------------------------- results


@dataclass
class Row:
    section: str
    name: str
    measured: str
    target: str
    result: str  # PASS / MISS / info
    values: dict[str, Any] = field(default_factory=dict)


ROWS: list[Row] = []


def add(
    section: str, name: str, measured: str, target: str, ok: bool | None, **values: Any
) -> None:
    result = "info" if ok is None else ("PASS" if ok else "MISS")
    ROWS.append(Row(section, name, measured, target, result, values))


_T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"  [{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- 1. overhead


def interleaved_many(n: int, fns: list[Callable[[], Any]]) -> list[list[float]]:
    """Time every function once per pass, the order rotated each pass; seconds each."""
    clock = time.perf_counter
    out: list[list[float]] = [[] for _ in fns]
    k = len(fns)
    for i in range(n):
        for j in range(k):
            which = (i + j) % k
            started = clock()
            fns[which]()
            out[which].append(clock() - started)
    return out


async def ainterleaved_many(n: int, fns: list[Callable[[], Any]]) -> list[list[float]]:
    clock = time.perf_counter
    out: list[list[float]] = [[] for _ in fns]
    k = len(fns)
    for i in range(n):
        for j in range(k):
            which = (i + j) % k
            started = clock()
            await fns[which]()
            out[which].append(clock() - started)
    return out


def floor_classes(sync_post: Callable[[str, bytes], Any], async_post: Any) -> dict[str, type]:
    """The LangChain floors: minimal core subclasses whose call is one raw pooled POST.

    What they cost above the raw POST is langchain-core's own machinery (callbacks, run
    managers, config), which every integration pays; what a Bytez class costs above its
    floor is this package's share. The request bodies are encoded once, outside the
    timed call, exactly as for the raw rows.
    """
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel
    from langchain_core.language_models.llms import LLM
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class FloorLLM(LLM):
        url: str
        body: bytes

        @property
        def _llm_type(self) -> str:
            return "floor-llm"

        def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
            return str(sync_post(self.url, self.body))

        async def _acall(
            self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> str:
            return str(await async_post(self.url, self.body))

    class FloorChat(BaseChatModel):
        url: str
        body: bytes

        @property
        def _llm_type(self) -> str:
            return "floor-chat"

        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            text = str(sync_post(self.url, self.body))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    class FloorEmbeddings(Embeddings):
        def __init__(self, url: str, body: bytes) -> None:
            self.url = url
            self.body = body

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [list(sync_post(self.url, self.body)) for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return list(sync_post(self.url, self.body))

    return {"llm": FloorLLM, "chat": FloorChat, "embeddings": FloorEmbeddings}


def bench_overhead(url: str, sizes: Sizes) -> None:
    import httpx
    from langchain_core.messages import HumanMessage

    from langchain_bytez import BytezClient, BytezEmbeddings, BytezLLM, ChatBytez

    n = sizes.calls
    warm = max(20, n // 10)
    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=url, max_new_tokens=5, auto_load=True)
    chat = ChatBytez(model=CHAT_MODEL, api_key=KEY, base_url=url, max_new_tokens=5, auto_load=True)
    emb = BytezEmbeddings(model=EMBED_MODEL, api_key=KEY, base_url=url, auto_load=True)
    client = BytezClient(api_key=KEY, base_url=url)
    params = {"max_new_tokens": 5}
    payload = {"text": PROMPT, "params": params}
    llm_url = f"{url}/models/v2/{LLM_MODEL}"
    chat_url = f"{url}/models/v2/{CHAT_MODEL}"
    emb_url = f"{url}/models/v2/{EMBED_MODEL}"
    llm_body = encode(payload)
    messages = [HumanMessage(CHAT_TEXT)]
    # What ChatBytez sends for one HumanMessage (the wire format of a chat model).
    chat_body = encode({"messages": [{"role": "user", "content": CHAT_TEXT}], "params": params})
    emb_body = encode({"text": EMBED_TEXT})

    with httpx.Client(headers=headers(), timeout=30) as raw:

        def post(endpoint: str, body: bytes) -> Any:
            response = raw.post(endpoint, content=body)
            response.raise_for_status()
            return response.json()["output"]

        floors = floor_classes(post, None)
        floor_llm = floors["llm"](url=llm_url, body=llm_body)
        floor_chat = floors["chat"](url=chat_url, body=chat_body)
        floor_emb = floors["embeddings"](emb_url, emb_body)
        cases: list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[], Any]]] = [
            (
                "BytezLLM.invoke",
                lambda: llm.invoke(PROMPT),
                lambda: floor_llm.invoke(PROMPT),
                lambda: post(llm_url, llm_body),
            ),
            (
                "ChatBytez.invoke",
                lambda: chat.invoke(messages),
                lambda: floor_chat.invoke(messages),
                lambda: post(chat_url, chat_body),
            ),
            (
                "BytezEmbeddings.embed_query",
                lambda: emb.embed_query(EMBED_TEXT),
                lambda: floor_emb.embed_query(EMBED_TEXT),
                lambda: post(emb_url, emb_body),
            ),
        ]
        for _ in range(warm):  # loads the clusters (auto_load) and warms the pools
            client.run(LLM_MODEL, payload)
            for _name, lib, floor, raw_call in cases:
                lib()
                floor()
                raw_call()
        say(f"overhead: {n} interleaved BytezClient.run / raw POST")
        lib_t, raw_t = interleaved(n, lambda: client.run(LLM_MODEL, payload), cases[0][3])
        record_ratio("BytezClient.run / raw httpx.Client POST (library layer)", lib_t, raw_t, 1.05)
        for name, lib, floor, raw_call in cases:
            say(f"overhead: {n} interleaved {name} / floor / raw POST")
            lib_t, floor_t, raw_t = interleaved_many(n, [lib, floor, raw_call])
            record_floor(name, "raw httpx.Client POST", lib_t, floor_t, raw_t)
    client.close()

    async def run_async() -> list[list[float]]:
        async with httpx.AsyncClient(headers=headers(), timeout=30) as araw:

            async def apost(endpoint: str, body: bytes) -> Any:
                response = await araw.post(endpoint, content=body)
                response.raise_for_status()
                return response.json()["output"]

            floor = floor_classes(lambda u, b: None, apost)["llm"](url=llm_url, body=llm_body)
            fns = [
                lambda: llm.ainvoke(PROMPT),
                lambda: floor.ainvoke(PROMPT),
                lambda: apost(llm_url, llm_body),
            ]
            for _ in range(warm):
                for fn in fns:
                    await fn()
            return await ainterleaved_many(n, fns)

    say(f"overhead: {n} interleaved BytezLLM.ainvoke / floor / raw AsyncClient POST")
    lib_t, floor_t, raw_t = asyncio.run(run_async())
    record_floor("BytezLLM.ainvoke", "raw httpx.AsyncClient POST", lib_t, floor_t, raw_t)


FLOOR_TARGET = 1.03


def record_floor(
    name: str, raw_name: str, lib: list[float], floor: list[float], raw: list[float]
) -> None:
    """Three rows: the class / raw, the floor / raw (core's cost), the class / its floor."""
    kind = name.split(".")[0]
    floor_name = {
        "BytezLLM": "floor LLM",
        "ChatBytez": "floor BaseChatModel",
        "BytezEmbeddings": "floor Embeddings",
    }[kind]
    method = name.split(".", 1)[1]
    record_ratio(f"{name} / {raw_name}", lib, raw, None)
    record_ratio(f"  {floor_name}.{method} / {raw_name} (langchain-core)", floor, raw, None)
    record_ratio(f"  {name} / {floor_name}.{method} (this package)", lib, floor, FLOOR_TARGET)


def record_ratio(name: str, lib: list[float], base: list[float], target: float | None) -> None:
    ratio = median(lib) / median(base)
    add(
        "1 call overhead",
        name,
        f"{ratio:.2f}x ({median(lib) * 1e3:.3f} / {median(base) * 1e3:.3f} ms)",
        f"<= {target:.2f}x" if target is not None else "-",
        None if target is None else ratio <= target,
        ratio=ratio,
        lib_median_ms=median(lib) * 1e3,
        base_median_ms=median(base) * 1e3,
        calls=len(lib),
    )


# ----------------------------------------------------------------------------- 2. streaming


def bench_ttfb(url: str, ttfb: float, sizes: Sizes) -> None:
    import httpx
    from langchain_core.callbacks import BaseCallbackHandler

    from langchain_bytez import BytezLLM

    class FirstToken(BaseCallbackHandler):
        def __init__(self) -> None:
            self.at: float | None = None

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            if self.at is None:
                self.at = time.perf_counter()

    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=url, max_new_tokens=5, auto_load=True)
    endpoint = f"{url}/models/v2/{LLM_MODEL}"
    body = encode({"text": PROMPT, "params": {"max_new_tokens": 5}, "stream": True})
    lib_t: list[float] = []
    raw_t: list[float] = []
    with httpx.Client(headers=headers(), timeout=30) as raw:

        def lib_once() -> None:
            handler = FirstToken()
            started = time.perf_counter()
            for _ in llm.stream(PROMPT, config={"callbacks": [handler]}):
                pass
            assert handler.at is not None
            lib_t.append(handler.at - started)

        def raw_once() -> None:
            first: float | None = None
            started = time.perf_counter()
            with raw.stream("POST", endpoint, content=body) as response:
                for _chunk in response.iter_raw():
                    if first is None:
                        first = time.perf_counter()
            assert first is not None
            raw_t.append(first - started)

        for _ in range(3):
            lib_once()
            raw_once()
        lib_t.clear()
        raw_t.clear()
        say(
            f"streaming: {sizes.ttfb_runs} interleaved first-token timings "
            f"(ttfb {ttfb * 1e3:.0f} ms)"
        )
        interleaved(sizes.ttfb_runs, lib_once, raw_once)
    diff_ms = (median(lib_t) - median(raw_t)) * 1e3
    add(
        "2 streaming",
        f"first on_llm_new_token - raw TTFB (server ttfb {ttfb * 1e3:.0f} ms)",
        f"{diff_ms:+.3f} ms ({median(lib_t) * 1e3:.2f} vs {median(raw_t) * 1e3:.2f} ms)",
        "<= +1 ms",
        diff_ms <= 1.0,
        diff_ms=diff_ms,
        lib_median_ms=median(lib_t) * 1e3,
        raw_median_ms=median(raw_t) * 1e3,
        runs=len(lib_t),
    )


def bench_cpu_per_chunk(url: str, sizes: Sizes) -> None:
    import httpx

    from langchain_bytez import BytezClient, BytezLLM

    n = sizes.chunks
    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=url, max_new_tokens=n, auto_load=True)
    client = BytezClient(api_key=KEY, base_url=url)
    endpoint = f"{url}/models/v2/{LLM_MODEL}"
    body = encode({"text": PROMPT, "params": {"max_new_tokens": n}, "stream": True})
    payload = {"text": PROMPT, "params": {"max_new_tokens": n}}
    cpu = time.process_time
    lib_cpu: list[float] = []
    cli_cpu: list[float] = []
    raw_cpu: list[float] = []
    counts: dict[str, int] = {}
    with httpx.Client(headers=headers(), timeout=60) as raw:

        def lib_once() -> None:
            count = 0
            started = cpu()
            for _ in llm.stream(PROMPT):
                count += 1
            lib_cpu.append(cpu() - started)
            counts["lib"] = count

        def client_once() -> None:
            count = 0
            started = cpu()
            with client.stream(LLM_MODEL, payload) as stream:
                for _ in stream:
                    count += 1
            cli_cpu.append(cpu() - started)
            counts["client"] = count

        def raw_once() -> None:
            count = 0
            started = cpu()
            with raw.stream("POST", endpoint, content=body) as response:
                for _ in response.iter_raw():
                    count += 1
            raw_cpu.append(cpu() - started)
            counts["raw"] = count

        lib_once()  # warm-up (and cluster load)
        client_once()
        raw_once()
        lib_cpu.clear()
        cli_cpu.clear()
        raw_cpu.clear()
        say(f"streaming: CPU per chunk over {sizes.cpu_reps} x {n}-chunk streams")
        for _ in range(sizes.cpu_reps):
            raw_once()
            lib_once()
            client_once()
    client.close()
    per_raw = median(raw_cpu) / n * 1e6
    per_lib = median(lib_cpu) / n * 1e6
    per_cli = median(cli_cpu) / n * 1e6
    add(
        "2 streaming",
        f"client CPU per chunk above raw iter_raw (BytezLLM.stream, {n} chunks)",
        f"{per_lib - per_raw:.1f} us ({per_lib:.1f} vs raw {per_raw:.1f} us)",
        "<= 30 us",
        per_lib - per_raw <= 30.0,
        extra_us=per_lib - per_raw,
        lib_us=per_lib,
        raw_us=per_raw,
        chunks=n,
        counts=counts,
    )
    add(
        "2 streaming",
        f"  of which BytezClient.stream (library layer, {n} chunks)",
        f"{per_cli - per_raw:.1f} us ({per_cli:.1f} vs raw {per_raw:.1f} us)",
        "-",
        None,
        extra_us=per_cli - per_raw,
        client_us=per_cli,
    )


# ----------------------------------------------------------------------------- 3. concurrency


def bench_concurrency(url: str, sizes: Sizes) -> None:
    import httpx

    from langchain_bytez import BytezLLM

    top = max(sizes.concurrency)
    llm = BytezLLM(
        model=LLM_MODEL,
        api_key=KEY,
        base_url=url,
        max_new_tokens=20,
        concurrency=top,  # server runs capacity.desired instances in parallel
        streaming=True,  # invoke/batch/abatch use the streaming route too
        auto_load=True,
    )

    def via_batch(n: int) -> None:
        out = llm.batch([PROMPT] * n, config={"max_concurrency": n})
        assert len(out) == n
        assert all(out)

    async def _abatch(n: int) -> None:
        out = await llm.abatch([PROMPT] * n, config={"max_concurrency": n})
        assert len(out) == n
        assert all(out)

    async def _gather(n: int) -> None:
        async def one() -> int:
            count = 0
            async for _ in llm.astream(PROMPT):
                count += 1
            return count

        counts = await asyncio.gather(*(one() for _ in range(n)))
        assert all(c >= 20 for c in counts)

    endpoint = f"{url}/models/v2/{LLM_MODEL}"
    body = encode({"text": PROMPT, "params": {"max_new_tokens": 20}, "stream": True})
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)  # as ours
    raw_box: list[httpx.AsyncClient] = []

    async def _raw_gather(n: int) -> None:
        if not raw_box:
            raw_box.append(httpx.AsyncClient(headers=headers(), timeout=60, limits=limits))
        raw = raw_box[0]

        async def one() -> int:
            count = 0
            async with raw.stream("POST", endpoint, content=body) as response:
                async for _ in response.aiter_raw():
                    count += 1
            return count

        counts = await asyncio.gather(*(one() for _ in range(n)))
        assert all(c >= 20 for c in counts)

    # One event loop for all async runs: pooled connections stay warm like in a service.
    loop = asyncio.new_event_loop()
    methods: dict[str, Callable[[int], None]] = {
        "abatch": lambda n: loop.run_until_complete(_abatch(n)),
        "gather(astream)": lambda n: loop.run_until_complete(_gather(n)),
        "batch (threads)": via_batch,
        "raw httpx.AsyncClient gather (baseline)": lambda n: loop.run_until_complete(
            _raw_gather(n)
        ),
    }
    try:
        for run in methods.values():  # load the cluster, open connections
            run(top if sizes.conc_reps > 1 else 8)
        times: dict[str, dict[int, list[float]]] = {
            m: {n: [] for n in sizes.concurrency} for m in methods
        }
        say(f"concurrency: N={sizes.concurrency} x {sizes.conc_reps} reps x {len(methods)} methods")
        for _ in range(sizes.conc_reps):
            for n in sizes.concurrency:
                for name, run in methods.items():
                    for _single in range(2 if n == 1 else 1):  # more single samples: it is the unit
                        started = time.perf_counter()
                        run(n)
                        times[name][n].append(time.perf_counter() - started)
    finally:
        if raw_box:
            loop.run_until_complete(raw_box[0].aclose())
        # As asyncio.run does: the package closes its loop-scoped pools at this hook.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    targets = {32: 1.25, 128: 2.0}
    for name in methods:
        single = median(times[name][1])
        for n in sizes.concurrency:
            if n == 1:
                add(
                    "3 concurrency",
                    f"{name}: 1 stream (the unit)",
                    f"{single * 1e3:.0f} ms",
                    "-",
                    None,
                    single_ms=single * 1e3,
                )
                continue
            ratio = median(times[name][n]) / single
            target = None if "baseline" in name else targets.get(n)
            add(
                "3 concurrency",
                f"{name}: {n} concurrent streams / 1",
                f"{ratio:.2f}x",
                f"<= {target:.2f}x" if target else "-",
                None if target is None else ratio <= target,
                ratio=ratio,
                wall_ms=median(times[name][n]) * 1e3,
                n=n,
            )


# ----------------------------------------------------------------------------- 4. scale


def answer_tokens(nbytes: int) -> tuple[int, int]:
    """max_new_tokens whose answer (the server's deterministic words) is >= nbytes."""
    from langchain_bytez.server import generate_continuation

    tokens = generate_continuation(PROMPT, max(1, nbytes // 4))
    total = 0
    for count, token in enumerate(tokens, 1):
        total += len(token.encode())
        if total >= nbytes:
            return count, total
    return len(tokens), total


def case_stream_answer(url: str, nbytes: int, layer: str) -> dict[str, Any]:
    """Stream one long answer through ``layer`` (llm, allm or client); CPU, wall, peak RSS."""
    from langchain_bytez import BytezClient, BytezLLM

    tokens, total = answer_tokens(nbytes)
    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=url, max_new_tokens=tokens)
    warm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=url, max_new_tokens=50)
    client = BytezClient(api_key=KEY, base_url=url)
    payload = {"text": PROMPT, "params": {"max_new_tokens": tokens}}

    def chunks() -> Iterator[str]:
        if layer == "llm":
            yield from llm.stream(PROMPT)
            return
        with client.stream(LLM_MODEL, payload) as stream:
            yield from stream

    async def achunks() -> int:
        received = 0
        async for chunk in llm.astream(PROMPT):
            received += len(chunk.encode())
        return received

    for _ in range(3):
        for _chunk in warm.stream(PROMPT):
            pass
    asyncio.run(warm.ainvoke(PROMPT))  # imports and warms the async path for every layer
    gc.collect()
    before = rss_bytes()
    max_before = maxrss_bytes()
    received = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    with PeakSampler() as sampler:
        if layer == "allm":
            received = asyncio.run(achunks())
        else:
            for chunk in chunks():
                received += len(chunk.encode())
    cpu = time.process_time() - cpu_started
    elapsed = time.perf_counter() - started
    return {
        "answer_bytes": received,
        "expected_bytes": total,
        "tokens": tokens,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "peak_delta": max(sampler.peak - before, maxrss_bytes() - max_before),
    }


def case_prompt(url: str, nbytes: int) -> dict[str, Any]:
    from langchain_bytez import BytezLLM

    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=url, max_new_tokens=5)
    prompt = ("All work and no play makes Jack a dull boy. " * (nbytes // 44 + 1))[:nbytes]
    for _ in range(3):
        llm.invoke(PROMPT)
    gc.collect()
    before = rss_bytes()
    max_before = maxrss_bytes()
    with PeakSampler() as sampler:
        out = llm.invoke(prompt)
    assert isinstance(out, str)
    assert len(out) < 200
    return {
        "prompt_bytes": len(prompt),
        "peak_delta": max(sampler.peak - before, maxrss_bytes() - max_before),
    }


def case_leak(url: str, calls: int, samples: list[int]) -> dict[str, Any]:
    from langchain_bytez import BytezLLM

    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=url, max_new_tokens=5)
    for _ in range(50):
        llm.invoke(PROMPT)
    # Counting objects builds a list of every object (~1 MB here), which the allocator keeps
    # afterwards: built once before the first sample, it is not counted as growth of the
    # calls (it was: ~100 KiB per 1,000 calls, none of it the package's).
    gc.collect()
    len(gc.get_objects())
    rss: dict[int, int] = {}
    objects: dict[int, int] = {}
    started = time.perf_counter()
    for i in range(1, calls + 1):
        llm.invoke(PROMPT)
        if i in samples:
            gc.collect()
            objects[i] = len(gc.get_objects())
            rss[i] = rss_bytes()  # after the count: every sample holds the same list's room
    return {"rss": rss, "objects": objects, "seconds": time.perf_counter() - started}


def run_case(argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", *argv]
    proc = subprocess.run(  # our own script
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=CASE_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {argv[0]} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_scale(url: str, sizes: Sizes) -> None:
    mib = 1024 * 1024
    say(f"scale: streaming a {sizes.answer_bytes / 1e6:g} MB answer (fresh processes)")
    # Each layer in its own fresh process, the library layer first: it is the unit.
    base = run_case(["stream_answer", url, str(sizes.answer_bytes), "client"])
    # Scale the 10 MB budget with the answer size in quick mode (same row, smaller case).
    budget = 10.0 * sizes.answer_bytes / 1_000_000
    for layer, method in (("llm", "BytezLLM.stream"), ("allm", "BytezLLM.astream")):
        res = run_case(["stream_answer", url, str(sizes.answer_bytes), layer])
        assert res["answer_bytes"] == base["answer_bytes"], (res, base)
        delta = res["peak_delta"] / mib
        add(
            "4 scale",
            f"peak RSS rise streaming a {res['answer_bytes'] / 1e6:.2f} MB answer "
            f"through {method} ({res['tokens']} chunks)",
            f"{delta:.1f} MiB ({res['seconds']:.1f} s)",
            f"< {budget:g} MB",
            delta * mib < budget * 1e6,
            **res,
        )
        ratio = res["cpu_seconds"] / base["cpu_seconds"]
        add(
            "4 scale",
            f"  CPU of {method} / BytezClient.stream, same answer",
            f"{ratio:.2f}x ({res['cpu_seconds']:.2f} / {base['cpu_seconds']:.2f} s)",
            "<= 2.00x",
            ratio <= 2.0,
            ratio=ratio,
            cpu_seconds=res["cpu_seconds"],
            client_cpu_seconds=base["cpu_seconds"],
        )
    add(
        "4 scale",
        "  of which BytezClient.stream (library layer, same answer)",
        f"{base['peak_delta'] / mib:.1f} MiB, {base['cpu_seconds']:.2f} s CPU",
        "-",
        None,
        **base,
    )
    say(f"scale: sending a {sizes.prompt_bytes / 1e6:g} MB prompt (fresh process)")
    res = run_case(["prompt", url, str(sizes.prompt_bytes)])
    delta = res["peak_delta"] / mib
    add(
        "4 scale",
        f"peak RSS rise sending a {res['prompt_bytes'] / 1e6:.2f} MB prompt (echoed back)",
        f"{delta:.1f} MiB",
        "-",
        None,
        **res,
    )
    say(f"scale: {sizes.leak_calls} sequential calls (fresh process)")
    res = run_case(["leak", url, str(sizes.leak_calls), ",".join(map(str, sizes.leak_samples))])
    rss = {int(k): v for k, v in res["rss"].items()}
    objects = {int(k): v for k, v in res["objects"].items()}
    first, last = min(rss), max(rss)
    slope_kib = (rss[last] - rss[first]) / 1024 / ((last - first) / 1000)
    obj_growth = objects[last] - objects[first]
    trail = ", ".join(f"{k:,}: {v / mib:.1f}" for k, v in sorted(rss.items()))
    add(
        "4 scale",
        f"RSS trend over {sizes.leak_calls} calls (MiB at {trail})",
        f"{slope_kib:+.1f} KiB/1k calls, gc objects {obj_growth:+d}",
        "< 64 KiB/1k calls, objects flat",
        slope_kib < 64 and obj_growth < 500,
        slope_kib_per_1k=slope_kib,
        object_growth=obj_growth,
        **res,
    )


# ----------------------------------------------------------------------------- 5. auto-load


def bench_autoload(url: str, sizes: Sizes) -> None:
    from langchain_bytez import BytezLLM, ModelManager

    auto = BytezLLM(
        model=AUTOLOAD_MODEL, api_key=KEY, base_url=url, max_new_tokens=5, auto_load=True
    )
    plain = BytezLLM(
        model=AUTOLOAD_MODEL, api_key=KEY, base_url=url, max_new_tokens=5, auto_load=False
    )
    for _ in range(20):  # loads the cluster once
        auto.invoke(PROMPT)
        plain.invoke(PROMPT)
    manager = ModelManager.for_client(auto._sync_client())
    first: list[float] = []
    later: list[float] = []
    none: list[float] = []
    clock = time.perf_counter
    say(f"auto-load: {sizes.autoload_runs} x (first call, later call, auto_load=False call)")
    for _ in range(sizes.autoload_runs):
        manager.forget(AUTOLOAD_MODEL)  # next auto call checks the status again
        for bucket, model in ((first, auto), (none, plain), (later, auto)):
            started = clock()
            model.invoke(PROMPT)
            bucket.append(clock() - started)
    base = median(none)
    first_ms = (median(first) - base) * 1e3
    later_ms = (median(later) - base) * 1e3
    add(
        "5 auto-load",
        "first call, cluster already running (one status check)",
        f"{first_ms:+.3f} ms",
        "-",
        None,
        extra_ms=first_ms,
    )
    add(
        "5 auto-load",
        "later calls (cached: no request per call)",
        f"{later_ms:+.3f} ms ({median(later) * 1e3:.3f} vs {base * 1e3:.3f} ms)",
        "<= +0.1 ms",
        later_ms <= 0.1,
        extra_ms=later_ms,
    )


# ----------------------------------------------------------------------------- 6. anchors


def bench_anchors(url: str, quick: bool) -> None:
    from sections.anchors import bench_anchors as run_anchors

    run_anchors(url, quick, add=add, say=say, key=KEY, model=LLM_MODEL, prompt=PROMPT)


# ----------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import httpx
    import langchain_core

    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "langchain_core": langchain_core.__version__,
        "httpx": httpx.__version__,
        "loadavg": os.getloadavg(),
    }


def print_table(info: dict[str, Any], quick: bool, seconds: float) -> None:
    head = ("Section", "Metric", "Measured", "Target", "Result")
    rows = [(r.section, r.name, r.measured, r.target, r.result) for r in ROWS]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    line = "  ".join("-" * w for w in widths)
    print()
    print(
        f"langchain-bytez benchmarks ({'quick' if quick else 'full'}) - {info['nproc']} CPUs "
        f"({info['cpu']}), Python {info['python']}, load avg {info['loadavg'][0]:.2f}"
    )
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))
    print(line)
    misses = sum(r.result == "MISS" for r in ROWS)
    print(f"{len(ROWS)} rows, {misses} missed targets, {seconds:.0f} s")


SECTIONS = ("overhead", "streaming", "concurrency", "scale", "autoload", "anchors", "transports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke mode (small sizes)")
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    parser.add_argument(
        "--only",
        metavar="SECTION",
        action="append",
        choices=SECTIONS,
        help="run only these sections",
    )
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)  # internal: scale cases
    args = parser.parse_args(argv)

    if args.case:
        name, *rest = args.case
        if name == "stream_answer":
            out = case_stream_answer(rest[0], int(rest[1]), rest[2])
        elif name == "prompt":
            out = case_prompt(rest[0], int(rest[1]))
        else:
            out = case_leak(rest[0], int(rest[1]), [int(x) for x in rest[2].split(",")])
        print(json.dumps(out))
        return 0

    sizes = QUICK if args.quick else FULL
    sections = args.only or list(SECTIONS)
    started = time.perf_counter()
    ttfb = 0.05
    fast = Server("fast", ttfb=0.0, token_delay=0.0)
    first_byte = Server("ttfb", ttfb=ttfb, token_delay=0.0)
    slow = Server("conc", ttfb=sizes.conc_ttfb, token_delay=sizes.conc_token_delay)
    servers = [fast, first_byte, slow]
    # Its own server: the transports' 512-instance cluster stays apart from section 3's.
    wide = Server("transports", ttfb=sizes.conc_ttfb, token_delay=sizes.conc_token_delay)
    if "transports" in sections:
        servers.append(wide)
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        if "overhead" in sections:
            bench_overhead(fast.url, sizes)
        if "streaming" in sections:
            bench_ttfb(first_byte.url, ttfb, sizes)
            bench_cpu_per_chunk(fast.url, sizes)
        if "concurrency" in sections:
            bench_concurrency(slow.url, sizes)
        if "scale" in sections:
            bench_scale(fast.url, sizes)
        if "autoload" in sections:
            bench_autoload(fast.url, sizes)
        if "anchors" in sections:
            bench_anchors(fast.url, args.quick)
        if "transports" in sections:
            from sections.transports import bench_transports

            bench_transports(
                wide.url,
                args.quick,
                add=add,
                say=say,
                headers=headers(),
                body=encode({"text": PROMPT, "params": {"max_new_tokens": 20}, "stream": True}),
                model=LLM_MODEL,
                prompt=PROMPT,
                key=KEY,
            )
    finally:
        for server in servers:
            server.stop()
    seconds = time.perf_counter() - started
    info = machine()
    print_table(info, args.quick, seconds)
    if args.json:
        data = {
            "mode": "quick" if args.quick else "full",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": info,
            "seconds": seconds,
            "rows": [r.__dict__ for r in ROWS],
        }
        Path(args.json).write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
