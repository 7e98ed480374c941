"""Unit tests of the pure wire pieces (``langchain_bytez.protocol``): no I/O."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from langchain_bytez import protocol
from langchain_bytez._version import __version__
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezError,
    BytezInvalidRequestError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezRateLimitError,
    BytezStreamError,
    BytezTimeoutError,
    InvalidModelIdError,
)

KEY = "sk-FAKE-KEY-0123456789"

# ----------------------------------------------------------------------------- model ids

VALID_IDS = [
    "gpt2",
    "openai-community/gpt2",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct",
    "openai/gpt-4o",
    "a_b.c-d/x_y.z-1",
    "0/1",
    "a" * 256,
    "org/a..b",  # ".." inside a segment is not a traversal
]

INVALID_IDS = [
    "",
    "../x",
    "a/../b",
    "a/..",
    "a/.",
    "..",
    ".",
    "%2e%2e",
    "%2e%2e/x",
    "a%2Fb",
    "a?b=c",
    "a#b",
    "a/b/c",
    "/a",
    "a/",
    "a//b",
    "-a",
    "_a",
    ".a",
    "a b",
    " a",
    "a\n",
    "a\t",
    "a\\b",
    "a" * 257,
    "x" * 300,
    "gpt2\u0430",  # Cyrillic a
    "q\u0432en/x",
    "café/model",
    "ｇｐｔ2",  # fullwidth
    "org/na\u0301me",
    "a:b",
    "a@b",
    "list/models",
    "request/x",
]


@pytest.mark.parametrize("model_id", VALID_IDS)
def test_valid_model_ids_pass_unchanged(model_id: str) -> None:
    assert protocol.validate_model_id(model_id) == model_id
    assert protocol.model_path(model_id) == f"/models/v2/{model_id}"


@pytest.mark.parametrize("model_id", INVALID_IDS)
def test_invalid_model_ids_are_refused_naming_the_id_and_rule(model_id: str) -> None:
    with pytest.raises(InvalidModelIdError) as info:
        protocol.validate_model_id(model_id)
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, BytezInvalidRequestError)
    assert repr(model_id) in str(error)
    assert "ASCII letters" in str(error)


@pytest.mark.parametrize("value", [None, 12, b"gpt2", ["gpt2"], {"a": 1}])
def test_non_string_model_ids_are_refused(value: object) -> None:
    with pytest.raises(InvalidModelIdError, match="expected a string"):
        protocol.validate_model_id(value)


# ----------------------------------------------------------------------------- loopback


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("::ffff:127.0.0.1", True),
        # Only the exact name is this machine: DNS may send these anywhere.
        ("api.localhost", False),
        ("evil.localhost", False),
        ("127.0.0.1.evil.com", False),
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("api.bytez.com", False),
        ("localhost.evil.com", False),
        ("128.0.0.1", False),
        ("::2", False),
    ],
)
def test_is_loopback_host(host: str, expected: bool) -> None:
    assert protocol.is_loopback_host(host) is expected


# ----------------------------------------------------------------------------- headers


def test_build_headers_carries_key_ua_provider_and_extras() -> None:
    headers = protocol.build_headers(
        KEY, provider_key="prov-123456", default_headers={"X-Trace": "1"}
    )
    assert headers["Authorization"] == f"Key {KEY}"
    assert headers["provider-key"] == "prov-123456"
    assert headers["User-Agent"] == f"langchain-bytez/{__version__}"
    assert headers["X-Trace"] == "1"


def test_build_headers_lets_default_headers_replace_user_agent() -> None:
    headers = protocol.build_headers(KEY, default_headers={"User-Agent": "mine/1"})
    assert headers["User-Agent"] == "mine/1"
    assert "provider-key" not in headers


@pytest.mark.parametrize("name", ["user-agent", "USER-AGENT"])
def test_build_headers_replaces_user_agent_whatever_its_case(name: str) -> None:
    headers = protocol.build_headers(KEY, default_headers={name: "mine/1"})
    assert [k for k in headers if k.lower() == "user-agent"] == [name]
    assert headers[name] == "mine/1"


@pytest.mark.parametrize("name", ["Authorization", "authorization", "Provider-Key"])
def test_build_headers_refuses_credentials_in_default_headers(name: str) -> None:
    with pytest.raises(ValueError, match="api_key"):
        protocol.build_headers(KEY, default_headers={name: "x"})


@pytest.mark.parametrize("bad", [f"{KEY}\n", f"{KEY}\r\nX-Evil: 1", f"{KEY}\x00", "kéy-123456"])
def test_build_headers_refuses_unsendable_keys_without_echoing_them(bad: str) -> None:
    with pytest.raises(BytezAuthenticationError) as info:
        protocol.build_headers(bad)
    assert KEY not in str(info.value)
    assert "kéy" not in str(info.value)


# ----------------------------------------------------------------------------- run body


def test_build_run_body_drops_none_values_and_sets_stream() -> None:
    payload = {
        "text": "Once upon a time",
        "messages": None,
        "params": {"max_new_tokens": 20, "temperature": None, "stop_strings": ["\n"]},
    }
    body = protocol.build_run_body(payload, stream=False)
    assert body == {
        "text": "Once upon a time",
        "params": {"max_new_tokens": 20, "stop_strings": ["\n"]},
    }
    assert "stream" not in body
    streamed = protocol.build_run_body(payload, stream=True)
    assert streamed["stream"] is True
    # The caller's payload is not modified.
    assert payload["params"]["temperature"] is None  # type: ignore[index]
    assert "stream" not in payload


def test_build_run_body_refuses_unknown_keys_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"unknown top-level key 'max_new_tokens'.*params"):
        protocol.build_run_body({"text": "x", "max_new_tokens": 3}, stream=False)


def test_build_run_body_refuses_stream_in_payload() -> None:
    with pytest.raises(ValueError, match=r"stream\(\)"):
        protocol.build_run_body({"text": "x", "stream": True}, stream=False)


def test_build_run_body_extra_keys_opt_in() -> None:
    body = protocol.build_run_body({"text": "x", "url": "u"}, stream=False, extra_keys={"url"})
    assert body == {"text": "x", "url": "u"}


@pytest.mark.parametrize("payload", ["text", ["text"], None, 3])
def test_build_run_body_requires_a_mapping(payload: object) -> None:
    with pytest.raises(TypeError, match="mapping"):
        protocol.build_run_body(payload, stream=False)  # type: ignore[arg-type]


def test_build_run_body_requires_params_mapping() -> None:
    with pytest.raises(TypeError, match="params"):
        protocol.build_run_body({"text": "x", "params": [1]}, stream=False)


def test_encode_json_is_compact_utf8_and_refuses_nan() -> None:
    assert protocol.encode_json({"text": "é", "a": [1, 2]}) == '{"text":"é","a":[1,2]}'.encode()
    with pytest.raises(ValueError, match="JSON"):
        protocol.encode_json({"params": {"temperature": math.nan}})
    with pytest.raises(ValueError, match="JSON"):
        protocol.encode_json({"x": object()})


# ----------------------------------------------------------------------------- envelopes


def _response(
    status: int,
    body: bytes | str | object = b"",
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    all_headers = {"content-type": content_type, **(headers or {})}
    return httpx.Response(status, content=data, headers=all_headers)


def test_parse_envelope_returns_output_and_provider() -> None:
    response = _response(200, {"error": None, "output": "hi", "provider": {"name": "openai"}})
    assert protocol.parse_envelope(response) == ("hi", {"name": "openai"})
    assert protocol.parse_envelope(_response(200, {"error": None, "output": [1]})) == ([1], None)


def test_parse_envelope_tolerates_non_envelope_json_and_empty_bodies() -> None:
    assert protocol.parse_envelope(_response(200, [1, 2])) == ([1, 2], None)
    assert protocol.parse_envelope(_response(200, {"modelId": "x"})) == ({"modelId": "x"}, None)
    assert protocol.parse_envelope(_response(204, b"")) == (None, None)


@pytest.mark.parametrize("error", ["boom", {"message": "boom"}, {"error": "boom"}])
def test_error_envelope_on_200_is_a_non_retryable_api_error(error: object) -> None:
    with pytest.raises(BytezAPIError) as info:
        protocol.parse_envelope(_response(200, {"error": error, "output": None}), "m/x")
    assert info.value.message == "boom"
    assert info.value.status_code == 200
    assert info.value.model_id == "m/x"
    assert info.value.is_retryable is False


def test_malformed_json_on_200_is_a_clear_non_retryable_error() -> None:
    with pytest.raises(BytezAPIError) as info:
        protocol.parse_envelope(_response(200, b'{"error": null, "output": "tru'))
    assert "malformed JSON" in info.value.message
    assert "HTTP 200" in info.value.message
    assert info.value.is_retryable is False
    assert not isinstance(info.value.__cause__, json.JSONDecodeError)


def test_non_json_200_is_a_clear_error() -> None:
    response = _response(
        200, "<html><body>Captive   portal</body></html>", content_type="text/html"
    )
    with pytest.raises(BytezAPIError, match=r"non-JSON response \(HTTP 200, text/html\)"):
        protocol.parse_envelope(response)


def test_parse_envelope_redacts() -> None:
    response = _response(200, {"error": f"bad key {KEY}", "output": None})
    with pytest.raises(BytezAPIError) as info:
        protocol.parse_envelope(response, redact=lambda s: s.replace(KEY, "***"))
    assert KEY not in str(info.value)
    assert KEY not in (info.value.body or "")


HTML_502 = (
    "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
    "<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"
    + "x"
    * 500
)

# status, body, content type, expected class, retryable, message fragment
ERROR_TABLE: list[tuple[int, object, str, type[BytezError], bool, str]] = [
    (
        400,
        {"error": "bad input", "output": None},
        "application/json",
        BytezInvalidRequestError,
        False,
        "bad input",
    ),
    (
        401,
        {"error": "Unauthorized", "output": None},
        "application/json",
        BytezAuthenticationError,
        False,
        "Unauthorized",
    ),
    (
        402,
        {"status": 402, "error": "Payment Required", "message": "Insufficient credits."},
        "application/json",
        BytezPaymentRequiredError,
        False,
        "Insufficient credits.",
    ),
    (
        403,
        {"error": "Forbidden", "output": None},
        "application/json",
        BytezInvalidRequestError,
        False,
        "Forbidden",
    ),
    (
        404,
        {"error": "Model does not exist", "output": None},
        "application/json",
        BytezNotFoundError,
        False,
        "Model does not exist",
    ),
    (
        405,
        {"error": "Method Not Allowed", "output": None},
        "application/json",
        BytezInvalidRequestError,
        False,
        "Method Not Allowed",
    ),
    (
        409,
        {"error": "Cluster already exists", "output": None},
        "application/json",
        BytezInvalidRequestError,
        False,
        "already exists",
    ),
    (
        422,
        {
            "error": "ValueError: max_new_tokens must be positive",
            "stack_trace": "Traceback...\n  File x\nValueError: boom",
        },
        "application/json",
        BytezInvalidRequestError,
        False,
        "max_new_tokens must be positive",
    ),
    (
        429,
        {"error": "Rate limit exceeded", "output": None},
        "application/json",
        BytezRateLimitError,
        True,
        "Rate limit exceeded",
    ),
    (
        500,
        {"error": "Internal Server Error", "output": None},
        "application/json",
        BytezAPIError,
        True,
        "Internal",
    ),
    (
        501,
        {"error": "Not Implemented", "output": None},
        "application/json",
        BytezAPIError,
        False,
        "Not Implemented",
    ),
    (
        502,
        HTML_502,
        "text/html",
        BytezAPIError,
        True,
        "non-JSON response (HTTP 502, text/html): <html> <head><title>502",
    ),
    (
        503,
        {"error": "Service Unavailable", "output": None},
        "application/json",
        BytezAPIError,
        True,
        "Service Unavailable",
    ),
    (504, b"", "text/plain", BytezAPIError, True, "empty body"),
    (
        503,
        "upstream connect error",
        "text/plain",
        BytezAPIError,
        True,
        "non-JSON response (HTTP 503, text/plain)",
    ),
    (400, "not json at all", "text/plain", BytezInvalidRequestError, False, "non-JSON"),
    (418, {"message": "teapot"}, "application/json", BytezInvalidRequestError, False, "teapot"),
    (302, b"", "text/html", BytezAPIError, False, "Unexpected HTTP 302"),
    (500, '"plain string"', "application/json", BytezAPIError, True, "plain string"),
]


@pytest.mark.parametrize(("status", "body", "ctype", "cls", "retryable", "fragment"), ERROR_TABLE)
def test_error_from_response_table(
    status: int, body: object, ctype: str, cls: type[BytezError], retryable: bool, fragment: str
) -> None:
    response = _response(status, body, content_type=ctype)
    error = protocol.error_from_response(status, response.headers, response.content, "org/m")
    assert type(error) is cls
    assert error.status_code == status
    assert error.model_id == "org/m"
    assert error.is_retryable is retryable
    assert fragment in error.message
    # parse_envelope raises the same thing for a non-2xx answer.
    if not 200 <= status < 300:
        with pytest.raises(cls):
            protocol.parse_envelope(response, "org/m")


def test_html_excerpt_is_collapsed_and_short() -> None:
    response = _response(502, HTML_502, content_type="text/html; charset=utf-8")
    error = protocol.error_from_response(502, response.headers, response.content)
    assert "\n" not in error.message
    excerpt = error.message.split("text/html): ", 1)[1]
    assert len(excerpt) <= 203
    assert excerpt.endswith("...")


def test_422_keeps_error_and_puts_stack_tail_in_body() -> None:
    stack = "Traceback (most recent call last):\n" + "".join(f"  line {i}\n" for i in range(50))
    stack += "ValueError: the real reason"
    response = _response(422, {"error": "the real reason", "stack_trace": stack})
    error = protocol.error_from_response(422, response.headers, response.content)
    assert error.message == "the real reason"
    assert error.body is not None
    assert error.body.endswith("ValueError: the real reason")
    assert "line 0\n" not in error.body  # only the tail
    assert "Traceback" not in error.message


def test_402_prefers_message() -> None:
    body = {"status": 402, "error": "Payment Required", "message": "Insufficient credits"}
    response = _response(402, body)
    error = protocol.error_from_response(402, response.headers, response.content)
    assert isinstance(error, BytezPaymentRequiredError)
    assert error.message == "Insufficient credits"


def test_error_from_response_redacts_messages_and_bodies() -> None:
    response = _response(500, f"<html>{KEY}</html>", content_type="text/html")
    error = protocol.error_from_response(
        500, response.headers, response.content, redact=lambda s: s.replace(KEY, "***")
    )
    assert KEY not in str(error)
    assert KEY not in (error.body or "")


def test_429_retry_after_from_headers() -> None:
    response = _response(429, {"error": "Rate limit exceeded"}, headers={"retry-after": "7"})
    error = protocol.error_from_response(429, response.headers, response.content)
    assert isinstance(error, BytezRateLimitError)
    assert error.retry_after == 7.0
    response = _response(429, {"error": "Rate limit exceeded"}, headers={"ratelimit-reset": "3"})
    error = protocol.error_from_response(429, response.headers, response.content)
    assert isinstance(error, BytezRateLimitError)
    assert error.retry_after == 3.0


def test_5xx_ignores_ratelimit_reset_but_honours_retry_after() -> None:
    response = _response(503, {"error": "busy"}, headers={"ratelimit-reset": "30"})
    error = protocol.error_from_response(503, response.headers, response.content)
    assert isinstance(error, BytezAPIError)
    assert error.retry_after is None
    response = _response(
        503, {"error": "busy"}, headers={"retry-after": "2", "ratelimit-reset": "30"}
    )
    error = protocol.error_from_response(503, response.headers, response.content)
    assert isinstance(error, BytezAPIError)
    assert error.retry_after == 2.0


# ----------------------------------------------------------------------------- retry-after


def _h(**values: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in values.items()})


def test_retry_after_seconds_forms() -> None:
    assert protocol.retry_after_seconds(_h(retry_after="5")) == 5.0
    assert protocol.retry_after_seconds(_h(retry_after="0.25")) == 0.25
    assert protocol.retry_after_seconds(_h(ratelimit_reset="4")) == 4.0
    assert protocol.retry_after_seconds(_h(retry_after="2", ratelimit_reset="9")) == 2.0
    assert protocol.retry_after_seconds(_h()) is None
    assert protocol.retry_after_seconds(_h(retry_after="soon")) is None
    assert protocol.retry_after_seconds(_h(retry_after="-3")) is None
    assert protocol.retry_after_seconds(_h(retry_after="nan")) is None
    assert protocol.retry_after_seconds(_h(retry_after="inf")) is None
    assert protocol.retry_after_seconds(_h(ratelimit_reset="4"), use_ratelimit_reset=False) is None
    # Invalid Retry-After falls back to ratelimit-reset.
    assert protocol.retry_after_seconds(_h(retry_after="soon", ratelimit_reset="6")) == 6.0


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    value = protocol.retry_after_seconds(_h(retry_after=format_datetime(when, usegmt=True)))
    assert value is not None
    assert 25 <= value <= 31
    past = datetime.now(UTC) - timedelta(seconds=30)
    assert protocol.retry_after_seconds(_h(retry_after=format_datetime(past, usegmt=True))) == 0.0


def test_ratelimit_reset_epoch_is_tolerated() -> None:
    epoch = datetime.now(UTC).timestamp() + 20
    value = protocol.retry_after_seconds(_h(ratelimit_reset=str(int(epoch))))
    assert value is not None
    assert 15 <= value <= 21


# ----------------------------------------------------------------------------- policy


def test_retry_policy_attempts_and_predicate() -> None:
    policy = protocol.RetryPolicy(max_retries=2)
    assert policy.attempts == 3
    assert policy.should_retry(BytezRateLimitError("x"))
    assert policy.should_retry(BytezAPIError("x", status_code=503, retryable=True))
    assert policy.should_retry(BytezTimeoutError("x"))
    assert not policy.should_retry(BytezAPIError("x", status_code=200, retryable=False))
    assert not policy.should_retry(BytezStreamError("x"))
    assert not policy.should_retry(BytezNotFoundError("x"))
    assert not policy.should_retry(ValueError("x"))


def test_retry_policy_backoff_grows_is_jittered_and_capped() -> None:
    policy = protocol.RetryPolicy(initial_backoff=0.5, max_backoff=8.0, jitter=0.5, max_wait=60)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        waits = [policy.backoff(attempt) for _ in range(50)]
        assert all(base <= w <= base * 1.5 for w in waits), (attempt, waits)
        assert len(set(waits)) > 1  # jittered
    capped = protocol.RetryPolicy(max_wait=1.0)
    assert all(capped.backoff(6) <= 1.0 for _ in range(20))
    exact = protocol.RetryPolicy(jitter=0)
    assert exact.backoff(3) == 2.0


def test_retry_policy_wait_prefers_server_retry_after_capped() -> None:
    policy = protocol.RetryPolicy(max_wait=10.0, jitter=0)
    assert policy.wait_after(BytezRateLimitError("x", retry_after=3.0), 1) == 3.0
    assert policy.wait_after(BytezRateLimitError("x", retry_after=120.0), 1) == 10.0
    assert policy.wait_after(BytezRateLimitError("x", retry_after=0.0), 1) == 0.0
    assert policy.wait_after(BytezRateLimitError("x"), 2) == 1.0
    assert policy.wait_after(BytezAPIError("x", retryable=True, retry_after=4), 1) == 4.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"max_wait": -1},
        {"max_wait": math.nan},
        {"initial_backoff": math.inf},
        {"backoff_multiplier": -2},  # would make the backoff negative: time.sleep raises
    ],
)
def test_retry_policy_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        protocol.RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_excerpt() -> None:
    assert protocol.excerpt("  a \n\t b  ") == "a b"
    assert protocol.excerpt("x" * 300, 10) == "x" * 10 + "..."
