"""No leaks: event loops, pools and sockets return to a small constant after use.

The local server runs in a subprocess here, so that the file descriptors counted in
``/proc/self/fd`` are the client's own. Each test warms up once, takes the baseline,
does the work, and compares after a ``gc.collect()``:

* 200 x ``asyncio.run(llm.ainvoke(...))``: every loop's clients are closed while the
  loop shuts down (the sockets with them) and nothing keeps the loop alive;
* 300 objects differing in one header, used and dropped (sync, and async in one loop):
  pooled clients are held by the objects that use them, so dropped configurations are
  closed, apart from the few most recent ones kept warm;
* loops closed without ``asyncio.run``'s shutdown, and one ``AsyncBytezClient`` used
  from many loops.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from langchain_bytez import AsyncBytezClient, BytezLLM, ChatBytez
from langchain_bytez.registry import WARM_CLIENTS

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts fds in /proc"),
]

KEY = "sk-leak-test-key-0001"
MODEL = "openai-community/gpt2"
CHAT = "Qwen/Qwen2.5-0.5B-Instruct"
MAX_FDS = 5
MAX_RSS_MB = 30


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A local Bytez server in its own process (its sockets are not counted here)."""
    folder = tempfile.mkdtemp(prefix="bytez-leaks-")
    port_file = Path(folder) / "port"
    cmd = [sys.executable, "-m", "langchain_bytez.server", "--port", "0"]
    cmd += ["--port-file", str(port_file), "--api-key", KEY, "--quiet"]
    cmd += ["--ttfb", "0", "--token-delay", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        proc.terminate()
        proc.wait(10)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


class Usage:
    """File descriptors and RSS now, compared later (after a full collection)."""

    def __init__(self) -> None:
        gc.collect()
        self.fds, self.rss = fds(), rss_mb()

    def check(self, *, collect_first: bool = False) -> None:
        # Sockets must be closed when their loop or last user goes, not whenever the
        # cycle collector happens to run: fds are counted before any collection
        # (unless the case can only free them by collection), memory after one.
        if collect_first:
            gc.collect()
        grown_fds = fds() - self.fds
        assert grown_fds <= MAX_FDS, f"+{grown_fds} file descriptors"
        gc.collect()
        grown_rss = rss_mb() - self.rss
        assert grown_rss <= MAX_RSS_MB, f"+{grown_rss:.1f} MB RSS"


def _llm(url: str, **extra: object) -> BytezLLM:
    return BytezLLM(
        model=MODEL, api_key=KEY, base_url=url, max_new_tokens=2, auto_load=False, **extra
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["auto", "httpx"])
def test_200_asyncio_runs(url: str, transport: str) -> None:
    llm = _llm(url, async_transport=transport)
    asyncio.run(llm.ainvoke("x"))  # warm-up: imports, caches
    usage = Usage()
    for _ in range(200):
        assert asyncio.run(llm.ainvoke("x"))
    usage.check()


def test_300_configurations_used_and_dropped_sync(url: str) -> None:
    _llm(url, default_headers={"X-N": "warm"}).invoke("x")
    usage = Usage()
    for n in range(300):
        assert _llm(url, default_headers={"X-N": str(n)}).invoke("x")
    # Chat objects too (same pool, their own configurations).
    for n in range(20):
        ChatBytez(model=CHAT, api_key=KEY, base_url=url, auto_load=False, max_retries=n).invoke("x")
    usage.check()


def test_300_configurations_used_and_dropped_in_one_loop(url: str) -> None:
    async def main() -> None:
        await _llm(url, default_headers={"X-N": "warm"}).ainvoke("x")
        usage = Usage()
        for n in range(300):
            assert await _llm(url, default_headers={"X-N": str(n)}).ainvoke("x")
        await asyncio.sleep(0.2)  # the closes scheduled by the finalisers run
        # The loop's own fds aside, only the warm clients' connections stay open.
        usage.check()

    asyncio.run(main())


def test_a_live_object_keeps_its_pool(url: str) -> None:
    # The flip side: an object in use is never closed under it, however many
    # configurations come and go.
    kept = _llm(url, default_headers={"X-N": "kept"})
    kept.invoke("x")
    client = kept._sync_client()
    for n in range(WARM_CLIENTS * 3):
        _llm(url, default_headers={"X-N": f"churn{n}"}).invoke("x")
    assert kept._sync_client() is client
    assert client._http is not None
    assert not client._http.is_closed
    assert kept.invoke("x")


def test_loops_closed_without_shutdown(url: str) -> None:
    llm = _llm(url)
    usage = Usage()
    for _ in range(50):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(llm.ainvoke("x"))
        finally:
            loop.close()  # no shutdown_asyncgens(): dropped when the next loop starts
    asyncio.run(llm.ainvoke("x"))
    # A closed loop's sockets cannot be closed through it: they go with the garbage.
    usage.check(collect_first=True)


def test_one_async_client_used_from_many_loops(url: str) -> None:
    client = AsyncBytezClient(KEY, base_url=url)
    asyncio.run(client.run(MODEL, {"text": "x"}))
    usage = Usage()
    for _ in range(100):
        assert asyncio.run(client.run(MODEL, {"text": "x", "params": {"max_new_tokens": 2}}))
    usage.check()
