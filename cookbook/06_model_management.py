# %% [markdown]
# # 06 · Model management: two models, one session each
#
# `ModelManager.session(...)` loads a model on entry and stops it on exit, even when
# the block raises, so a script never leaves instances billing. Here two models run
# side by side with different concurrency:
#
# * a text-generation model with **2** instances (two runs at once);
# * a chat model with **1** instance.
#
# LangChain classes created with `auto_load=False` reuse the loaded models; their
# `max_concurrent_requests` caps the runs in flight to the account (one limiter per
# account, shared by both models): 2 for the text model's runs, 1 for the chat model's.
#
# With `BYTEZ_API_KEY` unset it runs against the local Bytez-compatible server with its
# cluster routes on (`cluster_routes="on"`: one of the modes the live service may be
# in; by default the local server answers them with 404, as Bytez's current docs
# describe), which also lets us check the peak number of runs that executed at once.
# With `BYTEZ_API_KEY` set it runs against Bytez; where the cluster routes are not
# available there, `load` returns `None`, the script says so, and every run goes
# serverless (the service starts the model on the first run).

# %%
from contextlib import ExitStack

from langchain_bytez.server import endpoint_from_env

endpoint = endpoint_from_env(
    local_api_key="local-cookbook-key",
    cluster_routes="on",
    load_delay=0.5,
    ttfb=0.05,
    token_delay=0.005,
)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

TEXT_MODEL = "openai-community/gpt2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"

# %% [markdown]
# ## The manager
#
# There is one `ModelManager` per endpoint and API key, shared by every client and
# every LangChain object that uses them: it makes concurrent loads single-flight and
# remembers which models run.

# %%
from langchain_bytez import BytezClient, ModelManager

client = BytezClient(api_key=API_KEY, base_url=BASE_URL)
manager = ModelManager.for_client(client)

# %% [markdown]
# ## Two sessions
#
# `timeout` is the idle timeout in seconds (sent to Bytez in whole minutes, rounded
# up); `progress=True` prints a progress line to stderr while a model loads.

# %%
from langchain_core.messages import HumanMessage

from langchain_bytez import BytezLLM, ChatBytez, list_instances

with ExitStack() as stack:
    text_model = stack.enter_context(
        manager.session(TEXT_MODEL, client=client, concurrency=2, timeout=120, progress=True)
    )
    chat_model = stack.enter_context(
        manager.session(CHAT_MODEL, client=client, concurrency=1, timeout=300, progress=True)
    )
    for handle in (text_model, chat_model):
        status = handle.status()
        if status.raw_status == "serverless":
            # No cluster routes at this endpoint: nothing was loaded; runs go serverless
            # and `max_concurrent_requests` still caps this process's in-flight runs.
            print(
                f"Session open: {handle.model_id}: cluster routes unavailable at "
                f"{BASE_URL}; serverless mode (the first run starts the model)"
            )
            continue
        capacity = status.capacity.desired if status.capacity else "?"
        print(f"Session open: {handle.model_id} state={status.raw_status} instances={capacity}")

    running = list_instances(client=client)
    print(f"Instances listed: {len(running)}")

    # Runs through the handles...
    raw = text_model.run("The two models are", {"max_new_tokens": 6})
    print(f"Handle run ({TEXT_MODEL}): {raw.output!r}")

    # ...and through LangChain classes that reuse the loaded models.
    llm = BytezLLM(
        model=TEXT_MODEL,
        api_key=API_KEY,
        base_url=BASE_URL,
        auto_load=False,
        max_concurrent_requests=2,
        max_new_tokens=6,
    )
    chat = ChatBytez(
        model=CHAT_MODEL,
        api_key=API_KEY,
        base_url=BASE_URL,
        auto_load=False,
        max_concurrent_requests=1,
        max_tokens=12,
    )
    texts = llm.batch([f"Item {i} of the batch is" for i in range(6)])
    replies = chat.batch([[HumanMessage(f"Question {i}?")] for i in range(3)])
    print(f"Text batch: {len(texts)} results; chat batch: {len(replies)} replies")
    print(f"First chat reply: {replies[0].text!r}")
    if server is not None:
        # Requests the server saw at once, queued ones included: the client-side,
        # account-wide cap kept them within each object's max_concurrent_requests.
        print(f"Peak runs in flight: {TEXT_MODEL}={server.peak_in_flight(TEXT_MODEL)}")
        print(f"Peak runs in flight: {CHAT_MODEL}={server.peak_in_flight(CHAT_MODEL)}")

# %% [markdown]
# ## After the sessions
#
# Leaving the `with` block stopped both models.

# %%
for model_id in (TEXT_MODEL, CHAT_MODEL):
    state = manager.status(model_id, client=client).state
    print(f"After the session: {model_id} state={state.value}")

client.close()
endpoint.close()
print("Model management finished.")
