# %% [markdown]
# # 05 · A LangGraph graph over Bytez models
#
# A three-node graph whose nodes call Bytez:
#
# 1. **`pick_model`** reads the Bytez catalogue with `BytezCatalogLoader` (one
#    `Document` per model, every catalogue field in the metadata) for the task the
#    request needs, and picks the smallest instruction-tuned model;
# 2. **`answer`** asks that chat model (`ChatBytez`) the question;
# 3. **`headline`** has a text-generation model (`BytezLLM`) continue a headline for
#    the answer.
#
# With `BYTEZ_API_KEY` unset it runs against the local Bytez-compatible server.

# %%

from langchain_bytez.server import endpoint_from_env

endpoint = endpoint_from_env(local_api_key="local-cookbook-key", load_delay=0.3, token_delay=0.002)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

HEADLINE_MODEL = "openai-community/gpt2"

# %% [markdown]
# ## The state
#
# Each node returns the keys it fills in; LangGraph merges them into the state.

# %%
from typing import TypedDict


class State(TypedDict, total=False):
    question: str
    task: str
    model: str
    candidates: int
    answer: str
    headline: str


# %% [markdown]
# ## The nodes

# %%
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_bytez import BytezCatalogLoader, BytezLLM, ChatBytez


def pick_model(state: State) -> State:
    """Choose the smallest instruction-tuned model of the task from the catalogue."""
    task = state.get("task", "chat")
    loader = BytezCatalogLoader(
        task=task, api_key=API_KEY, base_url=BASE_URL, max_params=3, search="instruct"
    )
    docs = loader.load()
    if not docs:
        raise RuntimeError(f"No {task} model of at most 3B parameters in the catalogue")
    best = min(docs, key=lambda d: (d.metadata["params"], d.metadata["model_id"]))
    print(f"[pick_model] {len(docs)} {task} candidates; picked {best.page_content}")
    return {"model": best.metadata["model_id"], "candidates": len(docs)}


def answer(state: State) -> State:
    """Ask the chosen chat model."""
    chat = ChatBytez(model=state["model"], api_key=API_KEY, base_url=BASE_URL, max_tokens=40)
    reply = chat.invoke(
        [
            SystemMessage("You are a patient tutor. Answer in two sentences."),
            HumanMessage(state["question"]),
        ]
    )
    print(f"[answer] {len(reply.text)} characters from {state['model']}")
    return {"answer": reply.text}


def headline(state: State) -> State:
    """Let a text-generation model write a headline for the answer."""
    llm = BytezLLM(
        model=HEADLINE_MODEL, api_key=API_KEY, base_url=BASE_URL, max_new_tokens=8, stop=["\n"]
    )
    text = llm.invoke(f"{state['answer'][:200]}\n\nHeadline:").strip()
    print(f"[headline] {text!r}")
    return {"headline": text}


# %% [markdown]
# ## The graph
#
# `START -> pick_model -> answer -> headline -> END`.

# %%
from langgraph.graph import END, START, StateGraph

builder = StateGraph(State)
builder.add_node("pick_model", pick_model)
builder.add_node("answer", answer)
builder.add_node("headline", headline)
builder.add_edge(START, "pick_model")
builder.add_edge("pick_model", "answer")
builder.add_edge("answer", "headline")
builder.add_edge("headline", END)
graph = builder.compile()

# %% [markdown]
# ## Run it
#
# `stream(..., stream_mode="updates")` reports each node as it finishes.

# %%
final: State = {"question": "Why is the sky blue?", "task": "chat"}
for update in graph.stream(final, stream_mode="updates"):
    for node, values in update.items():
        print(f"Node finished: {node} -> {sorted(values)}")
        final = {**final, **values}

print(f"Question: {final['question']}")
print(f"Chosen model: {final['model']} (out of {final['candidates']} candidates)")
print(f"Answer: {final['answer']}")
print(f"Headline: {final['headline']}")

# %%
endpoint.close()
print("LangGraph finished.")
