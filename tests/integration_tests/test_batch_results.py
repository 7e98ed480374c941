"""Batches keep their results: one failing prompt does not take the others' answers.

``batch``/``abatch(..., return_exceptions=True)`` of three prompts against the local
server, the first request to arrive failing (HTTP 503, no retries): two answers and one
typed error, each prompt its own run for the callbacks (one ``on_llm_start`` each, and
an ``on_llm_end`` or ``on_llm_error``). The runs are in flight together (the server
holds each answer for a moment), so a failure that cancelled the others would show.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.errors import BytezAPIError
from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import FaultKind, LocalBytezServer

ServerFactory = Callable[..., LocalBytezServer]
TOKENS = [" one", " two", " three"]
PROMPTS = ["first", "second", "third"]


class Runs(BaseCallbackHandler):
    """Counts the run callbacks (from any thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = {"start": 0, "end": 0, "error": 0}

    def _count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self._count("start")

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self._count("start")

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self._count("end")

    def on_llm_error(self, *args: Any, **kwargs: Any) -> None:
        self._count("error")


@pytest.fixture
def server(bytez_server_factory: ServerFactory) -> LocalBytezServer:
    server = bytez_server_factory(load_delay=0.0, ttfb=0.3)
    server.set_reply(TOKENS)
    server.inject(FaultKind.STATUS_503, 1)  # the first run request to arrive fails
    return server


def _llm(server: LocalBytezServer, cls: type[Any] = BytezLLM) -> Any:
    model = "openai-community/gpt2" if cls is BytezLLM else "Qwen/Qwen2.5-0.5B-Instruct"
    return cls(
        model=model,
        api_key="test-key",
        base_url=server.url,
        concurrency=3,  # the three runs are on the wire together
        max_retries=0,
        auto_load=False,
    )


def _check(results: list[Any], runs: Runs, server: LocalBytezServer) -> None:
    errors = [r for r in results if isinstance(r, Exception)]
    answers = [r for r in results if not isinstance(r, Exception)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], BytezAPIError)
    assert errors[0].status_code == 503
    texts = [a if isinstance(a, str) else a.content for a in answers]
    assert texts == ["".join(TOKENS)] * 2
    assert runs.counts == {"start": 3, "end": 2, "error": 1}
    assert len(server.requests) == 3  # each prompt sent once, none cancelled
    assert server.peak_in_flight() >= 2  # they overlapped: a cancel would have hit one


def test_llm_batch_keeps_answers_of_other_prompts(server: LocalBytezServer) -> None:
    runs = Runs()
    results = _llm(server).batch(PROMPTS, {"callbacks": [runs]}, return_exceptions=True)
    _check(results, runs, server)


async def test_llm_abatch_keeps_answers_of_other_prompts(server: LocalBytezServer) -> None:
    runs = Runs()
    results = await _llm(server).abatch(PROMPTS, {"callbacks": [runs]}, return_exceptions=True)
    _check(results, runs, server)


async def test_chat_abatch_keeps_answers_too(server: LocalBytezServer) -> None:
    runs = Runs()
    chat = _llm(server, ChatBytez)
    results = await chat.abatch(PROMPTS, {"callbacks": [runs]}, return_exceptions=True)
    _check(results, runs, server)


def test_llm_batch_without_return_exceptions_raises(server: LocalBytezServer) -> None:
    with pytest.raises(BytezAPIError):
        _llm(server).batch(PROMPTS)


def test_llm_batch_return_exceptions_honours_max_concurrency(server: LocalBytezServer) -> None:
    runs = Runs()
    config: Any = {"callbacks": [runs], "max_concurrency": 1}
    results = _llm(server).batch(PROMPTS, config, return_exceptions=True)
    sequence = [isinstance(r, Exception) for r in results]
    assert sequence == [True, False, False]  # one at a time: the first fails
    assert server.peak_in_flight() == 1
    assert runs.counts == {"start": 3, "end": 2, "error": 1}
