"""``ChatBytez`` end to end against the local Bytez-compatible server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.errors import BytezStreamError
from langchain_bytez.server import FaultKind, LocalBytezServer
from langchain_bytez.testing.catalogue import ROWS, price_per_second

CHAT = "Qwen/Qwen2.5-0.5B-Instruct"
VISION = "Qwen/Qwen2-VL-2B-Instruct"
IMAGE_URL = "https://example.com/cat.png"
PNG_B64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


@pytest.fixture
def server(bytez_server_factory: Callable[..., LocalBytezServer]) -> LocalBytezServer:
    # A fresh server per test: a new URL means a new model manager, so "is it running"
    # memory and concurrency limiters never leak between tests (the session server keeps
    # its URL, and the per-endpoint manager would remember models it reset). A short
    # cold start: loading is tested elsewhere.
    return bytez_server_factory(load_delay=0.05)


def make(server: LocalBytezServer, bytez_api_key: str, **kwargs: Any) -> ChatBytez:
    kwargs.setdefault("model", CHAT)
    kwargs.setdefault("max_tokens", 16)
    return ChatBytez(api_key=bytez_api_key, base_url=server.url, **kwargs)


def last_run(server: LocalBytezServer) -> dict[str, Any]:
    runs = [r for r in server.requests if r.method == "POST" and r.model_id and r.json]
    body = runs[-1].json
    assert isinstance(body, dict)
    return body


# ----------------------------------------------------------------------- images


def test_image_by_url_reaches_the_server_as_a_bytez_block(
    server: LocalBytezServer, bytez_api_key: str
) -> None:
    model = make(server, bytez_api_key, model=VISION)
    message = HumanMessage(
        [{"type": "text", "text": "What is this?"}, {"type": "image", "url": IMAGE_URL}]
    )
    result = model.invoke([message])
    assert server.requests[-1].json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "url": IMAGE_URL},
            ],
        }
    ]
    assert "I see an image." in result.text
    assert isinstance(result.content, str)  # block output joined into a string


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"},
    ],
)
def test_image_by_base64_reaches_the_server_as_a_data_url(
    server: LocalBytezServer, bytez_api_key: str, block: dict[str, Any]
) -> None:
    model = make(server, bytez_api_key, model=VISION)
    chunks = list(model.stream([HumanMessage([{"type": "text", "text": "Describe"}, block])]))
    assert server.requests[-1].json["messages"][0]["content"][1] == {
        "type": "image",
        "base64": f"data:image/png;base64,{PNG_B64}",
    }
    assert "I see an image." in "".join(c.text for c in chunks)


# ----------------------------------------------------------------------- conversation


def test_roles_names_and_merging_on_the_wire(server: LocalBytezServer, bytez_api_key: str) -> None:
    model = make(server, bytez_api_key)
    result = model.invoke(
        [
            SystemMessage("Your name is Robo."),
            SystemMessage("Be brief."),
            HumanMessage("hi", name="ann"),
            AIMessage("hello"),
            HumanMessage("how are you", name="ann"),
            HumanMessage("today?", name="ann"),
        ]
    )
    assert server.requests[-1].json["messages"] == [
        {"role": "system", "content": "Your name is Robo.\n\nBe brief."},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you\n\ntoday?", "name": "ann"},
    ]
    assert result.text.startswith("Hello, ann! I am Robo.")


def test_unsendable_history_is_refused_without_a_request(
    server: LocalBytezServer, bytez_api_key: str
) -> None:
    model = make(server, bytez_api_key)
    pdf = {"type": "file", "base64": "JVBERi0xLjQK", "mime_type": "application/pdf"}
    with pytest.raises(ValueError, match=r"messages\[1\] \(HumanMessage\) content\[1\].*'file'"):
        model.invoke([HumanMessage("hi"), HumanMessage([{"type": "text", "text": "read"}, pdf])])
    assert server.count("POST", f"/models/v2/{CHAT}") == 0


def test_a_tool_history_is_sent_rendered(server: LocalBytezServer, bytez_api_key: str) -> None:
    # The chat route has no tool role: the call and its result travel as assistant and
    # user text, which every chat template accepts.
    model = make(server, bytez_api_key)
    call = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1", "type": "tool_call"}
    model.invoke(
        [
            HumanMessage("What is 2 + 3?"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("5", tool_call_id="call_1", name="add"),
        ]
    )
    assert last_run(server)["messages"] == [
        {"role": "user", "content": "What is 2 + 3?"},
        {
            "role": "assistant",
            "content": '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>',
        },
        {
            "role": "user",
            "content": '<tool_response>\n{"name": "add", "id": "call_1", "content": "5"}\n'
            "</tool_response>",
        },
    ]


# ----------------------------------------------------------------------- stop, metadata


def test_stop_is_enforced_without_being_sent(server: LocalBytezServer, bytez_api_key: str) -> None:
    # The strict server (the default, as the live vLLM-backed models) refuses
    # stop_strings with 422: the client cuts the text itself and never sends them.
    assert server.strict_params
    model = make(server, bytez_api_key, stop=["said"])
    result = model.invoke("hello")
    assert "stop_strings" not in (last_run(server).get("params") or {})
    assert result.text == "Hello! You "
    assert result.response_metadata["finish_reason"] == "stop"
    chunks = list(model.stream("hello", stop=["You"]))
    assert "stop_strings" not in (last_run(server).get("params") or {})
    assert "".join(c.text for c in chunks) == "Hello! "
    assert chunks[-1].response_metadata["finish_reason"] == "stop"


def test_metadata_from_the_server(server: LocalBytezServer, bytez_api_key: str) -> None:
    row = next(row for row in ROWS if row.model_id == CHAT)
    model = make(server, bytez_api_key, max_tokens=5)
    result = model.invoke("hello")
    meta = result.response_metadata
    assert meta["model_name"] == CHAT
    assert meta["model_provider"] == "bytez"
    assert meta["status_code"] == 200
    # The meter and its price as the catalogue gives them ("sm-lm", "0.0000833 / sec").
    assert meta["inference_meter"] == row.meter
    assert meta["inference_meter_price"] == pytest.approx(price_per_second(row.meter_price))
    assert meta["inference_meter_price_unit"] == "sec"
    assert "inference_time" in meta
    assert "inference_cost" in meta
    assert result.usage_metadata is None
    chunks = list(model.stream("hello"))
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].response_metadata["finish_reason"] == "length"  # 5 of 5 tokens
    assert chunks[-1].response_metadata["inference_meter"] == row.meter


async def test_async_paths(server: LocalBytezServer, bytez_api_key: str) -> None:
    model = make(server, bytez_api_key)
    result = await model.ainvoke("hello")
    assert result.text.startswith("Hello!")
    chunks = [c async for c in model.astream("hello")]
    assert "".join(c.text for c in chunks) == result.text
    assert chunks[-1].chunk_position == "last"
    # Auto-loaded before the first run: one create-cluster PUT, sent before any run.
    # (The server also starts a model on a bare run, so the cluster existing afterwards
    # would prove nothing.)
    methods = [r.method for r in server.requests if r.path == f"/models/v2/{CHAT}"]
    assert methods.count("PUT") == 1, methods
    assert methods.index("PUT") < methods.index("POST"), methods


def test_concurrency_cap_holds_for_batches(server: LocalBytezServer, bytez_api_key: str) -> None:
    # Each run takes 0.1 s before its first byte, so the runs of the batch overlap (the
    # token delay would only slow streamed answers; batch() does not stream).
    server.ttfb = 0.1
    # The cap on runs in flight is the account's max_concurrent_requests (concurrency
    # only sizes a cluster auto-load creates).
    model = make(server, bytez_api_key, max_concurrent_requests=2, max_tokens=8)
    results = model.batch([f"question {i}" for i in range(6)], config={"max_concurrency": 6})
    # Every answer is to its own question, in order.
    for i, result in enumerate(results):
        assert f'"question {i}"' in result.text, (i, result.text)
    # The cap held, and was reached (so the batch really ran concurrently).
    assert server.peak_in_flight(CHAT) == 2


# ----------------------------------------------------------------------- failures


class RetryCounter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.retries = 0

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self.retries += 1


def test_retry_is_reported(server: LocalBytezServer, bytez_api_key: str) -> None:
    model = make(server, bytez_api_key, max_retries=2, auto_load=False)
    server.inject(FaultKind.STATUS_503)
    counter = RetryCounter()
    result = model.invoke("hello", config={"callbacks": [counter]})
    assert result.text.startswith("Hello!")
    assert counter.retries == 1


def test_error_mid_stream_is_raised(server: LocalBytezServer, bytez_api_key: str) -> None:
    # Retries are allowed, yet a stream that already delivered text is never sent again
    # (the text would be delivered twice).
    model = make(server, bytez_api_key, max_retries=3, auto_load=False)
    server.inject(FaultKind.ERROR_MID_STREAM, after_tokens=2, message="CUDA out of memory")
    pieces: list[str] = []

    def consume() -> None:
        for chunk in model.stream("hello"):
            pieces.append(chunk.text)

    with pytest.raises(BytezStreamError, match="CUDA out of memory") as caught:
        consume()
    delivered = "".join(pieces)
    assert delivered  # the failure came after text had been streamed
    assert caught.value.delivered_text == delivered
    assert "CUDA" not in delivered  # the error line is never streamed as text
    assert "Error:" not in delivered
    assert server.count("POST", f"/models/v2/{CHAT}") == 1


# ----------------------------------------------------------------------- LCEL


def test_lcel_chain_streams(server: LocalBytezServer, bytez_api_key: str) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are called {name}."), ("human", "{question}")]
    )
    chain = prompt | make(server, bytez_api_key) | StrOutputParser()
    pieces = list(chain.stream({"name": "Sage", "question": "what is up"}))
    assert len(pieces) > 1
    text = "".join(pieces)
    assert text.startswith('Hello! I am Sage. You said: "what is up".')
