"""The settings of calls without keyword arguments are kept, and follow the fields.

Resolving a call's settings (argument model, params merge, JSON and type checks) is
the largest share of this package's per-call cost; calls without keyword arguments
reuse them until a field they depend on changes (also inside ``params``).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.llms import BytezLLM
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez
from tests.unit_tests.test_callbacks_counts import fake_models


def _llm(**kwargs: Any) -> BytezLLM:
    return BytezLLM(model="org/model", api_key=FAKE_KEY, base_url=URL, **kwargs)


def test_calls_without_arguments_reuse_their_settings() -> None:
    llm = _llm(max_new_tokens=5, params={"repetition_penalty": 1.1})
    first = llm._call_settings(None, {})
    assert llm._call_settings(None, {}) is first
    assert llm._call_settings(["END"], {}) is llm._call_settings(["END"], {})
    assert llm._call_settings(["END"], {}).stops == ("END",)
    assert llm._call_settings(None, {}) is first  # per stop list, both kept
    # Calls with keyword arguments are resolved each time.
    assert llm._call_settings(None, {"temperature": 0.5}).params["temperature"] == 0.5


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda m: setattr(m, "temperature", 0.3), lambda s: s.params["temperature"] == 0.3),
        (lambda m: setattr(m, "max_new_tokens", 9), lambda s: s.max_new_tokens == 9),
        (lambda m: setattr(m, "model", "org/other"), lambda s: s.model == "org/other"),
        (lambda m: setattr(m, "stop", ["X"]), lambda s: s.stops == ("X",)),
        (lambda m: setattr(m, "streaming", True), lambda s: s.streaming),
        (lambda m: m.params.update(top_k=3), lambda s: s.params["top_k"] == 3),
        (lambda m: m.params["nested"].append(2), lambda s: s.params["nested"] == [1, 2]),
    ],
    ids=["temperature", "max_new_tokens", "model", "stop", "streaming", "params", "nested"],
)
def test_a_changed_field_is_seen_by_the_next_call(change: Any, check: Any) -> None:
    llm = _llm(max_new_tokens=5, params={"nested": [1]})
    before = llm._call_settings(None, {})
    change(llm)
    after = llm._call_settings(None, {})
    assert after is not before
    assert check(after)
    assert llm._identifying_params["params"] == after.params


@pytest.mark.parametrize("stop", [[["nested"]], [5], "ab"])
def test_malformed_stop_lists_are_refused_as_before(stop: Any) -> None:
    llm = _llm()
    for _ in range(2):
        with pytest.raises(ValueError, match="stop"):
            llm._call_settings(stop, {})


def test_invalid_params_still_fail_and_identity_still_works() -> None:
    llm = _llm()
    llm._call_settings(None, {})
    llm.params["temperature"] = "hot"  # refused at the call, not cached as valid
    with pytest.raises(ValueError, match="temperature"):
        llm._call_settings(None, {})
    assert llm._identifying_params["params"] == {"temperature": "hot"}


def test_memo_is_not_copied_pickled_or_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEZ_API_KEY", FAKE_KEY)
    llm = _llm(max_new_tokens=5)
    filled = llm._call_settings(None, {})
    assert llm == _llm(max_new_tokens=5)  # a filled memo does not make them unequal
    for other in (copy.copy(llm), copy.deepcopy(llm), pickle.loads(pickle.dumps(llm))):
        settings = other._call_settings(None, {})
        assert settings is not filled
        assert settings == filled


@pytest.fixture
def fake_chat() -> Iterator[tuple[ChatBytez, FakeBytez]]:
    fake = FakeBytez()
    fake.output = [{"role": "assistant", "content": "ok"}]
    for factory in fake_models(fake):
        yield factory(ChatBytez), fake


def test_sent_params_follow_a_field_changed_between_calls(
    fake_chat: tuple[ChatBytez, FakeBytez],
) -> None:
    chat, fake = fake_chat
    chat.invoke("Hi")
    assert fake.requests[-1]["params"] == {}
    chat.temperature = 0.7
    chat.invoke("Hi")
    assert fake.requests[-1]["params"] == {"temperature": 0.7}
