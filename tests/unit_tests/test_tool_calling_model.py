"""``ChatBytez.bind_tools`` / ``with_structured_output`` over ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel
from typing_extensions import TypedDict

from langchain_bytez.chat_models import ChatBytez

URL = "http://127.0.0.1:9"


class Answering:
    """A Bytez chat route that answers a fixed text; records the request bodies."""

    def __init__(self) -> None:
        self.text = ""
        self.piece = 4
        self.requests: list[dict[str, Any]] = []

    def _answer(self, request: httpx.Request, chunks: Any) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if body.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/plain"}, content=chunks)
        output = {"role": "assistant", "content": self.text}
        return httpx.Response(200, json={"error": None, "output": output})

    def _pieces(self) -> list[bytes]:
        return [
            self.text[i : i + self.piece].encode() for i in range(0, len(self.text), self.piece)
        ]

    def sync(self, request: httpx.Request) -> httpx.Response:
        def chunks() -> Iterator[bytes]:
            yield from self._pieces()

        return self._answer(request, chunks())

    async def async_(self, request: httpx.Request) -> httpx.Response:
        async def chunks() -> AsyncIterator[bytes]:
            for piece in self._pieces():
                yield piece

        return self._answer(request, chunks())


@pytest.fixture
def server() -> Answering:
    return Answering()


@pytest.fixture
def model(server: Answering) -> Iterator[ChatBytez]:
    http = httpx.Client(transport=httpx.MockTransport(server.sync))
    ahttp = httpx.AsyncClient(transport=httpx.MockTransport(server.async_))
    yield ChatBytez(
        model="org/chat",
        api_key="k",
        base_url=URL,
        auto_load=False,
        max_retries=0,
        http_client=http,
        http_async_client=ahttp,
    )
    http.close()


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def get_time() -> str:
    """The current time."""
    return "noon"


class Person(BaseModel):
    """A person."""

    name: str
    age: int


class PersonDict(TypedDict):
    """A person."""

    name: str
    age: int


PERSON_SCHEMA = {
    "title": "Person",
    "description": "A person.",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}

CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": "3"}}\n</tool_call>'


def calls_of(message: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(c["name"], c["args"]) for c in message.tool_calls]


def invalid_of(message: AIMessage) -> list[tuple[str | None, str | None]]:
    return [(c["name"], c["args"]) for c in message.invalid_tool_calls]


def aggregate(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# ----------------------------------------------------------------------- invoke


def test_invoke_returns_validated_tool_calls(model: ChatBytez, server: Answering) -> None:
    server.text = CALL
    message = model.bind_tools([add, get_time]).invoke("What is 2 + 3?")
    assert calls_of(message) == [("add", {"a": 2, "b": 3})]
    assert message.content == ""
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.tool_calls[0]["id"]


def test_tools_go_into_the_system_prompt_never_into_params(
    model: ChatBytez, server: Answering
) -> None:
    server.text = CALL
    model.bind_tools([add], tool_choice="any", parallel_tool_calls=False).invoke(
        [SystemMessage("Be terse."), HumanMessage("2 + 3?")]
    )
    [body] = server.requests
    assert set(body) == {"messages", "params"}
    assert body["params"] == {}
    system, user = body["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("Be terse.\n\n# Tools")  # the user's text first
    assert '"name": "add"' in system["content"]
    assert "at most one" in system["content"]
    assert user == {"role": "user", "content": "2 + 3?"}


def test_raw_bind_tools_is_read_not_sent(model: ChatBytez, server: Answering) -> None:
    server.text = CALL
    openai_tool = {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    }
    message = model.bind(tools=[openai_tool]).invoke("2 + 3?")
    assert calls_of(message) == [("add", {"a": 2, "b": 3})]
    assert server.requests[0]["params"] == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"functions": [{"name": "f"}]}, "legacy OpenAI 'functions'"),
        ({"function_call": "auto"}, "legacy OpenAI 'function_call'"),
        ({"tool_choice": "any"}, "no tools are bound"),
        ({"tools": "add"}, "tools must be a list"),
        ({"tools": [42]}, r"tools\[0\]"),
        ({"response_format": {"type": "xml"}}, "Unsupported response_format"),
    ],
)
def test_bad_tool_kwargs_are_refused_before_sending(
    model: ChatBytez, server: Answering, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        model.invoke("hi", **kwargs)
    assert server.requests == []


def test_bind_time_errors(model: ChatBytez) -> None:
    with pytest.raises(ValueError, match=r"tools\[1\] \(int\) cannot be converted"):
        model.bind_tools([add, 42])
    with pytest.raises(ValueError, match="'multiply', which is not bound"):
        model.bind_tools([add], tool_choice="multiply")


def test_required_choice_without_a_call_is_not_an_empty_success(
    model: ChatBytez, server: Answering
) -> None:
    server.text = "I would rather not."
    message = model.bind_tools([add], tool_choice="any").invoke("2 + 3?")
    assert message.tool_calls == []
    assert message.content == "I would rather not."
    [missing] = message.invalid_tool_calls
    assert missing["args"] == "I would rather not."
    assert "requires" in (missing["error"] or "")


def test_a_text_answer_stays_text(model: ChatBytez, server: Answering) -> None:
    server.text = "Hello there!\n"
    message = model.bind_tools([add]).invoke("hi")
    assert message.content == "Hello there!\n"
    assert message.tool_calls == []
    assert message.invalid_tool_calls == []
    assert message.response_metadata["finish_reason"] is None


def test_tool_choice_none_sends_no_tool_prompt(model: ChatBytez, server: Answering) -> None:
    server.text = CALL
    message = model.bind_tools([add], tool_choice="none").invoke("hi")
    assert message.content == CALL
    assert message.tool_calls == []
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_history_of_a_multi_step_agent_is_sent_rendered(
    model: ChatBytez, server: Answering
) -> None:
    server.text = "The answer is 5."
    history: list[BaseMessage] = [
        HumanMessage("2 + 3?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
        ToolMessage("5", tool_call_id="c1"),
    ]
    message = model.bind_tools([add]).invoke(history)
    assert message.content == "The answer is 5."
    roles = [m["role"] for m in server.requests[0]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert server.requests[0]["messages"][3]["content"] == (
        '<tool_response>\n{"name": "add", "id": "c1", "content": "5"}\n</tool_response>'
    )


# ----------------------------------------------------------------------- streaming

STREAM_CASES = [
    CALL,
    'Let me add.\n<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>',
    '[TOOL_CALLS] [{"name": "add", "arguments": {"a": 1, "b": 2}}, '
    '{"name": "get_time", "arguments": {}}]',
    "Just text, with {braces} and [brackets].\n\nSecond line.",
    '<tool_call>{"name": "nope", "arguments": {}}</tool_call>',
    '<tool_call>{"name": "add", "arguments": {"a": </tool_call>',
    '{"name": "add", "arguments": {"a": "x", "b": 1}}',
    '{"name": "add", "arguments": {"a": 1, "b"',
]


@pytest.mark.parametrize("choice", ["any", "add"])
@pytest.mark.parametrize("text", ["No.", '{"a": 1}', '{"a": 1, "b": 2}'])
def test_stream_aggregates_to_invoke_under_forced_choice(
    model: ChatBytez, server: Answering, text: str, choice: str
) -> None:
    # Invalid calls survive LangChain's chunk merge as invalid (their args are never a
    # bare JSON object, which the merge would turn into a valid call).
    server.text = text
    bound = model.bind_tools([add, get_time] if choice == "any" else [add], tool_choice=choice)
    invoked = bound.invoke("q")
    streamed = aggregate(list(bound.stream("q")))
    assert calls_of(streamed) == calls_of(invoked)  # type: ignore[arg-type]
    assert invalid_of(streamed) == invalid_of(invoked)  # type: ignore[arg-type]
    assert streamed.content == invoked.content
    assert invoked.tool_calls or invoked.invalid_tool_calls


@pytest.mark.parametrize("piece", [1, 3, 64])
@pytest.mark.parametrize("text", STREAM_CASES)
def test_stream_aggregates_to_invoke(
    model: ChatBytez, server: Answering, text: str, piece: int
) -> None:
    server.text = text
    server.piece = piece
    bound = model.bind_tools([add, get_time])
    invoked = bound.invoke("q")
    streamed = aggregate(list(bound.stream("q")))
    assert streamed.content == invoked.content
    assert calls_of(streamed) == calls_of(invoked)  # type: ignore[arg-type]
    assert invalid_of(streamed) == invalid_of(invoked)  # type: ignore[arg-type]
    assert (
        streamed.response_metadata["finish_reason"] == (invoked.response_metadata["finish_reason"])
    )


async def test_astream_and_ainvoke_agree(model: ChatBytez, server: Answering) -> None:
    server.text = STREAM_CASES[1]
    bound = model.bind_tools([add])
    invoked = await bound.ainvoke("q")
    chunks = [chunk async for chunk in bound.astream("q")]
    streamed = aggregate(chunks)
    assert calls_of(invoked) == [("add", {"a": 1, "b": 2})]
    assert calls_of(streamed) == calls_of(invoked)  # type: ignore[arg-type]
    assert streamed.content == invoked.content == "Let me add."


def test_text_streams_before_the_call_and_the_call_is_one_chunk(
    model: ChatBytez, server: Answering
) -> None:
    server.text = STREAM_CASES[1]
    server.piece = 2
    chunks = list(model.bind_tools([add]).stream("q"))
    with_calls = [i for i, c in enumerate(chunks) if c.tool_call_chunks]
    texts = [i for i, c in enumerate(chunks) if c.content]
    assert len(with_calls) == 1
    assert len(texts) > 1  # the sentence arrived in several pieces
    assert max(texts) < with_calls[0]
    [piece] = chunks[with_calls[0]].tool_call_chunks
    assert piece["name"] == "add"
    assert json.loads(piece["args"] or "") == {"a": 1, "b": 2}
    assert chunks[-1].chunk_position == "last"


def test_streaming_invoke_takes_the_stream_route(model: ChatBytez, server: Answering) -> None:
    server.text = CALL
    message = model.bind_tools([add]).invoke("q", streaming=True)
    assert server.requests[0]["stream"] is True
    assert calls_of(message) == [("add", {"a": 2, "b": 3})]


# ----------------------------------------------------------------------- structured output


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (Person, Person(name="Ann", age=31)),
        (PersonDict, {"name": "Ann", "age": 31}),
        (PERSON_SCHEMA, {"name": "Ann", "age": 31}),
    ],
    ids=["pydantic", "typeddict", "json-schema"],
)
def test_structured_output(
    model: ChatBytez, server: Answering, method: str, schema: Any, expected: Any
) -> None:
    if method == "function_calling":
        name = getattr(schema, "__name__", None) or schema["title"]
        arguments = '{"name": "Ann", "age": "31"}'
        server.text = f'<tool_call>{{"name": "{name}", "arguments": {arguments}}}</tool_call>'

    else:
        server.text = 'Sure:\n```json\n{"name": "Ann", "age": 31}\n```'
    result = model.with_structured_output(schema, method=method).invoke("Ann is 31")  # type: ignore[arg-type]
    assert result == expected
    system = server.requests[0]["messages"][0]
    assert system["role"] == "system"
    assert '"age"' in system["content"]
    assert "ls_structured_output_format" not in json.dumps(server.requests[0])


def test_json_mode_without_schema_returns_any_object(model: ChatBytez, server: Answering) -> None:
    server.text = '{"x": [1, 2]}'
    result = model.with_structured_output(None, method="json_mode").invoke("give json")
    assert result == {"x": [1, 2]}
    assert "one JSON object" in server.requests[0]["messages"][0]["content"]


@pytest.mark.parametrize(
    ("method", "answer", "kept"),
    [
        ("function_calling", "I cannot help with that.", "I cannot help with that."),
        (
            "function_calling",
            '<tool_call>{"name": "Person", "arguments": {"name": 1}}</tool_call>',
            '{"name": 1}',
        ),
        ("function_calling", '{"name": "Ann"}', '{"name": "Ann"}'),
        ("json_schema", "I cannot help with that.", "I cannot help with that."),
        ("json_schema", '{"name": "Ann"}', '{"name": "Ann"}'),
    ],
)
@pytest.mark.parametrize("route", ["invoke", "stream"])
def test_structured_output_failure_raises_with_the_raw_text(
    model: ChatBytez, server: Answering, method: str, answer: str, kept: str, route: str
) -> None:
    server.text = answer
    structured = model.with_structured_output(Person, method=method)  # type: ignore[arg-type]
    with pytest.raises(OutputParserException) as info:
        structured.invoke("?") if route == "invoke" else list(structured.stream("?"))
    assert kept in (info.value.llm_output or "")


def test_structured_output_failure_with_include_raw(model: ChatBytez, server: Answering) -> None:
    server.text = '{"name": "Ann"}'
    result = model.with_structured_output(PERSON_SCHEMA, method="json_schema", include_raw=True)
    out = result.invoke("?")
    assert isinstance(out, dict)
    assert out["parsed"] is None
    assert isinstance(out["parsing_error"], OutputParserException)
    assert out["raw"].content == '{"name": "Ann"}'


def test_structured_output_success_with_include_raw(model: ChatBytez, server: Answering) -> None:
    server.text = (
        '<tool_call>{"name": "Person", "arguments": {"name": "Ann", "age": 3}}</tool_call>'
    )
    out = model.with_structured_output(Person, include_raw=True).invoke("?")
    assert isinstance(out, dict)
    assert out["parsed"] == Person(name="Ann", age=3)
    assert out["parsing_error"] is None
    assert isinstance(out["raw"], AIMessage)


def test_structured_output_small_model_answering_bare_arguments(
    model: ChatBytez, server: Answering
) -> None:
    server.text = '{"name": "Ann", "age": 31}'
    assert model.with_structured_output(Person).invoke("?") == Person(name="Ann", age=31)


def test_structured_output_streams_the_parsed_answer(model: ChatBytez, server: Answering) -> None:
    server.text = (
        '<tool_call>{"name": "Person", "arguments": {"name": "Ann", "age": 3}}</tool_call>'
    )
    assert list(model.with_structured_output(Person).stream("?")) == [Person(name="Ann", age=3)]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((Person,), {"method": "xml"}, "Unknown method"),
        ((None,), {}, "needs a schema"),
        ((Person,), {"foo": 1}, "Unsupported arguments: foo"),
    ],
)
def test_structured_output_bad_arguments(
    model: ChatBytez, args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        model.with_structured_output(*args, **kwargs)
