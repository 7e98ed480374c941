"""``on_retry`` reaches the run's callbacks once for every retry the client makes.

Against the local server's fault knobs (429 with a wait, 503, an HTML 502, a reset
before the first byte): the number of ``on_retry`` callbacks equals the number of run
requests sent minus one, for plain and streamed runs (``stream``/``astream``, the
``streaming`` argument and field), sync and async, for ``BytezLLM`` and ``ChatBytez``,
after an auto-load, and with an async handler slower than the run itself; the tokens
of a retried stream are reported once each.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import FaultKind, LocalBytezServer

ServerFactory = Callable[..., LocalBytezServer]
LLM_MODEL = "openai-community/gpt2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


class Retries(BaseCallbackHandler):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.attempts: list[int] = []

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        with self.lock:
            self.count += 1
            self.attempts.append(retry_state.attempt_number)


class RetriesAndTokens(Retries):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


class SlowAsyncRetries(AsyncCallbackHandler):
    """An async handler that takes longer than the rest of the run."""

    def __init__(self) -> None:
        self.count = 0

    async def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.3)
        self.count += 1


@pytest.fixture
def server(bytez_server_factory: ServerFactory) -> LocalBytezServer:
    return bytez_server_factory(load_delay=0.0)


def _model(server: LocalBytezServer, kind: str, **kwargs: Any) -> Any:
    common: dict[str, Any] = {
        "api_key": "test-key",
        "base_url": server.url,
        "max_new_tokens": 4,
        "max_retries": 3,
        "max_retry_wait": 0.1,
        "auto_load": False,
    }
    common.update(kwargs)
    if kind == "chat":
        return ChatBytez(model=CHAT_MODEL, **common)
    return BytezLLM(model=LLM_MODEL, **common)


async def _call(model: Any, how: str, handler: Any) -> Any:
    config: Any = {"callbacks": [handler]}
    if how == "invoke":
        return await asyncio.to_thread(model.invoke, "Hi", config)
    if how == "stream":
        return await asyncio.to_thread(lambda: list(model.stream("Hi", config)))
    if how == "streaming-invoke":
        return await asyncio.to_thread(model.invoke, "Hi", config, streaming=True)
    if how == "ainvoke":
        return await model.ainvoke("Hi", config)
    if how == "astreaming-invoke":
        return await model.ainvoke("Hi", config, streaming=True)
    if how == "streaming-field-invoke":
        streamed = model.model_copy(update={"streaming": True})
        return await asyncio.to_thread(streamed.invoke, "Hi", config)
    if how == "astreaming-field-invoke":
        return await model.model_copy(update={"streaming": True}).ainvoke("Hi", config)
    return [chunk async for chunk in model.astream("Hi", config)]


def _runs(server: LocalBytezServer) -> int:
    return sum(1 for r in server.requests if r.method == "POST")


CASES = [
    ("llm", "invoke"),
    ("llm", "stream"),
    ("llm", "streaming-invoke"),
    ("llm", "ainvoke"),
    ("llm", "astream"),
    ("llm", "astreaming-invoke"),
    ("chat", "invoke"),
    ("chat", "ainvoke"),
    ("chat", "streaming-invoke"),
    ("chat", "astreaming-invoke"),
    ("chat", "stream"),
    ("chat", "astream"),
    ("chat", "streaming-field-invoke"),
    ("chat", "astreaming-field-invoke"),
    ("llm", "streaming-field-invoke"),
    ("llm", "astreaming-field-invoke"),
]


@pytest.mark.parametrize(("kind", "how"), CASES, ids=[f"{k}-{h}" for k, h in CASES])
@pytest.mark.parametrize(
    "fault",
    [FaultKind.RATE_LIMIT, FaultKind.STATUS_503, FaultKind.HTML_502, FaultKind.RESET],
)
async def test_every_retry_is_reported(
    server: LocalBytezServer, kind: str, how: str, fault: FaultKind
) -> None:
    server.inject(fault, 2, retry_after=0.05)
    handler = Retries()
    await _call(_model(server, kind), how, handler)
    assert _runs(server) == 3  # two failures, then the answer
    assert handler.count == 2
    assert handler.attempts == [1, 2]


CHAT_STREAMS = ["stream", "astream", "streaming-field-invoke", "astreaming-field-invoke"]


@pytest.mark.parametrize("how", CHAT_STREAMS)
@pytest.mark.parametrize("fault", [FaultKind.RATE_LIMIT, FaultKind.STATUS_503])
async def test_chat_stream_reports_retries_and_each_token_once(
    server: LocalBytezServer, how: str, fault: FaultKind
) -> None:
    server.inject(fault, 1, retry_after=0.05)
    retried = RetriesAndTokens()
    await _call(_model(server, "chat"), how, retried)
    assert _runs(server) == 2
    assert retried.count == 1
    clean = RetriesAndTokens()
    await _call(_model(server, "chat"), how, clean)
    assert clean.count == 0
    assert retried.tokens == clean.tokens  # the same tokens, none reported twice
    assert len([t for t in clean.tokens if t]) >= 2


@pytest.mark.parametrize("how", ["ainvoke", "astream", "chat-astream"])
async def test_slow_async_handler_hears_every_retry_before_the_run_ends(
    server: LocalBytezServer, how: str
) -> None:
    server.inject(FaultKind.RATE_LIMIT, 1, retry_after=0.0)
    handler = SlowAsyncRetries()
    kind = "chat" if how.startswith("chat-") else "llm"
    await _call(_model(server, kind), how.removeprefix("chat-"), handler)
    assert _runs(server) == 2
    assert handler.count == 1  # not cancelled when the run ended first


async def test_run_after_auto_load_reports_its_retries(
    bytez_server_factory: ServerFactory,
) -> None:
    server = bytez_server_factory(cluster_routes="on", load_delay=0.2)
    server.inject(FaultKind.STATUS_503, 1, method="POST", model_id=LLM_MODEL)
    handler = Retries()
    await _call(_model(server, "llm", auto_load=True), "ainvoke", handler)
    methods = [r.method for r in server.requests]
    assert "PUT" in methods  # the model was loaded first
    assert _runs(server) == 2
    assert handler.count == 1


async def test_auto_load_cluster_calls_make_no_unreported_retries(
    bytez_server_factory: ServerFactory,
) -> None:
    # Implicit cluster calls are sent once each (a failing one sends the run anyway):
    # no retry is made, so none is reported; the run itself is retried and reported.
    server = bytez_server_factory(cluster_routes="on", load_delay=0.2)
    server.inject(FaultKind.STATUS_503, 1, method="GET", path_prefix="/models/v2/")
    server.inject(FaultKind.RATE_LIMIT, 1, method="POST", model_id=LLM_MODEL, retry_after=0.05)
    handler = Retries()
    with pytest.warns(UserWarning, match="auto-load"):
        await _call(_model(server, "llm", auto_load=True), "invoke", handler)
    gets = [r for r in server.requests if r.method == "GET"]
    assert len(gets) == 1
    assert _runs(server) == 2
    assert handler.count == 1
