# %% [markdown]
# # 04 · Batch processing with bounded concurrency
#
# Three hundred prompts through one model, with:
#
# * **bounded concurrency**: `concurrency=8` loads eight instances, and
#   `max_concurrent_requests=8` never lets more than eight runs be in flight to the
#   account from this process; LangChain's `max_concurrency` bounds the worker threads;
# * a **progress bar** (`tqdm`) fed by `batch_as_completed`, which yields each result
#   as soon as it is ready;
# * **rate limits survived**: against the local server we inject HTTP 429 answers.
#   The client waits as long as the server asks (`ratelimit-reset`, `Retry-After`)
#   and retries; each retry is logged as a `WARNING` by the `langchain_bytez` logger.
#
# With `BYTEZ_API_KEY` unset it runs against the local Bytez-compatible server.

# %%
import logging
import time

from langchain_bytez.server import endpoint_from_env

# Show the library's retry lines ("... failed (attempt 1 of 7): BytezRateLimitError
# (HTTP 429); retrying in 0.05 s") on stderr, next to the progress bar.
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


class RetryCounter(logging.Handler):
    """Count the retry warnings of the langchain_bytez logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in record.getMessage():
            self.retries += 1


retry_counter = RetryCounter()
logging.getLogger("langchain_bytez").addHandler(retry_counter)

endpoint = endpoint_from_env(local_api_key="local-cookbook-key", load_delay=0.3, ttfb=0.002)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

MODEL = "openai-community/gpt2"
PROMPT_COUNT = 300
CONCURRENCY = 8

# %% [markdown]
# ## The model and the prompts
#
# `max_retries=6` gives each prompt up to seven attempts: generous, because 429s
# are expected here. `max_new_tokens` is kept small: this is about throughput.

# %%
from langchain_bytez import BytezLLM

llm = BytezLLM(
    model=MODEL,
    api_key=API_KEY,
    base_url=BASE_URL,
    max_new_tokens=8,
    concurrency=CONCURRENCY,
    max_concurrent_requests=CONCURRENCY,
    max_retries=6,
)
prompts = [f"Fact {i}: the number {i} is" for i in range(PROMPT_COUNT)]

# %% [markdown]
# ## Injected rate limits
#
# The local server answers the next 30 runs with `429 Rate limit exceeded` and
# `ratelimit-reset: 0.05`. (Against Bytez, real rate limits are handled the same
# way.)

# %%
INJECTED = 30
if server is not None:
    server.inject("rate_limit", count=INJECTED, retry_after=0.05)
    print(f"Injected {INJECTED} rate-limit answers (retry after 0.05 s)")

# %% [markdown]
# ## Run the batch
#
# `batch_as_completed` yields `(index, result)` pairs in completion order; with
# `return_exceptions=True` a failed prompt yields its exception instead of stopping
# the batch.

# %%
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

results: list[str | None] = [None] * PROMPT_COUNT
failures: list[tuple[int, Exception]] = []
started = time.perf_counter()
# logging_redirect_tqdm prints the retry warnings above the bar instead of through it.
with logging_redirect_tqdm(), tqdm(total=PROMPT_COUNT, desc="prompts", unit="prompt") as bar:
    for index, output in llm.batch_as_completed(
        prompts, config={"max_concurrency": CONCURRENCY * 2}, return_exceptions=True
    ):
        if isinstance(output, Exception):
            failures.append((index, output))
        else:
            results[index] = output
        bar.update(1)
elapsed = time.perf_counter() - started

# %% [markdown]
# ## Results

# %%
done = sum(result is not None for result in results)
rate = done / elapsed
print(f"Completed {done}/{PROMPT_COUNT} prompts in {elapsed:.1f} s ({rate:.0f} per second)")
print(f"Failures: {len(failures)}")
print(f"Retries logged: {retry_counter.retries}")
print(f"First result: {prompts[0]!r} -> {results[0]!r}")
if server is not None:
    rate_limited = sum(1 for r in server.requests if r.status == 429)
    print(f"Server answered 429 {rate_limited} times")
    print(f"Peak runs in flight: {server.peak_in_flight(MODEL)} (cap {CONCURRENCY})")
endpoint.close()
print("Batch finished.")
