# %% [markdown]
# # 01 · Quick start
#
# The whole life of a Bytez model in one page:
#
# 1. read the **catalogue** (which models exist for a task);
# 2. **load** a model's instances, watching the progress events;
# 3. **invoke** it through LangChain's `BytezLLM`;
# 4. **stream** its answer token by token;
# 5. **stop** it, so it does not bill while idle.
#
# With `BYTEZ_API_KEY` set this talks to Bytez (`BYTEZ_BASE_URL` or
# `https://api.bytez.com`). Without a key it starts the package's local
# Bytez-compatible server on a loopback port, so it runs anywhere, offline. The local
# server runs with its cluster routes on (`cluster_routes="on"`), one of the modes the
# live service may be in, so step 2 shows a real load; where Bytez has no cluster
# routes, `load` returns `None` and the first run starts the model instead.
#
# Run it as a script (`python cookbook/01_quickstart.py`) or open it as a notebook
# (`jupytext --to notebook cookbook/01_quickstart.py`).

# %%

from langchain_bytez.server import endpoint_from_env

# A short cold start and a small delay between tokens make loading and streaming
# visible, as they would be against the real service.
endpoint = endpoint_from_env(
    local_api_key="local-cookbook-key", cluster_routes="on", load_delay=0.5, token_delay=0.01
)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

MODEL = "openai-community/gpt2"

# %% [markdown]
# ## 1. The catalogue
#
# `list_tasks` names the tasks Bytez serves; `list_models` lists the models of one
# task, with their size (billions of parameters), RAM and price per second.

# %%
from langchain_bytez import list_models, list_tasks

tasks = list_tasks(api_key=API_KEY, base_url=BASE_URL)
print(f"Tasks served: {len(tasks)} (for example {', '.join(sorted(tasks)[:4])})")

models = list_models("text-generation", api_key=API_KEY, base_url=BASE_URL, max_params=1)
print(f"Text-generation models with at most 1B parameters: {len(models)}")
for info in models[:3]:
    print(f"  {info.model_id}: {info.params}B parameters, {info.ram_required} GB RAM")

# %% [markdown]
# ## 2. Load the model, with progress
#
# `client.model(id)` returns a handle. `load()` creates the model's instance cluster
# and waits until it runs, reporting each status change to `progress` (pass `True`
# for a console line instead of a callback). Loading is optional: `BytezLLM` loads
# the model itself on first use (`auto_load=True`), once, however many calls arrive
# together.

# %%
from langchain_bytez import BytezClient, LoadProgress

client = BytezClient(api_key=API_KEY, base_url=BASE_URL)
gpt2 = client.model(MODEL)


def show_progress(event: LoadProgress) -> None:
    print(f"  progress: {event.state.value:<9} {event.elapsed:5.2f} s  {event.message}")


status = gpt2.load(concurrency=1, timeout=300, progress=show_progress)
if status is None:
    # The endpoint has no cluster routes: the first run starts the model instead.
    print("Loaded: serverless mode (the first run starts the model)")
else:
    print(f"Loaded: {status.model_id} state={status.state.value}")

# %% [markdown]
# ## 3. Invoke
#
# `BytezLLM` is a LangChain `LLM`: `invoke` returns the continuation of the prompt
# (Bytez echoes the prompt; the class removes it). Generation settings are fields
# (`max_new_tokens`, `temperature`, ...) or per-call keyword arguments.

# %%
from langchain_bytez import BytezLLM

llm = BytezLLM(model=MODEL, api_key=API_KEY, base_url=BASE_URL, max_new_tokens=12)
prompt = "Once upon a time, a lighthouse keeper"
text = llm.invoke(prompt)
print(f"Invoke result: {text!r}")

# %% [markdown]
# ## 4. Stream
#
# `stream` yields text as it arrives. The last chunk is empty: it carries the
# response metadata (`inference_time`, `inference_cost`, ...) for callbacks.

# %%
print("Streamed: ", end="")
chunks = []
for chunk in llm.stream(prompt, max_new_tokens=12):
    chunks.append(chunk)
    print(chunk, end="|", flush=True)
print()
streamed = "".join(chunks)
print(f"Streamed {len([c for c in chunks if c])} chunks, same text as invoke: {streamed == text}")

# %% [markdown]
# ## 5. Stop
#
# Stopping deletes the cluster. Bytez would also stop it after `timeout` idle
# seconds (rounded up to whole minutes), but an explicit stop ends billing now.

# %%
gpt2.stop()
print(f"Status after stop: {gpt2.status().state.value}")

client.close()
endpoint.close()
print("Quickstart finished.")
