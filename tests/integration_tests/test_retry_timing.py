"""Retry timing through the LangChain classes, measured on the wire.

The client unit tests check the wait *arithmetic* with patched sleeps; here the waits are
real and measured as the gaps between the moments requests leave the client (an httpx
event hook on an injected http client: on loopback that is the server's arrival time
within a fraction of a millisecond). Also: the cap on a single wait, the bound on the
number of attempts, and LangChain ``on_retry`` callbacks (with the state they carry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.client import BytezClient
from langchain_bytez.clients import io as client_io
from langchain_bytez.errors import BytezAPIError, BytezRateLimitError
from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import FaultKind, LocalBytezServer

LLM_MODEL = "openai-community/gpt2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
TOKENS = [" one", " two", " three"]
# Loopback scheduling noise on a busy 2-core machine: a wait may run this much longer
# than asked (never shorter).
SLACK = 0.25

ServerFactory = Callable[..., LocalBytezServer]


@pytest.fixture
def server(bytez_server_factory: ServerFactory) -> LocalBytezServer:
    srv = bytez_server_factory(load_delay=0.0)
    srv.set_reply(TOKENS)
    return srv


class SendTimes:
    """Monotonic send time of every run request (an httpx request event hook)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def hook(self, request: httpx.Request) -> None:
        if request.method == "POST":
            self.times.append(time.monotonic())

    async def ahook(self, request: httpx.Request) -> None:
        self.hook(request)

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


class RetryLog(BaseCallbackHandler):
    """What LangChain's on_retry receives: attempt, error type, announced wait."""

    run_inline = True

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, float]] = []

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        error = retry_state.outcome.exception()
        self.seen.append(
            (retry_state.attempt_number, type(error).__name__, retry_state.next_action.sleep)
        )


def _llm(server: LocalBytezServer, **kwargs: Any) -> BytezLLM:
    kwargs.setdefault("auto_load", False)
    return BytezLLM(model=LLM_MODEL, api_key="test-key", base_url=server.url, **kwargs)


def _chat(server: LocalBytezServer, **kwargs: Any) -> ChatBytez:
    kwargs.setdefault("auto_load", False)
    return ChatBytez(model=CHAT_MODEL, api_key="test-key", base_url=server.url, **kwargs)


# A server's wait gets jitter on top: up to the larger of that wait and the backoff
# (0.5 s after the first attempt, 1 s after the second), so that callers refused
# together do not come back together.
JITTER = (0.5, 1.0)


def _assert_gaps(gaps: list[float], wait: float, cap: float | None = None) -> None:
    assert len(gaps) == 2
    for gap, jitter in zip(gaps, JITTER, strict=True):
        most = wait + max(wait, jitter) if cap is None else cap
        assert wait <= gap < most + SLACK, gaps


def _assert_announced(seen: list[tuple[int, str, float]], wait: float) -> None:
    assert [(n, name) for n, name, _ in seen] == [
        (1, "BytezRateLimitError"),
        (2, "BytezRateLimitError"),
    ]
    for (_, _, announced), jitter in zip(seen, JITTER, strict=True):
        assert wait <= announced <= wait + max(wait, jitter)


# ----------------------------------------------------------------------- waits on the wire


@pytest.mark.parametrize("kind", [FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT_RETRY_AFTER])
def test_sync_waits_honour_the_server(server: LocalBytezServer, kind: FaultKind) -> None:
    times = SendTimes()
    with httpx.Client(event_hooks={"request": [times.hook]}) as http:
        llm = _llm(server, http_client=http)
        server.inject(kind, 2, retry_after=0.3)
        log = RetryLog()
        assert llm.invoke("x", config={"callbacks": [log]}) == "".join(TOKENS)
    _assert_gaps(times.gaps, 0.3)
    _assert_announced(log.seen, 0.3)


@pytest.mark.parametrize("kind", [FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT_RETRY_AFTER])
@pytest.mark.parametrize("cls", ["llm", "chat"])
async def test_async_stream_waits_honour_the_server(
    server: LocalBytezServer, kind: FaultKind, cls: str
) -> None:
    times = SendTimes()
    async with httpx.AsyncClient(event_hooks={"request": [times.ahook]}) as http:
        make = _llm if cls == "llm" else _chat
        model = make(server, http_async_client=http)
        server.inject(kind, 2, retry_after=0.3)
        log = RetryLog()
        pieces = [
            c if isinstance(c, str) else c.text
            async for c in model.astream("x", config={"callbacks": [log]})
        ]
    assert "".join(pieces) == "".join(TOKENS)
    _assert_gaps(times.gaps, 0.3)
    # The async reporter hands LangChain a snapshot: the attempts that failed (ChatBytez's
    # astream hands its run manager to the chunk loop, as BytezLLM's does).
    _assert_announced(log.seen, 0.3)


def test_backoff_without_a_server_hint_grows_with_jitter(server: LocalBytezServer) -> None:
    # 503 carries no Retry-After: exponential backoff, 0.5 s then 1 s, plus up to 50 %.
    times = SendTimes()
    with httpx.Client(event_hooks={"request": [times.hook]}) as http:
        chat = _chat(server, http_client=http)
        server.inject(FaultKind.STATUS_503, 2)
        assert chat.invoke("x").text == "".join(TOKENS)
    first, second = times.gaps
    assert 0.5 <= first < 0.75 + SLACK
    assert 1.0 <= second < 1.5 + SLACK


def test_a_server_wait_within_max_retry_wait_is_jittered_up_to_the_cap(
    server: LocalBytezServer,
) -> None:
    # The server asks for 0.3 s; the jitter on top never passes max_retry_wait.
    times = SendTimes()
    http = httpx.Client(event_hooks={"request": [times.hook]})
    with BytezClient("test-key", base_url=server.url, max_retry_wait=0.4, http_client=http) as c:
        server.inject(FaultKind.RATE_LIMIT_RETRY_AFTER, 2, retry_after=0.3)
        assert c.run(LLM_MODEL, {"text": "x"}).output == "x" + "".join(TOKENS)
    http.close()
    _assert_gaps(times.gaps, 0.3, cap=0.4)


def test_a_long_server_wait_fails_at_once(
    server: LocalBytezServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Changed behaviour: an hour-long ratelimit-reset (beyond the default 60 s
    # max_retry_wait) used to be shortened to 60 s and retried into the same 429. Now
    # the call fails at once, saying how long the server asked to wait.
    asked: list[float] = []
    monkeypatch.setattr(client_io, "sleep", asked.append)
    server.inject(FaultKind.RATE_LIMIT, 1, retry_after=3600)
    with pytest.raises(BytezRateLimitError, match=r"asked to wait 3\.6e\+03 s"):
        _llm(server).invoke("x")
    assert asked == []
    assert server.count("POST", f"/models/v2/{LLM_MODEL}") == 1


def test_langchain_classes_take_max_retry_wait(server: LocalBytezServer) -> None:
    # The cap is a field of BytezLLM / ChatBytez / BytezEmbeddings too: a 30 s
    # Retry-After beyond max_retry_wait=0.2 ends the call at once, naming both.
    server.inject(FaultKind.RATE_LIMIT_RETRY_AFTER, 2, retry_after=30)
    llm = _llm(server, max_retry_wait=0.2)
    started = time.monotonic()
    with pytest.raises(BytezRateLimitError, match=r"wait 30 s, longer than max_retry_wait=0\.2 s"):
        llm.invoke("x")
    assert time.monotonic() - started < 1
    chat = ChatBytez(model=CHAT_MODEL, api_key="test-key", base_url=server.url, max_retry_wait=5)
    assert chat._sync_client()._policy.max_wait == 5


# ----------------------------------------------------------------------- attempt bounds


@pytest.mark.parametrize("max_retries", [0, 1, 3])
@pytest.mark.parametrize("surface", ["llm.invoke", "llm.astream", "chat.ainvoke", "chat.invoke"])
async def test_attempts_never_exceed_max_retries_plus_one(
    server: LocalBytezServer, monkeypatch: pytest.MonkeyPatch, max_retries: int, surface: str
) -> None:
    slept: list[float] = []

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(client_io, "sleep", slept.append)
    monkeypatch.setattr(client_io, "async_sleep", asleep)
    server.inject(FaultKind.RATE_LIMIT, 10, retry_after=0.01)  # more than any budget
    kind, method = surface.split(".")
    model = (_llm if kind == "llm" else _chat)(server, max_retries=max_retries)
    log = RetryLog()
    config = {"callbacks": [log]}

    async def call() -> None:
        if method == "invoke":
            await asyncio.to_thread(model.invoke, "x", config)
        elif method == "ainvoke":
            await model.ainvoke("x", config)
        else:
            async for _ in model.astream("x", config):
                pass

    with pytest.raises(BytezRateLimitError) as info:
        await call()
    for _ in range(50):  # async on_retry reports run as tasks: let them land
        if len(log.seen) >= max_retries:
            break
        await asyncio.sleep(0.01)
    model_id = LLM_MODEL if kind == "llm" else CHAT_MODEL
    assert server.count("POST", f"/models/v2/{model_id}") == max_retries + 1
    assert len(slept) == max_retries
    assert [attempt for attempt, _, _ in log.seen] == list(range(1, max_retries + 1))
    assert info.value.retry_after == 0.01
    if hasattr(model, "_async_client"):
        await model._async_client().aclose()


def test_non_retryable_failure_is_one_attempt_and_no_on_retry(server: LocalBytezServer) -> None:
    server.inject(FaultKind.ERROR_ENVELOPE, 5)
    log = RetryLog()
    with pytest.raises(BytezAPIError):
        _llm(server, max_retries=5).invoke("x", config={"callbacks": [log]})
    assert server.count("POST", f"/models/v2/{LLM_MODEL}") == 1
    assert log.seen == []
