"""The local server's tool-calling and ReAct fake models, over real HTTP with plain httpx.

Nothing here uses ``ChatBytez``: the requests are written by hand, with tool schemas
worded the way other clients write them, to show the fakes read schemas generically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_bytez.server import CATALOGUE, LocalBytezServer
from langchain_bytez.testing.cli import build_parser
from langchain_bytez.testing.fake_tools import TOOL_FORMATS

KEY = "test-key"
QWEN = "Qwen/Qwen2.5-7B-Instruct"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.3"
PLAIN_CHAT = "Qwen/Qwen2.5-0.5B-Instruct"
REACT = "tiiuae/falcon-7b-instruct"

ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
WEATHER = {  # Anthropic's form: a client need not use OpenAI's
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
# Neither this package's wording nor any fixed phrase: a list of schemas in prose.
TOOLS_SYSTEM = (
    "You are a helpful assistant with access to these functions:\n"
    f"{json.dumps([ADD, WEATHER])}\n"
    "Use one if it helps."
)
ASK = [{"role": "system", "content": TOOLS_SYSTEM}, {"role": "user", "content": "What is 2 + 3?"}]

# The format each catalogue model writes by default (its chat template's form).
OWN_FORMATS = {QWEN: "hermes", LLAMA: "json", MISTRAL: "mistral"}
EXPECTED_CALLS = {
    "hermes": '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>',
    "json": '{"name": "add", "parameters": {"a": 2, "b": 3}}',
    "json_list": '[{"name": "add", "arguments": {"a": 2, "b": 3}}]',
    "fenced": (
        '```json\n{\n  "name": "add",\n  "arguments": {\n    "a": 2,\n    "b": 3\n  }\n}\n```'
    ),
    "mistral": '[TOOL_CALLS][{"name": "add", "arguments": {"a": 2, "b": 3}}]',
}


@pytest.fixture
def server(bytez_server: LocalBytezServer) -> LocalBytezServer:
    bytez_server.load_delay = 0.0
    return bytez_server


@pytest.fixture
def client(server: LocalBytezServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Key {KEY}"}, timeout=10
    ) as c:
        yield c


def answer(client: httpx.Client, model: str, body: dict[str, Any]) -> Any:
    response = client.post(f"/models/v2/{model}", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["error"] is None
    return payload["output"]


def chat_text(client: httpx.Client, model: str, messages: list[dict[str, Any]]) -> str:
    output = answer(client, model, {"messages": messages})
    assert output["role"] == "assistant"
    return str(output["content"])


def stream_chunks(client: httpx.Client, model: str, body: dict[str, Any]) -> list[str]:
    with client.stream("POST", f"/models/v2/{model}", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        return [chunk.decode() for chunk in r.iter_raw()]


# ----------------------------------------------------------------------- catalogue


def test_the_tool_models_are_in_the_catalogue(client: httpx.Client) -> None:
    entries = client.get("/models/v2/list/models").json()["output"]
    listed = {entry["modelId"]: entry for entry in entries}
    for model in (QWEN, LLAMA, MISTRAL):
        assert listed[model]["task"] == "chat"
    assert listed[REACT]["task"] == "text-generation"
    assert {e["modelId"] for e in CATALOGUE} >= {QWEN, LLAMA, MISTRAL, REACT}


# ----------------------------------------------------------------------- calls


@pytest.mark.parametrize("model", list(OWN_FORMATS))
def test_each_model_calls_in_its_own_format(client: httpx.Client, model: str) -> None:
    assert chat_text(client, model, ASK) == EXPECTED_CALLS[OWN_FORMATS[model]]


def test_the_plain_chat_model_ignores_tools(client: httpx.Client) -> None:
    text = chat_text(client, PLAIN_CHAT, ASK)
    assert "add" not in text
    assert text.startswith('Hello! You said: "What is 2 + 3?".')


def test_the_question_picks_the_tool_and_fills_its_arguments(client: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": TOOLS_SYSTEM},
        {"role": "user", "content": "What's the weather in Paris today?"},
    ]
    text = chat_text(client, QWEN, messages)
    assert text == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )


def test_a_tool_named_in_the_instructions_is_the_one_called(client: httpx.Client) -> None:
    # The question fits "add", but the instructions ask for get_weather.
    messages = [
        {"role": "system", "content": TOOLS_SYSTEM + " This time, use get_weather."},
        {"role": "user", "content": "What is 2 + 3 in Rome?"},
    ]
    call = json.loads(chat_text(client, LLAMA, messages))
    assert call == {"name": "get_weather", "parameters": {"city": "Rome"}}


@pytest.mark.parametrize(
    "result",
    [
        '<tool_response>\n{"name": "add", "content": "5"}\n</tool_response>',  # Hermes/Qwen
        '[TOOL_RESULTS]{"content": 5}[/TOOL_RESULTS]',  # Mistral
    ],
    ids=["tool_response", "TOOL_RESULTS"],
)
def test_a_tool_result_is_answered_in_text(client: httpx.Client, result: str) -> None:
    # The chat route has user/assistant/system roles only: results come in a user turn.
    messages = [
        *ASK,
        {"role": "assistant", "content": EXPECTED_CALLS["hermes"]},
        {"role": "user", "content": result},
    ]
    assert chat_text(client, QWEN, messages) == "The answer is 5."


def test_a_json_schema_in_the_prompt_gets_a_json_answer(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    messages = [
        {"role": "system", "content": f"Reply with JSON matching {json.dumps(schema)}"},
        {"role": "user", "content": "Ann is 31 years old."},
    ]
    assert json.loads(chat_text(client, MISTRAL, messages)) == {"name": "Ann", "age": 31}


def test_without_tools_or_schema_it_chats(client: httpx.Client) -> None:
    text = chat_text(client, QWEN, [{"role": "user", "content": "hello"}])
    assert text.startswith('Hello! You said: "hello".')


def test_set_reply_overrides_the_tool_answer(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.set_reply(["not", " a", " call"], model_id=QWEN)
    assert chat_text(client, QWEN, ASK) == "not a call"


def test_a_given_budget_cuts_the_call(client: httpx.Client) -> None:
    output = answer(client, QWEN, {"messages": ASK, "params": {"max_new_tokens": 2}})
    assert output["content"] == '<tool_call>\n{"name": "add",'


# ----------------------------------------------------------------------- streaming


@pytest.mark.parametrize("tool_format", TOOL_FORMATS)
def test_a_streamed_call_arrives_in_several_chunks(
    server: LocalBytezServer, client: httpx.Client, tool_format: str
) -> None:
    server.tool_format = tool_format
    whole = chat_text(client, QWEN, ASK)
    chunks = stream_chunks(client, QWEN, {"messages": ASK})
    assert "".join(chunks) == whole
    assert len(chunks) >= 4
    # The JSON object itself is split: no chunk holds all of it.
    assert not any('"a": 2, "b": 3' in chunk for chunk in chunks)


# ----------------------------------------------------------------------- the knob


@pytest.mark.parametrize("tool_format", sorted(EXPECTED_CALLS))
def test_the_runtime_knob_sets_every_tool_model_and_reset_restores(
    server: LocalBytezServer, client: httpx.Client, tool_format: str
) -> None:
    server.tool_format = tool_format
    for model in OWN_FORMATS:
        assert chat_text(client, model, ASK) == EXPECTED_CALLS[tool_format]
    server.reset()
    assert server.tool_format is None
    for model, own in OWN_FORMATS.items():
        assert chat_text(client, model, ASK) == EXPECTED_CALLS[own]


def test_the_prose_format_writes_a_sentence_then_the_call(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.tool_format = "prose"
    sentence, call = chat_text(client, QWEN, ASK).split("\n")
    assert "add" in sentence
    assert json.loads(call) == {"name": "add", "arguments": {"a": 2, "b": 3}}


def test_the_constructor_knob(bytez_server_factory: Any) -> None:
    server = bytez_server_factory(load_delay=0.0, tool_format="fenced")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        assert chat_text(c, MISTRAL, ASK) == EXPECTED_CALLS["fenced"]
    server.tool_format = "json"
    server.reset()
    assert server.tool_format == "fenced"


def test_bad_knob_values_are_refused(server: LocalBytezServer) -> None:
    with pytest.raises(ValueError, match="unknown tool_format 'xml'"):
        server.tool_format = "xml"
    assert server.tool_format is None
    with pytest.raises(ValueError, match="unknown tool_format"):
        LocalBytezServer(tool_format="xml")


def test_the_cli_flag() -> None:
    assert build_parser().parse_args(["--tool-format", "mistral"]).tool_format == "mistral"
    assert build_parser().parse_args([]).tool_format is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--tool-format", "xml"])


# ----------------------------------------------------------------------- ReAct text

REACT_PROMPT = """Answer the following questions as best you can. \
You have access to the following tools:

search(query: str) -> str - Search the web.
add(a: int, b: int) -> int - Add two integers.

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [search, add]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat N times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: What is 2 + 3?
Thought:"""


def test_react_model_writes_an_action_and_runs_on_without_a_stop(client: httpx.Client) -> None:
    output = answer(client, REACT, {"text": REACT_PROMPT, "params": {"max_new_tokens": 64}})
    assert output.startswith(REACT_PROMPT)  # text-generation output includes the prompt
    continuation = output[len(REACT_PROMPT) :]
    assert continuation.startswith(
        ' I should use the add tool.\nAction: add\nAction Input: {"a": 2, "b": 3}\n'
    )
    # Nothing stopped it: it invents an observation and an answer, as real models do.
    assert "\nObservation:" in continuation
    assert "Final Answer:" in continuation
    chunks = stream_chunks(client, REACT, {"text": REACT_PROMPT})
    assert "".join(chunks) == continuation  # the stream has no prompt
    assert len(chunks) > 5


def test_react_model_answers_once_an_observation_is_in(client: httpx.Client) -> None:
    prompt = (
        REACT_PROMPT
        + ' I should use the add tool.\nAction: add\nAction Input: {"a": 2, "b": 3}\n'
        + "Observation: 5\nThought:"
    )
    output = answer(client, REACT, {"text": prompt, "params": {"max_new_tokens": 64}})
    assert output[len(prompt) :] == " I now know the final answer.\nFinal Answer: 5"


def test_react_model_without_a_react_prompt_continues_text(client: httpx.Client) -> None:
    output = answer(client, REACT, {"text": "Once upon a time", "params": {"max_new_tokens": 5}})
    assert output.startswith("Once upon a time")
    assert len(output[len("Once upon a time") :].split()) == 5


def test_the_strict_server_refuses_stop_strings_on_the_react_model(client: httpx.Client) -> None:
    # Stop sequences are the client's job: the model route refuses them.
    response = client.post(
        f"/models/v2/{REACT}",
        json={"text": REACT_PROMPT, "params": {"stop_strings": ["\nObservation:"]}},
    )
    assert response.status_code == 422
