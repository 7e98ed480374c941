"""Unit tests of ``BytezLLM`` over ``httpx.MockTransport`` (no server, no network)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.load import dumpd, dumps, loads
from langchain_core.outputs import GenerationChunk

from langchain_bytez.errors import BytezAPIError, BytezStreamError, MissingAPIKeyError
from langchain_bytez.llms import BytezLLM
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez

MODEL = "org/model"


@pytest.fixture
def fake() -> FakeBytez:
    return FakeBytez()


@pytest.fixture
def make(fake: FakeBytez) -> Iterator[Any]:
    clients: list[Any] = []

    def factory(**kwargs: Any) -> BytezLLM:
        http, ahttp = fake.clients()
        clients.extend([http, ahttp])
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("api_key", FAKE_KEY)
        kwargs.setdefault("base_url", URL)
        kwargs.setdefault("auto_load", False)  # the manager has its own tests
        return BytezLLM(http_client=http, http_async_client=ahttp, **kwargs)

    yield factory
    for client in clients:
        if isinstance(client, httpx.Client):
            client.close()


class Recorder(BaseCallbackHandler):
    def __init__(self, log: list[Any] | None = None) -> None:
        self.log: list[Any] = [] if log is None else log
        self.tokens: list[str] = []
        self.starts: list[dict[str, Any]] = []
        self.retries = 0

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self.starts.append({"serialized": serialized, **kwargs})

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)
        self.log.append(("token", token))

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self.retries += 1


class AsyncRecorder(AsyncCallbackHandler):
    def __init__(self, log: list[Any]) -> None:
        self.log = log
        self.retries = 0

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.log.append(("token", token))

    async def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.retries += 1


# ----------------------------------------------------------------------- request body


def test_body_shape_params_and_stop_strings(make: Any, fake: FakeBytez) -> None:
    llm = make(
        params={"do_sample": True, "temperature": 0.1, "stop_strings": ["##"]},
        temperature=0.7,
        top_k=None,
        stop=["\n"],
    )
    llm.invoke("Hi", stop=["\n", "END"])
    assert fake.requests[-1] == {
        "text": "Hi",
        "params": {"do_sample": True, "temperature": 0.7},
    }  # stop sequences are enforced client-side, never sent
    assert fake.paths[-1] == f"/models/v2/{MODEL}"


def test_per_call_kwargs_override_for_that_call_only(make: Any, fake: FakeBytez) -> None:
    llm = make(max_new_tokens=5, temperature=0.5, params={"top_p": 0.9})
    llm.invoke("Hi", max_tokens=9, temperature=0.0, params={"top_p": 0.5}, repetition_penalty=1.1)
    assert fake.requests[-1]["params"] == {
        "max_new_tokens": 9,
        "do_sample": False,  # temperature 0 is greedy decoding, sent without a temperature
        "top_p": 0.5,
        "repetition_penalty": 1.1,
    }
    llm.invoke("Hi")
    assert fake.requests[-1]["params"] == {"max_new_tokens": 5, "temperature": 0.5, "top_p": 0.9}


def test_per_call_model_override(make: Any, fake: FakeBytez) -> None:
    result = make().generate(["Hi"], model="other/model")
    assert fake.paths[-1] == "/models/v2/other/model"
    assert result.llm_output == {"model_name": "other/model"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_new_tokens": "10"}, "max_new_tokens"),
        ({"max_tokens": 0}, "max_tokens=0"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"temprature": 0.2}, "did you mean 'temperature'"),
        ({"api_key": "sk-other"}, "cannot be changed per call"),
        ({"params": {"x": object()}}, "JSON"),
        ({"seed": object()}, "JSON"),
    ],
)
def test_bad_per_call_kwargs_fail_before_sending(
    make: Any, fake: FakeBytez, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        make().invoke("Hi", **kwargs)
    assert fake.requests == []


# ----------------------------------------------------------------------- results


def test_prompt_is_stripped_exactly_and_full_text_is_optional(make: Any, fake: FakeBytez) -> None:
    assert make().invoke("Hi") == " world"
    assert make(return_full_text=True).invoke("Hi") == "Hi world"
    assert make().invoke("Hi", return_full_text=True) == "Hi world"


def test_output_without_echo_is_kept_whole(make: Any, fake: FakeBytez) -> None:
    fake.output = "Something else entirely"
    assert make().invoke("Hi") == "Something else entirely"


@pytest.mark.parametrize("prompt", ["Hi\t", " Hi", "Hi\n\n", "  Hi \n"])
def test_echo_with_normalised_whitespace_is_stripped(
    make: Any, fake: FakeBytez, prompt: str
) -> None:
    # A server that trims the prompt it echoes must not leak it into the continuation.
    fake.output = "Hi world"
    assert make().invoke(prompt) == " world"
    assert make().invoke(prompt, return_full_text=True) == prompt + " world"


def test_echo_is_stripped_exactly_when_it_is_exact(make: Any, fake: FakeBytez) -> None:
    fake.output = "Hi  world"  # exact echo of "Hi ": the continuation keeps its own space
    assert make().invoke("Hi ") == " world"
    fake.output = "Hi"
    assert make().invoke("Hi") == ""


def test_legacy_output_shape(make: Any, fake: FakeBytez) -> None:
    fake.output = [{"generated_text": "Hi there"}]
    assert make().invoke("Hi") == " there"


def test_unexpected_output_is_a_clear_error(make: Any, fake: FakeBytez) -> None:
    fake.output = {"embedding": [1, 2]}
    with pytest.raises(BytezAPIError, match="text-generation") as caught:
        make().invoke("Hi")
    assert caught.value.is_retryable is False  # a wrong model type: asking again cannot help
    assert len(fake.requests) == 1


def test_stop_cuts_the_continuation_not_the_prompt(make: Any, fake: FakeBytez) -> None:
    fake.output = "a. b. c. d"
    result = make().generate(["a."], stop=[". c"])
    generation = result.generations[0][0]
    assert generation.text == " b"
    assert generation.generation_info is not None
    assert generation.generation_info["finish_reason"] == "stop"


def test_generation_info_and_llm_output(make: Any, fake: FakeBytez) -> None:
    result = make().generate(["Hi"])
    info = result.generations[0][0].generation_info
    assert info == {
        "status_code": 200,
        "ratelimit_limit": 100,
        "ratelimit_remaining": 99,
        "ratelimit_reset": 30.0,
        "inference_meter": "sm-gpu",
        "inference_meter_price": 0.0001,
        "inference_time": 0.5,
        "inference_cost": 0.00005,
        "model_name": MODEL,
        "finish_reason": None,
    }
    assert result.llm_output == {"model_name": MODEL}


def _later_prompts_answer_sooner(body: dict[str, Any]) -> float:
    # p0 waits longest, p7 least: answers complete in reverse order of the prompts.
    return 0.05 + 0.03 * (7 - int(body["text"][1:]))


def _echo_and_tag(body: dict[str, Any]) -> str:
    return f"{body['text']} -> {body['text']}!"


def test_generate_runs_prompts_concurrently_in_order(make: Any, fake: FakeBytez) -> None:
    fake.delay = _later_prompts_answer_sooner
    fake.output = _echo_and_tag
    llm = make(concurrency=8)
    prompts = [f"p{i}" for i in range(8)]
    started = time.perf_counter()
    result = llm.generate(prompts)
    elapsed = time.perf_counter() - started
    # Each generation belongs to its own prompt, in prompt order, though the answers
    # arrived in the reverse order.
    assert [g[0].text for g in result.generations] == [f" -> {p}!" for p in prompts]
    assert sorted(r["text"] for r in fake.requests) == sorted(prompts)
    assert fake.peak_in_flight > 1  # concurrent, not one after the other
    # Sequential runs take at least the sum of the waits (1.24 s); a bound that no
    # scheduling noise can break, as it only makes calls slower.
    assert elapsed < sum(_later_prompts_answer_sooner({"text": p}) for p in prompts)


async def test_agenerate_runs_prompts_concurrently_in_order(make: Any, fake: FakeBytez) -> None:
    fake.delay = _later_prompts_answer_sooner
    fake.output = _echo_and_tag
    llm = make(concurrency=8)
    prompts = [f"p{i}" for i in range(8)]
    started = time.perf_counter()
    result = await llm.agenerate(prompts)
    elapsed = time.perf_counter() - started
    assert [g[0].text for g in result.generations] == [f" -> {p}!" for p in prompts]
    assert fake.peak_in_flight > 1
    assert elapsed < sum(_later_prompts_answer_sooner({"text": p}) for p in prompts)


# ----------------------------------------------------------------------- streaming


def test_stream_tokens_reach_callbacks_before_the_consumer(make: Any, fake: FakeBytez) -> None:
    log: list[Any] = []
    recorder = Recorder(log)
    fake.chunks = [b" caf", b"\xc3", b"\xa9", b" \xf0\x9f\x9a", b"\x80 end"]
    pieces = []
    for piece in make().stream("Hi", config={"callbacks": [recorder]}):
        log.append(("yield", piece))
        pieces.append(piece)
    assert "".join(pieces) == " café 🚀 end"
    assert "".join(recorder.tokens) == "".join(pieces)
    # Every token is reported before it is yielded; the empty closing chunk (metadata
    # only) is yielded as "" with no token callback.
    assert pieces[-1] == ""
    assert len(recorder.tokens) == len(pieces) - 1
    for index, entry in enumerate(log):
        if entry[0] == "yield" and entry[1]:
            assert log[index - 1] == ("token", entry[1])


def test_only_the_final_chunk_carries_metadata(make: Any, fake: FakeBytez) -> None:
    chunks = list(make(max_new_tokens=2)._stream("Hi"))
    assert all(isinstance(c, GenerationChunk) for c in chunks)
    assert [c.generation_info for c in chunks[:-1]] == [None, None]
    final = chunks[-1]
    assert final.text == ""
    assert final.generation_info is not None
    assert final.generation_info["inference_cost"] == 0.00005
    assert final.generation_info["model_name"] == MODEL
    assert final.generation_info["finish_reason"] == "length"  # 2 pieces of a 2-token budget


def test_stop_split_across_chunks_closes_the_stream(make: Any, fake: FakeBytez) -> None:
    fake.chunks = [b" one", b" tw", b"o EN", b"D three", b" four", b" five"]
    llm = make()
    pieces = list(llm.stream("Hi", stop=["END"]))
    assert "".join(pieces) == " one two "
    assert not any("three" in p or "D" in p for p in pieces)
    assert fake.pulled == 4  # the response was closed right after the stop
    assert "stop_strings" not in fake.requests[-1].get("params", {})


def test_stream_ending_on_a_held_stop_is_still_cut(make: Any, fake: FakeBytez) -> None:
    # "X\n" is held back at the end (it could have grown into the longer stop "X\nX");
    # when the body ends there, the short stop "\n" applies: it is never emitted.
    fake.chunks = [b" one X", b"\n"]
    chunks = list(make()._stream("Hi", stop=["\n", "X\nX"]))
    assert "".join(c.text for c in chunks) == " one X"
    assert not any("\n" in c.text for c in chunks)
    assert chunks[-1].generation_info is not None
    assert chunks[-1].generation_info["finish_reason"] == "stop"


async def test_astream_ending_on_a_held_stop_is_still_cut(make: Any, fake: FakeBytez) -> None:
    fake.chunks = [b" one X", b"\n"]
    pieces = [p async for p in make().astream("Hi", stop=["\n", "X\nX"])]
    assert "".join(pieces) == " one X"


async def test_astream_stop_split_across_chunks(make: Any, fake: FakeBytez) -> None:
    fake.chunks = [b" one", b" tw", b"o EN", b"D three", b" four", b" five"]
    log: list[Any] = []
    pieces = []
    async for piece in make().astream(
        "Hi", stop=["END"], config={"callbacks": [AsyncRecorder(log)]}
    ):
        log.append(("yield", piece))
        pieces.append(piece)
    assert "".join(pieces) == " one two "
    assert fake.pulled == 4
    for index, entry in enumerate(log):
        if entry[0] == "yield" and entry[1]:  # the closing "" has no token callback
            assert log[index - 1] == ("token", entry[1])


def test_empty_stream_is_an_error(make: Any, fake: FakeBytez) -> None:
    fake.chunks = []
    with pytest.raises(BytezStreamError, match="without any text"):
        list(make().stream("Hi"))


async def test_empty_async_stream_is_an_error(make: Any, fake: FakeBytez) -> None:
    fake.chunks = []
    with pytest.raises(BytezStreamError):
        async for _ in make().astream("Hi"):
            pass


class _RaisingTokenHandler(BaseCallbackHandler):
    raise_error = True

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        raise RuntimeError("handler failed")


def test_a_raising_callback_does_not_keep_the_stream_slot(make: Any, fake: FakeBytez) -> None:
    # The error (and its traceback, holding the stream's frames) is kept alive on
    # purpose: the response and the concurrency=1 slot must be freed anyway.
    llm = make(concurrency=1)
    kept: list[BaseException] = []
    for call in (
        lambda: list(llm.stream("Hi", config={"callbacks": [_RaisingTokenHandler()]})),
        lambda: llm.invoke("Hi", streaming=True, config={"callbacks": [_RaisingTokenHandler()]}),
    ):
        with pytest.raises(RuntimeError, match="handler failed") as caught:
            call()
        kept.append(caught.value)
        done = threading.Event()
        threading.Thread(target=lambda: (llm.invoke("Hi"), done.set()), daemon=True).start()
        assert done.wait(5), "the in-flight slot of the failed stream was never released"
    assert len(kept) == 2


def test_stream_that_stops_immediately_is_not_an_error(make: Any, fake: FakeBytez) -> None:
    fake.chunks = [b"END of it"]
    assert list(make().stream("Hi", stop=["END"])) == [""]


def test_streaming_flag_uses_the_stream_route_and_reports_tokens(
    make: Any, fake: FakeBytez
) -> None:
    recorder = Recorder()
    result = make(streaming=True).generate(["Hi"], callbacks=[recorder])
    assert fake.requests[-1]["stream"] is True
    assert result.generations[0][0].text == " hello world"
    assert recorder.tokens == [" hello", " world"]  # none for the closing chunk
    assert result.generations[0][0].generation_info["model_name"] == MODEL  # type: ignore[index]


def test_streamed_full_text_starts_with_the_prompt(make: Any, fake: FakeBytez) -> None:
    assert "".join(make(return_full_text=True).stream("Hi")) == "Hi hello world"
    assert make(return_full_text=True, streaming=True).invoke("Hi") == "Hi hello world"


# ----------------------------------------------------------------------- retries


def test_on_retry_callback_fires(make: Any, fake: FakeBytez) -> None:
    fake.statuses = [503]
    recorder = Recorder()
    assert make(max_retries=1).invoke("Hi", config={"callbacks": [recorder]}) == " world"
    assert recorder.retries == 1


async def test_async_on_retry_callback_fires(make: Any, fake: FakeBytez) -> None:
    fake.statuses = [503]
    recorder = AsyncRecorder([])
    llm = make(max_retries=1)
    assert await llm.ainvoke("Hi", config={"callbacks": [recorder]}) == " world"
    assert recorder.retries == 1


# ----------------------------------------------------------------------- LangChain surfaces


def test_ls_params(make: Any) -> None:
    llm = make(temperature=0.3, max_new_tokens=12, stop=["\n"])
    assert llm._get_ls_params(stop=["END"]) == {
        "ls_provider": "bytez",
        "ls_model_name": MODEL,
        "ls_model_type": "llm",
        "ls_temperature": 0.3,
        "ls_max_tokens": 12,
        "ls_stop": ["\n", "END"],
    }
    overridden = llm._get_ls_params(model="other/m", max_tokens=3, temperature=1)
    assert overridden["ls_model_name"] == "other/m"
    assert overridden["ls_max_tokens"] == 3
    assert overridden["ls_temperature"] == 1.0


def test_identifying_params(make: Any) -> None:
    llm = make(temperature=0.3, params={"do_sample": True}, stop=["\n"])
    assert llm._identifying_params == {
        "model": MODEL,
        "base_url": URL,
        "params": {"do_sample": True, "temperature": 0.3},
        "stop": ["\n"],
        "return_full_text": False,
    }
    assert llm._llm_type == "bytez"


def test_key_never_leaks(make: Any, fake: FakeBytez) -> None:
    recorder = Recorder()
    llm = make(provider_key="provider-secret-123", temperature=0.1)
    llm.invoke("Hi", config={"callbacks": [recorder]})
    list(llm.stream("Hi", config={"callbacks": [recorder]}))
    surfaces = [
        repr(llm),
        str(llm),
        dumps(llm),
        json.dumps(dumpd(llm)),
        repr(llm._identifying_params),
        repr(llm.model_dump_json()),
        repr(recorder.starts),
    ]
    for text in surfaces:
        assert FAKE_KEY not in text
        assert "provider-secret-123" not in text
    assert len(recorder.starts) == 2
    assert recorder.starts[0]["invocation_params"]["model"] == MODEL


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_serialisation_round_trip(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    llm = BytezLLM(
        model=MODEL,
        api_key=FAKE_KEY,
        base_url=URL,
        temperature=0.4,
        max_new_tokens=9,
        stop=["\n"],
        params={"do_sample": True},
        concurrency=2,
    )
    text = dumps(llm)
    assert FAKE_KEY not in text
    assert json.loads(text)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["BYTEZ_API_KEY"],
    }
    restored = loads(
        text,
        secrets_map={"BYTEZ_API_KEY": FAKE_KEY},
        valid_namespaces=["langchain_bytez"],
        allowed_objects=[BytezLLM],
    )
    assert isinstance(restored, BytezLLM)
    assert restored == llm
    # Without the secret the object still loads; the key is then looked up at run time.
    keyless = loads(text, valid_namespaces=["langchain_bytez"], allowed_objects=[BytezLLM])
    assert keyless.api_key is None
    # ... from the environment (loads() without secrets_from_env=True passes None).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BYTEZ_API_KEY", FAKE_KEY)
        assert keyless._sync_client().cache_key == llm._sync_client().cache_key
        env.delenv("BYTEZ_API_KEY")
        with pytest.raises(MissingAPIKeyError, match="BYTEZ_API_KEY"):
            keyless._sync_client()
