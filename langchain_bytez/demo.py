"""The main job: a small LCEL chain, streamed token by token, against Bytez.

With ``BYTEZ_API_KEY`` set it talks to the Bytez API (``BYTEZ_BASE_URL`` or
``https://api.bytez.com``). Without a key it starts the local Bytez-compatible server
on a free loopback port and runs the same chain against it, so the demo works on a
machine with no network and no account.

Run it with ``make demo`` or ``python -m langchain_bytez.demo``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import endpoint_from_env


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo chain and stream its answer to stdout.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="openai-community/gpt2", help="Bytez model id")
    parser.add_argument("--topic", default="a lighthouse keeper who collects postcards")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args(argv)

    # Small cold start and token delay so the progress line and streaming are visible.
    endpoint = endpoint_from_env(local_api_key="local-demo-key", load_delay=1.0, token_delay=0.03)
    print(endpoint.describe())
    try:
        llm = BytezLLM(
            model=args.model,
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_new_tokens=args.max_new_tokens,
            load_progress=True,
        )
        chain = PromptTemplate.from_template("Once upon a time, {topic}") | llm | StrOutputParser()
        print(f"Model: {args.model}\nChain: PromptTemplate | BytezLLM | StrOutputParser\n")
        started = time.perf_counter()
        pieces = 0
        for piece in chain.stream({"topic": args.topic}):
            # The closing chunk carries only metadata (no text): count text pieces.
            if piece:
                pieces += 1
                print(piece, end="", flush=True)
        elapsed = time.perf_counter() - started
        print(f"\n\n[{pieces} streamed chunks in {elapsed:.2f} s]")
    finally:
        endpoint.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
