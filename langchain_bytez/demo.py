"""The main job: a small LCEL chain, streamed token by token, against Bytez.

With ``BYTEZ_API_KEY`` set it talks to the Bytez API (``BYTEZ_BASE_URL`` or
``https://api.bytez.com``). Without a key it starts the local Bytez-compatible server
on a free loopback port and runs the same chain against it, so the demo works on a
machine with no network and no account; the answer then comes from the server's fake
model, and the demo says so.

The demo makes no cluster calls (``auto_load=False``): Bytez's run route starts a model
on its first run ("serverless"), and the cluster routes are not available on the live
service as its docs describe it today, so implicit auto-load would only add a round trip
and a warning. The first run waits through the cold start instead.

When a call fails, the demo prints what failed, why and what to do in a few lines (no
traceback) and exits with status 1.

Run it with ``make demo`` or ``python -m langchain_bytez.demo``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

from langchain_bytez.errors import (
    BytezAuthenticationError,
    BytezConnectionError,
    BytezError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezRateLimitError,
    BytezTimeoutError,
    MissingAPIKeyError,
)
from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import endpoint_from_env

PROMPT = "Once upon a time, {topic}"
"""The demo chain's prompt template."""

EXIT_FAILURE = 1
"""Exit status when the chain failed with a ``BytezError``."""

# One retry with a short wait: an unreachable host fails within seconds, while one dropped
# connection or rate-limit answer from the real API is still absorbed.
DEMO_MAX_RETRIES = 1
DEMO_MAX_RETRY_WAIT = 2.0

# Longest line of an error's message the demo prints; the rest is diagnosis noise.
MESSAGE_WIDTH = 240

LOCAL_FIX = "unset BYTEZ_API_KEY to run the demo against the package's local server"


def advice(error: BytezError, *, local: bool) -> str:
    """What to do about a failed demo call, in one line.

    Args:
        error: The package error the chain raised.
        local: Whether the demo talked to the local server (no key set).

    Returns:
        A suggestion the user can act on.
    """
    if local:
        return "this is a bug in the local server or the demo: please report it with these lines"
    if isinstance(error, MissingAPIKeyError | BytezAuthenticationError):
        return f"check BYTEZ_API_KEY (keys are at https://bytez.com/api), or {LOCAL_FIX}"
    if isinstance(error, BytezPaymentRequiredError):
        return f"add credits to your Bytez account, or {LOCAL_FIX}"
    if isinstance(error, BytezNotFoundError):
        return "pass an existing model id with --model (see https://bytez.com/models)"
    if isinstance(error, BytezConnectionError | BytezTimeoutError):
        return f"check your network and BYTEZ_BASE_URL, or {LOCAL_FIX}"
    if isinstance(error, BytezRateLimitError):
        return f"wait a minute and run it again, or {LOCAL_FIX}"
    return f"run it again later, or {LOCAL_FIX}"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= MESSAGE_WIDTH else line[: MESSAGE_WIDTH - 3] + "..."


def describe_failure(error: BytezError, *, base_url: str, local: bool) -> list[str]:
    """The few lines the demo prints for a failed call: what, why, what to do.

    Args:
        error: The package error the chain raised.
        base_url: The endpoint the demo talked to.
        local: Whether that endpoint is the local server.

    Returns:
        Three lines, without trailing newlines.
    """
    why = _first_line(error.message) or type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip() and _first_line(str(cause)) not in why:
        why = f"{why} ({type(cause).__name__}: {_first_line(str(cause))})"
    return [
        f"Demo failed: {type(error).__name__} calling {base_url}",
        f"  Why: {why}",
        f"  Fix: {advice(error, local=local)}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo chain and stream its answer to stdout.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The process exit code: 0 on success, 1 when a Bytez call failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="openai-community/gpt2", help="Bytez model id")
    parser.add_argument("--topic", default="a lighthouse keeper who collects postcards")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args(argv)

    # A small cold start (held by the first run, as on Bytez) and token delay make the
    # model's start and the streaming visible.
    endpoint = endpoint_from_env(local_api_key="local-demo-key", load_delay=1.0, token_delay=0.03)
    print(endpoint.describe(), flush=True)
    if endpoint.is_local:
        print(
            "Note: the answer below comes from the local server's FAKE model (canned text,"
            " no real model runs).\n      Set BYTEZ_API_KEY to run the same chain on Bytez."
        )
    pieces = 0
    try:
        llm = BytezLLM(
            model=args.model,
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_new_tokens=args.max_new_tokens,
            max_retries=DEMO_MAX_RETRIES,
            max_retry_wait=DEMO_MAX_RETRY_WAIT,
            # Serverless: no cluster calls, so no auto-load warning (see the module doc).
            auto_load=False,
        )
        prompt = PromptTemplate.from_template(PROMPT)
        chain = prompt | llm | StrOutputParser()
        print(f"Model: {args.model}\nChain: PromptTemplate | BytezLLM | StrOutputParser")
        print(f"Prompt: {prompt.format(topic=args.topic)}\n", flush=True)
        started = time.perf_counter()
        for piece in chain.stream({"topic": args.topic}):
            # The closing chunk carries only metadata (no text): count text pieces.
            if piece:
                pieces += 1
                print(piece, end="", flush=True)
        elapsed = time.perf_counter() - started
        print(f"\n\n[{pieces} streamed chunks in {elapsed:.2f} s]")
    except BytezError as error:
        if pieces:  # end the half-streamed answer's line before the error lines
            print(flush=True)
        for line in describe_failure(error, base_url=endpoint.base_url, local=endpoint.is_local):
            print(line, file=sys.stderr)
        return EXIT_FAILURE
    finally:
        endpoint.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
