"""Unit tests of ``BytezClient`` / ``AsyncBytezClient`` over ``httpx.MockTransport``."""

from __future__ import annotations

import gc
import json
import logging
import pickle
import traceback
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import tenacity
from pydantic import SecretStr

from langchain_bytez._version import __version__
from langchain_bytez.client import (
    DEFAULT_TIMEOUT,
    AsyncBytezClient,
    AsyncTextStream,
    BytezClient,
    TextStream,
)
from langchain_bytez.clients import io as client_io
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
    InvalidModelIdError,
    MissingAPIKeyError,
)
from langchain_bytez.types import Capacity, ClusterState

KEY = "sk-FAKE-KEY-0123456789"
PROVIDER_KEY = "prov-FAKE-9876543210"
BASE = "https://api.test"
MODEL = "openai-community/gpt2"

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(
    output: Any = None, error: Any = None, status: int = 200, **headers: str
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": error, "output": output},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


class Recorder:
    """A MockTransport handler replaying scripted answers and recording requests."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


def make_client(handler: Handler, **kwargs: Any) -> tuple[BytezClient, httpx.Client]:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    kwargs.setdefault("base_url", BASE)
    return BytezClient(KEY, http_client=http, **kwargs), http


def make_async_client(
    handler: Handler, **kwargs: Any
) -> tuple[AsyncBytezClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    kwargs.setdefault("base_url", BASE)
    return AsyncBytezClient(KEY, http_client=http, **kwargs), http


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry sleeps instead of sleeping."""
    recorded: list[float] = []

    def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    async def fake_async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(client_io, "sleep", fake_sleep)
    monkeypatch.setattr(client_io, "async_sleep", fake_async_sleep)
    return recorded


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BYTEZ_API_KEY", raising=False)
    monkeypatch.delenv("BYTEZ_BASE_URL", raising=False)


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


# ----------------------------------------------------------------------------- config


def test_headers_sent_on_every_request() -> None:
    rec = Recorder(envelope("ok"))
    client, _ = make_client(rec, provider_key=PROVIDER_KEY, default_headers={"X-Trace": "t1"})
    client.run(MODEL, {"text": "hi"})
    request = rec.requests[0]
    assert request.headers["authorization"] == f"Key {KEY}"
    assert request.headers["provider-key"] == PROVIDER_KEY
    assert request.headers["user-agent"] == f"langchain-bytez/{__version__}"
    assert request.headers["x-trace"] == "t1"
    assert request.headers["content-type"] == "application/json"
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/models/v2/{MODEL}"
    assert json.loads(request.content) == {"text": "hi"}


def test_own_pooled_client_is_created_lazily_once_with_headers() -> None:
    client = BytezClient(KEY, base_url=BASE)
    assert client._http is None
    http = client._client()
    assert client._client() is http
    assert http.headers["authorization"] == f"Key {KEY}"
    assert http.timeout == DEFAULT_TIMEOUT
    client.close()
    assert http.is_closed
    assert client._http is None


def test_secretstr_key_and_provider_key() -> None:
    rec = Recorder(envelope("ok"))
    http = httpx.Client(transport=httpx.MockTransport(rec))
    client = BytezClient(
        SecretStr(KEY), base_url=BASE, provider_key=SecretStr(PROVIDER_KEY), http_client=http
    )
    client.run(MODEL, {"text": "hi"})
    assert rec.requests[0].headers["authorization"] == f"Key {KEY}"
    assert rec.requests[0].headers["provider-key"] == PROVIDER_KEY


def test_missing_key_names_the_env_var() -> None:
    with pytest.raises(MissingAPIKeyError, match="BYTEZ_API_KEY"):
        BytezClient()
    with pytest.raises(MissingAPIKeyError, match="BYTEZ_API_KEY"):
        AsyncBytezClient(api_key="   ")
    assert issubclass(MissingAPIKeyError, BytezAuthenticationError)


def test_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEZ_API_KEY", KEY + "\n")
    monkeypatch.setenv("BYTEZ_BASE_URL", "https://proxy.example/bytez/")
    client = BytezClient()
    assert client.base_url == "https://proxy.example/bytez"
    assert client._api_key.get_secret_value() == KEY  # stripped
    assert BytezClient(base_url="https://other.example").base_url == "https://other.example"
    assert BytezClient(api_key="other-key-123").cache_key[1] != client.cache_key[1]


def test_default_base_url() -> None:
    assert BytezClient(KEY).base_url == "https://api.bytez.com"


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "not a url", "https://user:pw@host", "https://h/?q=1", "https://h/#f", "http://"],
)
def test_bad_base_urls(url: str) -> None:
    with pytest.raises(ValueError) as info:
        BytezClient(KEY, base_url=url)
    assert "pw" not in str(info.value)


def test_key_never_in_repr_str_cache_key_or_vars() -> None:
    client = BytezClient(KEY, base_url=BASE, provider_key=PROVIDER_KEY)
    aclient = AsyncBytezClient(KEY, base_url=BASE, provider_key=PROVIDER_KEY)
    for obj in (client, aclient):
        for text in (repr(obj), str(obj), repr(obj.cache_key), repr(vars(obj).get("_api_key"))):
            assert KEY not in text
            assert PROVIDER_KEY not in text
        assert repr(obj) == f"{type(obj).__name__}(base_url={BASE!r})"
        assert obj.cache_key[0] == BASE
        assert len(obj.cache_key[1]) == 16
        int(obj.cache_key[1], 16)
    assert client.cache_key == aclient.cache_key


def test_client_refuses_pickling() -> None:
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(BytezClient(KEY, base_url=BASE))


def test_http_client_type_checked() -> None:
    with pytest.raises(TypeError):
        BytezClient(KEY, http_client=httpx.AsyncClient())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AsyncBytezClient(KEY, http_client=httpx.Client())  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://api.bytez.com", "http://10.1.2.3:8080", "http://0.0.0.0"])
def test_plain_http_to_remote_host_warns(url: str) -> None:
    with pytest.warns(UserWarning, match="unencrypted") as record:
        BytezClient(KEY, base_url=url)
    assert len(record) == 1
    assert KEY not in str(record[0].message)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "https://api.bytez.com"],
)
def test_loopback_or_https_does_not_warn(url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BytezClient(KEY, base_url=url)
        AsyncBytezClient(KEY, base_url=url)


def test_timeout_normalisation_and_per_call_override() -> None:
    rec = Recorder(envelope("ok"))
    client, _ = make_client(rec, timeout=30)
    client.run(MODEL, {"text": "x"})
    client.run(MODEL, {"text": "x"}, timeout=2.5)
    client.run(MODEL, {"text": "x"}, timeout=httpx.Timeout(1.0, read=99.0))
    first, second, third = (r.extensions["timeout"] for r in rec.requests)
    # Each phase is at most the time left of the call's total deadline (the number,
    # or an httpx.Timeout's read value), which has only just started here.
    assert first["connect"] == 10.0
    for phase in ("read", "write", "pool"):
        assert 29.0 < first[phase] <= 30.0
        assert 1.5 < second[phase] <= 2.5
    assert 98.0 < third["read"] <= 99.0
    default, _ = make_client(Recorder(envelope("ok")))
    assert default.timeout == DEFAULT_TIMEOUT
    with pytest.raises(ValueError):
        BytezClient(KEY, timeout=0)
    with pytest.raises(TypeError):
        BytezClient(KEY, timeout="10")  # type: ignore[arg-type]


def test_injected_client_default_timeout_is_ours() -> None:
    rec = Recorder(envelope("ok"))
    client, _ = make_client(rec)
    client.run(MODEL, {"text": "x"})
    assert 599.0 < rec.requests[0].extensions["timeout"]["read"] <= 600.0


def test_injected_client_is_not_closed() -> None:
    client, http = make_client(Recorder(envelope("ok")))
    with client:
        client.run(MODEL, {"text": "x"})
    client.close()
    assert not http.is_closed
    client.run(MODEL, {"text": "x"})  # still usable


async def test_async_injected_client_is_not_closed() -> None:
    client, http = make_async_client(Recorder(envelope("ok")))
    async with client:
        await client.run(MODEL, {"text": "x"})
    assert not http.is_closed
    await http.aclose()


# ----------------------------------------------------------------------------- model ids

BAD_IDS = ["../x", "a/../b", "%2e%2e", "a?b=c", "a#b", "a/b/c", "", "x" * 300, "gpt\u0430", "a b"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_invalid_model_ids_send_nothing(bad: str) -> None:
    rec = Recorder(envelope("ok"))
    client, _ = make_client(rec)
    calls: list[Callable[[], Any]] = [
        lambda: client.run(bad, {"text": "x"}),
        lambda: client.stream(bad, {"text": "x"}),
        lambda: client.request_model(bad),
        lambda: client.create_cluster(bad, Capacity.fixed(1), 5),
        lambda: client.get_cluster(bad),
        lambda: client.update_cluster(bad, status="on"),
        lambda: client.delete_cluster(bad),
        lambda: client.model(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidModelIdError) as info:
            call()
        assert repr(bad) in str(info.value)
    assert rec.requests == []


async def test_async_invalid_model_ids_send_nothing() -> None:
    rec = Recorder(envelope("ok"))
    client, http = make_async_client(rec)
    for bad in BAD_IDS:
        with pytest.raises(InvalidModelIdError):
            await client.run(bad, {"text": "x"})
        with pytest.raises(InvalidModelIdError):
            client.stream(bad, {"text": "x"})
        with pytest.raises(InvalidModelIdError):
            await client.get_cluster(bad)
    assert rec.requests == []
    await http.aclose()


def test_invalid_payload_sends_nothing() -> None:
    rec = Recorder(envelope("ok"))
    client, _ = make_client(rec)
    with pytest.raises(ValueError, match="unknown top-level key"):
        client.run(MODEL, {"text": "x", "temperature": 0.1})
    with pytest.raises(TypeError):
        client.run(MODEL, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JSON"):
        client.run(MODEL, {"text": "x", "params": {"temperature": float("nan")}})
    with pytest.raises(ValueError):
        client.stream(MODEL, {"text": "x", "stream": True})
    assert rec.requests == []


# ----------------------------------------------------------------------------- results


def test_run_result_output_meta_provider_and_dropped_nones() -> None:
    response = httpx.Response(
        200,
        json={"error": None, "output": "Once upon a time there", "provider": {"id": "p"}},
        headers={
            "ratelimit-limit": "10",
            "ratelimit-remaining": "9",
            "ratelimit-reset": "60",
            "inference-meter": "sm-gpu",
            "inference-meter-price": "0.0001",
            "inference-time": "1.5",
            "inference-cost": "0.00015",
        },
    )
    rec = Recorder(response)
    client, _ = make_client(rec)
    result = client.run(MODEL, {"text": "Once", "params": {"max_new_tokens": 3, "top_k": None}})
    assert result.model_id == MODEL
    assert result.output == "Once upon a time there"
    assert result.provider == {"id": "p"}
    assert result.meta.status_code == 200
    assert result.meta.ratelimit_remaining == 9
    assert result.meta.inference_cost == 0.00015
    assert json.loads(rec.requests[0].content) == {"text": "Once", "params": {"max_new_tokens": 3}}


# status, body, content-type, error class
MAPPING: list[tuple[int, Any, str, type[BytezError]]] = [
    (400, {"error": "bad", "output": None}, "application/json", BytezInvalidRequestError),
    (401, {"error": "Unauthorized", "output": None}, "application/json", BytezAuthenticationError),
    (
        402,
        {"status": 402, "error": "Payment Required", "message": "Insufficient credits"},
        "application/json",
        BytezPaymentRequiredError,
    ),
    (
        404,
        {"error": "Model does not exist", "output": None},
        "application/json",
        BytezNotFoundError,
    ),
    (
        405,
        {"error": "Method Not Allowed", "output": None},
        "application/json",
        BytezInvalidRequestError,
    ),
    (
        422,
        {"error": "ValueError: x", "stack_trace": "Traceback\nValueError: x"},
        "application/json",
        BytezInvalidRequestError,
    ),
    (
        429,
        {"error": "Rate limit exceeded", "output": None},
        "application/json",
        BytezRateLimitError,
    ),
    (500, {"error": "Internal", "output": None}, "application/json", BytezAPIError),
    (502, "<html><h1>502 Bad Gateway</h1></html>", "text/html", BytezAPIError),
    (503, {"error": "Service Unavailable", "output": None}, "application/json", BytezAPIError),
    (504, "", "text/plain", BytezAPIError),
    (200, {"error": "model crashed", "output": None}, "application/json", BytezAPIError),
    (200, '{"error": null, "output": "tru', "application/json", BytezAPIError),
]


def _answer(status: int, body: Any, ctype: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"content-type": ctype})


@pytest.mark.parametrize(("status", "body", "ctype", "cls"), MAPPING)
def test_status_mapping_through_run(
    status: int, body: Any, ctype: str, cls: type[BytezError], sleeps: list[float]
) -> None:
    rec = Recorder(_answer(status, body, ctype))
    client, _ = make_client(rec)
    with pytest.raises(cls) as info:
        client.run(MODEL, {"text": "x"})
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.model_id == MODEL
    expected_attempts = 3 if error.is_retryable else 1
    assert len(rec.requests) == expected_attempts
    assert KEY not in str(error)
    if status == 502:
        assert "non-JSON response (HTTP 502, text/html)" in str(error)
        assert not isinstance(error.__cause__, json.JSONDecodeError)
    if status == 402:
        assert error.message == "Insufficient credits"


@pytest.mark.parametrize("status", [400, 401, 402, 404, 422])
def test_client_errors_are_never_retried(status: int, sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, "nope", status=status))
    client, _ = make_client(rec, max_retries=5)
    with pytest.raises(BytezError) as info:
        client.run(MODEL, {"text": "x"})
    assert info.value.is_retryable is False
    assert len(rec.requests) == 1
    assert sleeps == []


def test_error_envelope_on_200_not_retried(sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, "model crashed"))
    client, _ = make_client(rec)
    with pytest.raises(BytezAPIError, match="model crashed"):
        client.run(MODEL, {"text": "x"})
    assert len(rec.requests) == 1


# ----------------------------------------------------------------------------- retries


def test_max_retries_counts_retries(sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, "busy", status=503))
    client, _ = make_client(rec, max_retries=2)
    with pytest.raises(BytezAPIError) as info:
        client.run(MODEL, {"text": "x"})
    assert info.value.status_code == 503
    assert len(rec.requests) == 3
    assert len(sleeps) == 2
    for retries in (0, 1, 4):
        rec = Recorder(envelope(None, "busy", status=503))
        client, _ = make_client(rec, max_retries=retries)
        with pytest.raises(BytezAPIError):
            client.run(MODEL, {"text": "x"})
        assert len(rec.requests) == retries + 1


def test_retry_then_recover_and_callbacks(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    # tenacity reuses one RetryCallState per call: record what it says at call time.
    client_states: list[tuple[int, BaseException | None]] = []
    call_states: list[int] = []

    def on_client_retry(state: tenacity.RetryCallState) -> None:
        assert isinstance(state, tenacity.RetryCallState)
        client_states.append(
            (state.attempt_number, state.outcome.exception() if state.outcome else None)
        )

    rec = Recorder(
        envelope(None, "busy", status=503),
        envelope(None, "Rate limit exceeded", status=429, retry_after="1.5"),
        envelope("done"),
    )
    client, _ = make_client(rec, on_retry=on_client_retry)
    with caplog.at_level(logging.WARNING, logger="langchain_bytez"):
        result = client.run(
            MODEL, {"text": "x"}, on_retry=lambda s: call_states.append(s.attempt_number)
        )
    assert result.output == "done"
    assert len(rec.requests) == 3
    assert [n for n, _ in client_states] == [1, 2]
    assert call_states == [1, 2]
    first_error = client_states[0][1]
    assert isinstance(client_states[1][1], BytezRateLimitError)
    assert isinstance(first_error, BytezAPIError)
    assert first_error.status_code == 503
    # The server's wait, plus jitter so that callers refused together spread out.
    assert 1.5 <= sleeps[1] <= 3.0
    assert 0.5 <= sleeps[0] <= 0.75
    warnings_logged = [
        r for r in caplog.records if r.name == "langchain_bytez" and r.levelno == logging.WARNING
    ]
    assert len(warnings_logged) == 2
    text = warnings_logged[0].getMessage()
    assert "attempt 1 of 3" in text
    assert "BytezAPIError" in text
    assert "HTTP 503" in text
    assert "retrying in" in text
    assert "HTTP 429" in warnings_logged[1].getMessage()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"ratelimit-reset": "3"}, 3.0),
        ({"retry-after": "2", "ratelimit-reset": "30"}, 2.0),
    ],
)
def test_rate_limit_wait_honours_server_with_jitter(
    headers: dict[str, str], expected: float, sleeps: list[float]
) -> None:
    limited = httpx.Response(
        429, json={"error": "Rate limit exceeded", "output": None}, headers=headers
    )
    rec = Recorder(limited, envelope("ok"))
    client, _ = make_client(rec, max_retry_wait=60.0)
    assert client.run(MODEL, {"text": "x"}).output == "ok"
    # At least the server's wait; the jitter adds at most as much again.
    assert len(sleeps) == 1
    assert expected <= sleeps[0] <= 2 * expected


@pytest.mark.parametrize(
    ("headers", "max_wait", "asked"),
    [({"retry-after": "120"}, 10.0, "120 s"), ({"ratelimit-reset": "500"}, 5.0, "500 s")],
)
def test_a_server_wait_beyond_max_retry_wait_fails_at_once(
    headers: dict[str, str], max_wait: float, asked: str, sleeps: list[float]
) -> None:
    # Changed behaviour: the wait used to be shortened to max_retry_wait and retried
    # (into the same 429); now the call fails at once, naming the wait.
    limited = httpx.Response(
        429, json={"error": "Rate limit exceeded", "output": None}, headers=headers
    )
    rec = Recorder(limited, envelope("ok"))
    client, _ = make_client(rec, max_retry_wait=max_wait)
    with pytest.raises(BytezRateLimitError, match=f"asked to wait {asked}.*max_retry_wait"):
        client.run(MODEL, {"text": "x"})
    assert sleeps == []
    assert len(rec.requests) == 1


def test_5xx_wait_is_backoff_not_ratelimit_reset(sleeps: list[float]) -> None:
    busy = httpx.Response(
        503, json={"error": "busy", "output": None}, headers={"ratelimit-reset": "45"}
    )
    rec = Recorder(busy, busy, envelope("ok"))
    client, _ = make_client(rec)
    client.run(MODEL, {"text": "x"})
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 0.75
    assert 1.0 <= sleeps[1] <= 1.5


def test_backoff_capped_by_max_retry_wait(sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, "busy", status=503))
    client, _ = make_client(rec, max_retries=6, max_retry_wait=1.0)
    with pytest.raises(BytezAPIError):
        client.run(MODEL, {"text": "x"})
    assert len(sleeps) == 6
    assert all(0 < s <= 1.0 for s in sleeps)


def test_rate_limit_error_exposes_retry_after(sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, "Rate limit exceeded", status=429, retry_after="4"))
    client, _ = make_client(rec, max_retries=1)
    with pytest.raises(BytezRateLimitError) as info:
        client.run(MODEL, {"text": "x"})
    assert info.value.retry_after == 4.0
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("Connection refused"), BytezConnectionError),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            BytezConnectionError,
        ),
        (httpx.ReadError("Connection reset by peer"), BytezConnectionError),
        (httpx.ConnectTimeout("timed out"), BytezTimeoutError),
        (httpx.ReadTimeout("timed out"), BytezTimeoutError),
        (httpx.PoolTimeout("timed out"), BytezTimeoutError),
    ],
)
def test_transport_failures_are_typed_and_retried(
    exc: Exception, cls: type[BytezError], sleeps: list[float]
) -> None:
    rec = Recorder(exc)
    client, _ = make_client(rec)
    with pytest.raises(cls) as info:
        client.run(MODEL, {"text": "x"})
    assert len(rec.requests) == 3
    assert info.value.is_retryable
    assert info.value.model_id == MODEL
    rec = Recorder(exc, envelope("ok"))
    client, _ = make_client(rec)
    assert client.run(MODEL, {"text": "x"}).output == "ok"


def test_local_protocol_error_not_retried_and_key_not_leaked(sleeps: list[float]) -> None:
    rec = Recorder(httpx.LocalProtocolError(f"Illegal header value b'Key {KEY}'"))
    client, _ = make_client(rec)
    with pytest.raises(BytezConnectionError) as info:
        client.run(MODEL, {"text": "x"})
    assert len(rec.requests) == 1
    assert KEY not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    # Not even kept as the implicit context, where a chain walker would still find it.
    assert info.value.__context__ is None
    assert KEY not in "".join(traceback.format_exception(info.value))


def test_happy_path_builds_no_tenacity_object(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Retrying built on the happy path")

    monkeypatch.setattr(tenacity, "Retrying", boom)
    monkeypatch.setattr(tenacity, "AsyncRetrying", boom)
    client, _ = make_client(Recorder(envelope("ok")))
    assert client.run(MODEL, {"text": "x"}).output == "ok"
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == ["ok"]
    body = ChunkStream([b"a", b"b"])
    client, _ = make_client(Recorder(stream_response(body)))
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == ["a", "b"]


async def test_async_retries_and_callbacks(sleeps: list[float]) -> None:
    states: list[int] = []
    per_call: list[int] = []
    rec = Recorder(
        envelope(None, "busy", status=502),
        httpx.ConnectError("refused"),
        envelope("done"),
    )
    client, http = make_async_client(rec, on_retry=lambda s: states.append(s.attempt_number))
    result = await client.run(
        MODEL, {"text": "x"}, on_retry=lambda s: per_call.append(s.attempt_number)
    )
    assert result.output == "done"
    assert states == [1, 2]
    assert per_call == [1, 2]
    assert len(sleeps) == 2
    rec = Recorder(envelope(None, "busy", status=503))
    client, http = make_async_client(rec, max_retries=2)
    with pytest.raises(BytezAPIError):
        await client.run(MODEL, {"text": "x"})
    assert len(rec.requests) == 3
    rec = Recorder(envelope(None, "nope", status=404))
    client, http = make_async_client(rec, max_retries=2)
    with pytest.raises(BytezNotFoundError):
        await client.run(MODEL, {"text": "x"})
    assert len(rec.requests) == 1
    await http.aclose()


# ----------------------------------------------------------------------------- secrets


def test_key_never_in_logs_or_errors(caplog: pytest.LogCaptureFixture, sleeps: list[float]) -> None:
    rec = Recorder(
        envelope(None, "busy", status=503),
        envelope("ok"),
        envelope(None, "Unauthorized", status=401),
        httpx.ConnectError(f"could not connect, key={KEY}"),
        httpx.Response(
            500,
            text=f"<html>debug echo: Authorization: Key {KEY}</html>",
            headers={"content-type": "text/html"},
        ),
        httpx.Response(200, json={"error": f"bad key {KEY}", "output": None}),
    )
    client, _ = make_client(rec, max_retries=1, provider_key=PROVIDER_KEY)
    errors: list[BaseException] = []
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="httpx"),
        caplog.at_level(logging.DEBUG, logger="httpcore"),
        caplog.at_level(logging.DEBUG, logger="langchain_bytez"),
    ):
        client.run(MODEL, {"text": "x"})
        for _ in range(4):
            try:
                client.run(MODEL, {"text": "x"})
            except BytezError as exc:
                errors.append(exc)
    assert len(errors) >= 3
    debug_lines = [
        r for r in caplog.records if r.name == "langchain_bytez" and r.levelno == logging.DEBUG
    ]
    assert debug_lines, "request/response DEBUG lines expected"
    assert any(
        "/models/v2/openai-community/gpt2" in r.getMessage() and "HTTP 200" in r.getMessage()
        for r in debug_lines
    )
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        assert KEY not in text
        assert PROVIDER_KEY not in text
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert KEY not in (error.body or "") if isinstance(error, BytezError) else True
        for cause in (error.__cause__, getattr(error, "cause", None)):
            if cause is not None:
                assert KEY not in str(cause)


# ----------------------------------------------------------------------------- catalogue

CATALOGUE = [
    {
        "modelId": "a/chat1",
        "task": "chat",
        "params": 1.0,
        "ramRequired": 2,
        "meter": "sm-gpu",
        "meterPrice": 0.1,
    },
    {"modelId": "a/gen1", "task": "text-generation", "params": None},
    {"modelId": "a/chat2", "task": "chat"},
    {"task": "broken entry without id"},
]


def test_list_models_filtered_server_side() -> None:
    rec = Recorder(envelope(CATALOGUE[:1]))
    client, _ = make_client(rec)
    models = client.list_models("chat")
    assert [m.model_id for m in models] == ["a/chat1"]
    assert models[0].ram_required == 2
    assert rec.requests[0].url.params["task"] == "chat"
    assert rec.requests[0].url.path == "/models/v2/list/models"
    client.list_models(model_id="a/gen1")
    assert rec.requests[1].url.params["modelId"] == "a/gen1"


def test_list_models_unfiltered_skips_broken_entries() -> None:
    rec = Recorder(envelope(CATALOGUE))
    client, _ = make_client(rec)
    assert [m.model_id for m in client.list_models()] == ["a/chat1", "a/gen1", "a/chat2"]
    assert "task" not in rec.requests[0].url.params


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_list_models_falls_back_to_client_side_filter(status: int, sleeps: list[float]) -> None:
    rec = Recorder(envelope(None, "unknown filter", status=status), envelope(CATALOGUE))
    client, _ = make_client(rec, max_retries=0)
    models = client.list_models("chat")
    assert [m.model_id for m in models] == ["a/chat1", "a/chat2"]
    assert len(rec.requests) == 2
    assert rec.requests[0].url.params["task"] == "chat"
    assert "task" not in rec.requests[1].url.params


@pytest.mark.parametrize("status", [401, 402])
def test_list_models_no_fallback_for_auth_or_credit(status: int) -> None:
    rec = Recorder(envelope(None, "nope", status=status), envelope(CATALOGUE))
    client, _ = make_client(rec)
    with pytest.raises(BytezError):
        client.list_models("chat")
    assert len(rec.requests) == 1


def test_list_models_filters_when_server_ignores_filter() -> None:
    client, _ = make_client(Recorder(envelope(CATALOGUE)))
    assert [m.model_id for m in client.list_models("text-generation")] == ["a/gen1"]


def test_list_tasks_and_request_model() -> None:
    rec = Recorder(envelope(["chat", "text-generation"]), envelope("Job queued"))
    client, _ = make_client(rec)
    assert client.list_tasks() == ["chat", "text-generation"]
    assert client.request_model("org/new-model") == "Job queued"
    assert rec.requests[0].method == "GET"
    assert rec.requests[0].url.path == "/models/v2/list/tasks"
    assert rec.requests[1].method == "POST"
    assert rec.requests[1].url.path == "/models/v2/request/org/new-model"


def test_unexpected_catalogue_shape() -> None:
    client, _ = make_client(Recorder(envelope({"not": "a list"})))
    with pytest.raises(BytezAPIError, match="expected a list"):
        client.list_models()


# ----------------------------------------------------------------------------- clusters

CLUSTER = {
    "modelId": MODEL,
    "status": "on",
    "created": "2025-01-01T00:00:00Z",
    "modified": "2025-01-01T00:01:00Z",
    "timeout": 5,
    "capacity": {"min": 1, "desired": 2, "max": 3},
    "instances": 2,
    "inferences": 7,
    "lastInference": None,
}


def test_cluster_routes() -> None:
    rec = Recorder(
        envelope("Loading", status=202),
        envelope(CLUSTER),
        envelope({**CLUSTER, "status": "off"}),
        envelope(None),
        envelope([CLUSTER, {**CLUSTER, "modelId": "x/y", "status": "loading"}]),
    )
    client, _ = make_client(rec)
    assert client.create_cluster(MODEL, Capacity(min=1, desired=2, max=3), 5) == "Loading"
    status = client.get_cluster(MODEL)
    assert status.state is ClusterState.RUNNING
    assert status.capacity == Capacity(min=1, desired=2, max=3)
    updated = client.update_cluster(MODEL, status="off", timeout_minutes=9)
    assert updated.state is ClusterState.STOPPED
    assert client.delete_cluster(MODEL) is None
    clusters = client.list_clusters()
    assert [c.model_id for c in clusters] == [MODEL, "x/y"]
    assert clusters[1].state is ClusterState.DEPLOYING
    methods = [(r.method, r.url.path) for r in rec.requests]
    path = f"/models/v2/{MODEL}"
    assert methods == [
        ("PUT", path),
        ("GET", path),
        ("PATCH", path),
        ("DELETE", path),
        ("GET", "/models/v2/list/clusters"),
    ]
    assert json.loads(rec.requests[0].content) == {
        "capacity": {"min": 1, "desired": 2, "max": 3},
        "timeout": 5,
    }
    assert json.loads(rec.requests[2].content) == {"timeout": 9, "status": "off"}


def test_get_cluster_not_found() -> None:
    client, _ = make_client(Recorder(envelope(None, "Cluster not found", status=404)))
    with pytest.raises(BytezNotFoundError):
        client.get_cluster(MODEL)
    client, _ = make_client(Recorder(envelope(None)))
    with pytest.raises(BytezNotFoundError):
        client.get_cluster(MODEL)


def test_update_cluster_reads_back_when_server_does_not_echo() -> None:
    rec = Recorder(envelope("Updated"), envelope(CLUSTER))
    client, _ = make_client(rec)
    assert client.update_cluster(MODEL, capacity=Capacity.fixed(2)).state is ClusterState.RUNNING
    assert [r.method for r in rec.requests] == ["PATCH", "GET"]


@pytest.mark.parametrize("minutes", [0, 1441, -1, 2.5, True])
def test_cluster_argument_validation_sends_nothing(minutes: Any) -> None:
    rec = Recorder(envelope("Loading"))
    client, _ = make_client(rec)
    with pytest.raises(ValueError, match="timeout_minutes"):
        client.create_cluster(MODEL, Capacity.fixed(1), minutes)
    with pytest.raises(ValueError):
        client.update_cluster(MODEL)
    with pytest.raises(ValueError, match="status"):
        client.update_cluster(MODEL, status="paused")  # type: ignore[arg-type]
    assert rec.requests == []


def test_model_handle_is_built_lazily() -> None:
    from langchain_bytez.manager import AsyncModelHandle, ModelHandle

    client = BytezClient(KEY, base_url=BASE)
    assert isinstance(client.model(MODEL), ModelHandle)
    assert isinstance(AsyncBytezClient(KEY, base_url=BASE).model(MODEL), AsyncModelHandle)


async def test_async_catalogue_and_clusters(sleeps: list[float]) -> None:
    rec = Recorder(
        envelope(None, "no", status=404),
        envelope(CATALOGUE),
        envelope(["chat"]),
        envelope("Job queued"),
        envelope("Loading", status=202),
        envelope(CLUSTER),
        envelope(CLUSTER),
        envelope(None),
        envelope([CLUSTER]),
    )
    client, http = make_async_client(rec)
    assert [m.model_id for m in await client.list_models("chat")] == ["a/chat1", "a/chat2"]
    assert await client.list_tasks() == ["chat"]
    assert await client.request_model("a/b") == "Job queued"
    assert await client.create_cluster(MODEL, Capacity.fixed(1), 5) == "Loading"
    assert (await client.get_cluster(MODEL)).state is ClusterState.RUNNING
    assert (await client.update_cluster(MODEL, status="on")).model_id == MODEL
    assert await client.delete_cluster(MODEL) is None
    assert len(await client.list_clusters()) == 1
    assert [r.method for r in rec.requests] == [
        "GET",
        "GET",
        "GET",
        "POST",
        "PUT",
        "GET",
        "PATCH",
        "DELETE",
        "GET",
    ]
    await http.aclose()


# ----------------------------------------------------------------------------- streams


class ChunkStream(httpx.SyncByteStream):
    """A response body delivered chunk by chunk, optionally failing after them."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail
        self.closed = False
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        if self.fail is not None:
            raise self.fail

    def close(self) -> None:
        self.closed = True


class AsyncChunkStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail is not None:
            raise self.fail

    async def aclose(self) -> None:
        self.closed = True


def stream_response(
    stream: httpx.SyncByteStream | httpx.AsyncByteStream, **headers: str
) -> httpx.Response:
    all_headers = {"content-type": "text/plain; charset=utf-8"}
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx.Response(200, stream=stream, headers=all_headers)


def split_bytes(text: str, size: int) -> list[bytes]:
    data = text.encode()
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_stream_decodes_multibyte_characters_split_across_chunks() -> None:
    text = " crème brûlée 北京 こんにちは ✓ 🎉 done"
    body = ChunkStream(split_bytes(text, 1))
    rec = Recorder(stream_response(body, inference_meter="sm-gpu"))
    client, _ = make_client(rec)
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert isinstance(stream, TextStream)
        assert stream.meta is not None
        assert stream.meta.inference_meter == "sm-gpu"
        pieces = list(stream)
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert len(pieces) > 10  # delivered incrementally, not buffered
    assert body.closed
    assert stream.closed
    assert stream.text == text
    assert json.loads(rec.requests[0].content) == {"text": "x", "stream": True}


def test_stream_newlines_preserved_and_chunks_not_line_buffered() -> None:
    chunks = [b"line one\n", b"\n", b"partial", b" line\nnext"]
    client, _ = make_client(Recorder(stream_response(ChunkStream(chunks))))
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == ["line one\n", "\n", "partial", " line\nnext"]


def test_stream_in_band_error_at_start() -> None:
    client, _ = make_client(
        Recorder(stream_response(ChunkStream([b"Err", b"or: CUDA out of memory"])))
    )
    with client.stream(MODEL, {"text": "x"}) as stream:
        with pytest.raises(BytezStreamError) as info:
            list(stream)
    assert info.value.delivered_text == ""
    assert "CUDA out of memory" in str(info.value)
    assert info.value.status_code == 200
    assert info.value.model_id == MODEL
    assert info.value.is_retryable is False


def test_stream_in_band_error_after_text() -> None:
    client, _ = make_client(
        Recorder(stream_response(ChunkStream([b" one", b" two", b"Error: boom"])))
    )
    got: list[str] = []
    with pytest.raises(BytezStreamError) as info:
        drain(client.stream(MODEL, {"text": "x"}), got)
    assert got == [" one", " two"]
    assert info.value.delivered_text == " one two"
    assert "boom" in info.value.message


def test_stream_drop_mid_stream_is_a_stream_error_and_not_retried(sleeps: list[float]) -> None:
    body = ChunkStream([b" a", b" b"], fail=httpx.RemoteProtocolError("peer closed connection"))
    rec = Recorder(stream_response(body))
    client, _ = make_client(rec)
    got: list[str] = []
    with pytest.raises(BytezStreamError) as info:
        got.extend(client.stream(MODEL, {"text": "x"}))
    assert got == [" a", " b"]
    assert info.value.delivered_text == " a b"
    assert "incomplete" in info.value.message
    assert len(rec.requests) == 1
    assert sleeps == []
    assert body.closed


@pytest.mark.parametrize("exc", [httpx.ReadError("reset"), httpx.ReadTimeout("slow")])
def test_stream_read_failures_mid_stream(exc: Exception) -> None:
    body = ChunkStream([b"x"], fail=exc)
    client, _ = make_client(Recorder(stream_response(body)))
    with pytest.raises(BytezStreamError) as info:
        list(client.stream(MODEL, {"text": "x"}))
    assert info.value.delivered_text == "x"


def test_stream_errors_before_start_are_typed_and_retried(sleeps: list[float]) -> None:
    body = ChunkStream([b"ok"])
    rec = Recorder(
        envelope(None, "busy", status=503),
        httpx.ConnectError("refused"),
        stream_response(body),
    )
    client, _ = make_client(rec)
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == ["ok"]
    assert len(rec.requests) == 3
    assert len(sleeps) == 2
    rec = Recorder(envelope(None, "Unauthorized", status=401))
    client, _ = make_client(rec)
    stream = client.stream(MODEL, {"text": "x"})
    assert not rec.requests  # nothing sent before entering
    with pytest.raises(BytezAuthenticationError):
        stream.__enter__()
    assert len(rec.requests) == 1


def test_stream_html_502_on_enter(sleeps: list[float]) -> None:
    rec = Recorder(
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"})
    )
    client, _ = make_client(rec, max_retries=0)
    with pytest.raises(BytezAPIError, match=r"non-JSON response \(HTTP 502, text/html\)"):
        with client.stream(MODEL, {"text": "x"}):
            pass


def test_stream_json_error_envelope_is_raised_not_streamed() -> None:
    client, _ = make_client(Recorder(envelope(None, "model does not stream")))
    with pytest.raises(BytezAPIError, match="model does not stream"):
        with client.stream(MODEL, {"text": "x"}):
            pass
    client, _ = make_client(Recorder(envelope("whole text")))
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == ["whole text"]


def test_stream_without_with_opens_and_closes() -> None:
    body = ChunkStream([b"a", b"b"])
    rec = Recorder(stream_response(body))
    client, _ = make_client(rec)
    stream = client.stream(MODEL, {"text": "x"})
    assert list(stream) == ["a", "b"]
    assert body.closed
    assert stream.closed
    with pytest.raises(RuntimeError, match="once"):
        list(stream)


def test_stream_early_break_closes_response() -> None:
    body = ChunkStream([b"a", b"b", b"c", b"d"])
    client, _ = make_client(Recorder(stream_response(body)))
    with client.stream(MODEL, {"text": "x"}) as stream:
        for text in stream:
            assert text == "a"
            break
        assert body.closed  # the loop's iterator was finalised on break
    assert body.sent < 4
    body2 = ChunkStream([b"a", b"b", b"c"])
    client, _ = make_client(Recorder(stream_response(body2)))
    for _text in client.stream(MODEL, {"text": "x"}):
        break
    gc.collect()
    assert body2.closed


def test_stream_exit_without_iterating_closes() -> None:
    body = ChunkStream([b"a"])
    client, _ = make_client(Recorder(stream_response(body)))
    with client.stream(MODEL, {"text": "x"}) as stream:
        pass
    assert body.closed
    with pytest.raises(RuntimeError):
        list(stream)


def test_stream_garbage_collected_releases_connection() -> None:
    body = ChunkStream([b"a"])
    client, _ = make_client(Recorder(stream_response(body)))
    stream = client.stream(MODEL, {"text": "x"})
    stream.__enter__()
    del stream
    gc.collect()
    assert body.closed


def test_empty_stream_yields_nothing() -> None:
    client, _ = make_client(Recorder(stream_response(ChunkStream([]))))
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == []


def test_stream_timeout_override() -> None:
    rec = Recorder(stream_response(ChunkStream([b"a"])))
    client, _ = make_client(rec)
    with client.stream(MODEL, {"text": "x"}, timeout=3) as stream:
        list(stream)
    # At most the time left of the 3 s deadline.
    assert 2 < rec.requests[0].extensions["timeout"]["read"] <= 3


async def test_async_stream_multibyte_and_errors(sleeps: list[float]) -> None:
    text = "añb 北京 🎉"
    body = AsyncChunkStream(split_bytes(text, 1))
    rec = Recorder(envelope(None, "busy", status=429, retry_after="0"), stream_response(body))
    client, http = make_async_client(rec)
    async with client.stream(MODEL, {"text": "x"}) as stream:
        assert isinstance(stream, AsyncTextStream)
        assert stream.meta is not None
        pieces = [piece async for piece in stream]
    assert "".join(pieces) == text
    assert body.closed
    assert len(sleeps) == 1
    assert 0.0 <= sleeps[0] <= 0.5  # "retry now", plus up to one jittered backoff

    body = AsyncChunkStream([b" a", b" b"], fail=httpx.RemoteProtocolError("peer closed"))
    rec = Recorder(stream_response(body))
    client, http = make_async_client(rec)
    got: list[str] = []
    with pytest.raises(BytezStreamError) as info:
        await adrain(client.stream(MODEL, {"text": "x"}), got)
    assert info.value.delivered_text == " a b" == "".join(got)
    assert len(rec.requests) == 1

    client, http = make_async_client(
        Recorder(stream_response(AsyncChunkStream([b"Error: at start"])))
    )
    with pytest.raises(BytezStreamError, match="at start"):
        async for _ in client.stream(MODEL, {"text": "x"}):
            pass

    body = AsyncChunkStream([b"a", b"b", b"c"])
    client, http = make_async_client(Recorder(stream_response(body)))
    async with client.stream(MODEL, {"text": "x"}) as stream:
        async for _ in stream:
            break
    assert body.closed

    client, http = make_async_client(Recorder(envelope(None, "Payment", status=402)))
    with pytest.raises(BytezPaymentRequiredError):
        async with client.stream(MODEL, {"text": "x"}):
            pass
    await http.aclose()


async def test_async_client_pool_follows_event_loop() -> None:
    client = AsyncBytezClient(KEY, base_url=BASE)
    first = client._client()
    assert client._client() is first
    client._http_loop = None  # as if created in another loop
    second = client._client()
    assert second is not first
    await client.aclose()
    assert second.is_closed
    await first.aclose()


# ----------------------------------------------------------------------------- review fixes


def chain_of(error: BaseException) -> list[BaseException]:
    """The error and every exception reachable through ``__cause__``/``__context__``."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return seen


def assert_key_unreachable(error: BaseException) -> None:
    assert KEY not in "".join(traceback.format_exception(error))
    for linked in chain_of(error):
        assert KEY not in str(linked)
        assert KEY not in repr(linked)


def test_default_headers_in_any_case_are_sent_once() -> None:
    rec = Recorder(envelope("ok"))
    client, _ = make_client(
        rec,
        default_headers={"content-type": "application/json; charset=utf-8", "user-agent": "me/1"},
    )
    client.run(MODEL, {"text": "hi"})
    headers = rec.requests[0].headers
    assert headers.get_list("content-type") == ["application/json; charset=utf-8"]
    assert headers.get_list("user-agent") == ["me/1"]


async def test_async_transport_error_echoing_the_key_is_not_chained(sleeps: list[float]) -> None:
    rec = Recorder(httpx.ConnectError(f"refused, key={KEY}"))
    client, http = make_async_client(rec, max_retries=1)
    with pytest.raises(BytezConnectionError) as info:
        await client.run(MODEL, {"text": "x"})
    assert len(rec.requests) == 2  # still retried
    assert_key_unreachable(info.value)
    await http.aclose()


def test_transport_error_without_secret_keeps_its_cause() -> None:
    failure = httpx.ConnectError("refused")
    client, _ = make_client(Recorder(failure), max_retries=0)
    with pytest.raises(BytezConnectionError) as info:
        client.run(MODEL, {"text": "x"})
    assert info.value.cause is failure  # kept as an attribute, not a __cause__ chain
    assert info.value.__cause__ is None


def test_stream_broken_by_an_error_echoing_the_key_does_not_chain_it() -> None:
    body = ChunkStream([b"a"], fail=httpx.RemoteProtocolError(f"illegal chunk b'Key {KEY}'"))
    client, _ = make_client(Recorder(stream_response(body)))
    got: list[str] = []
    with pytest.raises(BytezStreamError) as info:
        drain(client.stream(MODEL, {"text": "x"}), got)
    assert got == ["a"]
    assert info.value.delivered_text == "a"
    assert_key_unreachable(info.value)
    assert body.closed
    plain = ChunkStream([b"a"], fail=httpx.ReadError("reset"))
    client, _ = make_client(Recorder(stream_response(plain)))
    with pytest.raises(BytezStreamError) as info:
        drain(client.stream(MODEL, {"text": "x"}), [])
    assert info.value.cause is plain.fail  # still kept when it is clean


async def test_async_stream_broken_by_an_error_echoing_the_key_does_not_chain_it() -> None:
    body = AsyncChunkStream([b"a"], fail=httpx.ReadError(f"reset {KEY}"))
    client, http = make_async_client(Recorder(stream_response(body)))
    got: list[str] = []
    with pytest.raises(BytezStreamError) as info:
        await adrain(client.stream(MODEL, {"text": "x"}), got)
    assert got == ["a"]
    assert_key_unreachable(info.value)
    assert body.closed
    await http.aclose()


def test_stream_json_read_failure_echoing_the_key_does_not_chain_it() -> None:
    body = ChunkStream([b'{"error": null, '], fail=httpx.ReadError(f"reset {KEY}"))
    rec = Recorder(httpx.Response(200, stream=body, headers={"content-type": "application/json"}))
    client, _ = make_client(rec)
    with pytest.raises(BytezStreamError) as info:
        with client.stream(MODEL, {"text": "x"}):
            pass
    assert_key_unreachable(info.value)
    assert body.closed


def test_stream_mislabelled_as_json_still_raises_in_band_error() -> None:
    # Content-Type is to be ignored on streams: an "Error: " body is an error, whatever
    # its label, never model text.
    bad = httpx.Response(
        200, content=b"Error: CUDA out of memory", headers={"content-type": "application/json"}
    )
    client, _ = make_client(Recorder(bad))
    got: list[str] = []
    with pytest.raises(BytezStreamError, match="CUDA out of memory") as info:
        drain(client.stream(MODEL, {"text": "x"}), got)
    assert got == []
    assert info.value.delivered_text == ""
    # A mislabelled ordinary text body is still delivered, multi-byte text intact.
    text = httpx.Response(
        200, content="plain 北京".encode(), headers={"content-type": "application/json"}
    )
    client, _ = make_client(Recorder(text))
    with client.stream(MODEL, {"text": "x"}) as stream:
        assert list(stream) == ["plain 北京"]


async def test_async_stream_mislabelled_as_json_still_raises_in_band_error() -> None:
    bad = httpx.Response(200, content=b"Error: boom", headers={"content-type": "application/json"})
    client, http = make_async_client(Recorder(bad))
    with pytest.raises(BytezStreamError, match="boom"):
        await adrain(client.stream(MODEL, {"text": "x"}), [])
    await http.aclose()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ({"role": "assistant", "content": "whole"}, "whole"),
        (
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            "ab",
        ),
        ([{"generated_text": "legacy"}], "legacy"),
        ([{"summary_text": "short"}], "short"),
    ],
)
def test_stream_answered_with_json_accepts_every_text_output_form(
    output: Any, expected: str
) -> None:
    client, _ = make_client(Recorder(envelope(output)))
    with client.stream(MODEL, {"messages": [{"role": "user", "content": "hi"}]}) as stream:
        assert list(stream) == [expected]


def test_stream_answered_with_non_text_json_is_a_clear_error() -> None:
    client, _ = make_client(Recorder(envelope([0.1, 0.2])))
    with pytest.raises(BytezAPIError, match="Expected a text stream"):
        with client.stream(MODEL, {"text": "x"}):
            pass


def test_catalogue_skips_entries_that_fail_validation() -> None:
    odd = [*CATALOGUE, {"modelId": "a/odd", "task": 5}, {"modelId": "a/odd2", "meter": [1]}]
    client, _ = make_client(Recorder(envelope(odd)))
    ids = [m.model_id for m in client.list_models()]
    assert ids == ["a/chat1", "a/gen1", "a/chat2"]


def test_malformed_cluster_answers_are_typed_errors_or_skipped() -> None:
    client, _ = make_client(
        Recorder(envelope({"modelId": MODEL, "status": "on", "inferences": "many"}))
    )
    with pytest.raises(BytezAPIError, match="Unexpected cluster answer") as info:
        client.get_cluster(MODEL)
    assert info.value.is_retryable is False
    client, _ = make_client(Recorder(envelope({"modelId": None, "status": "on"})))
    assert client.get_cluster(MODEL).model_id == MODEL  # null id: falls back
    clusters = [
        {"modelId": "a/one", "status": "on"},
        {"modelId": "a/two", "status": "on", "capacity": {"min": -1}},
        {"modelId": "a/three", "status": "off"},
    ]
    client, _ = make_client(Recorder(envelope(clusters)))
    assert [c.model_id for c in client.list_clusters()] == ["a/one", "a/three"]
