"""LangChain agents end to end over real HTTP, against the local server's tool models.

* ``langchain.agents.create_agent`` and LangGraph's ``create_react_agent`` on
  ``ChatBytez``: the tool runs exactly once and the answer uses its result, through
  ``invoke``, ``ainvoke`` and ``stream(stream_mode="messages")``, in every call format
  the server's tool model can write (the ``tool_format`` knob);
* typed answers: ``create_agent(..., response_format=...)`` and
  ``with_structured_output``, including a broken answer;
* a classic text ReAct agent on ``BytezLLM`` with ``stop=["\\nObservation:"]`` against
  the strict-params server, which refuses ``stop_strings``: the stop is enforced by the
  client alone.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.prompts import PromptTemplate
from langchain_core.tools import BaseTool, render_text_description, tool
from pydantic import BaseModel

from langchain_bytez import BytezLLM
from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.server import LocalBytezServer
from langchain_bytez.testing.fake_tools import TOOL_FORMATS

TOOL_MODEL = "Qwen/Qwen2.5-7B-Instruct"
REACT_MODEL = "tiiuae/falcon-7b-instruct"
QUESTION = "What is 2 + 3?"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


@pytest.fixture
def server(bytez_server: LocalBytezServer) -> LocalBytezServer:
    bytez_server.load_delay = 0.0
    assert bytez_server.strict_params  # the live default: unknown params are refused
    return bytez_server


@pytest.fixture(params=TOOL_FORMATS)
def tool_format(request: pytest.FixtureRequest, server: LocalBytezServer) -> str:
    server.tool_format = request.param
    return str(request.param)


@pytest.fixture
def chat(server: LocalBytezServer, bytez_api_key: str) -> ChatBytez:
    return ChatBytez(model=TOOL_MODEL, api_key=bytez_api_key, base_url=server.url, max_retries=0)


class CountedAdd:
    """An ``add`` tool that records each run."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int]] = []

        @tool
        def add(a: int, b: int) -> int:
            """Add two integers."""
            self.runs.append((a, b))
            return a + b

        self.tool: BaseTool = add


@pytest.fixture
def add() -> CountedAdd:
    return CountedAdd()


def model_runs(server: LocalBytezServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.model_id == TOOL_MODEL]


def react_agent(chat: ChatBytez, tools: list[BaseTool]) -> Any:
    with warnings.catch_warnings():
        # Deprecated in favour of langchain.agents.create_agent, and still widely used.
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        return create_react_agent(chat, tools=tools)


AGENTS: dict[str, Callable[[ChatBytez, list[BaseTool]], Any]] = {
    "create_agent": lambda chat, tools: create_agent(chat, tools=tools),
    "create_react_agent": react_agent,
}


def check_answered_once(messages: list[Any], add: CountedAdd) -> None:
    """One tool call, one tool result of 5, and a final text answer using it."""
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert [(c["name"], c["args"]) for c in calls] == [("add", {"a": 2, "b": 3})]
    results = [m for m in messages if isinstance(m, ToolMessage)]
    assert [(m.content, m.tool_call_id) for m in results] == [("5", calls[0]["id"])]
    final = messages[-1]
    assert isinstance(final, AIMessage)
    assert not final.tool_calls
    assert final.content == "The answer is 5."
    assert add.runs == [(2, 3)]


# ----------------------------------------------------------------------- tool agents


@pytest.mark.parametrize("agent_kind", sorted(AGENTS))
def test_agent_invoke(
    chat: ChatBytez,
    add: CountedAdd,
    server: LocalBytezServer,
    tool_format: str,
    agent_kind: str,
) -> None:
    agent = AGENTS[agent_kind](chat, [add.tool])
    result = agent.invoke({"messages": [HumanMessage(QUESTION)]})
    check_answered_once(result["messages"], add)
    runs = model_runs(server)
    assert len(runs) == 2  # the call, then the answer
    # The second run carried the call and its result, rendered in the roles the
    # Bytez chat route accepts.
    roles = [m["role"] for m in runs[1].json["messages"]]
    assert set(roles) <= {"system", "user", "assistant"}
    assert "tool" not in json.dumps(roles)


@pytest.mark.parametrize("agent_kind", sorted(AGENTS))
async def test_agent_ainvoke(
    chat: ChatBytez,
    add: CountedAdd,
    server: LocalBytezServer,
    tool_format: str,
    agent_kind: str,
) -> None:
    agent = AGENTS[agent_kind](chat, [add.tool])
    result = await agent.ainvoke({"messages": [HumanMessage(QUESTION)]})
    check_answered_once(result["messages"], add)
    assert len(model_runs(server)) == 2


@pytest.mark.parametrize("agent_kind", sorted(AGENTS))
def test_agent_streams_messages(
    chat: ChatBytez,
    add: CountedAdd,
    server: LocalBytezServer,
    tool_format: str,
    agent_kind: str,
) -> None:
    agent = AGENTS[agent_kind](chat, [add.tool])
    streamed: list[Any] = []
    for message, _metadata in agent.stream(
        {"messages": [HumanMessage(QUESTION)]}, stream_mode="messages"
    ):
        streamed.append(message)
    assert add.runs == [(2, 3)]
    # The runs were streamed, so the call was read from the text as it arrived.
    runs = model_runs(server)
    assert [r.stream for r in runs] == [True, True]
    chunks = [m for m in streamed if isinstance(m, AIMessageChunk)]
    calls = [c for m in chunks for c in m.tool_call_chunks]
    assert [c["name"] for c in calls] == ["add"]
    assert json.loads(calls[0]["args"] or "") == {"a": 2, "b": 3}
    # No text of the call leaked into the message text (the prose format's sentence
    # before the call is text, as the model wrote it).
    text = "".join(m.text for m in chunks)
    assert text.endswith("The answer is 5.")
    assert '"name"' not in text
    assert "{" not in text
    assert [m.content for m in streamed if isinstance(m, ToolMessage)] == ["5"]


async def test_agent_astreams_messages(
    chat: ChatBytez, add: CountedAdd, server: LocalBytezServer, tool_format: str
) -> None:
    agent = create_agent(chat, tools=[add.tool])
    streamed: list[Any] = []
    async for message, _metadata in agent.astream(
        {"messages": [HumanMessage(QUESTION)]}, stream_mode="messages"
    ):
        streamed.append(message)
    assert add.runs == [(2, 3)]
    calls = [c for m in streamed if isinstance(m, AIMessageChunk) for c in m.tool_call_chunks]
    assert [c["name"] for c in calls] == ["add"]
    text = "".join(m.text for m in streamed if isinstance(m, AIMessageChunk))
    assert text.endswith("The answer is 5.")


# ----------------------------------------------------------------------- typed answers


def test_create_agent_response_format(chat: ChatBytez, add: CountedAdd, tool_format: str) -> None:
    agent = create_agent(chat, tools=[add.tool], response_format=Person)
    result = agent.invoke({"messages": [HumanMessage("Ann is 31 years old.")]})
    assert result["structured_response"] == Person(name="Ann", age=31)
    assert add.runs == []  # nothing to add: the schema was the tool to call


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_with_structured_output_returns_a_person(chat: ChatBytez, method: str) -> None:
    extractor = chat.with_structured_output(Person, method=method)  # type: ignore[arg-type]
    assert extractor.invoke("Ann is 31 years old.") == Person(name="Ann", age=31)
    streamed = list(extractor.stream("Bob is 42 years old."))
    assert streamed[-1] == Person(name="Bob", age=42)


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
@pytest.mark.parametrize(
    "reply",
    [
        ["I", " would", " rather", " not", " say."],  # no JSON at all
        ['{"name":', ' "Ann"}'],  # JSON missing a required field
        ['{"name":', ' "Ann",', ' "age":', ' "old"}'],  # a field of the wrong type
    ],
    ids=["text", "missing-field", "wrong-type"],
)
def test_a_broken_structured_answer_raises_with_the_raw_text(
    chat: ChatBytez, server: LocalBytezServer, method: str, reply: list[str]
) -> None:
    server.set_reply(reply, model_id=TOOL_MODEL)
    raw = "".join(reply)
    extractor = chat.with_structured_output(Person, method=method)  # type: ignore[arg-type]
    with pytest.raises(OutputParserException) as caught:
        extractor.invoke("Ann is 31 years old.")
    assert raw in str(caught.value.llm_output)
    # With include_raw the failure is returned instead, with the model's message.
    result = chat.with_structured_output(
        Person,
        method=method,  # type: ignore[arg-type]
        include_raw=True,
    ).invoke("Ann is 31 years old.")
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert isinstance(result["raw"], AIMessage)


# ----------------------------------------------------------------------- classic ReAct

REACT_TEMPLATE = """Answer the following questions as best you can. \
You have access to the following tools:

{tools}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{tool_names}]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat N times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: {input}
Thought:{agent_scratchpad}"""

_ACTION = re.compile(r"Action\s*:\s*(.*?)\s*\nAction\s*Input\s*:\s*(.*)", re.DOTALL)
_FINAL = "Final Answer:"


def parse_react(text: str) -> tuple[str, str] | str:
    """The classic ReAct output parser: ``(tool, input)`` or the final answer.

    Raises:
        OutputParserException: Both an action and a final answer (what a model writes
            when nothing stops it at ``Observation:``), or neither.
    """
    action = _ACTION.search(text)
    if _FINAL in text:
        if action is not None:
            raise OutputParserException(
                f"Parsing LLM output produced both a final answer and an action: {text}"
            )
        return text.split(_FINAL, 1)[1].strip()
    if action is None:
        raise OutputParserException(f"Could not parse LLM output: {text}")
    return action.group(1).strip(), action.group(2).strip().strip('"')


def run_react_agent(
    llm: BytezLLM, tools: list[BaseTool], question: str, *, max_steps: int = 4
) -> tuple[str, list[str]]:
    """A small classic ReAct loop: prompt, parse, run the tool, observe, repeat.

    Returns:
        The final answer and the model outputs of each step.
    """
    prompt = PromptTemplate.from_template(REACT_TEMPLATE)
    by_name = {t.name: t for t in tools}
    scratchpad = ""
    outputs: list[str] = []
    for _ in range(max_steps):
        text = llm.invoke(
            prompt.format(
                tools=render_text_description(tools),
                tool_names=", ".join(by_name),
                input=question,
                agent_scratchpad=scratchpad,
            )
        )
        outputs.append(text)
        step = parse_react(text)
        if isinstance(step, str):
            return step, outputs
        name, tool_input = step
        arguments: Any = tool_input
        if tool_input.startswith("{"):
            arguments = json.loads(tool_input)
        observation = by_name[name].invoke(arguments)
        scratchpad += f"{text}\nObservation: {observation}\nThought:"
    raise AssertionError(f"no final answer after {max_steps} steps: {outputs}")


@tool
def search(query: str) -> str:
    """Search the web."""
    return f"Nothing found for {query}."


@pytest.fixture
def react_llm(server: LocalBytezServer, bytez_api_key: str) -> BytezLLM:
    return BytezLLM(
        model=REACT_MODEL,
        api_key=bytez_api_key,
        base_url=server.url,
        max_new_tokens=64,
        stop=["\nObservation:"],
        max_retries=0,
    )


def react_runs(server: LocalBytezServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.model_id == REACT_MODEL]


@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "streaming"])
def test_classic_react_agent_with_stop_sequences(
    react_llm: BytezLLM, add: CountedAdd, server: LocalBytezServer, streaming: bool
) -> None:
    llm = react_llm.model_copy(update={"streaming": streaming})
    answer, outputs = run_react_agent(llm, [search, add.tool], QUESTION)
    assert answer == "5"
    assert add.runs == [(2, 3)]
    # The first output was cut before the invented observation.
    assert outputs[0] == (
        ' I should use the add tool.\nAction: add\nAction Input: {"a": 2, "b": 3}'
    )
    runs = react_runs(server)
    assert len(runs) == 2
    assert [r.stream for r in runs] == [streaming, streaming]
    for run in runs:
        # The strict server would refuse it: stop sequences never leave the client.
        assert "stop_strings" not in (run.json.get("params") or {})


def test_classic_react_agent_needs_the_stop_sequence(react_llm: BytezLLM, add: CountedAdd) -> None:
    # Without the stop, the model runs on past the action into an invented observation
    # and answer, as real models do: the classic parser refuses such output.
    llm = react_llm.model_copy(update={"stop": None})
    with pytest.raises(OutputParserException, match="both a final answer and an action"):
        run_react_agent(llm, [search, add.tool], QUESTION)
    assert add.runs == []
