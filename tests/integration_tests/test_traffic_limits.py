"""Under real traffic and hostile servers: the account-wide limit, deadlines, bounded memory.

Against the local server (its account concurrency limit answers 429 beyond it, as Bytez
does) and against small raw servers in this file, on 127.0.0.1, that trickle, never end,
or send a compression bomb. Timing bounds are generous "ends within N seconds" guards.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.errors import (
    BytezConcurrencyTimeoutError,
    BytezRateLimitError,
    BytezResponseTooLargeError,
    BytezStreamTimeoutError,
    BytezTimeoutError,
)
from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import FaultKind, LocalBytezServer

LLM_MODEL = "openai-community/gpt2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
KEY = "test-key"
MIB = 1024 * 1024

ServerFactory = Callable[..., LocalBytezServer]


# ------------------------------------------------------------ account-wide concurrency


@pytest.mark.parametrize("cls", [BytezLLM, ChatBytez])
async def test_default_settings_batch_of_16_against_a_2_slot_account(
    bytez_server_factory: ServerFactory, cls: type[BytezLLM] | type[ChatBytez]
) -> None:
    # Each run takes a while, so the batch really overlaps; beyond 2 in flight the
    # server answers 429 (ratelimit-reset 1 s). The learned limit and jittered retries
    # must get every prompt through at the default max_retries=2.
    server = bytez_server_factory(concurrency_limit=2, ttfb=0.05, load_delay=0.0)
    model = LLM_MODEL if cls is BytezLLM else CHAT_MODEL
    llm = cls(model=model, api_key=KEY, base_url=server.url)
    prompts = [f"prompt {i}" for i in range(16)]
    results = await llm.abatch(prompts)  # type: ignore[arg-type]
    assert len(results) == 16
    assert all(results)
    assert server.peak_in_flight() <= 2


def test_an_unread_stream_holds_the_only_slot_and_the_wait_is_bounded(
    bytez_server_factory: ServerFactory,
) -> None:
    server = bytez_server_factory(load_delay=0.0)
    server.set_reply([f" t{i}" for i in range(50)])
    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=server.url, max_concurrent_requests=1)
    it = llm.stream("Hi")
    assert next(it)  # the notebook pattern: opened, one chunk read, left open
    started = time.monotonic()
    with pytest.raises(BytezConcurrencyTimeoutError) as info:
        llm.invoke("Another", timeout=2)
    waited = time.monotonic() - started
    assert waited < 6  # bounded by the call's timeout, not forever
    error = info.value
    assert (error.limit, error.in_flight) == (1, 1)
    assert error.waited == pytest.approx(2, abs=0.5)
    message = str(error)
    assert "1 request(s)" in message
    assert "limit is 1" in message
    assert "max_concurrent_requests" in message
    assert "close streams" in message
    it.close()  # the slot comes back with the stream
    assert llm.invoke("Third", timeout=10)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_abandoned_stream_gives_its_slot_back_when_collected(
    bytez_server_factory: ServerFactory, mode: str
) -> None:
    import gc

    server = bytez_server_factory(load_delay=0.0)
    server.set_reply([f" t{i}" for i in range(50)])
    payload = {"text": "x"}
    if mode == "sync":
        client = BytezClient(KEY, base_url=server.url, max_concurrent_requests=1)
        stream = client.stream(LLM_MODEL, payload)
        stream.__enter__()
        with pytest.raises(BytezConcurrencyTimeoutError):
            await asyncio.to_thread(client.run, LLM_MODEL, payload, timeout=0.5)
        del stream  # never closed, never exhausted
        gc.collect()
        assert client.run(LLM_MODEL, payload, timeout=3).output
        return
    aclient = AsyncBytezClient(KEY, base_url=server.url, max_concurrent_requests=1)
    astream = aclient.stream(LLM_MODEL, payload)
    await astream.__aenter__()
    with pytest.raises(BytezConcurrencyTimeoutError):
        await aclient.run(LLM_MODEL, payload, timeout=0.5)
    del astream
    gc.collect()
    assert (await aclient.run(LLM_MODEL, payload, timeout=3)).output
    await aclient.aclose()


def test_a_limit_learned_from_429s_bounds_the_wait_too(
    bytez_server_factory: ServerFactory,
) -> None:
    # No explicit cap: the account allows 1, a stream holds it on the server too. The
    # next call is refused (429) until the learned limit is 1, then waits for a slot
    # until its deadline and says the limit was learned.
    server = bytez_server_factory(concurrency_limit=1, token_delay=0.2, load_delay=0.0)
    server.set_reply([f" t{i}" for i in range(100)])
    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=f"{server.url}/models/v2", max_retries=5)
    it = llm.stream("Hi")
    assert next(it)
    started = time.monotonic()
    with pytest.raises(BytezConcurrencyTimeoutError) as info:
        llm.invoke("Another", timeout=8)
    assert time.monotonic() - started < 12
    assert info.value.limit == 1
    assert "learned" in str(info.value)
    it.close()


# ------------------------------------------------------------------------- deadlines


def test_a_retry_after_beyond_the_deadline_fails_at_once(
    bytez_server_factory: ServerFactory,
) -> None:
    server = bytez_server_factory(load_delay=0.0)
    server.inject(FaultKind.RATE_LIMIT_RETRY_AFTER, 1, retry_after=10)
    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=server.url)
    started = time.monotonic()
    with pytest.raises(BytezRateLimitError, match=r"asked to wait 10 s, longer than the"):
        llm.invoke("Hi", timeout=3)
    assert time.monotonic() - started < 2  # no 3 s of waiting for nothing


def test_a_retry_after_beyond_max_retry_wait_fails_at_once(
    bytez_server_factory: ServerFactory,
) -> None:
    server = bytez_server_factory(load_delay=0.0)
    server.inject(FaultKind.RATE_LIMIT, 1, retry_after=30)
    llm = BytezLLM(model=LLM_MODEL, api_key=KEY, base_url=server.url, max_retry_wait=5)
    started = time.monotonic()
    with pytest.raises(BytezRateLimitError, match=r"asked to wait 30 s.*max_retry_wait=5"):
        llm.invoke("Hi")
    assert time.monotonic() - started < 2
    assert server.count("POST", f"/models/v2/{LLM_MODEL}") == 1


class _Raw(BaseHTTPRequestHandler):
    """Answers model runs as told by the model id's name (see ``RawServer``)."""

    protocol_version = "HTTP/1.1"
    server: _RawHTTPServer

    def log_message(self, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        name = self.path.rsplit("/", 1)[-1]
        try:
            getattr(self, f"_{name.replace('-', '_')}")()
        except (BrokenPipeError, ConnectionResetError):
            return

    def _start(self, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("content-type", ctype)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _trickle(self) -> None:
        # A JSON answer announced whole, sent one byte every 2 s.
        body = json.dumps({"error": None, "output": "x" * 100}).encode()
        self._start("application/json", {"content-length": str(len(body))})
        for byte in body:
            if self.server.stopping.wait(2):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _trickle_stream(self) -> None:
        self._start("text/event-stream")
        while not self.server.stopping.wait(0.5):
            self.wfile.write(b"a")
            self.wfile.flush()

    def _stall_stream(self) -> None:
        self._start("text/event-stream")
        self.wfile.write(b"first words")
        self.wfile.flush()
        self.server.stopping.wait(30)

    def _endless(self) -> None:
        self._start("application/json")
        chunk = b'{"error": null, "output": "' + b"a" * 65536
        while not self.server.stopping.is_set():
            self.wfile.write(chunk)
            chunk = b"a" * 65536

    def _endless_stream(self) -> None:
        self._start("text/event-stream")
        while not self.server.stopping.is_set():
            self.wfile.write(b"b" * 65536)

    def _bomb(self) -> None:
        self._start(
            "application/json",
            {"content-encoding": "gzip", "content-length": str(len(self.server.bomb))},
        )
        self.wfile.write(self.server.bomb)


class _RawHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    stopping: threading.Event
    bomb: bytes


def _gzip_bomb() -> bytes:
    # 200 MB of JSON text that packs into ~200 KB.
    head = b'{"error": null, "output": "'
    size = 200 * 1000 * 1000
    return gzip.compress(head + b"0" * (size - len(head) - 2) + b'"}', compresslevel=9)


@pytest.fixture(scope="module")
def raw_server() -> Iterator[str]:
    server = _RawHTTPServer(("127.0.0.1", 0), _Raw)
    server.stopping = threading.Event()
    server.bomb = _gzip_bomb()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


def test_a_trickling_body_ends_invoke_at_its_deadline(raw_server: str) -> None:
    llm = BytezLLM(model="org/trickle", api_key=KEY, base_url=raw_server, auto_load=False)
    started = time.monotonic()
    with pytest.raises(BytezTimeoutError, match="timeout of 3 s"):
        llm.invoke("Hi", timeout=3)
    assert time.monotonic() - started < 5


async def test_a_trickling_body_ends_ainvoke_at_its_deadline(raw_server: str) -> None:
    llm = BytezLLM(model="org/trickle", api_key=KEY, base_url=raw_server, auto_load=False)
    started = time.monotonic()
    with pytest.raises(BytezTimeoutError, match="timeout of 3 s"):
        await llm.ainvoke("Hi", timeout=3)
    assert time.monotonic() - started < 5


def test_a_trickling_stream_ends_at_the_total_deadline_with_its_text(raw_server: str) -> None:
    client = BytezClient(KEY, base_url=raw_server)
    started = time.monotonic()
    got: list[str] = []
    with pytest.raises(BytezStreamTimeoutError, match="timeout of 3 s") as info:
        with client.stream("org/trickle-stream", {"text": "x"}, timeout=3) as stream:
            got.extend(stream)
    assert time.monotonic() - started < 5
    assert info.value.delivered_text == "".join(got)
    assert info.value.delivered_text.startswith("aa")


async def test_a_stalled_stream_ends_at_the_idle_limit(raw_server: str) -> None:
    client = AsyncBytezClient(KEY, base_url=raw_server, stream_idle_timeout=1)
    started = time.monotonic()

    async def drain() -> None:
        async with client.stream("org/stall-stream", {"text": "x"}) as stream:
            async for _ in stream:
                pass

    with pytest.raises(BytezStreamTimeoutError, match="stream_idle_timeout") as info:
        await drain()
    assert time.monotonic() - started < 4
    assert info.value.delivered_text == "first words"
    await client.aclose()


# --------------------------------------------------------------------- bounded memory

_MEASURE = """
import asyncio, json, re, sys
from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.errors import BytezResponseTooLargeError

base_url, model, mode = sys.argv[1], sys.argv[2], sys.argv[3]
limit = int(sys.argv[4])

def status_kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\\s+(\\d+)", status.read()).group(1))

def reset_peak():
    # Linux: writing 5 resets the peak RSS (VmHWM) to the current RSS.
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")

async def arun():
    client = AsyncBytezClient("k", base_url=base_url, max_response_bytes=limit)
    try:
        if mode == "astream":
            async with client.stream(model, {"text": "x"}) as stream:
                async for _ in stream:
                    pass
        else:
            await client.run(model, {"text": "x"})
    finally:
        await client.aclose()

def run():
    with BytezClient("k", base_url=base_url, max_response_bytes=limit) as client:
        if mode == "stream":
            with client.stream(model, {"text": "x"}) as stream:
                for _ in stream:
                    pass
        else:
            client.run(model, {"text": "x"})

# Warm up the imports and the loop so that only the answer counts.
asyncio.run(asyncio.sleep(0))
reset_peak()
before = status_kib("VmRSS")
try:
    asyncio.run(arun()) if mode.startswith("a") else run()
except BytezResponseTooLargeError as exc:
    print(json.dumps({"error": type(exc).__name__, "limit": exc.limit,
                      "received": exc.received, "growth_kib": status_kib("VmHWM") - before}))
else:
    print(json.dumps({"error": None, "growth_kib": status_kib("VmHWM") - before}))
"""


def _measure(raw_server: str, model: str, mode: str, limit: int) -> dict[str, Any]:
    # A fresh process whose peak RSS is reset just before the call: it measures this
    # answer alone.
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _MEASURE, raw_server, model, mode, str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_the_memory_measure_sees_a_big_answer(raw_server: str) -> None:
    # The measure can fail: with room for the 200 MB bomb, the answer is read whole and
    # the peak grows by far more than the 16 MiB the tests below allow.
    result = _measure(raw_server, "org/bomb", "run", 256 * MIB)
    assert result["error"] is None
    assert result["growth_kib"] * 1024 > 200 * 1000 * 1000


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        ("org/bomb", "run"),
        ("org/bomb", "arun"),
        ("org/endless", "run"),
        ("org/endless", "arun"),
        ("org/endless-stream", "stream"),
        ("org/endless-stream", "astream"),
    ],
)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_bomb_or_an_endless_body_stops_at_the_size_limit(
    raw_server: str, model: str, mode: str
) -> None:
    result = _measure(raw_server, model, mode, 8 * MIB)
    assert result["error"] == "BytezResponseTooLargeError", result
    assert result["limit"] == 8 * MIB
    assert result["received"] > 8 * MIB
    assert result["growth_kib"] * 1024 < 2 * 8 * MIB, result


def test_the_size_error_says_what_to_change(raw_server: str) -> None:
    with BytezClient(KEY, base_url=raw_server, max_response_bytes=MIB) as client:
        with pytest.raises(BytezResponseTooLargeError, match="max_response_bytes=1048576"):
            client.run("org/bomb", {"text": "x"})
