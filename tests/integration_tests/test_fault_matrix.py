"""The fault matrix: every injectable server fault through every LangChain surface.

``ROWS`` below *is* the specification: for each fault the local server can inject, how
many times it is injected, and what each kind of surface must observe:

* ``run``: the non-streamed surfaces (``BytezLLM.invoke``/``ainvoke``, ``ChatBytez.invoke``,
  ``BytezEmbeddings.embed_query``);
* ``stream``: the streamed surfaces (``BytezLLM.stream``/``astream``, ``ChatBytez.stream``).

An expectation is either "recovered after k retries" (``ok``) or the typed error raised
(``fail``), plus the number of run requests the server saw. For streams that break after
text was delivered, ``delivered`` is the number of tokens the consumer saw first: it must
be exactly the server's first tokens, each once (a retry would deliver them twice).

Retry waits are recorded by patching the client's sleep hooks (and shortened, so the
whole matrix runs in seconds); the rate-limit rows also check the recorded waits are the
ones the server asked for. ``BYTEZ_WRITE_MATRIX=path`` writes the observed outcomes as a
markdown table (the one in ``docs/reliability.md``).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.clients import io as client_io
from langchain_bytez.embeddings import BytezEmbeddings
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezError,
    BytezInvalidRequestError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezStreamError,
    BytezTimeoutError,
)
from langchain_bytez.llms import BytezLLM
from langchain_bytez.server import FaultKind, LocalBytezServer, embed_text

LLM_MODEL = "openai-community/gpt2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Distinct tokens, so a duplicated or reordered piece is visible in the joined text.
TOKENS = [" alpha", " beta", " gamma", " delta", " epsilon", " zeta"]
PROMPT = "Once upon a time"
AFTER_TOKENS = 2  # tokens sent before a mid-stream fault
SLOW_TIMEOUT = 0.4  # read timeout of the slow-first-byte row...
SLOW_DELAY = 1.0  # ...and how long the server sits on the first byte


# ------------------------------------------------------------------------- the specification


@dataclass(frozen=True)
class Expect:
    """What a surface must observe: ``error`` None means it recovered."""

    requests: int
    error: type[BytezError] | None = None
    delivered: int = 0  # stream tokens seen before the error

    @property
    def retries(self) -> int:
        # Every request but the last was retried; a non-retryable failure ends at once.
        return self.requests - 1


def ok(requests: int) -> Expect:
    return Expect(requests)


def fail(error: type[BytezError], requests: int = 1, delivered: int = 0) -> Expect:
    return Expect(requests, error, delivered)


@dataclass(frozen=True)
class Row:
    fault: FaultKind
    count: int
    run: Expect
    stream: Expect
    inject: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.fault.value}x{self.count}"


ROWS = [
    Row(FaultKind.STATUS_503, 2, ok(3), ok(3), note="backoff"),
    Row(FaultKind.STATUS_503, 3, fail(BytezAPIError, 3), fail(BytezAPIError, 3),
        note="retries exhausted: max_retries + 1 attempts"),
    Row(FaultKind.RATE_LIMIT, 2, ok(3), ok(3), {"retry_after": 0.02},
        note="waits = ratelimit-reset"),
    Row(FaultKind.RATE_LIMIT_RETRY_AFTER, 2, ok(3), ok(3), {"retry_after": 0.03},
        note="waits = Retry-After"),
    Row(FaultKind.RESET, 2, ok(3), ok(3), note="connection reset before the response"),
    Row(FaultKind.DISCONNECT_MID_STREAM, 1, ok(2),
        fail(BytezStreamError, 1, delivered=AFTER_TOKENS), {"after_tokens": AFTER_TOKENS},
        note="run: JSON body cut short (retried); stream: never retried after text"),
    Row(FaultKind.ERROR_MID_STREAM, 1, fail(BytezAPIError),
        fail(BytezStreamError, 1, delivered=AFTER_TOKENS), {"after_tokens": AFTER_TOKENS},
        note="run: error envelope on 200; stream: in-band `Error: ...`"),
    Row(FaultKind.ERROR_AT_START, 1, fail(BytezAPIError), fail(BytezStreamError),
        note="stream body is only `Error: ...`"),
    Row(FaultKind.SLOW_FIRST_BYTE, 1, fail(BytezTimeoutError), fail(BytezTimeoutError),
        {"delay": SLOW_DELAY},
        note=f"first byte after {SLOW_DELAY:g} s, past the call's total timeout "
        f"{SLOW_TIMEOUT:g} s: no time left to retry"),
    Row(FaultKind.MALFORMED_JSON, 1, fail(BytezAPIError), fail(BytezAPIError),
        note="truncated JSON on 200: not retried, never delivered as text"),
    # The message mentions JSON on purpose: such an envelope was once streamed as text.
    Row(FaultKind.ERROR_ENVELOPE, 1, fail(BytezAPIError), fail(BytezAPIError),
        {"message": "params are not valid JSON"}, note='200 {"error": "..."}: not retried'),
    Row(FaultKind.PAYMENT_REQUIRED, 1, fail(BytezPaymentRequiredError),
        fail(BytezPaymentRequiredError)),
    Row(FaultKind.HTML_502, 2, ok(3), ok(3), note="HTML gateway page: no JSON crash"),
    Row(FaultKind.UNAUTHORIZED, 1, fail(BytezAuthenticationError),
        fail(BytezAuthenticationError)),
    Row(FaultKind.NOT_FOUND, 1, fail(BytezNotFoundError), fail(BytezNotFoundError),
        note="unknown model"),
    Row(FaultKind.INVALID_PARAMS, 1, fail(BytezInvalidRequestError),
        fail(BytezInvalidRequestError), note="422 with a stack trace"),
]  # fmt: skip

RUN_SURFACES = ("llm.invoke", "llm.ainvoke", "chat.invoke", "embeddings.embed_query")
STREAM_SURFACES = ("llm.stream", "llm.astream", "chat.stream")
SURFACES = RUN_SURFACES + STREAM_SURFACES
# Surfaces whose retries reach no on_retry. None: ChatBytez.stream() hands its run
# manager to the chunk loop for retries and load progress (core's stream passes none).
NO_RUN_MANAGER: frozenset[str] = frozenset()
MODEL_OF = {"llm": LLM_MODEL, "chat": CHAT_MODEL, "embeddings": EMBED_MODEL}


# ------------------------------------------------------------------------- plumbing


class RetryCounter(BaseCallbackHandler):
    """Counts LangChain ``on_retry`` callbacks (run inline: no executor hop)."""

    run_inline = True

    def __init__(self) -> None:
        self.attempts: list[int] = []

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self.attempts.append(retry_state.attempt_number)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every retry wait the clients ask for, and sleep at most 10 ms of it."""
    seen: list[float] = []

    def sleep(seconds: float) -> None:
        seen.append(seconds)
        time.sleep(min(seconds, 0.01))

    async def asleep(seconds: float) -> None:
        seen.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))

    monkeypatch.setattr(client_io, "sleep", sleep)
    monkeypatch.setattr(client_io, "async_sleep", asleep)
    return seen


@dataclass
class Observed:
    error: BaseException | None = None
    pieces: list[str] = field(default_factory=list)
    value: Any = None


def _make(kind: str, server: LocalBytezServer, timeout: float | None) -> Any:
    # auto_load=False: no cluster requests, so the server's run count is the attempts.
    common: dict[str, Any] = {
        "model": MODEL_OF[kind],
        "api_key": "test-key",
        "base_url": server.url,
        "max_retries": 2,
        "auto_load": False,
        "timeout": timeout,
    }
    if kind == "llm":
        return BytezLLM(**common)
    if kind == "chat":
        return ChatBytez(**common)
    return BytezEmbeddings(**common)


async def _exercise(surface: str, model: Any, config: dict[str, Any]) -> Observed:
    seen = Observed()

    def collect(chunks: Iterator[Any]) -> None:
        for chunk in chunks:
            text = chunk if isinstance(chunk, str) else chunk.content
            if text:  # the closing chunk carries metadata only
                seen.pieces.append(text)

    try:
        if surface == "llm.invoke":
            seen.value = await asyncio.to_thread(model.invoke, PROMPT, config)
        elif surface == "llm.ainvoke":
            seen.value = await model.ainvoke(PROMPT, config)
        elif surface == "chat.invoke":
            seen.value = (await asyncio.to_thread(model.invoke, PROMPT, config)).content
        elif surface == "embeddings.embed_query":
            seen.value = await asyncio.to_thread(model.embed_query, PROMPT)
        elif surface in ("llm.stream", "chat.stream"):
            await asyncio.to_thread(collect, model.stream(PROMPT, config))
        elif surface == "llm.astream":
            async for chunk in model.astream(PROMPT, config):
                if chunk:
                    seen.pieces.append(chunk)
        else:  # pragma: no cover - SURFACES is closed
            raise AssertionError(surface)
    except BytezError as exc:
        seen.error = exc
    return seen


def _wait_for_count(server: LocalBytezServer, path: str, expected: int, limit: float) -> int:
    # An abandoned slow request is only logged when the server gives up on it.
    deadline = time.monotonic() + limit
    while True:
        count = server.count("POST", path)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


OBSERVATIONS: dict[tuple[str, str], dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_matrix() -> Iterator[None]:
    yield
    target = os.environ.get("BYTEZ_WRITE_MATRIX")
    if target and OBSERVATIONS:
        Path(target).write_text(render_matrix(OBSERVATIONS), encoding="utf-8")


def render_matrix(observations: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Markdown table of the observed outcomes, surfaces with equal outcomes merged.

    ``on_retry`` counts are those of the surfaces with a run manager (embeddings have no
    callbacks: they report 0).
    """
    lines = [
        "| fault | injected | surfaces | observed outcome | server requests | on_retry calls |"
        " note |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        groups: dict[tuple[str, int], list[str]] = {}
        retries: dict[tuple[str, int], set[str]] = {}
        for surface in SURFACES:
            obs = observations.get((row.id, surface))
            if obs is None:
                continue
            key = (obs["outcome"], obs["requests"])
            groups.setdefault(key, []).append(surface)
            if surface not in NO_RUN_MANAGER and not surface.startswith("embeddings"):
                retries.setdefault(key, set()).add(obs["retries"])
        for key, surfaces in groups.items():
            outcome, requests = key
            counted = ", ".join(sorted(retries.get(key, set()))) or "-"
            lines.append(
                f"| `{row.fault.value}` | {row.count}x | {', '.join(surfaces)} | {outcome} "
                f"| {requests} | {counted} | {row.note} |"
            )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- the test


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
async def test_fault_matrix(
    bytez_server: LocalBytezServer, waits: list[float], row: Row, surface: str
) -> None:
    server = bytez_server
    server.load_delay = 0.0  # no cold start: the slow-first-byte row times only the fault
    server.set_reply(TOKENS)
    kind = surface.split(".")[0]
    streamed = surface in STREAM_SURFACES
    expect = row.stream if streamed else row.run
    slow = row.fault is FaultKind.SLOW_FIRST_BYTE
    model = _make(kind, server, SLOW_TIMEOUT if slow else None)
    path = f"/models/v2/{MODEL_OF[kind]}"

    inject = dict(row.inject)
    if row.fault in (FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT_RETRY_AFTER):
        inject.setdefault("retry_after", 0.02)
    server.inject(row.fault, row.count, model_id=MODEL_OF[kind], **inject)
    counter = RetryCounter()
    seen = await _exercise(surface, model, {"callbacks": [counter]})

    requests = _wait_for_count(server, path, expect.requests, 3 * SLOW_DELAY if slow else 0.5)
    if kind != "embeddings" and surface not in NO_RUN_MANAGER:
        # on_retry is reported from a task on the async paths: let it land.
        for _ in range(50):
            if len(counter.attempts) >= len(waits):
                break
            await asyncio.sleep(0.01)

    # Close our pooled async connections now rather than when the test's loop dies.
    if hasattr(model, "_async_client"):
        await model._async_client().aclose()

    error = seen.error
    outcome = (
        f"recovered after {len(waits)} retr{'y' if len(waits) == 1 else 'ies'}"
        if error is None
        else f"`{type(error).__name__}`"
        + (f" after {len(seen.pieces)} chunks, no duplicates" if seen.pieces else "")
    )
    OBSERVATIONS[(row.id, surface)] = {
        "outcome": outcome,
        "requests": requests,
        "retries": str(len(counter.attempts)),
    }

    # The typed error (exact class), or a correct result.
    if expect.error is None:
        assert error is None, f"{surface} did not recover from {row.id}: {error!r}"
        if streamed:
            assert seen.pieces == TOKENS  # every token once, in order
        elif kind == "embeddings":
            assert seen.value == pytest.approx(embed_text(PROMPT, 384))
            assert all(math.isfinite(v) for v in seen.value)
        else:
            assert seen.value == "".join(TOKENS)
    else:
        assert type(error) is expect.error, f"{surface}/{row.id}: {error!r}"
        # Text delivered before the failure is exactly the server's first tokens, once;
        # nothing was delivered for failures before the stream started.
        assert seen.pieces == TOKENS[: expect.delivered]
        if isinstance(error, BytezStreamError):
            assert error.delivered_text == "".join(TOKENS[: expect.delivered])
            assert error.is_retryable is False

    # Attempts: exactly as specified, never more than max_retries + 1.
    assert requests == expect.requests, f"{surface}/{row.id}: {requests} requests"
    assert len(waits) == expect.retries <= model.max_retries
    if surface in NO_RUN_MANAGER:
        assert counter.attempts == []
    elif kind != "embeddings":
        # One on_retry per retry, with the attempt that failed (1, 2, ...).
        assert counter.attempts == list(range(1, expect.retries + 1))
    if "retry_after" in inject and expect.error is None:
        # The wait the server asked for (not a backoff), plus jitter that spreads
        # callers refused together: at most one more backoff (0.5 s, then 1 s).
        asked = inject["retry_after"]
        assert all(asked <= wait <= asked + 1.0 for wait in waits), waits
