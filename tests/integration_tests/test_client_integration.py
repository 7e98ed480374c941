"""The clients against the local Bytez-compatible server, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import tenacity

from langchain_bytez.client import AsyncBytezClient, AsyncTextStream, BytezClient, TextStream
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezConnectionError,
    BytezError,
    BytezInvalidRequestError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezRateLimitError,
    BytezStreamError,
    BytezTimeoutError,
)
from langchain_bytez.server import FaultKind, LocalBytezServer
from langchain_bytez.types import Capacity, ClusterState

MODEL = "openai-community/gpt2"
RUN_PATH = f"/models/v2/{MODEL}"
TOKENS = [" alpha", " beta", " gamma", " delta", " epsilon", " zeta"]


@pytest.fixture
def client(bytez_server: LocalBytezServer, bytez_api_key: str) -> Iterator[BytezClient]:
    # Short retry waits keep the suite fast; the wait logic itself is unit-tested.
    with BytezClient(bytez_api_key, base_url=bytez_server.url, max_retry_wait=0.05) as c:
        yield c


@pytest.fixture
async def aclient(
    bytez_server: LocalBytezServer, bytez_api_key: str
) -> AsyncIterator[AsyncBytezClient]:
    # httpx's own pool: these tests look into httpcore's connections (the aiohttp
    # transport is tested in test_transport.py).
    async with AsyncBytezClient(
        bytez_api_key, base_url=bytez_server.url, max_retry_wait=0.05, async_transport="httpx"
    ) as c:
        yield c


def waits_of(states: list[tuple[int, float, str]]) -> list[float]:
    return [wait for _, wait, _ in states]


def recorder() -> tuple[list[tuple[int, float, str]], Callable[[tenacity.RetryCallState], None]]:
    seen: list[tuple[int, float, str]] = []

    def on_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else -1.0
        seen.append((state.attempt_number, wait, type(error).__name__))

    return seen, on_retry


def active_connections(http: httpx.Client | httpx.AsyncClient) -> list[Any]:
    pool = http._transport._pool  # type: ignore[union-attr]
    return [c for c in pool.connections if not (c.is_idle() or c.is_closed())]


def drain(stream: TextStream, got: list[str]) -> None:
    """Collect a stream's chunks into ``got`` inside ``with`` (kept on failure)."""
    with stream:
        for text in stream:
            got.append(text)


async def adrain(stream: AsyncTextStream, got: list[str]) -> None:
    """Collect an async stream's chunks into ``got`` inside ``async with``."""
    async with stream:
        async for text in stream:
            got.append(text)


# ----------------------------------------------------------------------------- happy paths


def test_run_text_generation(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    result = client.run(MODEL, {"text": "Once upon a time", "params": {"max_new_tokens": 5}})
    assert isinstance(result.output, str)
    assert result.output.startswith("Once upon a time")
    assert result.meta.status_code == 200
    # The catalogue's meter name for gpt2 (langchain_bytez/testing/catalogue.py).
    assert result.meta.inference_meter == "xs"
    assert result.meta.ratelimit_limit is not None
    (request,) = bytez_server.requests
    assert request.method == "POST"
    assert request.path == RUN_PATH
    assert request.json == {"text": "Once upon a time", "params": {"max_new_tokens": 5}}
    assert request.auth_ok
    assert request.headers["user-agent"].startswith("langchain-bytez/")


def test_run_chat(client: BytezClient) -> None:
    result = client.run(
        "Qwen/Qwen2.5-0.5B-Instruct",
        {"messages": [{"role": "user", "content": "Hi"}], "params": {"max_new_tokens": 4}},
    )
    assert result.output["role"] == "assistant"


def test_connections_are_pooled(client: BytezClient) -> None:
    for _ in range(5):
        client.run(MODEL, {"text": "x", "params": {"max_new_tokens": 2}})
    assert client._http is not None
    pool = client._http._transport._pool  # type: ignore[attr-defined]
    assert len(pool.connections) == 1


def test_stream_arrives_incrementally(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    bytez_server.set_reply(TOKENS)
    bytez_server.token_delay = 0.1
    started = time.perf_counter()
    arrivals: list[tuple[float, str]] = []
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert stream.meta is not None
        assert stream.meta.status_code == 200
        for text in stream:
            arrivals.append((time.perf_counter() - started, text))
    total = time.perf_counter() - started
    assert [t for _, t in arrivals] == TOKENS
    assert stream.text == "".join(TOKENS)
    # 6 tokens 0.1 s apart: the first must not wait for the last.
    assert arrivals[0][0] < total - 0.3
    (request,) = bytez_server.requests
    assert request.stream
    assert request.json["stream"] is True


def test_stream_multibyte_tokens(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    tokens = ["北京", " 🎉", " crème", " brûlée", " ✓", "\n", " こんにちは"]
    bytez_server.set_reply(tokens)
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert "".join(stream) == "".join(tokens)


async def test_async_run_and_stream(
    aclient: AsyncBytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.set_reply(TOKENS)
    result = await aclient.run(MODEL, {"text": "Hi"})
    assert result.output == "Hi" + "".join(TOKENS)
    async with aclient.stream(MODEL, {"text": "Hi"}) as stream:
        pieces = [piece async for piece in stream]
    assert pieces == TOKENS
    assert stream.meta is not None


def test_stream_without_with(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    bytez_server.set_reply(TOKENS)
    assert list(client.stream(MODEL, {"text": "x"})) == TOKENS
    assert client._http is not None
    assert active_connections(client._http) == []


# ----------------------------------------------------------------------------- faults: recovered


@pytest.mark.parametrize(
    ("kind", "kwargs", "error_name"),
    [
        (FaultKind.STATUS_503, {}, "BytezAPIError"),
        (FaultKind.RATE_LIMIT, {"retry_after": 0.03}, "BytezRateLimitError"),
        (FaultKind.RATE_LIMIT_RETRY_AFTER, {"retry_after": 0.03}, "BytezRateLimitError"),
        (FaultKind.RESET, {}, "BytezConnectionError"),
        (FaultKind.HTML_502, {}, "BytezAPIError"),
        (FaultKind.DISCONNECT_MID_STREAM, {}, "BytezConnectionError"),  # run: body cut short
    ],
)
def test_retryable_faults_on_run_recover(
    client: BytezClient,
    bytez_server: LocalBytezServer,
    kind: FaultKind,
    kwargs: dict[str, Any],
    error_name: str,
) -> None:
    bytez_server.inject(kind, 2, **kwargs)
    seen, on_retry = recorder()
    result = client.run(MODEL, {"text": "Hello"}, on_retry=on_retry)
    assert result.output.startswith("Hello")
    assert bytez_server.count("POST", RUN_PATH) == 3
    assert [n for n, _, _ in seen] == [1, 2]
    assert {name for _, _, name in seen} == {error_name}
    if "retry_after" in kwargs:
        # The server's wait plus jitter, within max_retry_wait (0.05 s).
        waits = waits_of(seen)
        assert len(waits) == 2
        assert all(0.03 <= wait <= 0.05 for wait in waits)


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        (FaultKind.STATUS_503, {}),
        (FaultKind.RATE_LIMIT, {"retry_after": 0.01}),
        (FaultKind.RATE_LIMIT_RETRY_AFTER, {"retry_after": 0.01}),
        (FaultKind.RESET, {}),
        (FaultKind.HTML_502, {}),
    ],
)
def test_retryable_faults_before_stream_start_recover(
    client: BytezClient, bytez_server: LocalBytezServer, kind: FaultKind, kwargs: dict[str, Any]
) -> None:
    bytez_server.set_reply(TOKENS)
    bytez_server.inject(kind, 1, **kwargs)
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == TOKENS
    assert bytez_server.count("POST", RUN_PATH) == 2


async def test_async_retryable_faults_recover(
    aclient: AsyncBytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.set_reply(TOKENS)
    bytez_server.inject(FaultKind.STATUS_503, 1)
    bytez_server.inject(FaultKind.RESET, 1)
    result = await aclient.run(MODEL, {"text": "A"})
    assert result.output == "A" + "".join(TOKENS)
    assert bytez_server.count("POST", RUN_PATH) == 3
    bytez_server.inject(FaultKind.RATE_LIMIT, 1, retry_after=0.01)
    async with aclient.stream(MODEL, {"text": "x"}) as stream:
        assert [p async for p in stream] == TOKENS
    assert bytez_server.count("POST", RUN_PATH) == 5


def test_slow_first_byte_past_the_deadline_ends_the_call_without_retry(
    bytez_server_factory: Callable[..., LocalBytezServer], bytez_api_key: str
) -> None:
    # Changed behaviour: timeout used to be per attempt, so the call timed out, was
    # retried and recovered. It is now the call's total: no time is left to retry.
    bytez_server = bytez_server_factory()  # the abandoned slow request ends after the test
    seen, on_retry = recorder()
    with BytezClient(
        bytez_api_key, base_url=bytez_server.url, timeout=0.5, max_retry_wait=0.01
    ) as c:
        c.run(MODEL, {"text": "warm up"}, timeout=30)  # the cold start is not the point here
        bytez_server.inject(FaultKind.SLOW_FIRST_BYTE, 1, delay=1.5)
        started = time.monotonic()
        with pytest.raises(BytezTimeoutError, match="timeout of 0.5 s"):
            c.run(MODEL, {"text": "slow"}, on_retry=on_retry)
        assert time.monotonic() - started < 1.5
    assert seen == []  # not retried


def test_slow_first_byte_within_timeout_is_just_slow(
    client: BytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.inject(FaultKind.SLOW_FIRST_BYTE, 1, delay=0.3)
    started = time.perf_counter()
    assert client.run(MODEL, {"text": "slow"}).output.startswith("slow")
    assert time.perf_counter() - started >= 0.3
    assert bytez_server.count("POST", RUN_PATH) == 1


def test_timeout_exhausted_is_typed(
    bytez_server_factory: Callable[..., LocalBytezServer], bytez_api_key: str
) -> None:
    bytez_server = bytez_server_factory()
    bytez_server.inject(FaultKind.SLOW_FIRST_BYTE, 3, delay=1.0)
    with BytezClient(
        bytez_api_key, base_url=bytez_server.url, timeout=0.2, max_retry_wait=0.01
    ) as c:
        with pytest.raises(BytezTimeoutError):
            c.run(MODEL, {"text": "slow"})


# ----------------------------------------------------------------------------- faults: typed errors


@pytest.mark.parametrize(
    ("kind", "cls", "fragment", "attempts"),
    [
        (FaultKind.STATUS_503, BytezAPIError, "Service Unavailable", 3),
        (FaultKind.HTML_502, BytezAPIError, "non-JSON response (HTTP 502, text/html)", 3),
        (FaultKind.RATE_LIMIT, BytezRateLimitError, "Rate limit exceeded", 3),
        (FaultKind.RESET, BytezConnectionError, "Could not reach Bytez", 3),
        (FaultKind.MALFORMED_JSON, BytezAPIError, "malformed JSON", 1),
        (FaultKind.ERROR_ENVELOPE, BytezAPIError, "simulated failure", 1),
        (FaultKind.ERROR_MID_STREAM, BytezAPIError, "simulated failure", 1),  # run: envelope
        (FaultKind.PAYMENT_REQUIRED, BytezPaymentRequiredError, "Insufficient credits", 1),
        (FaultKind.UNAUTHORIZED, BytezAuthenticationError, "Unauthorized", 1),
        (FaultKind.NOT_FOUND, BytezNotFoundError, "Model does not exist", 1),
        (FaultKind.INVALID_PARAMS, BytezInvalidRequestError, "simulated failure", 1),
    ],
)
def test_faults_on_run_raise_typed_errors(
    client: BytezClient,
    bytez_server: LocalBytezServer,
    kind: FaultKind,
    cls: type[BytezError],
    fragment: str,
    attempts: int,
) -> None:
    bytez_server.inject(kind, 5, retry_after=0.01)
    with pytest.raises(cls) as info:
        client.run(MODEL, {"text": "x"})
    assert type(info.value) is cls
    assert fragment in str(info.value)
    assert info.value.model_id == MODEL
    assert bytez_server.count("POST", RUN_PATH) == attempts
    if kind is FaultKind.INVALID_PARAMS:
        assert info.value.status_code == 422
        assert info.value.body  # the stack-trace excerpt


def test_error_at_start_of_stream(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    bytez_server.inject(FaultKind.ERROR_AT_START, 1, message="CUDA out of memory")
    with client.stream(MODEL, {"text": "x"}) as stream:
        with pytest.raises(BytezStreamError) as info:
            list(stream)
    assert info.value.delivered_text == ""
    assert "CUDA out of memory" in str(info.value)
    assert bytez_server.count("POST", RUN_PATH) == 1


@pytest.mark.parametrize("kind", [FaultKind.ERROR_MID_STREAM, FaultKind.DISCONNECT_MID_STREAM])
def test_no_retry_after_a_partial_stream(
    client: BytezClient, bytez_server: LocalBytezServer, kind: FaultKind
) -> None:
    bytez_server.set_reply(TOKENS)
    bytez_server.inject(kind, 1, after_tokens=3, message="model crashed")
    got: list[str] = []
    with pytest.raises(BytezStreamError) as info:
        drain(client.stream(MODEL, {"text": "x"}), got)
    assert got == TOKENS[:3]
    assert info.value.delivered_text == "".join(TOKENS[:3])
    assert info.value.is_retryable is False
    if kind is FaultKind.ERROR_MID_STREAM:
        assert "model crashed" in str(info.value)
    assert bytez_server.count("POST", RUN_PATH) == 1
    assert client._http is not None
    assert active_connections(client._http) == []


async def test_async_no_retry_after_partial_stream(
    aclient: AsyncBytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.set_reply(TOKENS)
    bytez_server.inject(FaultKind.DISCONNECT_MID_STREAM, 1, after_tokens=2)
    got: list[str] = []
    with pytest.raises(BytezStreamError) as info:
        await adrain(aclient.stream(MODEL, {"text": "x"}), got)
    assert got == TOKENS[:2]
    assert info.value.delivered_text == "".join(TOKENS[:2])
    assert bytez_server.count("POST", RUN_PATH) == 1


def test_typed_error_on_stream_enter(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    bytez_server.inject(FaultKind.PAYMENT_REQUIRED, 1)
    with pytest.raises(BytezPaymentRequiredError):
        with client.stream(MODEL, {"text": "x"}):
            pass
    assert bytez_server.count("POST", RUN_PATH) == 1


def test_wrong_key_and_unknown_model(bytez_server: LocalBytezServer) -> None:
    with BytezClient("wrong-key-000", base_url=bytez_server.url) as c:
        with pytest.raises(BytezAuthenticationError):
            c.run(MODEL, {"text": "x"})
    with BytezClient("test-key", base_url=bytez_server.url) as c:
        with pytest.raises(BytezNotFoundError, match="does not exist"):
            c.run("nobody/nothing", {"text": "x"})
    assert bytez_server.count("POST") == 2


def test_connection_refused_is_retried_and_typed(bytez_api_key: str) -> None:
    server = LocalBytezServer(api_keys={bytez_api_key}).start()
    url = server.url
    server.stop()
    seen, on_retry = recorder()
    with BytezClient(bytez_api_key, base_url=url, max_retry_wait=0.01, on_retry=on_retry) as c:
        with pytest.raises(BytezConnectionError):
            c.run(MODEL, {"text": "x"})
    assert [n for n, _, _ in seen] == [1, 2]


def test_key_never_logged_with_real_transport(
    client: BytezClient,
    bytez_server: LocalBytezServer,
    bytez_api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-FAKE-KEY-0123456789"  # refused by the server: 401, never retried
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="httpx"),
        caplog.at_level(logging.DEBUG, logger="httpcore"),
        caplog.at_level(logging.DEBUG, logger="langchain_bytez"),
    ):
        with BytezClient(key, base_url=bytez_server.url, max_retry_wait=0.01) as c:
            with pytest.raises(BytezAuthenticationError) as info:
                c.run(MODEL, {"text": "x"})
            with pytest.raises(BytezAuthenticationError):
                with c.stream(MODEL, {"text": "x"}):
                    pass
    assert key not in str(info.value)
    assert caplog.records
    for record in caplog.records:
        assert key not in record.getMessage()
        assert key not in repr(record.args)


# ----------------------------------------------------------------------------- connections


def test_early_break_releases_the_connection(
    client: BytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.set_reply(TOKENS * 5)
    bytez_server.token_delay = 0.02
    with client.stream(MODEL, {"text": "x"}) as stream:
        for text in stream:
            assert text == TOKENS[0]
            break
        assert client._http is not None
        assert active_connections(client._http) == []
    # The client is still healthy.
    bytez_server.token_delay = 0.0
    assert client.run(MODEL, {"text": "x"}).output.startswith("x")
    deadline = time.monotonic() + 5
    while bytez_server.in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bytez_server.in_flight() == 0


def test_exit_without_iterating_releases_the_connection(
    client: BytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.set_reply(TOKENS)
    with client.stream(MODEL, {"text": "x"}):
        pass
    assert client._http is not None
    assert active_connections(client._http) == []


async def test_async_early_break_releases_the_connection(
    aclient: AsyncBytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.set_reply(TOKENS * 5)
    bytez_server.token_delay = 0.02
    async with aclient.stream(MODEL, {"text": "x"}) as stream:
        async for _ in stream:
            break
    assert aclient._http is not None
    assert active_connections(aclient._http) == []


async def test_concurrent_streams_run_in_parallel(
    bytez_server_factory: Callable[..., LocalBytezServer], bytez_api_key: str
) -> None:
    # The test drives its own cluster: one of the live service's modes has cluster routes.
    server = bytez_server_factory(load_delay=0.0, cluster_routes="on")
    server.set_reply(TOKENS)  # 6 tokens
    async with AsyncBytezClient(bytez_api_key, base_url=server.url) as c:
        await c.create_cluster(MODEL, Capacity.fixed(8), 5)
        for _ in range(100):
            if (await c.get_cluster(MODEL)).state is ClusterState.RUNNING:
                break
            await asyncio.sleep(0.01)
        server.token_delay = 0.1

        async def one() -> str:
            async with c.stream(MODEL, {"text": "x"}) as stream:
                return "".join([t async for t in stream])

        started = time.perf_counter()
        assert await one() == "".join(TOKENS)
        single = time.perf_counter() - started
        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(8)))
        eight = time.perf_counter() - started
    assert results == ["".join(TOKENS)] * 8
    assert server.peak_running(MODEL) == 8
    # Serialised would be ~8x; parallel is ~1x. Generous bound for a loaded machine.
    assert eight < single * 3, (single, eight)


def test_threads_share_one_client(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(lambda i: client.run(MODEL, {"text": f"t{i}"}).output, range(16)))
    assert all(out.startswith(f"t{i}") for i, out in enumerate(outputs))


async def test_async_client_survives_a_new_event_loop(
    bytez_server: LocalBytezServer, bytez_api_key: str
) -> None:
    c = AsyncBytezClient(bytez_api_key, base_url=bytez_server.url)
    assert (await c.run(MODEL, {"text": "a"})).output.startswith("a")

    def in_other_loop() -> str:
        async def go() -> str:
            return str((await c.run(MODEL, {"text": "b"})).output)

        return asyncio.run(go())

    out = await asyncio.to_thread(in_other_loop)
    assert out.startswith("b")
    await c.aclose()


# ----------------------------------------------------------------------------- catalogue


def test_catalogue_routes(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    everything = client.list_models()
    assert len(everything) >= 10
    assert any(m.model_id == MODEL for m in everything)
    chat = client.list_models("chat")
    assert chat
    assert all(m.task == "chat" for m in chat)
    assert bytez_server.requests[-1].query == {"task": "chat"}
    (only,) = client.list_models(model_id=MODEL)
    assert only.model_id == MODEL
    assert only.meter == "xs"
    # The live catalogue writes prices as strings ("0.0000833 / sec"): amount and unit.
    assert only.meter_price == pytest.approx(0.0000833)
    assert only.meter_price_unit == "sec"
    tasks = client.list_tasks()
    assert "chat" in tasks
    assert "text-generation" in tasks
    assert client.request_model("some-org/some-model") == "Job queued"
    assert bytez_server.count("POST", "/models/v2/request/some-org/some-model") == 1


@pytest.mark.parametrize(
    ("kind", "attempts"),
    [(FaultKind.NOT_FOUND, 1), (FaultKind.INVALID_PARAMS, 1), (FaultKind.STATUS_503, 3)],
)
def test_task_filter_fallback(
    client: BytezClient, bytez_server: LocalBytezServer, kind: FaultKind, attempts: int
) -> None:
    # The filtered call fails (every attempt); the client lists everything and filters.
    bytez_server.inject(kind, attempts, method="GET", path_prefix="/models/v2/list/models")
    chat = client.list_models("chat")
    assert chat
    assert all(m.task == "chat" for m in chat)
    queries = [r.query for r in bytez_server.requests if r.path == "/models/v2/list/models"]
    assert queries == [{"task": "chat"}] * attempts + [{}]


def test_task_filter_no_fallback_on_auth(
    client: BytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.inject(
        FaultKind.UNAUTHORIZED, 1, method="GET", path_prefix="/models/v2/list/models"
    )
    with pytest.raises(BytezAuthenticationError):
        client.list_models("chat")
    assert bytez_server.count("GET", "/models/v2/list/models") == 1


async def test_async_catalogue(aclient: AsyncBytezClient, bytez_server: LocalBytezServer) -> None:
    bytez_server.inject(FaultKind.NOT_FOUND, 1, method="GET", path_prefix="/models/v2/list/models")
    chat = await aclient.list_models("chat")
    assert chat
    assert all(m.task == "chat" for m in chat)
    assert "chat" in await aclient.list_tasks()
    assert await aclient.request_model("a/b") == "Job queued"


# ----------------------------------------------------------------------------- clusters


def test_cluster_lifecycle(client: BytezClient, bytez_server: LocalBytezServer) -> None:
    bytez_server.cluster_routes = "on"  # the mode of the live service with cluster routes
    model = "microsoft/phi-2"
    assert client.create_cluster(model, Capacity(min=1, desired=2, max=3), 7) == "Loading"
    status = client.get_cluster(model)
    assert status.model_id == model
    assert status.state in (ClusterState.DEPLOYING, ClusterState.RUNNING)
    assert status.capacity == Capacity(min=1, desired=2, max=3)
    assert status.idle_timeout_minutes == 7
    deadline = time.monotonic() + 5
    while status.state is not ClusterState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
        status = client.get_cluster(model)
    assert status.state is ClusterState.RUNNING
    updated = client.update_cluster(model, timeout_minutes=9)
    assert updated.idle_timeout_minutes == 9
    off = client.update_cluster(model, status="off")
    assert off.state is ClusterState.STOPPED
    assert off.raw_status == "off"
    assert model in [c.model_id for c in client.list_clusters()]
    assert client.update_cluster(model, status="on").state is ClusterState.DEPLOYING
    with pytest.raises(BytezInvalidRequestError) as info:  # 409: exists and is not off
        client.create_cluster(model, Capacity.fixed(1), 5)
    assert info.value.status_code == 409
    client.delete_cluster(model)
    assert model not in [c.model_id for c in client.list_clusters()]
    with pytest.raises(BytezNotFoundError):
        client.get_cluster(model)
    with pytest.raises(BytezNotFoundError):
        client.delete_cluster(model)
    methods = {(r.method, r.path) for r in bytez_server.requests}
    assert {
        ("PUT", f"/models/v2/{model}"),
        ("PATCH", f"/models/v2/{model}"),
        ("DELETE", f"/models/v2/{model}"),
    } <= methods
    put = next(r for r in bytez_server.requests if r.method == "PUT")
    assert put.json == {"capacity": {"min": 1, "desired": 2, "max": 3}, "timeout": 7}


def test_cluster_routes_missing_like_live_api(
    bytez_server_factory: Callable[..., LocalBytezServer], bytez_api_key: str
) -> None:
    server = bytez_server_factory(cluster_routes=False)
    with BytezClient(bytez_api_key, base_url=server.url) as c:
        with pytest.raises(BytezNotFoundError):
            c.get_cluster(MODEL)
        with pytest.raises(BytezInvalidRequestError) as info:
            c.create_cluster(MODEL, Capacity.fixed(1), 5)
        assert info.value.status_code == 405
        with pytest.raises(BytezNotFoundError):
            c.list_clusters()
        # Serverless runs still work.
        assert c.run(MODEL, {"text": "x"}).output.startswith("x")


async def test_async_cluster_lifecycle(
    aclient: AsyncBytezClient, bytez_server: LocalBytezServer
) -> None:
    bytez_server.cluster_routes = "on"  # the mode of the live service with cluster routes
    model = "gpt2"
    assert await aclient.create_cluster(model, Capacity.fixed(1), 5) == "Loading"
    assert (await aclient.get_cluster(model)).model_id == model
    assert (
        await aclient.update_cluster(model, capacity=Capacity.fixed(2))
    ).capacity == Capacity.fixed(2)
    assert model in [c.model_id for c in await aclient.list_clusters()]
    await aclient.delete_cluster(model)
    with pytest.raises(BytezNotFoundError):
        await aclient.get_cluster(model)
