"""The fake tool-calling model brain, alone and in a round trip through ``ChatBytez``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_bytez.chat_models import ChatBytez, _answer_mode, _with_system_text, convert_messages
from langchain_bytez.testing.fake_tools import (
    TOOL_FORMATS,
    json_model_reply,
    react_model_reply,
    tool_model_reply,
)
from langchain_bytez.tool_calling import ToolProtocol


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {location}"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


def openai_tools(*tools: Any) -> str:
    return "\n".join(json.dumps(t) for t in ToolProtocol.build(list(tools)).tools)


# ----------------------------------------------------------------------- pure level


def test_no_tools_and_no_result_means_no_opinion() -> None:
    messages = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "hi"}]
    assert tool_model_reply(messages, tool_format="hermes") is None
    assert json_model_reply(messages) is None


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown tool_format 'xml'"):
        tool_model_reply([{"role": "user", "content": "hi"}], tool_format="xml")


@pytest.mark.parametrize(
    ("system", "question", "expected"),
    [
        (
            # OpenAI tool objects, one per line, in somebody else's words.
            "You have these functions:\n" + openai_tools(get_weather, add),
            "What is 2 + 3?",
            ("add", {"a": 2, "b": 3}),
        ),
        (
            # A bare list of {"name", "parameters"} objects (Llama 3.1 style prompt).
            json.dumps(
                [
                    {
                        "name": "get_weather",
                        "description": "Weather now",
                        "parameters": {
                            "type": "object",
                            "properties": {"location": {"type": "string"}},
                            "required": ["location"],
                        },
                    },
                    {
                        "name": "multiply",
                        "description": "Multiply two numbers",
                        "parameters": {
                            "type": "object",
                            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                            "required": ["x", "y"],
                        },
                    },
                ]
            ),
            "What's the weather in Paris today?",
            ("get_weather", {"location": "Paris"}),
        ),
        (
            # Anthropic-style input_schema; numbers are taken in order, floats kept.
            'tools: {"name": "multiply", "description": "Multiply", "input_schema": '
            '{"type": "object", "properties": {"x": {"type": "number"}, '
            '"y": {"type": "number"}}, "required": ["x", "y"]}}',
            "What is 1.5 times 4?",
            ("multiply", {"x": 1.5, "y": 4}),
        ),
    ],
)
def test_calls_the_matching_tool_with_arguments_from_the_question(
    system: str, question: str, expected: tuple[str, dict[str, Any]]
) -> None:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    reply = tool_model_reply(messages, tool_format="json_list")
    assert reply is not None
    [call] = json.loads(reply)
    assert (call["name"], call["arguments"]) == expected


@pytest.mark.parametrize(
    ("tool_format", "expected"),
    [
        ("hermes", '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'),
        ("json", '{"name": "add", "parameters": {"a": 2, "b": 3}}'),
        ("json_list", '[{"name": "add", "arguments": {"a": 2, "b": 3}}]'),
        (
            "fenced",
            '```json\n{\n  "name": "add",\n  "arguments": {\n    "a": 2,\n    "b": 3\n  }\n}\n```',
        ),
        ("mistral", '[TOOL_CALLS][{"name": "add", "arguments": {"a": 2, "b": 3}}]'),
    ],
)
def test_each_format_is_written_as_documented(tool_format: str, expected: str) -> None:
    messages = [
        {"role": "system", "content": openai_tools(add)},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    assert tool_model_reply(messages, tool_format=tool_format) == expected


def test_prose_format_writes_a_sentence_first_and_varies_with_the_seed() -> None:
    messages = [
        {"role": "system", "content": openai_tools(add)},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    replies = {tool_model_reply(messages, tool_format="prose", seed=str(i)) for i in range(12)}
    assert len(replies) > 1
    for reply in replies:
        assert reply is not None
        sentence, call = reply.split("\n")
        assert "add" in sentence
        assert json.loads(call) == {"name": "add", "arguments": {"a": 2, "b": 3}}


@pytest.mark.parametrize(
    "result_message",
    [
        {"role": "tool", "content": "5"},
        {"role": "ipython", "content": '{"output": 5}'},
        {
            "role": "user",
            "content": '<tool_response>\n{"name": "add", "content": "5"}\n</tool_response>',
        },
        {"role": "user", "content": '[TOOL_RESULTS]{"content": 5}[/TOOL_RESULTS]'},
    ],
)
def test_a_tool_result_is_answered_in_text(result_message: dict[str, Any]) -> None:
    messages = [
        {"role": "system", "content": openai_tools(add)},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": '{"name": "add", "arguments": {"a": 2, "b": 3}}'},
        result_message,
    ]
    assert tool_model_reply(messages, tool_format="hermes") == "The answer is 5."


def test_a_new_question_after_a_result_calls_again() -> None:
    messages = [
        {"role": "system", "content": openai_tools(add)},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "tool", "content": "5"},
        {"role": "assistant", "content": "The answer is 5."},
        {"role": "user", "content": "And 7 + 8?"},
    ]
    reply = tool_model_reply(messages, tool_format="json")
    assert reply is not None
    assert json.loads(reply) == {"name": "add", "parameters": {"a": 7, "b": 8}}


def test_json_reply_follows_the_schema_with_values_from_the_question() -> None:
    schema = Person.model_json_schema()
    messages = [
        {"role": "system", "content": f"Reply in JSON following {json.dumps(schema)}"},
        {"role": "user", "content": "Tell me about Ann, who is 31."},
    ]
    reply = json_model_reply(messages)
    assert reply is not None
    assert Person.model_validate_json(reply) == Person(name="Ann", age=31)


def test_json_reply_ignores_tool_definitions() -> None:
    messages = [
        {"role": "system", "content": openai_tools(add)},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    assert json_model_reply(messages) is None


def test_json_reply_handles_nested_refs_enums_and_optionals() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["cat", "dog"]},
            "owner": {"$ref": "#/$defs/Owner"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "score": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
        },
        "required": ["kind", "owner", "tags", "score"],
        "$defs": {"Owner": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    messages = [{"role": "user", "content": f"Schema: {json.dumps(schema)}\nBob scored 9."}]
    reply = json_model_reply(messages)
    assert reply is not None
    assert json.loads(reply) == {
        "kind": "cat",
        "owner": {"name": "Bob"},
        "tags": ["Bob"],
        "score": 9,
    }


# ----------------------------------------------------------------------- round trip


def rendered_request(messages: list[Any], **kwargs: Any) -> list[dict[str, Any]]:
    """What ChatBytez sends for a call with these per-call kwargs."""
    mode = _answer_mode(kwargs)
    return convert_messages(_with_system_text(messages, mode.system_text()))


@pytest.mark.parametrize("tool_format", TOOL_FORMATS)
def test_round_trip_prompt_fake_parser(tool_format: str) -> None:
    tools = ToolProtocol.build([get_weather, add])
    request = rendered_request([HumanMessage("What is 2 + 3?")], tools=list(tools.tools))
    reply = tool_model_reply(request, tool_format=tool_format)
    assert reply is not None
    parsed = tools.parse(reply)
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert parsed.invalid_tool_calls == []


@pytest.mark.parametrize("tool_format", TOOL_FORMATS)
def test_round_trip_two_steps(tool_format: str) -> None:
    tools = ToolProtocol.build([get_weather, add])
    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}])
    history = [HumanMessage("What is 2 + 3?"), call, ToolMessage("5", tool_call_id="c1")]
    request = rendered_request(history, tools=list(tools.tools))
    reply = tool_model_reply(request, tool_format=tool_format)
    assert reply == "The answer is 5."
    assert tools.parse(reply).tool_calls == []


def test_round_trip_json_answer() -> None:
    schema = Person.model_json_schema()
    request = rendered_request(
        [HumanMessage("Ann is 31 years old.")],
        response_format={"type": "json_schema", "json_schema": {"schema": schema}},
    )
    reply = json_model_reply(request)
    assert reply is not None
    assert Person.model_validate_json(reply) == Person(name="Ann", age=31)


# ----------------------------------------------------------------------- through ChatBytez


class FakeToolServer:
    """A Bytez chat route answered by the fake brain (what the local server will do)."""

    def __init__(self, tool_format: str) -> None:
        self.tool_format = tool_format
        self.runs = 0

    def _reply(self, messages: list[dict[str, Any]]) -> str:
        self.runs += 1
        reply = tool_model_reply(messages, tool_format=self.tool_format, seed=str(self.runs))
        return reply if reply is not None else json_model_reply(messages) or "Hello!"

    def sync(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text = self._reply(body["messages"])
        if body.get("stream"):
            pieces = [text[i : i + 3].encode() for i in range(0, len(text), 3)]
            return httpx.Response(200, content=iter(pieces))
        return httpx.Response(
            200, json={"error": None, "output": {"role": "assistant", "content": text}}
        )

    async def async_(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text = self._reply(body["messages"])
        if body.get("stream"):

            async def pieces() -> AsyncIterator[bytes]:
                for i in range(0, len(text), 3):
                    yield text[i : i + 3].encode()

            return httpx.Response(200, content=pieces())
        return httpx.Response(
            200, json={"error": None, "output": {"role": "assistant", "content": text}}
        )


@pytest.fixture(params=TOOL_FORMATS)
def fake_server(request: pytest.FixtureRequest) -> FakeToolServer:
    return FakeToolServer(request.param)


@pytest.fixture
def chat(fake_server: FakeToolServer) -> Iterator[ChatBytez]:
    http = httpx.Client(transport=httpx.MockTransport(fake_server.sync))
    ahttp = httpx.AsyncClient(transport=httpx.MockTransport(fake_server.async_))
    yield ChatBytez(
        model="org/tool-model",
        api_key="k",
        base_url="http://127.0.0.1:9",
        auto_load=False,
        max_retries=0,
        http_client=http,
        http_async_client=ahttp,
    )
    http.close()


def test_bind_tools_invoke_against_every_format(chat: ChatBytez) -> None:
    message = chat.bind_tools([add]).invoke("What is 2 + 3?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("add", {"a": 2, "b": 3})]


def test_bind_tools_stream_against_every_format(chat: ChatBytez) -> None:
    chunks = list(chat.bind_tools([add, get_weather]).stream("What is 2 + 3?"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("add", {"a": 2, "b": 3})]  # type: ignore[attr-defined]


def test_create_agent_runs_the_tool_once_and_answers(
    chat: ChatBytez, fake_server: FakeToolServer
) -> None:
    from langchain.agents import create_agent

    runs: list[tuple[int, int]] = []

    @tool
    def add_numbers(a: int, b: int) -> int:
        """Add two integers."""
        runs.append((a, b))
        return a + b

    agent = create_agent(chat, tools=[add_numbers])
    result = agent.invoke({"messages": [HumanMessage("What is 2 + 3?")]})
    assert runs == [(2, 3)]
    assert result["messages"][-1].content == "The answer is 5."
    assert fake_server.runs == 2


def test_langgraph_create_react_agent(chat: ChatBytez) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of create_agent, still used
        from langgraph.prebuilt import create_react_agent

        agent = create_react_agent(chat, tools=[add])
    result = agent.invoke({"messages": [HumanMessage("What is 2 + 3?")]})
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.content for m in tool_messages] == ["5"]
    assert result["messages"][-1].content == "The answer is 5."


async def test_create_agent_async_and_streamed_messages(
    chat: ChatBytez, fake_server: FakeToolServer
) -> None:
    from langchain.agents import create_agent

    runs: list[tuple[int, int]] = []

    @tool
    def add_numbers(a: int, b: int) -> int:
        """Add two integers."""
        runs.append((a, b))
        return a + b

    agent = create_agent(chat, tools=[add_numbers])
    result = await agent.ainvoke({"messages": [HumanMessage("What is 2 + 3?")]})
    assert result["messages"][-1].content == "The answer is 5."
    streamed: list[Any] = []
    async for message, _ in agent.astream(
        {"messages": [HumanMessage("What is 2 + 3?")]}, stream_mode="messages"
    ):
        streamed.append(message)
    assert runs == [(2, 3), (2, 3)]
    calls = [c for m in streamed for c in getattr(m, "tool_call_chunks", [])]
    assert [c["name"] for c in calls] == ["add_numbers"]
    answer = "".join(
        m.text for m in streamed if isinstance(m, AIMessageChunk) and not m.tool_call_chunks
    )
    assert answer.endswith("The answer is 5.")
    assert any(isinstance(m, ToolMessage) and m.content == "5" for m in streamed)


def test_create_agent_response_format(chat: ChatBytez) -> None:
    from langchain.agents import create_agent

    agent = create_agent(chat, tools=[add], response_format=Person)
    result = agent.invoke({"messages": [HumanMessage("Ann is 31 years old.")]})
    assert result["structured_response"] == Person(name="Ann", age=31)


def test_structured_output_against_the_fake(chat: ChatBytez) -> None:
    for method in ("function_calling", "json_schema"):
        person = chat.with_structured_output(Person, method=method).invoke(  # type: ignore[arg-type]
            "Ann is 31 years old."
        )
        assert person == Person(name="Ann", age=31)


# ----------------------------------------------------------------------- generic reading


def test_a_quoted_phrase_is_the_string_argument() -> None:
    @tool
    def create_customer(customer_name: str) -> str:
        """Create a customer."""
        return customer_name

    messages = [
        {"role": "system", "content": openai_tools(create_customer)},
        {"role": "user", "content": "Create a customer named '你好啊集团' (Hello Group)"},
    ]
    reply = tool_model_reply(messages, tool_format="json_list")
    assert reply is not None
    assert json.loads(reply) == [
        {"name": "create_customer", "arguments": {"customer_name": "你好啊集团"}}
    ]


def test_an_apostrophe_opens_no_quote() -> None:
    messages = [
        {"role": "system", "content": openai_tools(get_weather)},
        {"role": "user", "content": "What's the weather in Paris? It's cold."},
    ]
    reply = tool_model_reply(messages, tool_format="json")
    assert reply is not None
    assert json.loads(reply)["parameters"] == {"location": "Paris"}


def test_a_tool_the_instructions_name_is_called_whatever_the_question() -> None:
    system = openai_tools(add, get_weather) + "\nYou have to use get_weather now."
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    reply = tool_model_reply(messages, tool_format="json")
    assert reply is not None
    assert json.loads(reply)["name"] == "get_weather"


def test_a_sentence_result_keeps_one_full_stop() -> None:
    messages = [
        {"role": "system", "content": openai_tools(get_weather)},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '{"name": "get_weather"}'},
        {"role": "user", "content": "<tool_response>Sunny in Paris.</tool_response>"},
    ]
    assert tool_model_reply(messages, tool_format="json") == "The answer is Sunny in Paris."


# ----------------------------------------------------------------------- ReAct text

REACT = """Answer the following questions as best you can. You have access to the \
following tools:

{tools}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{names}]
Action Input: the input to the action
Observation: the result of the action
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: {question}
Thought:{scratchpad}"""


@pytest.mark.parametrize(
    "tools",
    [
        "search(query: str) -> str - Search the web.\nadd(a: int, b: int) -> int - Add.",
        # Postponed annotations render as strings.
        "search(query: 'str') -> 'str' - Search.\nadd(a: 'int', b: 'int') -> 'int' - Add.",
    ],
)
def test_react_reply_writes_the_action_then_runs_on(tools: str) -> None:
    prompt = REACT.format(
        tools=tools, names="search, add", question="What is 2 + 3?", scratchpad=""
    )
    reply = react_model_reply(prompt)
    assert reply is not None
    action, rest = reply.split("\nObservation:", 1)
    assert action == ' I should use the add tool.\nAction: add\nAction Input: {"a": 2, "b": 3}'
    assert "Final Answer:" in rest  # unstopped, it invents the rest


def test_react_reply_without_a_signature_passes_the_question() -> None:
    prompt = REACT.format(
        tools="Search: look things up on the web",
        names="Search",
        question="Who wrote Faust?",
        scratchpad="",
    )
    reply = react_model_reply(prompt)
    assert reply is not None
    assert "Action: Search\nAction Input: Who wrote Faust?\n" in reply


def test_react_reply_answers_from_the_last_observation() -> None:
    scratchpad = (
        ' I should use add.\nAction: add\nAction Input: {"a": 2, "b": 3}\nObservation: 5\nThought:'
    )
    prompt = REACT.format(
        tools="add(a: int, b: int) -> int - Add.",
        names="add",
        question="What is 2 + 3?",
        scratchpad=scratchpad,
    )
    assert react_model_reply(prompt) == " I now know the final answer.\nFinal Answer: 5"


def test_react_reply_needs_the_react_format() -> None:
    assert react_model_reply("Once upon a time") is None
    assert react_model_reply("Question: what?\nThought:") is None  # no tool list
