"""Soak: a bounded run of mixed calls with 10 % random server faults (``make soak``).

For ``BYTEZ_SOAK_SECONDS`` (default 60) async workers and thread workers call
``BytezLLM`` (invoke / stream / ainvoke / astream), ``ChatBytez`` (invoke / astream) and
``BytezEmbeddings`` (embed_documents) in a loop against a local server whose
``fault_rate`` is 0.1 (503, 429 with a wait, connection reset, HTML 502, and for streams
disconnects and ``Error:`` mid-stream).

Pass criteria:

* every call is accounted for: it returned the right kind of value, or raised a typed
  ``BytezError`` (anything else fails the run);
* nothing hangs: each async call is bounded by ``asyncio.wait_for``, each request by a
  10 s read timeout, and every worker thread has ended when the run does;
* memory is flat: RSS growth between the end of the warm-up (a fifth of the run) and
  the end is below ``RSS_BOUND_MB`` (20 MB), measured after ``gc.collect()``;
* no descriptor is left behind: once the clients are closed, the process has at most
  ``FD_BOUND`` (5) more open file descriptors than at the start.

The run prints its report (``make soak`` runs pytest with ``-s``): calls, outcomes, and
the file descriptors and RSS at the start and at the end.

The server runs in a child process (``python -m langchain_bytez.server``), so the RSS
measured is the client's alone: the server's request log grows with every request and
would otherwise be mistaken for a client leak.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.embeddings import BytezEmbeddings
from langchain_bytez.errors import BytezError
from langchain_bytez.llms import BytezLLM

SOAK_SECONDS = float(os.environ.get("BYTEZ_SOAK_SECONDS", "60"))
RSS_BOUND_MB = 20.0
FD_BOUND = 5  # descriptors left open once the clients are closed
CALL_TIMEOUT = 30.0  # per async call; a retried call waits at most ~3 s in backoff
ASYNC_WORKERS = 8
THREAD_WORKERS = 4


@pytest.fixture
def server_url() -> Iterator[str]:
    """A local server in a child process: 10 % random faults, quick cold start."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        child = subprocess.Popen(
            [
                sys.executable, "-m", "langchain_bytez.server", "--port", "0",
                "--port-file", str(port_file), "--api-key", "test-key", "--quiet",
                "--fault-rate", "0.1", "--load-delay", "0.05", "--token-delay", "0.0005",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists():
                if child.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the local server did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port_file.read_text().strip()}"
        finally:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


class Ledger:
    """Outcome counts per operation: 'ok' or the error class name."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        self.untyped: list[BaseException] = []

    def begin(self) -> None:
        with self.lock:
            self.started += 1

    def end(self, op: str, outcome: str) -> None:
        with self.lock:
            self.outcomes[(op, outcome)] += 1

    def crash(self, op: str, error: BaseException) -> None:
        with self.lock:
            self.outcomes[(op, f"UNTYPED {type(error).__name__}")] += 1
            self.untyped.append(error)

    @property
    def finished(self) -> int:
        return sum(self.outcomes.values())


def _check_text(value: Any) -> None:
    assert isinstance(value, str)
    assert value


async def _one_async(op: str, models: dict[str, Any], i: int) -> None:
    llm, chat, emb = models["llm"], models["chat"], models["emb"]
    if op == "llm.ainvoke":
        _check_text(await llm.ainvoke(f"soak {i}"))
    elif op == "llm.astream":
        _check_text("".join([p async for p in llm.astream(f"soak {i}")]))
    elif op == "chat.astream":
        _check_text("".join([c.text async for c in chat.astream(f"soak {i}")]))
    elif op == "emb.aembed_documents":
        vectors = await emb.aembed_documents([f"soak {i}", f"soak {i + 1}"])
        assert len(vectors) == 2
        assert all(len(v) == 384 for v in vectors)


def _one_sync(op: str, models: dict[str, Any], i: int) -> None:
    llm, chat, emb = models["llm"], models["chat"], models["emb"]
    if op == "llm.invoke":
        _check_text(llm.invoke(f"soak {i}"))
    elif op == "llm.stream":
        _check_text("".join(llm.stream(f"soak {i}")))
    elif op == "chat.invoke":
        _check_text(chat.invoke(f"soak {i}").text)
    elif op == "emb.embed_documents":
        assert len(emb.embed_documents([f"soak {i}"])[0]) == 384


ASYNC_OPS = ("llm.ainvoke", "llm.astream", "chat.astream", "emb.aembed_documents")
SYNC_OPS = ("llm.invoke", "llm.stream", "chat.invoke", "emb.embed_documents")


async def _async_worker(w: int, models: dict[str, Any], ledger: Ledger, until: float) -> None:
    i = 0
    while time.monotonic() < until:
        op = ASYNC_OPS[(w + i) % len(ASYNC_OPS)]
        ledger.begin()
        try:
            await asyncio.wait_for(_one_async(op, models, w * 1_000_000 + i), CALL_TIMEOUT)
            ledger.end(op, "ok")
        except BytezError as exc:
            ledger.end(op, type(exc).__name__)
        except Exception as exc:  # TimeoutError (a hang) and anything untyped
            ledger.crash(op, exc)
        i += 1


def _sync_worker(w: int, models: dict[str, Any], ledger: Ledger, until: float) -> None:
    i = 0
    while time.monotonic() < until:
        op = SYNC_OPS[(w + i) % len(SYNC_OPS)]
        ledger.begin()
        try:
            _one_sync(op, models, -(w * 1_000_000 + i))
            ledger.end(op, "ok")
        except BytezError as exc:
            ledger.end(op, type(exc).__name__)
        except Exception as exc:
            ledger.crash(op, exc)
        i += 1


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


@pytest.mark.soak
@pytest.mark.timeout(int(SOAK_SECONDS) + 120)
async def test_soak_mixed_calls_with_random_faults(server_url: str) -> None:
    common: dict[str, Any] = {
        "api_key": "test-key",
        "base_url": server_url,
        "timeout": 10.0,
        "concurrency": 16,
    }
    models = {
        "llm": BytezLLM(model="openai-community/gpt2", max_new_tokens=12, **common),
        "chat": ChatBytez(model="Qwen/Qwen2.5-0.5B-Instruct", max_new_tokens=12, **common),
        "emb": BytezEmbeddings(model="sentence-transformers/all-MiniLM-L6-v2", **common),
    }
    ledger = Ledger()
    fds_start = psutil.Process().num_fds()
    rss_start = _rss_mb()
    start = time.monotonic()
    until = start + SOAK_SECONDS
    warm_until = start + SOAK_SECONDS / 5
    samples: list[tuple[float, float]] = []

    async def sample_rss() -> None:
        while time.monotonic() < until:
            await asyncio.sleep(min(1.0, SOAK_SECONDS / 20))
            samples.append((time.monotonic() - start, await asyncio.to_thread(_rss_mb)))

    threads = [
        threading.Thread(target=_sync_worker, args=(w, models, ledger, until), daemon=True)
        for w in range(THREAD_WORKERS)
    ]
    for thread in threads:
        thread.start()
    await asyncio.gather(
        sample_rss(), *(_async_worker(w, models, ledger, until) for w in range(ASYNC_WORKERS))
    )
    for thread in threads:
        await asyncio.to_thread(thread.join, CALL_TIMEOUT)
    hung = [t.name for t in threads if t.is_alive()]
    elapsed = time.monotonic() - start

    rss_end = _rss_mb()
    after_warm = [mb for t, mb in samples if t >= warm_until - start] or [rss_end]
    rss_warm = after_warm[0]
    growth = rss_end - rss_warm

    for model in models.values():
        model._sync_client().close()
        await model._async_client().aclose()
    fds_end = psutil.Process().num_fds()

    by_outcome: collections.Counter[str] = collections.Counter()
    for (_, outcome), n in ledger.outcomes.items():
        by_outcome[outcome] += n
    print(
        f"\nsoak summary: {elapsed:.1f} s, {ledger.started} calls "
        f"({ledger.started / elapsed:.0f}/s)\n"
        f"  outcomes: {dict(by_outcome)}\n"
        f"  per op:   {dict(sorted(ledger.outcomes.items()))}\n"
        f"  fds: {fds_start} at the start -> {fds_end} at the end (clients closed)\n"
        f"  RSS: {rss_start:.1f} MB at the start, "
        f"{rss_warm:.1f} MB after warm-up -> {rss_end:.1f} MB at the end "
        f"(growth {growth:+.1f} MB, bound {RSS_BOUND_MB} MB); "
        f"min/max after warm-up {min(after_warm):.1f}/{max(after_warm):.1f} MB"
    )

    assert hung == []
    assert ledger.untyped == [], ledger.untyped[:5]
    assert ledger.finished == ledger.started  # every call accounted for
    assert by_outcome["ok"] > 0.8 * ledger.started  # most faults are retried away
    assert len(by_outcome) > 1  # the faults really happened
    assert growth < RSS_BOUND_MB
    assert fds_end <= fds_start + FD_BOUND  # the server is a child: these are ours
