"""The prompt-based tool protocol: parser corpus, streaming scanner, validation, history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.messages import (
    AIMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_bytez.tool_calling import (
    ToolProtocol,
    extract_json,
    format_tools,
    normalize_tool_choice,
    render_history,
    validate_arguments,
)

CORPUS = json.loads(
    (Path(__file__).parent / "data" / "tool_call_corpus.json").read_text(encoding="utf-8")
)["outputs"]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def get_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Get the current weather in a location."""
    return f"sunny in {location} ({unit})"


@tool
def get_time() -> str:
    """The current time."""
    return "noon"


@tool
def search(query: str, max_results: int = 3) -> str:
    """Search the web."""
    return query * max_results


TOOLS = [add, get_weather, get_time, search]


def protocol(choice: Any = None) -> ToolProtocol:
    return ToolProtocol.build(TOOLS, choice)


def feed_in_pieces(proto: ToolProtocol, text: str, size: int) -> tuple[str, list[Any]]:
    scanner = proto.scanner()
    events = []
    for start in range(0, len(text), size):
        events += scanner.feed(text[start : start + size])
    events += scanner.finish()
    return (
        "".join(e.text for e in events if e.kind == "text"),
        [e.call for e in events if e.call is not None],
    )


# ----------------------------------------------------------------------- the corpus


def test_corpus_covers_every_format() -> None:
    formats = {entry["format"] for entry in CORPUS}
    assert {
        "hermes",
        "json",
        "json_list",
        "fenced",
        "mistral",
        "prose",
        "function-tag",
        "granite",
        "pythonic",
        "text",
    } <= formats


@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_corpus_is_parsed(entry: dict[str, Any]) -> None:
    parsed = protocol().parse(entry["text"])
    assert parsed.content == entry["content"]
    assert [[c["name"], c["args"]] for c in parsed.tool_calls] == entry["calls"]
    assert len(parsed.invalid_tool_calls) == entry["invalid"]
    for call in parsed.tool_calls:
        assert call["id"]
        assert call["id"].startswith("call_")
    for bad in parsed.invalid_tool_calls:
        assert entry["error"] in (bad["error"] or "")
        assert bad["args"]  # the model's text is kept
        assert bad["id"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 13])
@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_corpus_streamed_in_pieces_gives_the_same_answer(entry: dict[str, Any], size: int) -> None:
    proto = protocol()
    whole = feed_in_pieces(proto, entry["text"], len(entry["text"]) or 1)
    assert feed_in_pieces(proto, entry["text"], size) == whole


def test_ids_are_unique() -> None:
    parsed = protocol().parse(CORPUS[1]["text"])
    assert len({c["id"] for c in parsed.tool_calls}) == 2


# ----------------------------------------------------------------------- streaming hold-back


def test_text_is_released_as_soon_as_it_cannot_be_a_call() -> None:
    scanner = protocol().scanner()
    assert [e.text for e in scanner.feed("The answer")] == ["The answer"]
    assert [e.text for e in scanner.feed(" is 5")] == [" is 5"]
    # Trailing whitespace waits for more text (dropped if a call follows).
    assert [e.text for e in scanner.feed(".\n")] == ["."]
    assert [e.text for e in scanner.feed("Bye")] == ["\nBye"]
    assert [e.text for e in scanner.finish()] == []


def test_only_a_possible_marker_is_held_back() -> None:
    scanner = protocol().scanner()
    assert [e.text for e in scanner.feed("ok <tool_")] == ["ok"]
    assert scanner.feed("call>") == []
    assert scanner.feed('{"name": "get_time", "arguments": {}}') == []
    events = scanner.feed("</tool_call>")
    assert [e.kind for e in events] == ["call"]
    assert scanner.finish() == []  # the space before the call is dropped


def test_a_marker_prefix_that_turns_out_to_be_text_is_released() -> None:
    scanner = protocol().scanner()
    assert [e.text for e in scanner.feed("a <tool")] == ["a"]
    assert [e.text for e in scanner.feed("box> b")] == [" <toolbox> b"]


def test_a_line_start_json_object_is_held_until_it_is_complete() -> None:
    scanner = protocol().scanner()
    assert scanner.feed('{"name": "Ann",') == []
    events = scanner.feed(' "age": 3}')
    assert [(e.kind, e.text) for e in events] == [("text", '{"name": "Ann", "age": 3}')]


def test_a_json_object_inside_a_line_is_text() -> None:
    text = 'Use {"name": "add", "arguments": {"a": 1, "b": 2}} like this.'
    parsed = protocol().parse(text)
    assert parsed.content == text
    assert parsed.tool_calls == []


def test_reasoning_streams_while_it_is_written() -> None:
    scanner = protocol().scanner()
    assert "".join(e.text for e in scanner.feed("<think>\nI need add")) == "<think>\nI need add"
    assert "".join(e.text for e in scanner.feed(' {"name": "add"} </th')) == (' {"name": "add"}')
    assert "".join(e.text for e in scanner.feed("ink>")) == " </think>"
    assert [e.kind for e in scanner.feed('\n<tool_call>{"name": "get_time"}</tool_call>')] == [
        "call"
    ]


def test_a_code_block_of_another_language_streams_through() -> None:
    scanner = protocol().scanner()
    events = scanner.feed("```python\nx = 1\n")
    assert "".join(e.text for e in events) == "```python\nx = 1"


# ----------------------------------------------------------------------- tool choice


def test_required_without_a_call_is_an_invalid_call() -> None:
    parsed = protocol("any").parse("I do not know.")
    assert parsed.tool_calls == []
    assert parsed.content == "I do not know."
    [missing] = parsed.invalid_tool_calls
    assert missing["args"] == "I do not know."
    assert "requires a tool call" in (missing["error"] or "")


def test_named_choice_without_a_call_names_the_tool() -> None:
    [missing] = protocol("add").parse("5").invalid_tool_calls
    assert missing["name"] == "add"
    assert "'add'" in (missing["error"] or "")


def test_named_choice_refuses_another_tool() -> None:
    parsed = protocol("add").parse('<tool_call>{"name": "get_time", "arguments": {}}</tool_call>')
    assert parsed.tool_calls == []
    assert "requires 'add'" in (parsed.invalid_tool_calls[0]["error"] or "")


def test_forced_tool_accepts_the_bare_arguments() -> None:
    parsed = protocol("add").parse('{"a": 2, "b": 3}')
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert parsed.content == ""


def test_bare_arguments_are_text_when_no_tool_is_forced() -> None:
    parsed = protocol().parse('{"a": 2, "b": 3}')
    assert parsed.tool_calls == []
    assert parsed.content == '{"a": 2, "b": 3}'


def test_none_reads_no_calls_and_renders_no_prompt() -> None:
    proto = protocol("none")
    text = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    assert proto.parse(text).content == text
    assert proto.parse(text).tool_calls == []
    assert proto.system_prompt() == ""


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, "auto"),
        ("auto", "auto"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("none", "none"),
        (False, "none"),
        ("add", "add"),
        ({"type": "function", "function": {"name": "add"}}, "add"),
        ({"type": "tool", "name": "add"}, "add"),
        ({"type": "any"}, "required"),
    ],
)
def test_tool_choice_forms(choice: Any, expected: str) -> None:
    assert normalize_tool_choice(choice, ["add", "get_time"]) == expected


@pytest.mark.parametrize(
    ("choice", "match"),
    [
        ("multiply", "not bound; bound tools: add, get_time"),
        ({"type": "function", "function": {"name": "nope"}}, "'nope'"),
        (3, "Unsupported tool_choice"),
    ],
)
def test_bad_tool_choice_is_refused(choice: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        normalize_tool_choice(choice, ["add", "get_time"])


def test_required_with_no_tools_is_refused() -> None:
    with pytest.raises(ValueError, match="no tools are bound"):
        normalize_tool_choice("any", [])


def test_system_prompt_carries_schemas_format_and_rule() -> None:
    prompt = protocol("add").system_prompt()
    assert '"name": "add"' in prompt
    assert '"required": ["a", "b"]' in prompt
    assert "<tool_call>" in prompt
    assert "You must call the function 'add'" in prompt
    assert "at least one" in protocol("any").system_prompt()
    assert "at most one" in ToolProtocol.build(TOOLS, parallel=False).system_prompt()


# ----------------------------------------------------------------------- tool conversion


class Person(BaseModel):
    """A person."""

    name: str = Field(description="Full name")
    age: int


def multiply(x: float, y: float) -> float:
    """Multiply two numbers.

    Args:
        x: First factor.
        y: Second factor.
    """
    return x * y


def test_every_tool_kind_converts() -> None:
    formatted = format_tools(
        [
            add,
            Person,
            multiply,
            {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
            {
                "type": "function",
                "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}},
            },
        ]
    )
    assert [t["function"]["name"] for t in formatted] == [
        "add",
        "Person",
        "multiply",
        "lookup",
        "ping",
    ]


@pytest.mark.parametrize("bad", [42, "not a tool", {"type": "retrieval"}])
def test_unconvertible_tools_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"tools\[1\]"):
        format_tools([add, bad])


# ----------------------------------------------------------------------- validation

SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "integer"}},
        "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "inner": {
            "type": "object",
            "properties": {"k": {"type": "string"}},
            "required": ["k"],
            "additionalProperties": False,
        },
    },
    "required": ["count"],
}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"count": "2"}, {"count": 2}),
        ({"count": " -7 "}, {"count": -7}),
        ({"count": 2.0}, {"count": 2}),
        ({"count": 1, "ratio": "2.5"}, {"count": 1, "ratio": 2.5}),
        ({"count": 1, "ratio": "3"}, {"count": 1, "ratio": 3}),
        ({"count": 1, "tags": ["1", 2]}, {"count": 1, "tags": [1, 2]}),
        ({"count": 1, "maybe": None}, {"count": 1, "maybe": None}),
        ({"count": 1, "maybe": "4"}, {"count": 1, "maybe": 4}),
        ({"count": 1, "inner": {"k": "v"}}, {"count": 1, "inner": {"k": "v"}}),
        ({"count": 1, "extra": "kept"}, {"count": 1, "extra": "kept"}),
    ],
)
def test_valid_arguments_and_coercion(arguments: Any, expected: Any) -> None:
    assert validate_arguments(arguments, SCHEMA) == (expected, [])


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({}, "count: required argument missing"),
        ({"count": "2.5"}, "count: expected integer"),
        ({"count": 2.5}, "count: expected integer"),
        ({"count": "two"}, "count: expected integer"),
        ({"count": True}, "count: expected integer"),
        ({"count": 1, "flag": "true"}, "flag: expected boolean"),
        ({"count": 1, "ratio": "nan"}, "ratio: expected number"),
        ({"count": 1, "tags": "1,2"}, "tags: expected array"),
        ({"count": 1, "tags": ["x"]}, "tags[0]: expected integer"),
        ({"count": 1, "maybe": "x"}, "maybe: 'x' matches none of anyOf"),
        ({"count": 1, "inner": {}}, "inner.k: required argument missing"),
        ({"count": 1, "inner": {"k": "v", "z": 1}}, "inner.z: unexpected argument"),
    ],
)
def test_invalid_arguments_are_reported(arguments: Any, error: str) -> None:
    _, errors = validate_arguments(arguments, SCHEMA)
    assert any(error in e for e in errors), errors


def test_no_schema_accepts_anything() -> None:
    assert validate_arguments({"a": "1"}, None) == ({"a": "1"}, [])


# ----------------------------------------------------------------------- history rendering


def test_history_uses_only_three_roles_and_keeps_calls_and_results() -> None:
    history = [
        SystemMessage("be brief"),
        HumanMessage("2 + 3?"),
        AIMessage(
            "Adding.",
            tool_calls=[
                {"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"},
                {"name": "get_time", "args": {}, "id": "c2"},
            ],
        ),
        ToolMessage("5", tool_call_id="c1"),
        ToolMessage("boom", tool_call_id="c2", status="error"),
        FunctionMessage(name="legacy", content="x"),
    ]
    rendered = render_history(history)
    assert [m.type for m in rendered] == ["system", "human", "ai", "human", "human", "human"]
    assert rendered[2].content == (
        "Adding.\n"
        '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    )
    assert rendered[3].content == (
        '<tool_response>\n{"name": "add", "id": "c1", "content": "5"}\n</tool_response>'
    )
    assert '"status": "error"' in str(rendered[4].content)
    assert '"name": "get_time"' in str(rendered[4].content)
    assert '"name": "legacy"' in str(rendered[5].content)


def test_rendered_calls_parse_back_to_the_same_calls() -> None:
    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}])
    [rendered] = render_history([call])
    parsed = protocol().parse(str(rendered.content))
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("add", {"a": 2, "b": 3})]


def test_openai_style_and_invalid_calls_are_rendered() -> None:
    openai = AIMessage(
        "",
        additional_kwargs={
            "tool_calls": [
                {"id": "x", "type": "function", "function": {"name": "add", "arguments": "{}"}}
            ]
        },
    )
    invalid = AIMessage(
        "",
        invalid_tool_calls=[{"name": "add", "args": '{"a": 1}', "id": "y", "error": "b missing"}],
    )
    rendered = render_history([openai, invalid])
    assert rendered[0].content == '<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call>'
    assert rendered[1].content == (
        '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>'
    )


def test_tool_result_media_blocks_are_kept() -> None:
    image = {"type": "image", "url": "https://x/a.png"}
    [rendered] = render_history(
        [ToolMessage([{"type": "text", "text": "chart"}, image], tool_call_id="c")]
    )
    assert isinstance(rendered.content, list)
    assert rendered.content[1] == image
    assert '"content": "chart"' in rendered.content[0]["text"]  # type: ignore[index]


# ----------------------------------------------------------------------- JSON answers


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        'Here you go:\n```json\n{"a": 1}\n```',
        'Sure! {"a": 1} Hope that helps.',
        "{'a': 1}",
    ],
)
def test_extract_json(text: str) -> None:
    assert extract_json(text) == {"a": 1}


def test_extract_json_refuses_text() -> None:
    with pytest.raises(ValueError, match="no valid JSON"):
        extract_json("no json here")
