# %% [markdown]
# # 02 · LCEL and streaming
#
# Two ways to see tokens as they are generated, on one LCEL pipeline
# `ChatPromptTemplate | ChatBytez | StrOutputParser`:
#
# 1. a **callback handler** whose `on_llm_new_token` prints each token (it works
#    with plain `invoke` when the model has `streaming=True`);
# 2. **`astream_events`**, filtered to the chat model's token events.
#
# With `BYTEZ_API_KEY` unset the pipeline runs against the local Bytez-compatible
# server.

# %%
import asyncio
from concurrent.futures import ThreadPoolExecutor

from langchain_bytez.server import endpoint_from_env

endpoint = endpoint_from_env(local_api_key="local-cookbook-key", load_delay=0.3, token_delay=0.01)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"

# %% [markdown]
# ## The pipeline
#
# `streaming=True` makes `invoke` use Bytez's streaming route, so callbacks hear
# every token while the answer is still being written.

# %%
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_bytez import ChatBytez

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are Ada, a concise assistant. Answer in one sentence."),
        ("human", "Explain {topic} to a ten-year-old."),
    ]
)
chat = ChatBytez(
    model=CHAT_MODEL, api_key=API_KEY, base_url=BASE_URL, max_tokens=24, streaming=True
)
chain = prompt | chat | StrOutputParser()

# %% [markdown]
# ## 1. A streaming callback handler
#
# Any `BaseCallbackHandler` receives `on_llm_new_token` for chat models and LLMs
# alike. Passing it in `config={"callbacks": [...]}` attaches it to every step of the
# chain that emits tokens.

# %%
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler


class TokenPrinter(BaseCallbackHandler):
    """Print tokens the moment they arrive, and count them."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if token:
            self.tokens.append(token)
            print(token, end="", flush=True)


printer = TokenPrinter()
print("Callback tokens:", end="")
answer = chain.invoke({"topic": "photosynthesis"}, config={"callbacks": [printer]})
print()
print(f"Callback handler saw {len(printer.tokens)} tokens")
print(f"Callback tokens match the answer: {''.join(printer.tokens) == answer}")

# %% [markdown]
# ## 2. `astream_events`, filtered to tokens
#
# `astream_events(version="v2")` reports every step of the run. Token events of a
# chat model are `on_chat_model_stream` (`on_llm_stream` for `BytezLLM`); their
# `data["chunk"]` is an `AIMessageChunk`. The last one is empty and carries the
# response metadata. While a model loads, the run also emits `on_custom_event`
# events named `bytez_model_loading`.


# %%
def run_async(coro: Any) -> Any:
    """Run a coroutine from a script or a notebook (whose event loop is already running)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def token_events(topic: str) -> tuple[list[str], str]:
    tokens: list[str] = []
    final = ""
    async for event in chain.astream_events({"topic": topic}, version="v2"):
        kind = event["event"]
        if kind == "on_chat_model_stream":
            text = event["data"]["chunk"].text
            if text:
                tokens.append(text)
                print(text, end="", flush=True)
        elif kind == "on_chain_end" and event["name"] == "RunnableSequence":
            final = event["data"]["output"]
    print()
    return tokens, final


print("Event tokens:", end="")
event_tokens, final_output = run_async(token_events("rainbows"))
print(f"astream_events yielded {len(event_tokens)} token events")
print(f"Event tokens match the chain output: {''.join(event_tokens) == final_output}")

# %%
endpoint.close()
print("LCEL streaming finished.")
