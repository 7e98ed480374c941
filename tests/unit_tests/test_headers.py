"""Headers and secrets: checked at construction, credentials never shown, echoes redacted.

* ``default_headers`` are checked when a client or a LangChain object is built, with a
  typed error naming the header, never later as a "could not reach Bytez";
* credential-like header values are secrets: masked in ``repr``/``model_dump``, secret
  placeholders in ``dumpd``/``dumps``, redacted from error text;
* a key echoed URL-encoded, JSON-escaped or base64-encoded is redacted too;
* the transport exception kept as ``cause`` carries no key in its request headers;
* the plain-http warning comes at construction, and loopback is recognised exactly.
"""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.load import dumpd, dumps, loads
from pydantic import ValidationError

from langchain_bytez import (
    AsyncBytezClient,
    BytezClient,
    BytezEmbeddings,
    BytezLLM,
    ChatBytez,
    InvalidHeaderError,
)
from langchain_bytez.errors import BytezConnectionError, BytezInvalidRequestError

KEY = "sk-bytez-HEADERS-KEY-4242"
TOKEN = "tok-HEADER-SECRET-777"
MODEL = "openai-community/gpt2"
HTTPS = "https://api.example.com"


# ----------------------------------------------------------------------- validation


BAD_HEADERS: list[tuple[Any, str]] = [
    ({"X-A": 1}, "must be a str"),
    ({"X-A": "a\r\nInjected: 1"}, "line break"),
    ({"X-A": "a\nb"}, "line break"),
    ({"X-A": "a\x00b"}, "line break or NUL"),
    ({"X-A": "caf\u00e9"}, "non-ASCII"),
    ({"X-A": "a\x07b"}, "control"),
    ({"X A": "v"}, "not a valid header name"),
    ({"X-A:": "v"}, "not a valid header name"),
    ({"": "v"}, "not a valid header name"),
    ({1: "v"}, "not a valid header name"),
    ("X-A: v", "mapping"),
]


@pytest.mark.parametrize(("headers", "message"), BAD_HEADERS)
@pytest.mark.parametrize("cls", [BytezClient, AsyncBytezClient])
def test_clients_refuse_bad_headers_at_construction(
    cls: type[BytezClient | AsyncBytezClient], headers: Any, message: str
) -> None:
    with pytest.raises(InvalidHeaderError, match=message) as caught:
        cls(KEY, base_url=HTTPS, default_headers=headers)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, BytezInvalidRequestError)
    assert "Could not reach" not in str(caught.value)


@pytest.mark.parametrize(("headers", "message"), BAD_HEADERS[1:-1])
@pytest.mark.parametrize("cls", [BytezLLM, ChatBytez, BytezEmbeddings])
def test_langchain_classes_refuse_bad_headers_at_construction(
    cls: type[Any], headers: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        cls(model=MODEL, api_key=KEY, base_url=HTTPS, default_headers=headers)


def test_a_secret_header_value_is_not_quoted_in_the_error() -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        BytezClient(KEY, base_url=HTTPS, default_headers={"X-Api-Key": TOKEN + "\n"})
    assert TOKEN not in str(caught.value)
    assert caught.value.header == "X-Api-Key"
    with pytest.raises(InvalidHeaderError) as caught:
        BytezClient(KEY, base_url=HTTPS, default_headers={"X-Trace": "t\n1"})
    assert "'t\\n1'" in str(caught.value)  # an ordinary value is shown, to find it


def test_good_headers_pass_and_are_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"error": None, "output": "ok"})

    headers = {"X-Trace": "a b\tc", "x-api-token": TOKEN, "Accept-Language": "en"}
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = BytezClient(KEY, base_url=HTTPS, default_headers=headers, http_client=http)
        client.run(MODEL, {"text": "x"})
    assert seen[0].headers["x-trace"] == "a b\tc"
    assert seen[0].headers["x-api-token"] == TOKEN


def test_credentials_cannot_be_set_through_default_headers() -> None:
    with pytest.raises(ValueError, match="api_key"):
        BytezClient(KEY, base_url=HTTPS, default_headers={"authorization": "Key other"})


# ----------------------------------------------------------------- secret header values


def _llm(**extra: Any) -> BytezLLM:
    return BytezLLM(
        model=MODEL,
        api_key=KEY,
        base_url=HTTPS,
        default_headers={"X-Auth-Token": TOKEN, "Cookie": "sid=" + TOKEN, "X-Trace": "t1"},
        **extra,
    )


@pytest.mark.parametrize("cls", [BytezLLM, ChatBytez, BytezEmbeddings])
def test_secret_headers_never_in_repr_dump_or_serialisation(cls: type[Any]) -> None:
    model = cls(
        model=MODEL,
        api_key=KEY,
        base_url=HTTPS,
        default_headers={"X-Auth-Token": TOKEN, "X-Trace": "t1"},
    )
    for text in (repr(model), str(model), model.model_dump_json(), dumps(model)):
        assert TOKEN not in text
        assert KEY not in text
    assert "t1" in repr(model)  # ordinary headers stay visible
    assert model.model_dump()["default_headers"]["X-Auth-Token"] == "**********"
    serialised = dumpd(model)
    placeholder = serialised["kwargs"]["default_headers"]["X-Auth-Token"]
    # (langchain-core escapes a nested placeholder: it is revived as data, see below)
    assert "BYTEZ_HEADER_X_AUTH_TOKEN" in json.dumps(placeholder)
    assert TOKEN not in json.dumps(serialised)
    assert serialised["kwargs"]["default_headers"]["X-Trace"] == "t1"
    # The object still sends the real value.
    assert model.default_headers["X-Auth-Token"] == TOKEN


def test_secret_header_comes_back_from_its_variable_after_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm = _llm()
    text = dumps(llm)

    def restore() -> Any:
        return loads(
            text,
            secrets_map={"BYTEZ_API_KEY": KEY},
            valid_namespaces=["langchain_bytez"],
            allowed_objects=[BytezLLM],
        )

    with pytest.raises(ValidationError, match="BYTEZ_HEADER_X_AUTH_TOKEN"):
        restore()  # the value is nowhere in the text: the error says where to put it
    monkeypatch.setenv("BYTEZ_HEADER_X_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("BYTEZ_HEADER_COOKIE", "sid=" + TOKEN)
    assert restore().default_headers == llm.default_headers


def test_secret_header_values_are_redacted_from_error_text() -> None:
    client = BytezClient(KEY, base_url=HTTPS, default_headers={"X-Api-Key": TOKEN})
    assert client._redact(f"bad key {TOKEN} and {KEY}") == "bad key *** and ***"


# ----------------------------------------------------------------------- encoded echoes


def _echoes(secret: str) -> list[str]:
    return [
        secret,
        quote(secret, safe=""),
        quote(secret, safe="").lower(),
        quote_plus(secret),
        json.dumps(secret),
        json.dumps({"Authorization": f"Key {secret}"}),
        base64.b64encode(f"Key {secret}".encode()).decode(),
        base64.b64encode(f"user:{secret}".encode()).decode(),
        base64.urlsafe_b64encode(f"xx{secret}yy".encode()).decode(),
    ]


@pytest.mark.parametrize("secret", [KEY, 'k/e+y=w/ sl"ash\\' + "x" * 8])
def test_encoded_echoes_of_the_key_are_redacted(secret: str) -> None:
    client = BytezClient(secret, base_url=HTTPS)
    for echo in _echoes(secret):
        text = f"server said: {echo} (end)"
        redacted = client._redact(text)
        assert redacted != text, echo
        assert not client._reveals(redacted), echo
        assert redacted.startswith("server said: ")


@given(prefix=st.text(max_size=5), suffix=st.text(max_size=5))
def test_base64_echo_is_found_at_any_alignment(prefix: str, suffix: str) -> None:
    client = BytezClient(KEY, base_url=HTTPS)
    echo = base64.b64encode((prefix + KEY + suffix).encode()).decode()
    assert client._reveals(echo)


def test_ordinary_text_is_left_alone() -> None:
    client = BytezClient(KEY, base_url=HTTPS)
    text = "Model does not exist or has yet to be added to the Bytez catalog"
    assert client._redact(text) == text


# ----------------------------------------------------------------- the kept httpx cause


def test_the_kept_cause_carries_no_key_in_its_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        client = BytezClient(
            KEY,
            base_url=HTTPS,
            provider_key=TOKEN,
            default_headers={"X-Trace": "t1"},
            http_client=http,
            max_retries=0,
        )
        with pytest.raises(BytezConnectionError) as caught:
            client.run(MODEL, {"text": "x"})
    cause = caught.value.cause
    assert isinstance(cause, httpx.ConnectError)
    headers = cause.request.headers
    assert headers["authorization"] == "[redacted]"
    assert headers["provider-key"] == "[redacted]"
    assert headers["x-trace"] == "t1"  # the rest is kept for diagnosis
    assert KEY not in repr(list(headers.items()))
    assert TOKEN not in repr(list(headers.items()))


# ------------------------------------------------------------- plain http and loopback


@pytest.mark.parametrize(
    "base_url",
    [
        "http://example.com",
        "http://evil.localhost:8000",
        "http://127.0.0.1.evil.com",
        "http://localhost.evil.com",
    ],
)
def test_plain_http_to_another_host_warns_at_construction(base_url: str) -> None:
    with pytest.warns(UserWarning, match="plain http://") as caught:
        llm = BytezLLM(model=MODEL, api_key=KEY, base_url=base_url)
    assert caught[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the object's own client does not repeat it
        llm._sync_client()
    with pytest.warns(UserWarning, match="plain http://"):
        BytezClient(KEY, base_url=base_url)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://127.0.0.1:8000",
        "http://127.4.5.6",
        "http://[::1]:8000",
        "https://example.com",
    ],
)
def test_loopback_and_https_do_not_warn(base_url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BytezLLM(model=MODEL, api_key=KEY, base_url=base_url)._sync_client()
        BytezClient(KEY, base_url=base_url)
