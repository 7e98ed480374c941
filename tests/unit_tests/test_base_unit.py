"""Unit tests of ``langchain_bytez.base``: shared fields, client factory, copies, model prep."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import pickle
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from langchain_bytez.base import BytezModelMixin, _means_not_loaded
from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.embeddings import BytezEmbeddings
from langchain_bytez.errors import (
    BytezAPIError,
    BytezInvalidRequestError,
    BytezNotFoundError,
    MissingAPIKeyError,
)
from langchain_bytez.llms import BytezLLM
from langchain_bytez.registry import ClientPool

FAKE_KEY = "sk-FAKE-KEY-0123456789"
URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BYTEZ_API_KEY", "BYTEZ_BASE_URL", "BYTEZ_PROVIDER_KEY"):
        monkeypatch.delenv(name, raising=False)


def make(**kwargs: Any) -> BytezLLM:
    kwargs.setdefault("model", "org/model")
    kwargs.setdefault("api_key", FAKE_KEY)
    kwargs.setdefault("base_url", URL)
    return BytezLLM(**kwargs)


# ----------------------------------------------------------------------- construction


def test_unknown_argument_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(ValidationError) as info:
        make(temprature=0.5)
    message = str(info.value)
    assert "temprature" in message
    assert "'temperature'" in message


@pytest.mark.parametrize(
    ("typo", "expected"),
    [("model_idd", "model_id"), ("max_token", "max_tokens"), ("api_kye", "api_key")],
)
def test_typos_of_aliases_and_fields_suggest_them(typo: str, expected: str) -> None:
    with pytest.raises(ValueError, match=f"did you mean '{expected}'"):
        make(**{typo: 1})


def test_unrelated_unknown_argument_points_at_params() -> None:
    with pytest.raises(ValueError, match=r"params=\{\.\.\.\}") as info:
        make(repetition_penalty=1.2)
    assert "did you mean" not in str(info.value)


def test_aliases_and_field_names_are_both_accepted() -> None:
    by_alias = BytezLLM(
        model_id="org/m", api_key=FAKE_KEY, max_tokens=7, model_kwargs={"do_sample": True}
    )
    by_name = BytezLLM(
        model="org/m", api_key=FAKE_KEY, max_new_tokens=7, params={"do_sample": True}
    )
    for llm in (by_alias, by_name):
        assert llm.model == "org/m"
        assert llm.max_new_tokens == 7
        assert llm.params == {"do_sample": True}


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        make(concurrency=0)
    with pytest.raises(ValidationError):
        make(instance_timeout=10)  # below one minute: Bytez counts whole minutes
    with pytest.raises(ValidationError):
        make(max_retries=-1)
    with pytest.raises(ValidationError):
        make(max_new_tokens="10")  # strict: no silent str -> int


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEZ_API_KEY", FAKE_KEY)
    monkeypatch.setenv("BYTEZ_BASE_URL", "http://127.0.0.1:1234")
    monkeypatch.setenv("BYTEZ_PROVIDER_KEY", "provider-secret-123")
    llm = BytezLLM(model="org/m")
    assert isinstance(llm.api_key, SecretStr)
    assert llm.api_key.get_secret_value() == FAKE_KEY
    assert llm.base_url == "http://127.0.0.1:1234"
    assert llm.provider_key is not None
    assert llm.provider_key.get_secret_value() == "provider-secret-123"


def test_missing_key_fails_at_first_request_not_at_construction() -> None:
    llm = BytezLLM(model="org/m")  # constructible (serialisation, config files)
    assert llm.api_key is None
    with pytest.raises(MissingAPIKeyError, match="BYTEZ_API_KEY"):
        llm._sync_client()
    with pytest.raises(MissingAPIKeyError, match="BYTEZ_API_KEY"):
        llm.invoke("hi")


def test_version_is_recorded_in_metadata() -> None:
    assert make().metadata is not None
    assert "langchain-bytez" in make().metadata["lc_versions"]  # type: ignore[index]


# ----------------------------------------------------------------------- client factory


def test_equal_configurations_share_one_pooled_client() -> None:
    first, second = make(), make(temperature=0.3)  # generation params do not matter
    assert first._sync_client() is second._sync_client()
    assert isinstance(first._sync_client(), BytezClient)


@pytest.mark.parametrize(
    "change",
    [
        {"api_key": "sk-OTHER-KEY-99999"},
        {"timeout": 5.0},
        {"max_retries": 0},
        {"default_headers": {"x-team": "a"}},
        {"provider_key": "provider-secret-123"},
        {"base_url": "http://127.0.0.1:10"},
    ],
)
def test_different_configurations_get_different_clients(change: dict[str, Any]) -> None:
    assert make()._sync_client() is not make(**change)._sync_client()


def test_client_key_holds_a_fingerprint_not_the_key() -> None:
    key = make()._client_key()
    assert FAKE_KEY not in repr(key)


def test_injected_http_client_is_used_and_never_shared() -> None:
    http = httpx.Client()
    try:
        first, second = make(http_client=http), make(http_client=http)
        client = first._sync_client()
        assert client is first._sync_client()  # cached on the instance
        assert client is not second._sync_client()
        assert client is not make()._sync_client()
        # A changed setting builds a new wrapper instead of using stale configuration.
        first.max_retries = 0
        assert first._sync_client() is not client
        assert client._client() is http
    finally:
        http.close()


def test_async_clients_are_per_event_loop() -> None:
    llm = make()

    async def twice() -> tuple[AsyncBytezClient, AsyncBytezClient]:
        return llm._async_client(), make()._async_client()

    a1, a2 = asyncio.run(twice())
    b1, _ = asyncio.run(twice())
    assert a1 is a2  # same loop, same configuration: shared
    assert a1 is not b1  # httpx async pools belong to their loop
    assert isinstance(a1, AsyncBytezClient)


# ----------------------------------------------------------------------- copies and pickles


def test_deepcopy_and_model_copy_share_injected_pools_and_rebuild_wrappers() -> None:
    http = httpx.Client()
    try:
        llm = make(http_client=http, temperature=0.2)
        original = llm._sync_client()
        _ = llm._serialized  # LangChain caches its dumpd(); copies must not reuse it
        for clone in (copy.deepcopy(llm), llm.model_copy(), llm.model_copy(deep=True)):
            assert clone.http_client is http
            assert clone._runtime.sync is None
            assert clone == llm
            assert clone._sync_client() is not original
        updated = llm.model_copy(update={"model": "org/other"})
        assert updated._serialized["kwargs"]["model"] == "org/other"
    finally:
        http.close()


def test_pickle_never_carries_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = make(provider_key="provider-secret-123", temperature=0.5, stop=["END"])
    _ = llm._sync_client()
    data = pickle.dumps(llm)
    assert FAKE_KEY.encode() not in data
    assert b"provider-secret-123" not in data

    monkeypatch.setenv("BYTEZ_API_KEY", "sk-ENV-KEY-42424242")
    restored = pickle.loads(data)  # noqa: S301 - our own bytes
    assert restored.api_key.get_secret_value() == "sk-ENV-KEY-42424242"
    assert (restored.model, restored.temperature, restored.stop) == ("org/model", 0.5, ["END"])
    assert isinstance(restored._sync_client(), BytezClient)

    monkeypatch.delenv("BYTEZ_API_KEY")
    keyless = pickle.loads(data)  # noqa: S301 - our own bytes
    with pytest.raises(MissingAPIKeyError, match="Pickles never carry the key"):
        keyless._sync_client()


def test_pickle_with_injected_http_client_is_refused_clearly() -> None:
    http = httpx.Client()
    try:
        with pytest.raises(TypeError, match="http_client"):
            pickle.dumps(make(http_client=http))
    finally:
        http.close()


def test_lc_secrets_and_serialisable() -> None:
    llm = make()
    assert llm.lc_secrets == {"api_key": "BYTEZ_API_KEY", "provider_key": "BYTEZ_PROVIDER_KEY"}
    assert BytezLLM.is_lc_serializable()
    assert BytezLLM.get_lc_namespace() == ["langchain_bytez", "llms"]
    assert ChatBytez.get_lc_namespace() == ["langchain_bytez", "chat_models"]
    assert BytezEmbeddings.get_lc_namespace() == ["langchain_bytez", "embeddings"]

    class MyLLM(BytezLLM):  # a user's subclass serialises under the class it extends
        pass

    assert MyLLM.get_lc_namespace() == ["langchain_bytez", "llms"]


# ----------------------------------------------------------------------- model preparation


def test_not_loaded_detection() -> None:
    assert _means_not_loaded(BytezNotFoundError("gone", status_code=404))
    assert _means_not_loaded(BytezAPIError("Model is not loaded", status_code=503))
    assert not _means_not_loaded(BytezAPIError("upstream timeout", status_code=504))
    assert not _means_not_loaded(BytezInvalidRequestError("bad", status_code=400))
    assert not _means_not_loaded(ValueError("x"))


class FakeManager:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def ensure_available(self, client: Any, model_id: str, **kwargs: Any) -> None:
        self.calls.append(("ensure_available", model_id, kwargs["concurrency"], kwargs["timeout"]))

    @contextlib.contextmanager
    def limit(self, model_id: str, concurrency: int) -> Iterator[None]:
        self.calls.append(("limit", model_id, concurrency))
        yield
        self.calls.append(("release", model_id))

    def forget(self, model_id: str) -> None:
        self.calls.append(("forget", model_id))


@pytest.fixture
def fake_manager(monkeypatch: pytest.MonkeyPatch) -> FakeManager:
    manager = FakeManager()
    monkeypatch.setattr(BytezModelMixin, "_manager", staticmethod(lambda client: manager))
    return manager


def test_session_loads_and_takes_no_per_model_slot(fake_manager: FakeManager) -> None:
    # The in-flight limit is the account's, taken by the client around each request:
    # the session only loads (concurrency is the size of a new cluster).
    llm = make(concurrency=3, instance_timeout=600)
    with llm._model_session(llm._sync_client(), "org/model"):
        assert fake_manager.calls == [("ensure_available", "org/model", 3, 600)]
    assert fake_manager.calls == [("ensure_available", "org/model", 3, 600)]


def test_session_without_auto_load_sends_nothing(fake_manager: FakeManager) -> None:
    llm = make(auto_load=False)
    with llm._model_session(llm._sync_client(), "org/model"):
        pass
    assert fake_manager.calls == []


def test_session_forgets_a_model_that_is_not_loaded(fake_manager: FakeManager) -> None:
    llm = make()
    with (
        pytest.raises(BytezNotFoundError),
        llm._model_session(llm._sync_client(), "org/model"),
    ):
        raise BytezNotFoundError("no cluster", status_code=404)
    assert ("forget", "org/model") in fake_manager.calls
    fake_manager.calls.clear()
    with (
        pytest.raises(BytezInvalidRequestError),
        llm._model_session(llm._sync_client(), "org/model"),
    ):
        raise BytezInvalidRequestError("bad input", status_code=400)
    assert ("forget", "org/model") not in fake_manager.calls


def test_registry_close_all_closes_pooled_clients() -> None:
    registry = ClientPool()
    closed: list[bool] = []

    class Closable:
        def close(self) -> None:
            closed.append(True)

    key = make()._client_key()
    registry.sync_client(key, Closable)  # type: ignore[arg-type]
    registry.close_all()
    assert closed == [True]


# ----------------------------------------------------------------------- generation params


def test_identifying_params_keep_a_string_stop_strings_whole() -> None:
    # params={"stop_strings": "END"} is one stop sequence; the stops shown to tracing and
    # LangChain's cache key must say the same, not ["E", "N", "D"]. They are never sent.
    llm = make(params={"stop_strings": "END"}, stop=["X"])
    call = llm._call_settings(None, {})
    assert call.stops == ("X", "END")
    assert "stop_strings" not in call.params
    assert "stop_strings" not in llm._default_params
    assert llm._identifying_params["stop"] == ["X", "END"]


def test_identifying_params_tolerate_a_malformed_stop_strings() -> None:
    # Tracing must not fail on it; the call itself refuses it clearly.
    llm = make(params={"stop_strings": 5})
    assert "stop" not in llm._identifying_params
    with pytest.raises(ValueError, match="stop_strings"):
        llm._call_settings(None, {})


def test_stop_strings_are_never_sent_and_temperature_zero_is_greedy() -> None:
    llm = make(params={"stop_strings": ["##"], "top_k": 5}, temperature=0.0, stop=["X"])
    call = llm._call_settings(["Y"], {})
    assert call.params == {"top_k": 5, "do_sample": False}
    assert call.stops == ("X", "##", "Y")
    # Per call too, whichever way the temperature arrives.
    assert llm._call_settings(None, {"temperature": 0.7}).params == {
        "top_k": 5,
        "temperature": 0.7,
    }
    assert make()._call_settings(None, {"params": {"temperature": 0}}).params == {
        "do_sample": False
    }
    assert make()._call_settings(None, {}).params == {}  # nothing the user did not set


def test_call_argument_names_are_cached_per_class() -> None:
    from langchain_bytez.generation import CallArguments

    class WithOption(CallArguments):
        special: int | None = None

    assert "max_tokens" in CallArguments.names()
    assert "special" not in CallArguments.names()
    assert {"special", "max_tokens", "model_kwargs"} <= WithOption.names()
    assert "special" not in CallArguments.names()


@pytest.mark.parametrize(
    "class_path", ["chat_models.ChatBytez", "llms.BytezLLM", "embeddings.BytezEmbeddings"]
)
def test_langchain_classes_inherit_the_mixins_pydantic_settings(class_path: str) -> None:
    # The classes do not restate the mixin's model_config: a LangChain base that set one
    # of these keys otherwise would silently win, so check the merged result.
    import importlib

    module, name = class_path.split(".")
    cls = getattr(importlib.import_module(f"langchain_bytez.{module}"), name)
    config = cls.model_config
    assert config["populate_by_name"] is True
    assert config["arbitrary_types_allowed"] is True
    assert config["protected_namespaces"] == ()
    by_alias = cls(model_id="org/model", api_key="k")
    by_name = cls(model="org/model", api_key="k")
    assert by_alias.model == by_name.model == "org/model"
