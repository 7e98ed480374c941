"""One console progress line per load, however many callers wait for it.

Eight threads and eight tasks call one model that is not loaded yet, with
``load_progress=True``: one of them leads the load, the others wait for it and receive
its events (for their own callbacks). The console shows each event of the load once.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import LocalBytezServer

ServerFactory = Callable[..., LocalBytezServer]
MODEL = "openai-community/gpt2"


class LoadEvents(BaseCallbackHandler):
    """Counts the ``bytez_model_loading`` custom events each run receives."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: collections.Counter[Any] = collections.Counter()

    def on_custom_event(self, name: str, data: Any, *, run_id: Any, **kwargs: Any) -> None:
        if name == "bytez_model_loading":
            with self.lock:
                self.runs[run_id] += 1


@pytest.mark.timeout(60)
async def test_one_console_line_per_event_for_16_waiting_callers(
    bytez_server_factory: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = bytez_server_factory(cluster_routes="on", load_delay=1.5)
    llm = BytezLLM(
        model=MODEL,
        api_key="test-key",
        base_url=server.url,
        load_progress=True,
        max_new_tokens=3,
        concurrency=16,
    )
    events = LoadEvents()
    config: Any = {"callbacks": [events]}
    start = threading.Barrier(9)  # eight threads and the event loop start together

    def in_thread(i: int) -> str:
        start.wait()
        return llm.invoke(f"thread {i}", config)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(in_thread, i) for i in range(8)]
        await asyncio.to_thread(start.wait)
        answers = await asyncio.gather(*(llm.ainvoke(f"task {i}", config) for i in range(8)))
        answers += [await asyncio.wrap_future(f) for f in futures]

    assert len(answers) == 16
    assert all(isinstance(a, str) for a in answers)
    puts = [r for r in server.requests if r.method == "PUT"]
    assert len(puts) == 1  # one load, shared by all
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[bytez]")]
    assert lines, "the load printed nothing"
    assert len(lines) == len(set(lines)), lines  # each event once, not once per caller
    assert sum("running" in line for line in lines) == 1, lines
    # Every run still heard the load's progress on its own callbacks.
    assert len(events.runs) == 16
