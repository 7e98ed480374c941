"""Unit tests of ``ChatBytez`` over ``httpx.MockTransport`` (no server, no network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps, loads
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_bytez.chat_messages import Answer as _Answer
from langchain_bytez.chat_messages import output_answer as _output_answer
from langchain_bytez.chat_models import ChatBytez, convert_messages
from langchain_bytez.errors import BytezAPIError
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez

MODEL = "org/chat-model"
PNG_B64 = "iVBORw0KGgo="


@pytest.fixture
def fake() -> FakeBytez:
    fake = FakeBytez()
    fake.output = {"role": "assistant", "content": "Hi there, friend."}
    fake.chunks = [b"Hi", b" there", b", friend."]
    return fake


@pytest.fixture
def make(fake: FakeBytez) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def factory(**kwargs: Any) -> ChatBytez:
        http, ahttp = fake.clients()
        clients.append(http)
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("api_key", FAKE_KEY)
        kwargs.setdefault("base_url", URL)
        kwargs.setdefault("auto_load", False)  # the manager has its own tests
        kwargs.setdefault("max_retries", 0)
        return ChatBytez(http_client=http, http_async_client=ahttp, **kwargs)

    yield factory
    for client in clients:
        client.close()


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[Any] = []
        self.starts: list[dict[str, Any]] = []
        self.retries = 0

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.starts.append({"serialized": serialized, **kwargs})

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self.retries += 1


# ----------------------------------------------------------------------- roles


def test_every_role_is_mapped() -> None:
    converted = convert_messages(
        [SystemMessage("be brief"), HumanMessage("hi"), AIMessage("hello"), HumanMessage("q")]
    )
    assert converted == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "q"},
    ]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("user", "user"),
        ("human", "user"),
        ("assistant", "assistant"),
        ("ai", "assistant"),
        ("system", "system"),
        ("developer", "system"),
    ],
)
def test_chat_message_roles(role: str, expected: str) -> None:
    assert convert_messages([ChatMessage(role=role, content="x")]) == [
        {"role": expected, "content": "x"}
    ]


def test_unknown_chat_message_role_is_refused() -> None:
    with pytest.raises(ValueError, match=r"messages\[0\] \(ChatMessage\).*'critic'"):
        convert_messages([ChatMessage(role="critic", content="x")])


def test_consecutive_same_role_messages_are_merged() -> None:
    converted = convert_messages(
        [
            SystemMessage("a"),
            SystemMessage("b"),
            HumanMessage("c"),
            HumanMessage("d"),
            AIMessage("e"),
            AIMessage("f"),
            HumanMessage("g"),
        ]
    )
    assert converted == [
        {"role": "system", "content": "a\n\nb"},
        {"role": "user", "content": "c\n\nd"},
        {"role": "assistant", "content": "e\n\nf"},
        {"role": "user", "content": "g"},
    ]


def test_merging_block_content_keeps_blocks_and_joins_adjacent_text() -> None:
    converted = convert_messages(
        [
            HumanMessage(
                [{"type": "text", "text": "look"}, {"type": "image", "url": "https://x/a.png"}]
            ),
            HumanMessage("and this"),
            HumanMessage([{"type": "text", "text": "too"}]),
        ]
    )
    assert converted == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "url": "https://x/a.png"},
                {"type": "text", "text": "and this\n\ntoo"},
            ],
        }
    ]


# ----------------------------------------------------------------------- names


def test_name_is_sent_as_the_message_name() -> None:
    assert convert_messages([HumanMessage("hi", name="ann")]) == [
        {"role": "user", "content": "hi", "name": "ann"}
    ]


def test_merged_messages_with_one_name_keep_it() -> None:
    converted = convert_messages([HumanMessage("a", name="ann"), HumanMessage("b", name="ann")])
    assert converted == [{"role": "user", "content": "a\n\nb", "name": "ann"}]


def test_merged_messages_with_different_names_are_prefixed() -> None:
    converted = convert_messages(
        [HumanMessage("a", name="ann"), HumanMessage("b", name="bob"), HumanMessage("c")]
    )
    assert converted == [{"role": "user", "content": "ann: a\n\nbob: b\n\nc"}]


def test_prefix_goes_to_the_first_text_block() -> None:
    converted = convert_messages(
        [
            HumanMessage([{"type": "image", "url": "https://x/a.png"}], name="ann"),
            HumanMessage("b", name="bob"),
        ]
    )
    assert converted[0]["content"] == [
        {"type": "text", "text": "ann:"},
        {"type": "image", "url": "https://x/a.png"},
        {"type": "text", "text": "bob: b"},
    ]


# ----------------------------------------------------------------------- blocks


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("plain", {"type": "text", "text": "plain"}),
        ({"type": "text", "text": "t", "id": "b1", "index": 0}, {"type": "text", "text": "t"}),
        (
            {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "low"}},
            {"type": "image", "url": "https://x/a.png"},
        ),
        (
            {"type": "image_url", "image_url": f"data:image/png;base64,{PNG_B64}"},
            {"type": "image", "base64": f"data:image/png;base64,{PNG_B64}"},
        ),
        (
            {"type": "image", "url": "https://x/a.png"},
            {"type": "image", "url": "https://x/a.png"},
        ),
        (
            {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
            {"type": "image", "base64": f"data:image/png;base64,{PNG_B64}"},
        ),
        (
            {"type": "image", "base64": f"data:image/jpeg;base64,{PNG_B64}"},
            {"type": "image", "base64": f"data:image/jpeg;base64,{PNG_B64}"},
        ),
        (
            {"type": "image", "source_type": "url", "url": "https://x/a.png"},
            {"type": "image", "url": "https://x/a.png"},
        ),
        (
            {"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"},
            {"type": "image", "base64": f"data:image/png;base64,{PNG_B64}"},
        ),
        (
            {"type": "audio", "base64": "UklGRg==", "mime_type": "audio/wav"},
            {"type": "audio", "base64": "data:audio/wav;base64,UklGRg=="},
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "audio", "base64": "data:audio/wav;base64,UklGRg=="},
        ),
        (
            {"type": "video", "url": "https://x/v.mp4"},
            {"type": "video", "url": "https://x/v.mp4"},
        ),
        (
            {"type": "image", "url": f"data:image/png;base64,{PNG_B64}"},
            {"type": "image", "base64": f"data:image/png;base64,{PNG_B64}"},
        ),
    ],
)
def test_content_block_forms(block: Any, expected: dict[str, Any]) -> None:
    converted = convert_messages([HumanMessage([block])])
    assert converted == [{"role": "user", "content": [expected]}]


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"}, "'file'"),
        ({"type": "file", "file": {"file_data": "x", "filename": "a.pdf"}}, "'file'"),
        ({"type": "reasoning", "reasoning": "hmm"}, "'reasoning'"),
        ({"type": "text-plain", "text": "x", "mime_type": "text/plain"}, "'text-plain'"),
        ({"type": "image", "file_id": "file-123"}, "uploaded file id"),
        ({"type": "image", "source_type": "id", "id": "file-123"}, "source_type 'id'"),
        ({"type": "image", "base64": PNG_B64}, "mime_type"),
        ({"type": "image"}, "needs a 'url' or 'base64'"),
        ({"type": "text", "text": 3}, "string 'text'"),
    ],
)
def test_blocks_the_api_cannot_carry_are_refused(block: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        convert_messages([SystemMessage("s"), HumanMessage(["ok", block])])
    assert r"messages[1] (HumanMessage) content[1]" in str(info.value)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            ToolMessage("42", tool_call_id="call-1", name="f"),
            {
                "role": "user",
                "content": '<tool_response>\n{"name": "f", "id": "call-1", "content": "42"}'
                "\n</tool_response>",
            },
        ),
        (
            FunctionMessage(name="f", content="42"),
            {
                "role": "user",
                "content": '<tool_response>\n{"name": "f", "content": "42"}\n</tool_response>',
            },
        ),
        (
            AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "call-1"}]),
            {
                "role": "assistant",
                "content": '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>',
            },
        ),
        (
            AIMessage("", additional_kwargs={"function_call": {"name": "f", "arguments": "{}"}}),
            {
                "role": "assistant",
                "content": '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>',
            },
        ),
    ],
    ids=["tool-message", "function-message", "ai-tool-calls", "ai-openai-function-call"],
)
def test_tool_messages_and_calls_are_rendered_as_text(
    message: BaseMessage, expected: dict[str, Any]
) -> None:
    # Formerly refused: the history is now rendered with the roles every template accepts.
    assert convert_messages([SystemMessage("s"), message]) == [
        {"role": "system", "content": "s"},
        expected,
    ]


def test_tool_results_merge_with_the_user_turn_before_them() -> None:
    # Templates that need alternating roles get one user turn.
    converted = convert_messages([HumanMessage("hi"), ToolMessage("42", tool_call_id="c")])
    assert converted == [
        {
            "role": "user",
            "content": 'hi\n\n<tool_response>\n{"name": null, "id": "c", "content": "42"}'
            "\n</tool_response>",
        }
    ]


def test_empty_conversation_is_refused() -> None:
    with pytest.raises(ValueError, match="empty conversation"):
        convert_messages([])


def test_refused_input_sends_nothing(make: Any, fake: FakeBytez) -> None:
    model = make()
    with pytest.raises(ValueError, match="'file'"):
        list(model.stream([HumanMessage([{"type": "file", "url": "https://x/a.pdf"}])]))
    with pytest.raises(ValueError, match="not bound"):
        model.bind_tools([], tool_choice="f")
    assert fake.requests == []


# ----------------------------------------------------------------------- output forms


@pytest.mark.parametrize(
    "output",
    [
        {"role": "assistant", "content": "Hi there"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi"}, " there"]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
        },
        [
            {
                "generated_text": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "Hi there"},
                ]
            }
        ],
        [{"generated_text": "Hi there"}],
        "Hi there",
    ],
)
def test_output_forms(output: Any) -> None:
    assert _output_answer(output, MODEL) == _Answer("Hi there")


@pytest.mark.parametrize(
    "output",
    [None, 42, {"role": "assistant"}, {"content": [{"type": "image", "url": "u"}, 7]}],
)
def test_unexpected_output_is_a_clear_error(output: Any) -> None:
    with pytest.raises(BytezAPIError):
        _output_answer(output, MODEL)


def test_block_output_becomes_a_string(make: Any, fake: FakeBytez) -> None:
    fake.output = {
        "role": "assistant",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    result = make().invoke("hi")
    assert result.content == "ab"


def test_non_text_answer_blocks_are_kept_in_order(make: Any, fake: FakeBytez) -> None:
    # Issue 11 item 5: an image in the answer no longer fails the call.
    fake.output = {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Here is the chart:"},
            {"type": "image", "base64": f"data:image/png;base64,{PNG_B64}"},
            {"type": "image", "url": "https://x/b.png"},
            {"type": "text", "text": " done"},
        ],
    }
    result = make().invoke("draw")
    assert result.content == [
        {"type": "text", "text": "Here is the chart:"},
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "url": "https://x/b.png"},
        {"type": "text", "text": " done"},
    ]
    assert result.text == "Here is the chart: done"
    assert [b["type"] for b in result.content_blocks] == ["text", "image", "image", "text"]


def test_non_text_blocks_follow_the_cut_text(make: Any, fake: FakeBytez) -> None:
    fake.output = {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "keep STOP drop"},
            {"type": "image", "url": "https://x/b.png"},
        ],
    }
    result = make(stop=["STOP"]).invoke("draw")
    assert result.content == [
        {"type": "text", "text": "keep "},
        {"type": "image", "url": "https://x/b.png"},
    ]
    assert result.response_metadata["finish_reason"] == "stop"


# ----------------------------------------------------------------------- request body


def test_body_shape_and_params(make: Any, fake: FakeBytez) -> None:
    model = make(max_tokens=12, temperature=0.2, top_p=0.9, top_k=5, params={"do_sample": True})
    model.invoke([SystemMessage("s"), HumanMessage("hi")])
    assert fake.paths == [f"/models/v2/{MODEL}"]
    assert fake.requests == [
        {
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
            "params": {
                "do_sample": True,
                "max_new_tokens": 12,
                "temperature": 0.2,
                "top_p": 0.9,
                "top_k": 5,
            },
        }
    ]


def test_per_call_overrides_and_model(make: Any, fake: FakeBytez) -> None:
    model = make(max_tokens=12)
    result = model.invoke("hi", max_tokens=3, model="other/model", repetition_penalty=1.1)
    assert fake.paths[-1] == "/models/v2/other/model"
    assert fake.requests[-1]["params"] == {"max_new_tokens": 3, "repetition_penalty": 1.1}
    assert result.response_metadata["model_name"] == "other/model"
    model.invoke("hi")
    assert fake.requests[-1]["params"] == {"max_new_tokens": 12}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_tokens": "10"}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"api_key": "x"}, "cannot be changed per call"),
        ({"max_new_token": 3}, "did you mean 'max_new_tokens'"),
    ],
)
def test_bad_per_call_kwargs_fail_before_sending(
    make: Any, fake: FakeBytez, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        make().invoke("hi", **kwargs)
    assert fake.requests == []


def test_explicit_stream_flag_is_not_sent_as_a_param(make: Any, fake: FakeBytez) -> None:
    result = make().invoke("hi", stream=True)
    assert result.content == "Hi there, friend."
    assert fake.requests[-1]["stream"] is True
    assert "stream" not in fake.requests[-1]["params"]


def test_per_call_streaming_uses_the_stream_route(make: Any, fake: FakeBytez) -> None:
    result = make().invoke("hi", streaming=True)
    assert fake.requests[-1]["stream"] is True
    assert result.content == "Hi there, friend."


def test_streaming_field_reports_tokens(make: Any, fake: FakeBytez) -> None:
    recorder = Recorder()
    result = make(streaming=True).invoke("hi", config={"callbacks": [recorder]})
    assert result.content == "Hi there, friend."
    assert [t for t in recorder.tokens if t] == ["Hi", " there", ", friend."]


def test_stream_false_and_disable_streaming_are_honoured(make: Any, fake: FakeBytez) -> None:
    recorder = Recorder()
    result = make(streaming=True).invoke("hi", stream=False, config={"callbacks": [recorder]})
    assert result.content == "Hi there, friend."
    assert "stream" not in fake.requests[-1]
    assert recorder.tokens == []
    make(streaming=True, disable_streaming=True).invoke("hi")
    assert "stream" not in fake.requests[-1]
    make(disable_streaming=True).invoke("hi", streaming=True)
    assert "stream" not in fake.requests[-1]
    make().invoke("hi", streaming=True)  # still streams when nothing opts out
    assert fake.requests[-1]["stream"] is True


async def test_async_stream_false_and_disable_streaming_are_honoured(
    make: Any, fake: FakeBytez
) -> None:
    result = await make(streaming=True).ainvoke("hi", stream=False)
    assert result.content == "Hi there, friend."
    assert "stream" not in fake.requests[-1]
    await make(streaming=True, disable_streaming=True).ainvoke("hi")
    assert "stream" not in fake.requests[-1]
    await make().ainvoke("hi", streaming=True)
    assert fake.requests[-1]["stream"] is True


class _RaisingTokenHandler(BaseCallbackHandler):
    raise_error = True

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        raise RuntimeError("handler failed")


def test_a_raising_callback_does_not_keep_the_stream_slot(make: Any, fake: FakeBytez) -> None:
    # The error's traceback (holding _stream's frame) is kept alive on purpose: the
    # response and the concurrency=1 slot must be freed anyway.
    model = make(concurrency=1)
    with pytest.raises(RuntimeError, match="handler failed") as caught:
        model.invoke("hi", streaming=True, config={"callbacks": [_RaisingTokenHandler()]})
    done = threading.Event()
    threading.Thread(target=lambda: (model.invoke("hi"), done.set()), daemon=True).start()
    assert done.wait(5), "the in-flight slot of the failed stream was never released"
    assert caught.value is not None


# ----------------------------------------------------------------------- stop


def test_stop_is_enforced_and_never_sent(make: Any, fake: FakeBytez) -> None:
    model = make(stop=["friend"])
    result = model.invoke("hi", stop=[","])
    # Stop sequences are enforced client-side only: vLLM-backed models refuse them (422).
    assert "stop_strings" not in fake.requests[-1]["params"]
    assert result.content == "Hi there"
    assert result.response_metadata["finish_reason"] == "stop"


def test_stream_stop_split_across_chunks_closes_the_stream(make: Any, fake: FakeBytez) -> None:
    fake.chunks = [b"Hi", b" th", b"ere", b" never", b" read", b" at", b" all"]
    chunks = list(make().stream("hi", stop=["there"]))
    assert "".join(c.text for c in chunks) == "Hi "
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    assert fake.pulled < len(fake.chunks)


async def test_astream_stop(make: Any, fake: FakeBytez) -> None:
    fake.chunks = [b"Hi", b" th", b"ere", b" never"]
    chunks = [c async for c in make().astream("hi", stop=["there"])]
    assert "".join(c.text for c in chunks) == "Hi "
    assert chunks[-1].chunk_position == "last"


# ----------------------------------------------------------------------- metadata


def test_invoke_metadata(make: Any) -> None:
    result = make().invoke("hi")
    meta = result.response_metadata
    assert meta["model_name"] == MODEL
    assert meta["model_provider"] == "bytez"
    assert meta["finish_reason"] is None
    assert meta["inference_time"] == 0.5
    assert meta["inference_cost"] == 0.00005
    assert meta["inference_meter"] == "sm-gpu"
    assert meta["ratelimit_remaining"] == 99
    assert result.usage_metadata is None  # Bytez reports no token counts


def test_stream_chunks_and_final_metadata(make: Any) -> None:
    chunks = list(make().stream("hi"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert [c.text for c in chunks] == ["Hi", " there", ", friend.", ""]
    assert [c.chunk_position for c in chunks] == [None, None, None, "last"]
    assert all(c.response_metadata == {} for c in chunks[:-1])
    last = chunks[-1].response_metadata
    assert last["model_name"] == MODEL
    assert last["model_provider"] == "bytez"
    assert last["inference_time"] == 0.5
    assert last["finish_reason"] is None
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert full.content == "Hi there, friend."
    assert full.usage_metadata is None


def test_stream_using_the_whole_budget_says_length(make: Any) -> None:
    chunks = list(make(max_tokens=3).stream("hi"))
    assert chunks[-1].response_metadata["finish_reason"] == "length"


async def test_async_invoke_and_stream(make: Any, fake: FakeBytez) -> None:
    model = make()
    result = await model.ainvoke("hi")
    assert result.content == "Hi there, friend."
    assert result.response_metadata["model_provider"] == "bytez"
    chunks = [c async for c in model.astream("hi")]
    assert "".join(c.text for c in chunks) == "Hi there, friend."
    assert chunks[-1].response_metadata["model_name"] == MODEL
    results = await model.abatch(["a", "b"])
    assert [r.content for r in results] == ["Hi there, friend."] * 2


def test_retries_reach_the_callbacks(make: Any, fake: FakeBytez) -> None:
    fake.statuses = [503]
    recorder = Recorder()
    result = make(max_retries=1).invoke("hi", config={"callbacks": [recorder]})
    assert result.content == "Hi there, friend."
    assert recorder.retries == 1
    assert len(fake.requests) == 2


# ----------------------------------------------------------------------- params, secrets


def test_ls_params() -> None:
    model = ChatBytez(model=MODEL, max_tokens=7, temperature=0.3, stop=["x"])
    assert model._get_ls_params(stop=["y"]) == {
        "ls_provider": "bytez",
        "ls_model_name": MODEL,
        "ls_model_type": "chat",
        "ls_temperature": 0.3,
        "ls_max_tokens": 7,
        "ls_stop": ["x", "y"],
    }
    assert model._get_ls_params(model="other/m")["ls_model_name"] == "other/m"


def test_standard_param_names() -> None:
    model = ChatBytez(
        model=MODEL,
        temperature=0,
        max_tokens=100,
        timeout=60,
        stop=[],
        max_retries=2,
        api_key="k",
        base_url="http://h",
    )
    assert model.max_new_tokens == 100
    assert model.timeout == 60
    assert model._identifying_params == {
        "model": MODEL,
        "base_url": "http://h",
        "params": {"max_new_tokens": 100, "do_sample": False},
    }
    assert model._llm_type == "bytez-chat"


def test_key_never_leaks(make: Any) -> None:
    recorder = Recorder()
    model = make(provider_key="provider-secret-123", temperature=0.1)
    model.invoke("hi", config={"callbacks": [recorder]})
    list(model.stream("hi", config={"callbacks": [recorder]}))
    surfaces = [
        repr(model),
        str(model),
        dumps(model),
        json.dumps(dumpd(model)),
        repr(model._identifying_params),
        repr(model.model_dump_json()),
        repr(recorder.starts),
    ]
    for text in surfaces:
        assert FAKE_KEY not in text
        assert "provider-secret-123" not in text
    assert len(recorder.starts) == 2
    assert recorder.starts[0]["invocation_params"]["model"] == MODEL


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_dumps_loads_round_trip() -> None:
    model = ChatBytez(
        model=MODEL,
        api_key=FAKE_KEY,
        base_url=URL,
        temperature=0.4,
        max_tokens=9,
        stop=["\n"],
        params={"do_sample": True},
        concurrency=2,
    )
    text = dumps(model)
    assert FAKE_KEY not in text
    data = json.loads(text)
    assert data["id"] == ["langchain_bytez", "chat_models", "ChatBytez"]
    assert data["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["BYTEZ_API_KEY"]}
    restored = loads(
        text,
        secrets_map={"BYTEZ_API_KEY": FAKE_KEY},
        valid_namespaces=["langchain_bytez"],
        allowed_objects=[ChatBytez],
    )
    assert isinstance(restored, ChatBytez)
    assert restored == model
    assert restored.api_key is not None
    assert restored.api_key.get_secret_value() == FAKE_KEY
