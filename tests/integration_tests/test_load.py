"""Load: many concurrent calls through ONE ``BytezLLM``, with no errors and no leaks.

``concurrency=N`` does two things: auto-load asks the server for a cluster of ``N``
instances (``capacity`` min = desired = max = N, so the server runs N requests at once),
and the shared ``ModelManager`` lets at most N runs of the model be in flight from this
process (the rest wait client-side). With ``N`` = the number of callers every request
is on the wire at once.

Half of the stream consumers abandon their stream after the first chunk (a plain
``break``: the generator is finalised by the interpreter, as in user code). Afterwards:

* every call succeeded with the expected text;
* the manager's in-flight slots and the server's in-flight count are back to 0;
* after closing the pooled clients, this process's file descriptors and its TCP
  connections to the server's port are back to the counts before the run (the server
  runs in this process too, so both ends of every connection are counted).

The small version runs by default (``make test``); the 1,000 + 200 one is marked ``load``
(``make load``, which prints the file descriptors and RSS at its start and end).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil
import pytest

from langchain_bytez.llms import BytezLLM
from langchain_bytez.manager import ModelManager
from langchain_bytez.server import LocalBytezServer

MODEL = "openai-community/gpt2"
TOKENS = [" a", " b", " c", " d", " e", " f", " g", " h"]
TEXT = "".join(TOKENS)

ServerFactory = Callable[..., LocalBytezServer]


@dataclass
class Tally:
    ok: int = 0
    abandoned: int = 0
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, abandoned: bool = False) -> None:
        with self.lock:
            if abandoned:
                self.abandoned += 1
            else:
                self.ok += 1

    def fail(self, error: BaseException) -> None:
        with self.lock:
            self.errors.append(error)


def _port_connections(port: int) -> int:
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if (c.laddr and c.laddr.port == port) or (c.raddr and c.raddr.port == port)
    )


def _settle(probe: Callable[[], int], target: int, limit: float = 10.0) -> int:
    # Closing is asynchronous on the server side (it sees EOF, then closes): poll.
    deadline = time.monotonic() + limit
    value = probe()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.05)
        value = probe()
    return value


async def _async_call(llm: BytezLLM, i: int, tally: Tally) -> None:
    try:
        if i % 4 == 0:
            assert await llm.ainvoke(f"async {i}") == TEXT
            tally.add()
        elif i % 4 == 1:
            pieces = [p async for p in llm.astream(f"async {i}")]
            assert "".join(pieces) == TEXT
            tally.add()
        else:
            async for piece in llm.astream(f"async {i}"):
                assert piece == TOKENS[0]
                break  # abandon: the generator is finalised by the event loop
            tally.add(abandoned=True)
    except Exception as exc:  # collected: the assertion below lists them
        tally.fail(exc)


def _sync_call(llm: BytezLLM, i: int, tally: Tally) -> None:
    try:
        if i % 4 == 0:
            assert llm.invoke(f"sync {i}") == TEXT
            tally.add()
        elif i % 4 == 1:
            assert "".join(llm.stream(f"sync {i}")) == TEXT
            tally.add()
        else:
            for piece in llm.stream(f"sync {i}"):
                assert piece == TOKENS[0]
                break  # abandon: the generator is closed when it is dropped
            tally.add(abandoned=True)
    except Exception as exc:
        tally.fail(exc)


async def run_load(server: LocalBytezServer, n_async: int, n_threads: int) -> dict[str, float]:
    """Run the mixed load; check results, slots, descriptors and sockets; return figures."""
    server.set_reply(TOKENS)
    server.token_delay = 0.001  # streams are still running when consumers abandon them
    process = psutil.Process()
    fds_before = process.num_fds()
    conns_before = _port_connections(server.port)

    llm = BytezLLM(
        model=MODEL,
        api_key="test-key",
        base_url=server.url,
        concurrency=n_async + n_threads,
        max_retries=0,  # any failure must show, not be retried away
    )
    tally = Tally()
    started = time.perf_counter()
    rss_before = process.memory_info().rss
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        futures = [pool.submit(_sync_call, llm, i, tally) for i in range(n_threads)]
        await asyncio.gather(*(_async_call(llm, i, tally) for i in range(n_async)))
        for future in futures:
            await asyncio.wrap_future(future)
    elapsed = time.perf_counter() - started
    rss_peak_growth = process.memory_info().rss - rss_before

    assert tally.errors == [], tally.errors[:5]
    total = n_async + n_threads
    assert tally.ok + tally.abandoned == total
    assert tally.abandoned == sum(1 for i in range(n_async) if i % 4 >= 2) + sum(
        1 for i in range(n_threads) if i % 4 >= 2
    )

    # Abandoned streams give back their slot and their server-side run.
    await asyncio.sleep(0)  # let the loop finalise the last abandoned generators
    sync_client = llm._sync_client()
    manager = ModelManager.for_client(sync_client)
    limiter = manager._limiter(MODEL, llm.concurrency)
    deadline = time.monotonic() + 10
    while (limiter.in_use or server.in_flight()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert limiter.in_use == 0
    assert server.in_flight() == 0
    kept_alive = _port_connections(server.port) - conns_before
    assert kept_alive > 0  # the probe sees the pooled connections (so it would see leaks)

    # Close the pools; then nothing of the run may remain open.
    sync_client.close()
    await llm._async_client().aclose()
    fds_after = await asyncio.to_thread(_settle, process.num_fds, fds_before)
    conns_after = await asyncio.to_thread(
        _settle, lambda: _port_connections(server.port), conns_before
    )
    assert conns_after == conns_before  # a fresh server: only this run's connections
    # Process-wide: objects of earlier tests may be collected meanwhile (fewer fds);
    # a leak of this run would leave more.
    assert fds_after <= fds_before
    rss_end = process.memory_info().rss
    return {
        "calls": total,
        "seconds": round(elapsed, 2),
        "calls_per_second": round(total / elapsed),
        "server_peak_in_flight": server.peak_in_flight(MODEL),
        "pooled_sockets_before_close": kept_alive,
        "fds_start": fds_before,
        "fds_end": fds_after,
        "rss_start_mb": round(rss_before / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth_mb": round(rss_peak_growth / 2**20, 1),
    }


@pytest.mark.timeout(60)
async def test_load_small_no_errors_no_leaks(bytez_server_factory: ServerFactory) -> None:
    # Always on: 100 async + 40 threads, half of the streams abandoned.
    server = bytez_server_factory(load_delay=0.0)
    figures = await run_load(server, n_async=100, n_threads=40)
    assert figures["server_peak_in_flight"] > 1  # they really ran concurrently


@pytest.mark.load
@pytest.mark.timeout(300)
async def test_load_1000_async_200_threads(bytez_server_factory: ServerFactory) -> None:
    server = bytez_server_factory(load_delay=0.0)
    figures = await run_load(server, n_async=1000, n_threads=200)
    print(  # make load runs with -s: the figures are part of its report
        f"\nload: {figures['calls']} calls in {figures['seconds']} s "
        f"({figures['calls_per_second']}/s), server peak in flight "
        f"{figures['server_peak_in_flight']}\n"
        f"  fds: {figures['fds_start']} at the start -> {figures['fds_end']} at the end "
        f"(pooled sockets before close: {figures['pooled_sockets_before_close']})\n"
        f"  RSS: {figures['rss_start_mb']} MB at the start -> {figures['rss_end_mb']} MB "
        f"at the end (growth over the run {figures['rss_growth_mb']:+} MB)"
    )
    assert figures["server_peak_in_flight"] > 100
