"""The per-call shortcuts of the overhead work: each gives what the long way gives.

* ``ResponseMeta.from_headers`` reads an ``httpx.Headers`` in one pass: the result must
  be the one httpx's own ``get`` gives for every header shape.
* ``_client_key`` keeps the last key while its inputs hold: any change of a field, of
  the ``default_headers`` dict in place, or of the environment's keys gives a new key
  (and a new client).
* ``BodyReader`` keeps a body sent as is without copying it: the size limit and the
  deadline are still checked for every chunk.
* ``check_request`` encodes a run's body once: the client sends those bytes.
* The implicit auto-load reads its skip and its remembered status under one lock:
  both still expire.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Mapping
from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr

from langchain_bytez import protocol
from langchain_bytez.base import API_KEY_ENV, PROVIDER_KEY_ENV
from langchain_bytez.call_settings import check_request
from langchain_bytez.errors import (
    BytezNotFoundError,
    BytezResponseTooLargeError,
    BytezTimeoutError,
    MissingAPIKeyError,
)
from langchain_bytez.protocol import build_run_body, encode_json
from langchain_bytez.types import ResponseMeta
from langchain_bytez.wire import endpoints
from langchain_bytez.wire.deadline import BodyReader, Deadline
from tests.unit_tests.fake_bytez import FakeBytez
from tests.unit_tests.test_base_unit import make
from tests.unit_tests.test_manager_unit import MODEL as MANAGER_MODEL
from tests.unit_tests.test_manager_unit import Client as ManagerClient
from tests.unit_tests.test_manager_unit import fresh_manager, new_backend


class _ViaGet:
    """Answers ``get`` exactly as ``httpx.Headers.get`` does, as a plain mapping would."""

    def __init__(self, headers: httpx.Headers) -> None:
        self.get = headers.get


HEADER_CASES: list[list[tuple[bytes, bytes]]] = [
    [],
    [(b"content-type", b"application/json")],
    [
        (b"Ratelimit-Limit", b"100"),
        (b"RATELIMIT-REMAINING", b" 99 "),
        (b"ratelimit-reset", b"12.5"),
        (b"Inference-Meter", b"sm-gpu"),
        (b"inference-meter-price", b"0.0006478333 / sec"),
        (b"inference-time", b"0.25"),
        (b"inference-cost", b"0.00016"),
    ],
    # repeated headers read as their values joined with ", " (as get() returns them)
    [(b"inference-meter", b"a"), (b"x-other", b"1"), (b"inference-meter", b"b")],
    [(b"ratelimit-limit", b"10"), (b"ratelimit-limit", b"20")],
    # malformed, infinite and empty values become None
    [
        (b"ratelimit-limit", b"lots"),
        (b"ratelimit-reset", b"inf"),
        (b"inference-time", b"nan"),
        (b"inference-cost", b""),
        (b"inference-meter-price", b"free"),
    ],
    [(b"inference-meter-price", b"2"), (b"ratelimit-remaining", b"1e3")],
    # a value that is not UTF-8: httpx decodes every header with one detected encoding
    [(b"inference-meter", b"caf\xe9"), (b"inference-time", b"1")],
    [(b"inference-meter", "gpu-é".encode()), (b"ratelimit-limit", b"5")],
]


@pytest.mark.parametrize("raw", HEADER_CASES)
def test_response_meta_reads_httpx_headers_as_their_get_does(
    raw: list[tuple[bytes, bytes]],
) -> None:
    headers = httpx.Headers(raw)
    fast = ResponseMeta.from_headers(headers, 200)
    slow = ResponseMeta.from_headers(cast(Mapping[str, str], _ViaGet(headers)), 200)
    assert fast == slow
    assert fast.status_code == 200


def test_response_meta_values_of_a_full_set() -> None:
    meta = ResponseMeta.from_headers(httpx.Headers(HEADER_CASES[2]), 201)
    assert meta == ResponseMeta(
        status_code=201,
        ratelimit_limit=100,
        ratelimit_remaining=99,
        ratelimit_reset=12.5,
        inference_meter="sm-gpu",
        inference_meter_price=0.0006478333,
        inference_time=0.25,
        inference_cost=0.00016,
        inference_meter_price_unit="sec",
    )
    joined = ResponseMeta.from_headers(httpx.Headers(HEADER_CASES[3]))
    assert joined.inference_meter == "a, b"
    assert ResponseMeta.from_headers({"inference-meter": "m"}).inference_meter == "m"


# ----------------------------------------------------------------------- client key


def test_an_unchanged_configuration_reuses_its_key() -> None:
    llm = make()
    first = llm._client_key()
    assert llm._client_key() is first  # kept, not rebuilt
    assert llm._sync_client() is llm._sync_client()


CHANGES: list[tuple[str, Any]] = [
    ("base_url", "http://127.0.0.1:10"),
    ("api_key", SecretStr("bytez-test-key-other")),
    ("provider_key", SecretStr("provider-key")),
    ("timeout", 7.0),
    ("max_retries", 5),
    ("max_retry_wait", 3.0),
    ("default_headers", {"X-Team": "a"}),
    ("max_concurrent_requests", 3),
    ("max_response_bytes", 1234),
    ("stream_idle_timeout", 9.0),
    ("async_transport", "httpx"),
]


@pytest.mark.parametrize(("name", "value"), CHANGES)
def test_a_changed_field_gives_a_new_key_and_client(name: str, value: Any) -> None:
    llm = make()
    key, client = llm._client_key(), llm._sync_client()
    setattr(llm, name, value)
    assert llm._client_key() != key
    assert llm._client_key() == llm._new_client_key()
    if name != "async_transport":  # the sync client does not use the async transport
        assert llm._sync_client() is not client
        assert llm._sync_client()._max_response_bytes == llm.max_response_bytes


def test_headers_changed_in_place_give_a_new_key() -> None:
    llm = make(default_headers={"X-Team": "a"})
    key, client = llm._client_key(), llm._sync_client()
    assert llm.default_headers is not None
    llm.default_headers["X-Team"] = "b"
    assert llm._client_key() != key
    assert dict(llm._client_key()[5]) == {"X-Team": "b"}
    assert llm._sync_client() is not client
    llm.default_headers["X-Extra"] = "c"
    assert dict(llm._client_key()[5]) == {"X-Team": "b", "X-Extra": "c"}


def test_keys_from_the_environment_are_read_at_each_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "bytez-test-key-env-1")
    monkeypatch.delenv(PROVIDER_KEY_ENV, raising=False)
    llm = make(api_key=None)
    first = llm._client_key()
    monkeypatch.setenv(API_KEY_ENV, "bytez-test-key-env-2")
    second = llm._client_key()
    assert second[1] != first[1]
    monkeypatch.setenv(PROVIDER_KEY_ENV, "provider-env")
    assert llm._client_key()[6] != second[6]
    monkeypatch.delenv(API_KEY_ENV)
    with pytest.raises(MissingAPIKeyError):
        llm._client_key()
    with pytest.raises(MissingAPIKeyError):  # a failure is never kept as a key
        llm._client_key()


def test_a_copy_with_an_update_has_its_own_key() -> None:
    llm = make()
    key = llm._client_key()
    copied = llm.model_copy(update={"timeout": 3.0})
    assert copied._client_key() != key
    assert llm._client_key() is key


def test_the_key_memo_is_not_in_the_repr_of_the_runtime_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "bytez-test-key-secret-env")
    llm = make(api_key=None)
    llm._client_key()
    assert "bytez-test-key-secret-env" not in repr(llm._runtime)


def test_the_session_forgets_a_model_only_on_a_not_loaded_error() -> None:
    llm = make(auto_load=False)
    client = llm._sync_client()
    manager = llm._manager(client)
    forgotten: list[str] = []
    manager.forget = forgotten.append  # type: ignore[method-assign]
    try:
        with pytest.raises(BytezNotFoundError), llm._model_session(client, "org/model"):
            raise BytezNotFoundError("gone", status_code=404)
        assert forgotten == ["org/model"]
        with pytest.raises(KeyError), llm._model_session(client, "org/model"):
            raise KeyError("not a Bytez error")
        with llm._model_session(client, "org/model"):
            pass
        assert forgotten == ["org/model"]
    finally:
        del manager.forget


# ----------------------------------------------------------------------- body reader

MIB = 1024 * 1024


def test_a_body_of_one_chunk_is_handed_on_without_a_copy() -> None:
    reader = BodyReader(MIB, "", "m/x")
    deadline = Deadline(httpx.Timeout(5.0))
    chunk = b'{"output": "hi", "error": null}'
    reader.take(chunk, deadline)
    reader.take(None, deadline)
    assert reader.content() is chunk
    assert reader.received == len(chunk)


def test_a_body_of_many_chunks_is_joined_in_order() -> None:
    reader = BodyReader(MIB, "identity", "m/x")
    deadline = Deadline(httpx.Timeout(5.0))
    for chunk in (b"ab", b"", b"cd", b"ef"):
        reader.take(chunk, deadline)
    reader.take(None, deadline)
    assert reader.content() == b"abcdef"
    assert reader.received == 6


def test_the_plain_path_counts_every_chunk_against_the_limit() -> None:
    reader = BodyReader(10, "", "m/x")
    deadline = Deadline(httpx.Timeout(5.0))
    reader.take(b"123456", deadline)
    with pytest.raises(BytezResponseTooLargeError) as info:
        reader.take(b"78901", deadline)
    assert info.value.received == 11
    assert info.value.limit == 10


def test_the_plain_path_checks_the_deadline_after_each_chunk() -> None:
    reader = BodyReader(MIB, "", "m/x")
    late = Deadline(httpx.Timeout(1.0), clock=time.monotonic() - 2)
    with pytest.raises(BytezTimeoutError):
        reader.take(b"abc", late)
    with pytest.raises(BytezTimeoutError):
        reader.take(None, late)


def test_a_compressed_body_still_goes_through_the_decoder() -> None:
    data = b'{"output": "' + b"x" * 5000 + b'"}'
    packed = gzip.compress(data)
    reader = BodyReader(MIB, "gzip", "m/x")
    deadline = Deadline(httpx.Timeout(5.0))
    reader.take(packed[:50], deadline)
    reader.take(packed[50:], deadline)
    reader.take(None, deadline)
    assert reader.content() == data
    small = BodyReader(100, "gzip", "m/x")
    with pytest.raises(BytezResponseTooLargeError):
        small.take(packed, deadline)


# ----------------------------------------------------------------------- encoded once


def test_the_checked_body_is_the_one_sent() -> None:
    payload: dict[str, Any] = {"text": "hi", "params": {"max_new_tokens": 5, "top_k": None}}
    checked = check_request("org/model", payload, stream=False)
    assert checked.content == encode_json(build_run_body(payload, stream=False))
    assert dict(checked) == {"text": "hi", "params": {"max_new_tokens": 5}}
    call = endpoints.run("org/model", checked)
    assert call.content is checked.content  # not encoded again
    streamed = check_request("org/model", payload, stream=True)
    assert streamed.content == encode_json(build_run_body(payload, stream=True))
    assert "stream" not in streamed
    assert endpoints.stream_body("org/model", streamed)[1] is streamed.content


def test_a_body_encoded_for_the_other_mode_is_encoded_again() -> None:
    payload = {"text": "hi"}
    streamed = check_request("org/model", payload, stream=True)
    assert endpoints.run("org/model", streamed).content == b'{"text":"hi"}'
    plain = check_request("org/model", payload, stream=False)
    assert endpoints.stream_body("org/model", plain)[1] == b'{"text":"hi","stream":true}'


def test_an_encoded_payload_cannot_drift_from_its_content() -> None:
    payload: dict[str, Any] = {"text": "before"}
    checked = check_request("org/model", payload, stream=False)
    payload["text"] = "after"  # the caller's dict: not the one that was checked
    assert checked["text"] == "before"
    assert checked.content == b'{"text":"before"}'
    with pytest.raises(TypeError):
        checked["text"] = "changed"  # type: ignore[index]


def test_a_refused_payload_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="unknown top-level key"):
        check_request("org/model", {"text": "x", "prompt": "y"}, stream=False)
    with pytest.raises(ValueError, match="cannot be encoded"):
        check_request("org/model", {"text": "\ud800"}, stream=True)


def test_one_invoke_encodes_its_body_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBytez()
    http, ahttp = fake.clients()
    llm = make(auto_load=False, max_new_tokens=5, http_client=http)  # the fake's URL and key
    encoded: list[Any] = []
    real = protocol.encode_json

    def counting(body: Any) -> bytes:
        encoded.append(body)
        return real(body)

    monkeypatch.setattr(protocol, "encode_json", counting)
    try:
        llm.invoke("Hello")
        assert encoded == [{"text": "Hello", "params": {"max_new_tokens": 5}}]
        assert fake.requests == encoded
    finally:
        http.close()


# ----------------------------------------------------------------------- implicit auto-load


def test_the_implicit_check_uses_the_remembered_status_until_it_expires() -> None:
    client = ManagerClient(new_backend())
    mgr = fresh_manager(running_ttl=0.05)
    first = mgr.ensure_available(client, MANAGER_MODEL)  # type: ignore[arg-type]
    assert first is not None
    calls = len(client.backend.calls)
    assert mgr.ensure_available(client, MANAGER_MODEL) is first  # type: ignore[arg-type]
    assert len(client.backend.calls) == calls  # remembered: no request
    time.sleep(0.08)
    assert mgr.ensure_available(client, MANAGER_MODEL) is not None  # type: ignore[arg-type]
    assert client.backend.calls[calls:] == [("GET", MANAGER_MODEL)]  # expired: asked again
    mgr.forget(MANAGER_MODEL)
    mgr.ensure_available(client, MANAGER_MODEL)  # type: ignore[arg-type]
    assert client.backend.calls[calls + 1 :] == [("GET", MANAGER_MODEL)]


def test_a_skipped_implicit_load_is_tried_again_once_the_skip_ends() -> None:
    client = ManagerClient(new_backend())
    mgr = fresh_manager()
    mgr._skip_implicit(MANAGER_MODEL, 300.0)
    assert mgr.ensure_available(client, MANAGER_MODEL) is None  # type: ignore[arg-type]
    assert client.backend.calls == []  # skipped: the run is sent as it is
    mgr._implicit_skip[MANAGER_MODEL] = time.monotonic() - 1.0  # the skip has ended
    assert mgr.ensure_available(client, MANAGER_MODEL) is not None  # type: ignore[arg-type]
    assert client.backend.calls[0] == ("GET", MANAGER_MODEL)
    assert MANAGER_MODEL not in mgr._implicit_skip
