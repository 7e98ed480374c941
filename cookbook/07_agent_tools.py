# %% [markdown]
# # 07 · A tool-using agent
#
# `ChatBytez` supports LangChain tool calling, so LangChain's agent
# (`langchain.agents.create_agent`) runs on the open instruct models of Bytez:
#
# 1. **define tools** with `@tool`;
# 2. see one **model turn** with `bind_tools`: the answer's `tool_calls`;
# 3. run the **agent**: it calls the tool, reads the result and answers;
# 4. **stream** the agent's messages as they are produced.
#
# The Bytez chat route has no `tools` field: the tool schemas go into the system prompt
# and the answer is parsed into `tool_calls` (see the "Agents and tools" docs page).
#
# With `BYTEZ_API_KEY` unset it runs against the local Bytez-compatible server, whose
# `Qwen/Qwen2.5-7B-Instruct` answers tool prompts the way that model does.

# %%

from langchain_bytez.server import endpoint_from_env

endpoint = endpoint_from_env(local_api_key="local-cookbook-key", load_delay=0.2, token_delay=0.002)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

MODEL = "Qwen/Qwen2.5-7B-Instruct"

# %% [markdown]
# ## 1. Tools
#
# A tool is a typed function with a docstring: its name, description and argument
# schema are what the model sees. `runs` records each execution.

# %%
from langchain_core.tools import tool

runs: list[str] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    runs.append(f"add({a}, {b})")
    return a + b


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    runs.append(f"get_weather({city!r})")
    return f"Sunny and 21 °C in {city}."


TOOLS = [add, get_weather]

# %% [markdown]
# ## 2. One model turn
#
# `bind_tools` gives a model that may answer with tool calls. The calls come back
# parsed, with generated ids and arguments validated against the tool's schema
# (`invalid_tool_calls` would hold any call that is not valid).

# %%
from langchain_bytez import ChatBytez

chat = ChatBytez(model=MODEL, api_key=API_KEY, base_url=BASE_URL, max_tokens=512)
turn = chat.bind_tools(TOOLS).invoke("What is 2 + 3?")
for call in turn.tool_calls:
    print(f"Tool call: {call['name']}({call['args']})")
print(f"Invalid tool calls: {len(turn.invalid_tool_calls)}")

# %% [markdown]
# ## 3. The agent
#
# `create_agent` loops: model turn, tool runs, model turn with the results, until the
# model answers in text.

# %%
from langchain.agents import create_agent

agent = create_agent(chat, tools=TOOLS)
result = agent.invoke({"messages": [("user", "What is 2 + 3?")]})
for message in result["messages"]:
    print(f"  {message.type:>5}: {message.text or message.tool_calls}")
print(f"Tools run: {', '.join(runs)}")
print(f"Agent answer: {result['messages'][-1].text}")

# %% [markdown]
# ## 4. Streaming the agent
#
# `stream_mode="messages"` yields message chunks as the model writes them: the tool
# call arrives as a `tool_call_chunks` entry once it is complete, the answer as text.

# %%
runs.clear()
answer = ""
print("Streamed: ", end="")
for chunk, _metadata in agent.stream(
    {"messages": [("user", "What's the weather in Paris?")]}, stream_mode="messages"
):
    for call in getattr(chunk, "tool_call_chunks", None) or []:
        print(f"[call {call['name']}]", end=" ", flush=True)
    if chunk.type == "tool":
        print(f"[result {chunk.text!r}]", end=" ", flush=True)
    elif chunk.text:
        answer += chunk.text
        print(chunk.text, end="", flush=True)
print()
print(f"Tools run: {', '.join(runs)}")
print(f"Streamed answer: {answer}")

endpoint.close()
print("Agent tools finished.")
