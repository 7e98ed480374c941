"""``BytezLLM`` end to end against the local Bytez-compatible server."""

from __future__ import annotations

import asyncio
import json
import pickle
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

from langchain_bytez.errors import BytezAuthenticationError
from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import FaultKind, LocalBytezServer, generate_continuation

MODEL = "openai-community/gpt2"
FAKE_KEY = "sk-FAKE-KEY-0123456789"

ServerFactory = Callable[..., LocalBytezServer]


@pytest.fixture
def server(bytez_server_factory: ServerFactory) -> LocalBytezServer:
    # A fresh server per test: a new URL means a new model manager, so load counts
    # and "is it running" memory never leak between tests.
    return bytez_server_factory(load_delay=0.05)


def make(server: LocalBytezServer, **kwargs: Any) -> BytezLLM:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("api_key", "test-key")
    kwargs.setdefault("max_new_tokens", 6)
    return BytezLLM(base_url=server.url, **kwargs)


def expected(prompt: str, n: int = 6) -> str:
    return "".join(generate_continuation(prompt, n))


class TokenRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.starts: list[dict[str, Any]] = []
        self.ends: list[Any] = []
        self.retries = 0
        self.custom: list[tuple[str, Any]] = []

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self.starts.append({"serialized": serialized, "prompts": prompts, **kwargs})

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends.append(response)

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self.retries += 1

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.custom.append((name, data))


class AsyncTokenRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.retries = 0

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    async def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.retries += 1


# ----------------------------------------------------------------------- every entry point


def test_invoke_stream_batch(server: LocalBytezServer) -> None:
    llm = make(server)
    assert llm.invoke("Once upon a time") == expected("Once upon a time")
    pieces = list(llm.stream("Once upon a time"))
    assert "".join(pieces) == expected("Once upon a time")
    assert len([p for p in pieces if p]) == 6  # one chunk per token
    assert llm.batch(["a", "b", "c"]) == [expected("a"), expected("b"), expected("c")]


async def test_ainvoke_astream_abatch(server: LocalBytezServer) -> None:
    llm = make(server)
    assert await llm.ainvoke("Once upon a time") == expected("Once upon a time")
    pieces = [p async for p in llm.astream("Once upon a time")]
    assert "".join(pieces) == expected("Once upon a time")
    assert await llm.abatch(["a", "b", "c"]) == [expected("a"), expected("b"), expected("c")]


def test_chain_invoke_stream_batch(server: LocalBytezServer) -> None:
    chain = PromptTemplate.from_template("Tell me about {topic}") | make(server) | StrOutputParser()
    prompt = "Tell me about owls"
    assert chain.invoke({"topic": "owls"}) == expected(prompt)
    assert "".join(chain.stream({"topic": "owls"})) == expected(prompt)
    assert chain.batch([{"topic": "owls"}, {"topic": "cats"}]) == [
        expected(prompt),
        expected("Tell me about cats"),
    ]


async def test_chain_async_and_astream_events(server: LocalBytezServer) -> None:
    # Auto-load progress needs cluster routes (one mode of the live service); by default
    # the local server has none, and the manager then runs serverless without progress.
    server.cluster_routes = "on"
    chain = PromptTemplate.from_template("Tell me about {topic}") | make(server) | StrOutputParser()
    prompt = "Tell me about owls"
    assert await chain.ainvoke({"topic": "owls"}) == expected(prompt)
    assert "".join([p async for p in chain.astream({"topic": "owls"})]) == expected(prompt)
    assert await chain.abatch([{"topic": "owls"}]) == [expected(prompt)]

    fresh = PromptTemplate.from_template("{q}") | make(server, model="gpt2") | StrOutputParser()
    events = [e async for e in fresh.astream_events({"q": "Hello"}, version="v2")]
    kinds = [e["event"] for e in events]
    assert "on_llm_start" in kinds
    assert "on_llm_end" in kinds
    streamed = "".join(e["data"]["chunk"].text for e in events if e["event"] == "on_llm_stream")
    assert streamed == expected("Hello")
    parser_chunks = [e["data"]["chunk"] for e in events if e["event"] == "on_parser_stream"]
    assert "".join(parser_chunks) == expected("Hello")
    # The model was not loaded yet: auto-load progress shows up as custom events.
    loading = [e for e in events if e["event"] == "on_custom_event"]
    assert loading
    assert {e["name"] for e in loading} == {"bytez_model_loading"}
    assert loading[-1]["data"]["model_id"] == "gpt2"


async def test_llm_astream_events_alone(server: LocalBytezServer) -> None:
    llm = make(server)
    events = [e async for e in llm.astream_events("Hi", version="v2")]
    chunks = [e["data"]["chunk"] for e in events if e["event"] == "on_llm_stream"]
    assert "".join(chunks) == expected("Hi")  # alone, an LLM streams plain strings
    end = next(e for e in events if e["event"] == "on_llm_end")
    assert end["data"]["output"]["generations"][0][0]["generation_info"]["model_name"] == MODEL


# ----------------------------------------------------------------------- callbacks and text


def test_callbacks_receive_every_token_in_order(server: LocalBytezServer) -> None:
    tokens = [" naïve", " 日本語", " 🚀", " café", " Ωmega"]
    server.set_reply(tokens)
    recorder = TokenRecorder()
    llm = make(server, max_new_tokens=None)
    pieces = list(llm.stream("Hi", config={"callbacks": [recorder]}))
    assert "".join(pieces) == "".join(tokens)
    assert [t for t in recorder.tokens if t] == tokens
    assert "".join(recorder.tokens) == "".join(pieces)
    # streaming=True on invoke: the same tokens through the same callback.
    recorder2 = TokenRecorder()
    text = make(server, max_new_tokens=None, streaming=True).invoke(
        "Hi", config={"callbacks": [recorder2]}
    )
    assert text == "".join(tokens)
    assert "".join(recorder2.tokens) == text


async def test_async_callbacks_receive_every_token_in_order(server: LocalBytezServer) -> None:
    tokens = [" naïve", " 日本語", " 🚀", " café"]
    server.set_reply(tokens)
    recorder = AsyncTokenRecorder()
    pieces = [
        p
        async for p in make(server, max_new_tokens=None).astream(
            "Hi", config={"callbacks": [recorder]}
        )
    ]
    assert "".join(pieces) == "".join(tokens)
    assert [t for t in recorder.tokens if t] == tokens


def test_generation_info_of_invoke_and_stream(server: LocalBytezServer) -> None:
    llm = make(server)
    result = llm.generate(["Hi"])
    info = result.generations[0][0].generation_info
    assert info is not None
    assert info["model_name"] == MODEL
    assert info["status_code"] == 200
    assert {"inference_time", "inference_cost", "inference_meter", "ratelimit_limit"} <= set(info)
    assert result.llm_output == {"model_name": MODEL}
    chunks = list(llm._stream("Hi"))
    assert [c.generation_info for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    final = chunks[-1].generation_info
    assert final is not None
    assert final["finish_reason"] == "length"  # 6 tokens of a 6-token budget
    assert final["model_name"] == MODEL
    assert "inference_meter" in final


# ----------------------------------------------------------------------- stop sequences


def test_stop_split_across_chunks(server: LocalBytezServer) -> None:
    server.set_reply([" one", " two", " EN", "D three", " four"])
    llm = make(server, max_new_tokens=None)
    pieces = list(llm.stream("Hi", stop=["END"]))
    assert "".join(pieces) == " one two "
    assert not any("three" in p or "four" in p for p in pieces)
    assert "stop_strings" not in server.requests[-1].json.get("params", {})
    assert llm.invoke("Hi", stop=["END"]) == " one two "
    assert "stop_strings" not in server.requests[-1].json.get("params", {})
    chunks = list(llm._stream("Hi", stop=["END"]))
    assert chunks[-1].generation_info["finish_reason"] == "stop"  # type: ignore[index]


async def test_async_stop_split_across_chunks(server: LocalBytezServer) -> None:
    server.set_reply([" one", " two", " EN", "D three", " four"])
    llm = make(server, max_new_tokens=None, stop=["\n"])
    pieces = [p async for p in llm.astream("Hi", stop=["END"])]
    assert "".join(pieces) == " one two "
    assert "stop_strings" not in server.requests[-1].json.get("params", {})
    assert await llm.ainvoke("Hi", stop=["END"]) == " one two "


def test_stop_is_enforced_client_side_in_bind_batch_and_invoke(server: LocalBytezServer) -> None:
    # The service has no portable stop param (vLLM-served models answer stop_strings with
    # 422): the cut happens here, on every path, and nothing stop-related is sent.
    server.set_reply([" alpha", " beta", " END", " gamma"])
    llm = make(server, max_new_tokens=None, temperature=0.0)
    bound = llm.bind(stop=["END"])
    assert bound.invoke("Hi") == " alpha beta "
    assert "".join(bound.stream("Hi")) == " alpha beta "
    assert bound.batch(["a", "b"]) == [" alpha beta ", " alpha beta "]
    assert llm.batch(["a"], stop=["beta"]) == [" alpha "]
    for request in server.requests[-5:]:
        params = request.json.get("params", {})
        assert "stop_strings" not in params
        assert "temperature" not in params  # temperature=0 is greedy decoding
        assert params["do_sample"] is False


# ----------------------------------------------------------------------- options


def test_return_full_text_on_and_off(server: LocalBytezServer) -> None:
    assert make(server).invoke("Hello") == expected("Hello")
    assert make(server, return_full_text=True).invoke("Hello") == "Hello" + expected("Hello")
    assert "".join(make(server, return_full_text=True).stream("Hello")) == "Hello" + expected(
        "Hello"
    )


def test_per_call_kwargs_reach_the_server(server: LocalBytezServer) -> None:
    llm = make(server, temperature=0.5)
    assert llm.invoke("Hi", max_new_tokens=3, repetition_penalty=1.2) == expected("Hi", 3)
    assert server.requests[-1].json["params"] == {
        "max_new_tokens": 3,
        "temperature": 0.5,
        "repetition_penalty": 1.2,
    }
    assert llm.invoke("Hi") == expected("Hi", 6)
    with pytest.raises(ValueError, match="max_new_tokens"):
        llm.invoke("Hi", max_new_tokens="10")


def test_auto_load_sends_one_put_for_many_concurrent_calls(server: LocalBytezServer) -> None:
    server.cluster_routes = "on"  # the live service mode where auto-load can create a cluster
    server.load_delay = 0.3
    llm = make(server, concurrency=4)
    results = llm.batch([f"p{i}" for i in range(12)], config={"max_concurrency": 12})
    assert results == [expected(f"p{i}") for i in range(12)]
    assert server.count("PUT") == 1
    assert server.cluster(MODEL)["capacity"]["desired"] == 4  # type: ignore[index]
    assert server.peak_in_flight(MODEL) <= 4
    puts_before = server.count("GET")
    llm.invoke("again")
    assert server.count("GET") == puts_before  # cached "running": no status request


async def test_async_auto_load_is_single_flight(server: LocalBytezServer) -> None:
    server.cluster_routes = "on"  # the live service mode where auto-load can create a cluster
    server.load_delay = 0.3
    llm = make(server, concurrency=4)
    results = await asyncio.gather(*(llm.ainvoke(f"p{i}") for i in range(12)))
    assert results == [expected(f"p{i}") for i in range(12)]
    assert server.count("PUT") == 1
    assert server.cluster(MODEL)["capacity"]["desired"] == 4  # type: ignore[index]


async def test_abatch_is_concurrent(bytez_server_factory: ServerFactory) -> None:
    # Runs of a model without a cluster share the one instance the service starts for
    # them (serverless; the local server gives it capacity 1, so runs queue). Parallel
    # runs need a cluster sized by `concurrency`, which auto-load can create only where
    # the cluster routes exist: one of the live service's modes.
    server = bytez_server_factory(
        ttfb=0.2, concurrency_limit=16, load_delay=0.05, cluster_routes="on"
    )
    llm = make(server, concurrency=16)
    await llm.ainvoke("warm up")  # load once; the timing below is about the runs
    started = time.perf_counter()
    results = await llm.abatch([f"p{i}" for i in range(16)])
    elapsed = time.perf_counter() - started
    assert results == [expected(f"p{i}") for i in range(16)]
    assert elapsed < 8 * 0.2
    assert server.peak_in_flight(MODEL) > 1


def test_generate_is_concurrent(bytez_server_factory: ServerFactory) -> None:
    # Runs of a model without a cluster share the one instance the service starts for
    # them (serverless; the local server gives it capacity 1, so runs queue). Parallel
    # runs need a cluster sized by `concurrency`, which auto-load can create only where
    # the cluster routes exist: one of the live service's modes.
    server = bytez_server_factory(ttfb=0.2, load_delay=0.05, cluster_routes="on")
    llm = make(server, concurrency=8)
    llm.invoke("warm up")
    started = time.perf_counter()
    result = llm.generate([f"p{i}" for i in range(8)])
    elapsed = time.perf_counter() - started
    assert [g[0].text for g in result.generations] == [expected(f"p{i}") for i in range(8)]
    # Overlap is what shows concurrency; the timing bound is the sequential floor
    # (8 x 0.2 s), which scheduling noise cannot push a concurrent run past.
    assert server.peak_in_flight(MODEL) > 1
    assert elapsed < 8 * 0.2


def test_on_retry_fires_on_an_injected_503(server: LocalBytezServer) -> None:
    llm = make(server)
    llm.invoke("warm up")
    server.inject(FaultKind.STATUS_503)
    recorder = TokenRecorder()
    assert llm.invoke("Hi", config={"callbacks": [recorder]}) == expected("Hi")
    assert recorder.retries == 1


async def test_async_on_retry_fires_on_an_injected_503(server: LocalBytezServer) -> None:
    llm = make(server)
    await llm.ainvoke("warm up")
    server.inject(FaultKind.STATUS_503)
    recorder = AsyncTokenRecorder()
    pieces = [p async for p in llm.astream("Hi", config={"callbacks": [recorder]})]
    assert "".join(pieces) == expected("Hi")
    assert recorder.retries == 1


# ----------------------------------------------------------------------- secrets


def test_key_never_leaks_on_any_surface(bytez_server_factory: ServerFactory) -> None:
    server = bytez_server_factory(api_keys=None, load_delay=0.05)
    recorder = TokenRecorder()
    llm = make(server, api_key=FAKE_KEY, temperature=0.2)
    llm.invoke("Hi", config={"callbacks": [recorder]})
    list(llm.stream("Hi", config={"callbacks": [recorder]}))
    llm.batch(["a", "b"], config={"callbacks": [recorder]})
    assert len(recorder.starts) == 4
    surfaces = [
        repr(llm),
        str(llm),
        dumps(llm),
        json.dumps(dumpd(llm)),
        repr(llm._identifying_params),
        repr(recorder.starts),  # serialized + invocation_params + options + metadata
        repr(recorder.ends),
    ]
    for text in surfaces:
        assert FAKE_KEY not in text
    assert FAKE_KEY.encode() not in pickle.dumps(llm)
    assert all(not r.headers.get("authorization") for r in server.requests)


def test_refused_key_error_does_not_contain_it(server: LocalBytezServer) -> None:
    llm = make(server, api_key=FAKE_KEY)
    with pytest.raises(BytezAuthenticationError) as info:
        llm.invoke("Hi")
    assert FAKE_KEY not in str(info.value)
    assert FAKE_KEY not in repr(info.value)
    assert FAKE_KEY not in (info.value.body or "")
