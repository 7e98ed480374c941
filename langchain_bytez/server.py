"""A local Bytez-compatible HTTP server, standard library only.

It speaks the wire contract in ``bytez-protocol.md``: the ``/models/v2`` routes (runs,
catalogue, clusters), the envelope, the metadata headers, raw-text streaming, and a set of
injectable faults. It is built for tests and benchmarks: a small HTTP/1.1 server on
``asyncio`` (keep-alive, ``Content-Length`` bodies, chunked streaming where every token is
its own chunk), cheap per request, that binds loopback addresses only.

Python use:

```python
with LocalBytezServer(api_keys={"k"}) as server:
    server.inject(FaultKind.STATUS_503)
    ...  # point a client at server.url
```

Command line:

```bash
python -m langchain_bytez.server --port 8080 --api-key k
```
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import enum
import hashlib
import ipaddress
import json
import logging
import math
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = [
    "CATALOGUE",
    "Endpoint",
    "FaultKind",
    "LocalBytezServer",
    "RecordedRequest",
    "embed_text",
    "endpoint_from_env",
    "generate_continuation",
    "main",
]

logger = logging.getLogger("langchain_bytez.server")
"""The server's logger (``"langchain_bytez.server"``): failed connection handlers."""

_PREFIX = "/models/v2/"
_LOCAL_PREFIX = "/_local/"
_MAX_BODY = 64 * 1024 * 1024
_BACKLOG = 2048
_SECRET_HEADERS = frozenset({"authorization", "provider-key"})
_NOT_IN_CATALOGUE = "Model does not exist or has yet to be added to the Bytez catalog"
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_DEFAULT_TIMEOUT_MINUTES = 5
_MAX_TIMEOUT_MINUTES = 1440
# Generation runs on the event loop: refuse budgets no model offers rather than block every
# connection. A 1 MB streamed answer (the benchmark's scale case) needs about 130,000.
_MAX_NEW_TOKENS = 1_000_000
_MAX_TRAILER_LINES = 100

# --------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------

CATALOGUE: list[dict[str, Any]] = [
    {
        "modelId": "openai-community/gpt2",
        "task": "text-generation",
        "params": 0.124,
        "ramRequired": 0.5,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "gpt2",
        "task": "text-generation",
        "params": 0.124,
        "ramRequired": 0.5,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "microsoft/phi-2",
        "task": "text-generation",
        "params": 2.78,
        "ramRequired": 11.1,
        "meter": "md-gpu",
        "meterPrice": 0.000167,
    },
    {
        "modelId": "Qwen/Qwen2.5-0.5B-Instruct",
        "task": "chat",
        "params": 0.494,
        "ramRequired": 2.0,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "meta-llama/Llama-3.2-1B-Instruct",
        "task": "chat",
        "params": 1.24,
        "ramRequired": 5.0,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "google/gemma-2-2b-it",
        "task": "chat",
        "params": 2.61,
        "ramRequired": 10.5,
        "meter": "md-gpu",
        "meterPrice": 0.000167,
    },
    {
        "modelId": "facebook/bart-large-cnn",
        "task": "summarization",
        "params": 0.406,
        "ramRequired": 1.6,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "Helsinki-NLP/opus-mt-en-fr",
        "task": "translation",
        "params": 0.075,
        "ramRequired": 0.3,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "google/flan-t5-base",
        "task": "text2text-generation",
        "params": 0.248,
        "ramRequired": 1.0,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "sentence-transformers/all-MiniLM-L6-v2",
        "task": "sentence-similarity",
        "params": 0.0227,
        "ramRequired": 0.1,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "BAAI/bge-small-en-v1.5",
        "task": "feature-extraction",
        "params": 0.0334,
        "ramRequired": 0.13,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "google-bert/bert-base-uncased",
        "task": "feature-extraction",
        "params": 0.110,
        "ramRequired": 0.44,
        "meter": "sm-gpu",
        "meterPrice": 0.0000833,
    },
    {
        "modelId": "Qwen/Qwen2-VL-2B-Instruct",
        "task": "image-text-to-text",
        "params": 2.21,
        "ramRequired": 8.8,
        "meter": "md-gpu",
        "meterPrice": 0.000167,
    },
    {
        "modelId": "Qwen/Qwen2-Audio-7B-Instruct",
        "task": "audio-text-to-text",
        "params": 8.4,
        "ramRequired": 33.6,
        "meter": "lg-gpu",
        "meterPrice": 0.000333,
    },
    {
        "modelId": "llava-hf/LLaVA-NeXT-Video-7B-hf",
        "task": "video-text-to-text",
        "params": 7.06,
        "ramRequired": 28.3,
        "meter": "lg-gpu",
        "meterPrice": 0.000333,
    },
]
"""The models the local server knows, as ``/list/models`` returns them.

Each entry has ``modelId``, ``task``, ``params``, ``ramRequired``, ``meter`` and
``meterPrice``. Runs of other model ids answer 404, like Bytez for a model not in its
catalogue; the task list is derived from it."""

# Output shape and dimension of the embedding models: "flat" = [v], "nested" = [[v]],
# "per_token" = [[[v], [v], ...]] (one vector per token, mean == the text's vector).
_EMBEDDING_SHAPES: dict[str, tuple[str, int]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("flat", 384),
    "BAAI/bge-small-en-v1.5": ("nested", 384),
    "google-bert/bert-base-uncased": ("per_token", 768),
}
_CHAT_TASKS = frozenset({"chat", "image-text-to-text", "audio-text-to-text", "video-text-to-text"})
_EMBEDDING_TASKS = frozenset({"feature-extraction", "sentence-similarity"})
_MAX_EMBED_TOKENS = 512

# --------------------------------------------------------------------------------------
# Deterministic generation and embeddings
# --------------------------------------------------------------------------------------

_VOCABULARY: tuple[str, ...] = (
    "the",
    "river",
    "light",
    "quiet",
    "garden",
    "model",
    "story",
    "journey",
    "bright",
    "morning",
    "forest",
    "ocean",
    "silver",
    "signal",
    "whisper",
    "mountain",
    "echo",
    "lantern",
    "window",
    "paper",
    "stone",
    "cloud",
    "answer",
    "simple",
    "because",
    "together",
    "café",
    "naïve",
    "日本語",
    "Ελληνικά",
    "🚀",
    "✓",
    "ü",
    "über",
    "crème",
    "façade",
    "résumé",
    "Straße",
    "mañana",
    "smörgåsbord",
    "北京",
    "こんにちは",
    "Привет",
    "שלום",
    "مرحبا",
    "🌍",
    "naïveté",
    "jalapeño",
)


def _seed_of(*parts: str) -> int:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return int.from_bytes(digest.digest()[:8], "big")


def generate_continuation(prompt: str, max_new_tokens: int, *, seed_text: str = "") -> list[str]:
    """Return the tokens the local server generates after ``prompt``.

    Every token is a leading space plus one word of a fixed vocabulary that includes
    multi-byte words (``café``, ``日本語``, ``🚀``...). The choice is deterministic: it
    depends only on ``prompt`` and ``seed_text``.

    Args:
        prompt: The text being continued.
        max_new_tokens: How many tokens to produce (negative counts as zero).
        seed_text: Extra text mixed into the seed (the server passes the whole
            conversation for chat models).

    Returns:
        ``max_new_tokens`` tokens, each ``" " + word``.
    """
    count = max(0, int(max_new_tokens))
    if count == 0:
        return []
    rng = random.Random(_seed_of(seed_text, prompt))  # noqa: S311 - not cryptographic
    vocabulary = _VOCABULARY
    size = len(vocabulary)
    return [" " + vocabulary[rng.randrange(size)] for _ in range(count)]


def embed_text(text: str, dim: int = 384) -> list[float]:
    """Embed ``text`` as a hashed, signed character-3-gram vector, L2-normalised.

    Similar texts share many 3-grams and so get a high cosine similarity. The vector of
    an empty text is all zeros.

    Args:
        text: The text to embed.
        dim: The vector dimension.

    Returns:
        A list of ``dim`` floats with unit L2 norm (or all zeros).

    Raises:
        ValueError: If ``dim`` is not positive.
    """
    if dim < 1:
        msg = f"dim must be positive, got {dim}"
        raise ValueError(msg)
    vector = [0.0] * dim
    if not text:
        return vector
    padded = f"  {text.lower()} "
    counts: dict[str, int] = {}
    for i in range(len(padded) - 2):
        gram = padded[i : i + 3]
        counts[gram] = counts.get(gram, 0) + 1
    for gram, n in counts.items():
        h = zlib.crc32(gram.encode("utf-8", "surrogatepass"))
        vector[h % dim] += n if (h >> 31) & 1 else -n
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        return vector
    return [v / norm for v in vector]


def _per_token_vectors(text: str, dim: int) -> list[list[float]]:
    """One vector per token whose mean is exactly ``embed_text(text, dim)``."""
    target = embed_text(text, dim)
    words = text.split()[: _MAX_EMBED_TOKENS - 2]
    tokens = ["[CLS]", *words, "[SEP]"]
    noise = [embed_text(token, dim) for token in tokens]
    n = len(tokens)
    mean_noise = [sum(column) / n for column in zip(*noise, strict=True)]
    return [
        [t + 0.5 * (e - m) for t, e, m in zip(target, row, mean_noise, strict=True)]
        for row in noise
    ]


def _cut_at_stops(tokens: list[str], stops: Sequence[str]) -> list[str]:
    """Keep tokens up to and including the one that makes the text contain a stop."""
    if not stops:
        return tokens
    text = ""
    for index, token in enumerate(tokens):
        if not token:
            continue
        text += token
        for stop in stops:
            if stop in text[-(len(stop) + len(token)) :]:
                return tokens[: index + 1]
    return tokens


def _words_as_tokens(text: str) -> list[str]:
    words = text.split(" ")
    if not words or text == "":
        return []
    return [words[0], *(" " + word for word in words[1:])]


_FRENCH = {
    "hello": "bonjour",
    "good": "bon",
    "morning": "matin",
    "evening": "soir",
    "the": "le",
    "a": "un",
    "cat": "chat",
    "dog": "chien",
    "is": "est",
    "are": "sont",
    "i": "je",
    "you": "vous",
    "we": "nous",
    "love": "aime",
    "like": "aime",
    "world": "monde",
    "house": "maison",
    "thank": "merci",
    "yes": "oui",
    "no": "non",
    "and": "et",
    "with": "avec",
    "coffee": "café",
    "water": "eau",
    "book": "livre",
    "red": "rouge",
    "blue": "bleu",
    "big": "grand",
    "small": "petit",
    "today": "aujourd'hui",
}


def _translate(text: str) -> str:
    out: list[str] = []
    for word in text.split():
        core = word.strip(".,!?;:")
        tail = word[len(core) :] if word.startswith(core) else ""
        translated = _FRENCH.get(core.lower())
        if translated is None:
            out.append(word)
            continue
        if core[:1].isupper():
            translated = translated[:1].upper() + translated[1:]
        out.append(translated + tail)
    return " ".join(out)


def _summarize(text: str) -> str:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    if not sentences:
        return ""
    words = sentences[0].split()
    if len(sentences) == 1:
        words = words[: max(3, (len(words) + 1) // 2)]
    summary = " ".join(words[:40])
    return summary if summary.endswith((".", "!", "?")) else summary + "."


def _text2text(text: str, count: int) -> str:
    return "".join(generate_continuation(text, min(count, 8), seed_text="text2text")).strip()


# --------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------


class FaultKind(str, enum.Enum):
    """Faults the server can inject.

    Queue them with
    [`LocalBytezServer.inject`][langchain_bytez.server.LocalBytezServer.inject]; pass a
    member or its string value.
    """

    STATUS_503 = "status_503"
    """HTTP 503 with a ``Service Unavailable`` error envelope."""

    RATE_LIMIT = "rate_limit"
    """HTTP 429 announcing the wait in ``ratelimit-reset`` (``retry_after``, default 1 s)."""

    RATE_LIMIT_RETRY_AFTER = "rate_limit_retry_after"
    """HTTP 429 announcing the wait in a ``Retry-After`` header instead."""

    RESET = "reset"
    """The connection is reset (TCP RST) before any answer."""

    DISCONNECT_MID_STREAM = "disconnect_mid_stream"
    """The connection closes mid-answer.

    A stream stops after ``after_tokens`` tokens; a non-streamed run gets half its body."""

    ERROR_MID_STREAM = "error_mid_stream"
    """A stream sends ``after_tokens`` tokens, then an in-band ``Error: <message>``.

    A non-streamed run gets an error envelope on HTTP 200."""

    ERROR_AT_START = "error_at_start"
    """A stream whose body is only ``Error: <message>``.

    A non-streamed run gets an error envelope on HTTP 200."""

    SLOW_FIRST_BYTE = "slow_first_byte"
    """The answer is delayed by ``delay`` seconds, then served normally."""

    MALFORMED_JSON = "malformed_json"
    """HTTP 200 with a truncated JSON body."""

    ERROR_ENVELOPE = "error_envelope"
    """HTTP 200 whose envelope carries ``error: <message>``."""

    PAYMENT_REQUIRED = "payment_required"
    """HTTP 402 ``Payment Required`` (out of credits)."""

    HTML_502 = "html_502"
    """HTTP 502 with an HTML error page, as a proxy would send."""

    UNAUTHORIZED = "unauthorized"
    """HTTP 401 ``Unauthorized``."""

    NOT_FOUND = "not_found"
    """HTTP 404: the model is not in the catalogue."""

    INVALID_PARAMS = "invalid_params"
    """HTTP 422 as when the model raises on its params: ``message`` and a stack trace."""


_RANDOM_FAULTS = (
    FaultKind.STATUS_503,
    FaultKind.RATE_LIMIT,
    FaultKind.RATE_LIMIT_RETRY_AFTER,
    FaultKind.RESET,
    FaultKind.HTML_502,
)
_RANDOM_STREAM_FAULTS = (
    *_RANDOM_FAULTS,
    FaultKind.DISCONNECT_MID_STREAM,
    FaultKind.ERROR_MID_STREAM,
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server answered (or aborted).

    Attributes:
        method: HTTP method.
        path: URL path without the query string (percent-decoded).
        query: Query parameters (last value wins).
        json: The parsed JSON body, or ``None`` when empty or not JSON.
        headers: Request headers, lower-case names, without ``authorization`` and
            ``provider-key``.
        auth_ok: Whether the API key was accepted (``True`` on routes without auth).
        status: The HTTP status answered; ``0`` if the connection was aborted.
        model_id: The model id in the path (or ``modelId`` query), if any.
        stream: Whether the body asked for streaming.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    auth_ok: bool
    status: int
    model_id: str | None
    stream: bool


@dataclass
class _Fault:
    kind: FaultKind
    model_id: str | None
    method: str | None
    path_prefix: str | None
    delay: float
    retry_after: float | None
    after_tokens: int
    message: str
    remaining: int = 1
    """How many more matching requests get this fault (``inject``'s ``count``)."""

    def matches(self, req: _Request, model_route: bool) -> bool:
        if self.method is not None and self.method.upper() != req.method:
            return False
        if self.path_prefix is not None:
            if not req.path.startswith(self.path_prefix):
                return False
        elif not model_route:
            return False
        return self.model_id is None or self.model_id == req.model_id


class _HTTPError(Exception):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _envelope_error(status: int, message: str) -> _HTTPError:
    return _HTTPError(status, {"error": message, "output": None})


def _finite_seconds(name: str, value: Any) -> float:
    """``value`` as a finite, non-negative float (``TypeError``/``ValueError`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a number, got {value!r}"
        raise TypeError(msg)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number) or number < 0:
        msg = f"{name} must be a finite non-negative number, got {value!r}"
        raise ValueError(msg)
    return number


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Cluster:
    def __init__(self, model_id: str, capacity: dict[str, int], timeout: int) -> None:
        now = _now_iso()
        self.model_id = model_id
        self.capacity = capacity
        self.timeout = timeout
        self.status = "loading"
        self.reason: str | None = None
        self.created = now
        self.modified = now
        self.inferences = 0
        self.last_inference: str | None = None
        self.ready = asyncio.Event()
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.running = 0
        self.pending = 0
        self.generation = 0
        self.removed = False
        self.last_activity = 0.0
        self.load_handle: asyncio.TimerHandle | None = None
        self.idle_handle: asyncio.TimerHandle | None = None

    def slots(self) -> int:
        return max(1, self.capacity["desired"])

    async def acquire(self) -> None:
        """Wait for a free instance (``capacity.desired`` run at once), then take it."""
        while self.running >= self.slots():
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.wake(1)  # hand the wake-up on
                raise
        self.running += 1

    def release(self) -> None:
        self.running -= 1
        self.wake(1)

    def wake(self, count: int) -> None:
        while count > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def cancel_timers(self) -> None:
        for handle in (self.load_handle, self.idle_handle):
            if handle is not None:
                handle.cancel()
        self.load_handle = None
        self.idle_handle = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "modelId": self.model_id,
            "status": self.status,
            "created": self.created,
            "modified": self.modified,
            "timeout": self.timeout,
            "capacity": dict(self.capacity),
            "instances": self.capacity["desired"] if self.status == "on" else 0,
            "inferences": self.inferences,
            "lastInference": self.last_inference,
        }
        if self.reason is not None:
            data["reason"] = self.reason
        return data


class _Request:
    __slots__ = (
        "aborted",
        "auth_ok",
        "body",
        "epoch",
        "headers",
        "http10",
        "json",
        "keep_alive",
        "method",
        "model_id",
        "on_final",
        "path",
        "query",
        "reader",
        "recorded",
        "status",
        "stream",
        "writer",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
        epoch: int,
        http10: bool = False,
    ) -> None:
        self.method = method
        self.http10 = http10
        self.reader = reader
        self.epoch = epoch
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.writer = writer
        self.keep_alive = keep_alive
        self.json: Any = None
        self.auth_ok = True
        self.status = 0
        self.aborted = False
        self.model_id: str | None = None
        self.stream = False
        self.recorded = False
        self.on_final: Callable[[], None] | None = None


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

_HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
    b"</body></html>\r\n"
)
_STACK_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/server.py", line 112, in run_model\n'
    "    output = pipe(inputs, **params)\n"
    '  File "/usr/local/lib/python3.10/site-packages/transformers/pipelines/base.py", '
    "line 1198, in __call__\n"
    "    return self.run_single(inputs, preprocess_params, forward_params, "
    "postprocess_params)\n"
    '  File "/usr/local/lib/python3.10/site-packages/transformers/generation/utils.py", '
    "line 1549, in generate\n"
    "    generation_config.validate()\n"
    "{kind}: {message}\n"
)


def _dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: fall back to \u escapes
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _fmt(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return parts[0].upper(), parts[1], parts[2], headers


_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def _bad_chunked() -> _HTTPError:
    return _HTTPError(400, {"error": "Bad chunked request body", "output": None})


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    try:
        while True:
            size_field = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
            if not _CHUNK_SIZE_RE.fullmatch(size_field):
                raise _bad_chunked()
            size = int(size_field, 16)
            if size == 0:
                # Skip the (ignored) trailer fields up to the blank line.
                for _ in range(_MAX_TRAILER_LINES):
                    if await reader.readuntil(b"\r\n") == b"\r\n":
                        return b"".join(parts)
                raise _bad_chunked()
            total += size
            if total > _MAX_BODY:
                raise _HTTPError(413, {"error": "Request body too large", "output": None})
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise _bad_chunked()
    except asyncio.LimitOverrunError:
        raise _bad_chunked() from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------

_ALLOWED_TOP_LEVEL = frozenset({"text", "messages", "params", "stream"})
_INT_PARAMS = ("max_new_tokens", "min_new_tokens", "top_k", "num_return_sequences")
_FLOAT_PARAMS = ("temperature", "top_p", "repetition_penalty")
_ROLES = frozenset({"system", "user", "assistant"})
_MEDIA = frozenset({"image", "audio", "video"})


def _invalid_params(message: str, kind: str = "ValueError") -> _HTTPError:
    return _HTTPError(
        422, {"error": message, "stack_trace": _STACK_TRACE.format(kind=kind, message=message)}
    )


def _check_params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _envelope_error(400, "`params` must be an object")
    for name in _INT_PARAMS:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _invalid_params(
                f"`{name}` must be a non-negative integer, got {value!r}",
                "ValueError" if isinstance(value, int) else "TypeError",
            )
    max_new = params.get("max_new_tokens")
    if max_new is not None and max_new > _MAX_NEW_TOKENS:
        raise _invalid_params(f"`max_new_tokens` must be at most {_MAX_NEW_TOKENS}, got {max_new}")
    for name in _FLOAT_PARAMS:
        value = params.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise _invalid_params(f"`{name}` must be a number, got {value!r}", "TypeError")
    do_sample = params.get("do_sample")
    if do_sample is not None and not isinstance(do_sample, bool):
        raise _invalid_params(f"`do_sample` must be a boolean, got {do_sample!r}", "TypeError")
    stops = params.get("stop_strings")
    if stops is not None:
        if isinstance(stops, str):
            stops = [stops]
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise _invalid_params(
                f"`stop_strings` must be a non-empty string or a list of them, got {stops!r}",
                "TypeError",
            )
    return params


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _envelope_error(400, "`messages` must be a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _envelope_error(400, f"messages[{i}] must be an object")
        role = message.get("role")
        if role not in _ROLES:
            raise _envelope_error(
                400, f"messages[{i}].role must be one of system, user, assistant; got {role!r}"
            )
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise _envelope_error(400, f"messages[{i}].name must be a string")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _envelope_error(
                400, f"messages[{i}].content must be a string or a list of content blocks"
            )
        for j, block in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            if not isinstance(block, dict):
                raise _envelope_error(400, f"{where} must be an object")
            kind = block.get("type")
            if kind == "text":
                if not isinstance(block.get("text"), str):
                    raise _envelope_error(400, f"{where}.text must be a string")
            elif kind in _MEDIA:
                url, b64 = block.get("url"), block.get("base64")
                if not isinstance(url, str) and not isinstance(b64, str):
                    raise _envelope_error(
                        400, f"{where} of type {kind!r} needs a string `url` or `base64`"
                    )
            else:
                raise _envelope_error(
                    400,
                    f"{where}.type must be one of text, image, audio, video; got {kind!r}",
                )
    return messages


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(
        block["text"]
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    )


_NAME_RE = re.compile(r"(?i:your name is|named|called|call yourself|you are)\s+([A-Z][\w\-]*)")


def _chat_prefix(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """Return the reply's fixed opening and the last user text."""
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1])
    user_text = _content_text(last_user.get("content"))
    parts: list[str] = []
    user_name = last_user.get("name")
    parts.append(f"Hello, {user_name}!" if user_name else "Hello!")
    assistant_name: str | None = None
    for message in messages:
        if message.get("role") == "system":
            if message.get("name"):
                assistant_name = str(message["name"])
                break
            found = _NAME_RE.search(_content_text(message.get("content")))
            if found:
                assistant_name = found.group(1)
                break
    if assistant_name:
        parts.append(f"I am {assistant_name}.")
    content = last_user.get("content")
    if isinstance(content, list):
        seen: list[str] = []
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind in _MEDIA and kind not in seen:
                seen.append(kind)
        phrases = {
            "image": "I see an image.",
            "audio": "I hear an audio clip.",
            "video": "I see a video.",
        }
        parts.extend(phrases[kind] for kind in seen)
    snippet = user_text[:60]
    if snippet:
        parts.append(f'You said: "{snippet}".')
    return " ".join(parts), user_text


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


class LocalBytezServer:
    """A local Bytez-compatible server on its own event loop.

    Knobs that tests may change while it runs (plain attributes): ``ttfb``,
    ``token_delay``, ``load_delay``, ``concurrency_limit``, ``cluster_routes``,
    ``fault_rate``, ``idle_seconds_per_minute``, ``default_max_new_tokens``.

    Attributes:
        host: The loopback address it binds.
        ttfb: Seconds before the first byte of a run answer.
        token_delay: Seconds between streamed tokens.
        load_delay: Seconds a new cluster stays ``loading`` before ``on``.
        concurrency_limit: Account-wide maximum of in-flight runs (``None``: no limit).
        cluster_routes: Whether the cluster routes exist (``False``: 404/405 like the
            live API after Sep 2025).
        fault_rate: Fraction of run requests that get a random retryable/stream fault.
        default_max_new_tokens: Tokens generated when ``max_new_tokens`` is not given.
        random_fault_retry_after: ``retry-after`` of randomly injected 429s (seconds).
    """

    random_fault_retry_after: float = 0.1

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] | None = None,
        ttfb: float = 0.0,
        token_delay: float = 0.0,
        load_delay: float = 0.3,
        idle_seconds_per_minute: float = 60.0,
        concurrency_limit: int | None = None,
        cluster_routes: bool = True,
        fault_rate: float = 0.0,
        seed: int = 0,
        default_max_new_tokens: int = 20,
    ) -> None:
        """Configure the server (nothing is bound until ``start``).

        Args:
            host: Loopback address to bind (anything else raises ``ValueError``).
            port: TCP port; ``0`` picks a free one.
            api_keys: Accepted API keys; ``None`` accepts any non-empty key.
            ttfb: Seconds before the first byte of a run answer.
            token_delay: Seconds between streamed tokens.
            load_delay: Seconds a new cluster stays ``loading`` (cold start).
            idle_seconds_per_minute: Real seconds per minute of cluster idle timeout.
            concurrency_limit: Account-wide in-flight run limit (429 beyond it).
            cluster_routes: Serve the cluster routes (``False``: 404/405).
            fault_rate: Fraction of runs that get a random fault.
            seed: Seed of the random fault choice.
            default_max_new_tokens: Tokens generated when the request does not say.

        Raises:
            ValueError: If ``host`` is not a loopback address.
        """
        if not _is_loopback(host):
            msg = f"LocalBytezServer binds loopback addresses only, got {host!r}"
            raise ValueError(msg)
        self.host = host
        self._requested_port = port
        self._api_keys: frozenset[str] | None = None if api_keys is None else frozenset(api_keys)
        self._defaults: dict[str, Any] = {
            "ttfb": ttfb,
            "token_delay": token_delay,
            "load_delay": load_delay,
            "concurrency_limit": concurrency_limit,
            "cluster_routes": cluster_routes,
            "fault_rate": fault_rate,
            "default_max_new_tokens": default_max_new_tokens,
            "idle_seconds_per_minute": idle_seconds_per_minute,
        }
        self._seed = seed
        self._epoch = 0
        self.ttfb = ttfb
        self.token_delay = token_delay
        self.load_delay = load_delay
        self.concurrency_limit = concurrency_limit
        self.cluster_routes = cluster_routes
        self.fault_rate = fault_rate
        self.default_max_new_tokens = default_max_new_tokens
        self._idle_seconds_per_minute = idle_seconds_per_minute

        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._replies: dict[str | None, list[str]] = {}
        self._fail_next: dict[str, str] = {}
        self._rng = random.Random(seed)  # noqa: S311 - not cryptographic
        self._in_flight = 0
        self._peak = 0
        self._model_in_flight: dict[str, int] = {}
        self._model_peak: dict[str, int] = {}
        self._model_running: dict[str, int] = {}
        self._model_running_peak: dict[str, int] = {}

        self._models = {entry["modelId"]: entry for entry in CATALOGUE}
        self._tasks = list(dict.fromkeys(entry["task"] for entry in CATALOGUE))
        self._clusters: dict[str, _Cluster] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._closing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._stop_lock = threading.Lock()

    # ----------------------------------------------------------------- public API

    @property
    def port(self) -> int:
        """The bound TCP port (valid after ``start``)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080`` (valid after ``start``)."""
        host = "127.0.0.1" if self.host == "localhost" else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def idle_seconds_per_minute(self) -> float:
        """Real seconds per minute of cluster idle timeout (idle timers re-armed on set)."""
        return self._idle_seconds_per_minute

    @idle_seconds_per_minute.setter
    def idle_seconds_per_minute(self, value: float) -> None:
        self._idle_seconds_per_minute = value
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._rearm_idle_timers)

    def start(self) -> LocalBytezServer:
        """Start serving on a daemon thread with its own event loop.

        Returns:
            The server itself, listening.

        Raises:
            RuntimeError: If the server did not come up within 10 seconds.
        """
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart(loop))
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="bytez-local-server", daemon=True)
        thread.start()
        if not ready.wait(10):
            msg = "the local Bytez server did not start within 10 s"
            raise RuntimeError(msg)
        if errors:
            raise errors[0]
        self._thread = thread
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then join the thread (idempotent)."""
        with self._stop_lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            if threading.current_thread() is thread:
                msg = "stop() cannot be called from the server's own thread"
                raise RuntimeError(msg)
            future = asyncio.run_coroutine_threadsafe(self._ashutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout=10)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None
            self._loop = None

    def __enter__(self) -> LocalBytezServer:
        """Start the server.

        Returns:
            The server, listening.
        """
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def inject(
        self,
        kind: FaultKind | str,
        count: int = 1,
        *,
        model_id: str | None = None,
        method: str | None = "POST",
        path_prefix: str | None = None,
        delay: float = 1.0,
        retry_after: float | None = None,
        after_tokens: int = 3,
        message: str = "simulated failure",
    ) -> None:
        """Queue ``count`` faults, consumed first-in first-out by matching requests.

        By default a fault matches the next run request (``POST /models/v2/{modelId}``)
        of any model. With ``path_prefix`` it matches any route whose path starts with
        it; ``method=None`` matches any method.

        Args:
            kind: The fault (a [`FaultKind`][langchain_bytez.server.FaultKind] or its value).
            count: How many requests get it.
            model_id: Only requests for this model.
            method: Only requests with this method (``None``: any).
            path_prefix: Only paths starting with this (``None``: model routes).
            delay: Seconds of
                [`FaultKind.SLOW_FIRST_BYTE`][langchain_bytez.server.FaultKind.SLOW_FIRST_BYTE].
            retry_after: Seconds announced by the 429 faults (default 1).
            after_tokens: Tokens sent before a mid-stream fault.
            message: The error message of the error faults.

        Raises:
            ValueError: If ``kind`` is unknown, ``count`` is negative, or ``delay``,
                ``retry_after`` or ``after_tokens`` is negative or not finite.
            TypeError: If ``delay``, ``retry_after`` or ``after_tokens`` is not a
                number, or ``model_id``, ``method``, ``path_prefix`` or ``message`` is
                not a string (``None`` allowed where documented).
        """
        fault_kind = FaultKind(kind)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            msg = f"count must be a non-negative integer, got {count!r}"
            raise ValueError(msg)
        # Checked at run time: /_local/faults passes JSON values straight through.
        strings: tuple[tuple[str, object, bool], ...] = (
            ("model_id", model_id, True),
            ("method", method, True),
            ("path_prefix", path_prefix, True),
            ("message", message, False),
        )
        for name, value, optional in strings:
            if not isinstance(value, str) and not (optional and value is None):
                msg = f"{name} must be a string{' or None' if optional else ''}, got {value!r}"
                raise TypeError(msg)
        fault = _Fault(
            kind=fault_kind,
            model_id=model_id,
            method=None if method is None else method.upper(),
            path_prefix=path_prefix,
            delay=_finite_seconds("delay", delay),
            retry_after=None
            if retry_after is None
            else _finite_seconds("retry_after", retry_after),
            after_tokens=max(0, int(_finite_seconds("after_tokens", after_tokens))),
            message=message,
            remaining=count,
        )
        if count:
            with self._lock:
                self._faults.append(fault)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Back to a fresh state: faults, log, clusters, counters, replies and knobs."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._replies.clear()
            self._fail_next.clear()
            self._rng = random.Random(self._seed)  # noqa: S311 - not cryptographic
            self._peak = self._in_flight
            self._model_peak = dict(self._model_in_flight)
            self._model_running_peak = dict(self._model_running)
            self._epoch += 1
        for name, value in self._defaults.items():
            if name != "idle_seconds_per_minute":
                setattr(self, name, value)
        self._idle_seconds_per_minute = self._defaults["idle_seconds_per_minute"]
        loop = self._loop
        if loop is None or loop.is_closed():
            self._clusters.clear()
            return
        if self._in_loop_thread():
            self._drop_clusters()
        else:
            future = asyncio.run_coroutine_threadsafe(self._adrop_clusters(), loop)
            future.result(timeout=10)

    def set_reply(self, tokens: Sequence[str] | None, *, model_id: str | None = None) -> None:
        """Force the generated tokens (all models, or one); ``None`` restores generation.

        ``stop_strings`` always apply to a forced reply; ``max_new_tokens`` only when
        the request gives it.

        Args:
            tokens: The continuation / reply tokens, or ``None``.
            model_id: Only for this model (``None``: every model without its own).
        """
        with self._lock:
            if tokens is None:
                self._replies.pop(model_id, None)
            else:
                self._replies[model_id] = list(tokens)

    def fail_next_load(
        self, model_id: str, reason: str = "Instance failed to boot: out of memory"
    ) -> None:
        """Make the next cluster load of ``model_id`` end in ``failed`` with ``reason``.

        Args:
            model_id: The model.
            reason: The failure reason reported in the cluster object.
        """
        with self._lock:
            self._fail_next[model_id] = reason

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(
        self, method: str | None = None, path: str | None = None, *, path_prefix: str | None = None
    ) -> int:
        """Count recorded requests.

        Args:
            method: Only this method.
            path: Only this exact path.
            path_prefix: Only paths starting with this.

        Returns:
            The number of matching requests.
        """
        wanted = None if method is None else method.upper()
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (wanted is None or r.method == wanted)
                and (path is None or r.path == path)
                and (path_prefix is None or r.path.startswith(path_prefix))
            )

    def peak_in_flight(self, model_id: str | None = None) -> int:
        """The highest number of run requests in flight at once since the last reset.

        A run is in flight from its admission until its answer ends, queued ones
        included (waiting for a cluster slot or a cold start).

        Args:
            model_id: Per model; ``None``: account-wide.

        Returns:
            The peak.
        """
        with self._lock:
            if model_id is None:
                return self._peak
            return self._model_peak.get(model_id, 0)

    def peak_running(self, model_id: str) -> int:
        """The highest number of runs of ``model_id`` executing at once (past the queue).

        Never above the cluster's ``capacity.desired`` (at least 1).

        Args:
            model_id: The model.

        Returns:
            The peak.
        """
        with self._lock:
            return self._model_running_peak.get(model_id, 0)

    def in_flight(self, model_id: str | None = None) -> int:
        """Runs in flight right now.

        Args:
            model_id: Per model; ``None``: account-wide.

        Returns:
            The count.
        """
        with self._lock:
            if model_id is None:
                return self._in_flight
            return self._model_in_flight.get(model_id, 0)

    def cluster(self, model_id: str) -> dict[str, Any] | None:
        """The cluster object of ``model_id`` as the API would report it, or ``None``.

        Args:
            model_id: The model.

        Returns:
            A copy of the cluster object.
        """
        found = self._clusters.get(model_id)
        return None if found is None else found.to_json()

    # ----------------------------------------------------------------- loop plumbing

    def _in_loop_thread(self) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    async def _astart(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._closing = False
        host = "127.0.0.1" if self.host == "localhost" else self.host
        self._server = await asyncio.start_server(
            self._on_connection,
            host,
            self._requested_port,
            backlog=_BACKLOG,
            reuse_address=True,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _ashutdown(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        tasks = [t for t in self._conn_tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        self._drop_clusters()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _adrop_clusters(self) -> None:
        self._drop_clusters()

    def _drop_clusters(self) -> None:
        for cluster in self._clusters.values():
            cluster.cancel_timers()
            cluster.removed = True
            cluster.ready.set()
        self._clusters.clear()

    # ----------------------------------------------------------------- connections

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        self._writers.add(writer)
        aborted = False
        try:
            aborted = await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            aborted = True
        except asyncio.CancelledError:
            # Shutdown: end quietly (asyncio 3.11 logs cancelled connection callbacks).
            aborted = True
        except Exception:
            logger.exception("local Bytez server: connection handler failed")
            aborted = True
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._conn_tasks.discard(task)
            if aborted:
                writer.transport.abort()
            else:
                writer.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve requests on one connection; return whether it must be aborted."""
        while not self._closing:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return False
            except asyncio.LimitOverrunError:
                writer.write(self._simple(431, b'{"error":"Header too large","output":null}'))
                return False
            parsed = _parse_head(head)
            if parsed is None:
                writer.write(self._simple(400, b'{"error":"Bad request","output":null}'))
                return False
            method, target, version, headers = parsed
            http10 = version == "HTTP/1.0"
            try:
                body = await self._read_body(reader, writer, headers, http10=http10)
            except _HTTPError as exc:
                writer.write(self._simple(exc.status, _dumps(exc.payload)))
                return False
            connection = headers.get("connection", "").lower()
            # HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked.
            keep_alive = "keep-alive" in connection if http10 else "close" not in connection
            raw_path, _, raw_query = target.partition("?")
            query = dict(parse_qsl(raw_query)) if raw_query else {}
            req = _Request(
                method,
                unquote(raw_path),
                query,
                headers,
                body,
                reader,
                writer,
                keep_alive,
                self._epoch,
                http10,
            )
            started = time.perf_counter()
            try:
                await self._dispatch(req)
            except (ConnectionError, OSError):
                req.aborted = True
            except Exception:
                # A bug in a route: answer 500 if nothing was sent yet, never just hang up.
                logger.exception("local Bytez server: %s %s failed", req.method, req.path)
                if req.status:
                    req.aborted = True
                else:
                    req.keep_alive = False
                    await self._send_json(
                        req, 500, {"error": "Internal Server Error", "output": None}
                    )
            self._finalize(req)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s %s %d %.1fms",
                    req.method,
                    req.path,
                    req.status,
                    (time.perf_counter() - started) * 1000,
                )
            if req.aborted:
                return True
            if not req.keep_alive:
                await writer.drain()
                return False
        return False

    async def _read_body(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        *,
        http10: bool,
    ) -> bytes:
        # A client sending ``Expect: 100-continue`` waits for this before the body
        # (HTTP/1.1 only; a 413 is answered instead, before the body is sent).
        expects = not http10 and headers.get("expect", "").lower() == "100-continue"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            if expects:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return await _read_chunked(reader)
        raw = headers.get("content-length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _HTTPError(400, {"error": "Bad Content-Length", "output": None}) from None
        if length < 0:
            raise _HTTPError(400, {"error": "Bad Content-Length", "output": None})
        if length > _MAX_BODY:
            raise _HTTPError(413, {"error": "Request body too large", "output": None})
        if not length:
            return b""
        if expects:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return await reader.readexactly(length)

    def _simple(self, status: int, body: bytes) -> bytes:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        return head.encode("latin-1") + body

    def _finalize(self, req: _Request) -> None:
        """Release the run's resources and record it: called just before its last byte."""
        on_final = req.on_final
        if on_final is not None:
            req.on_final = None
            on_final()
        if not req.recorded:
            req.recorded = True
            if req.epoch == self._epoch:  # a request from before a reset() is not logged
                self._record(req)

    def _record(self, req: _Request) -> None:
        headers = {k: v for k, v in req.headers.items() if k not in _SECRET_HEADERS}
        record = RecordedRequest(
            method=req.method,
            path=req.path,
            query=req.query,
            json=req.json,
            headers=headers,
            auth_ok=req.auth_ok,
            status=0 if req.aborted else req.status,
            model_id=req.model_id,
            stream=req.stream,
        )
        with self._lock:
            self._requests.append(record)

    # ----------------------------------------------------------------- responses

    def _meta_headers(
        self,
        model: dict[str, Any] | None,
        elapsed: float = 0.0,
        *,
        reset: str = "1",
        remaining: int | None = None,
    ) -> list[tuple[str, str]]:
        limit = self.concurrency_limit if self.concurrency_limit is not None else 1000
        if remaining is None:
            remaining = max(0, limit - self._in_flight)
        if model is None:
            meter, price = "none", 0.0
        else:
            meter, price = str(model["meter"]), float(model["meterPrice"])
        return [
            ("ratelimit-limit", str(limit)),
            ("ratelimit-remaining", str(remaining)),
            ("ratelimit-reset", reset),
            ("inference-meter", meter),
            ("inference-meter-price", _fmt(price)),
            ("inference-time", f"{elapsed:.3f}"),
            ("inference-cost", f"{elapsed * price:.8f}"),
        ]

    def _head(self, req: _Request, status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if not req.keep_alive:
            lines.append("connection: close")
        elif req.http10:  # an HTTP/1.0 client keeps the connection only when told so
            lines.append("connection: keep-alive")
        req.status = status
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(
        self,
        req: _Request,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        meta: list[tuple[str, str]] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        headers = [("content-type", content_type), ("content-length", str(len(body)))]
        headers.extend(meta if meta is not None else self._meta_headers(None))
        if extra:
            headers.extend(extra)
        data = self._head(req, status, headers) + body
        self._finalize(req)
        req.writer.write(data)
        await req.writer.drain()

    async def _send_json(
        self,
        req: _Request,
        status: int,
        payload: Any,
        *,
        meta: list[tuple[str, str]] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        await self._send(req, status, _dumps(payload), meta=meta, extra=extra)

    async def _abort(self, req: _Request, *, rst: bool) -> None:
        writer = req.writer
        transport = writer.transport
        if rst:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            # Let the bytes already written reach the kernel before the FIN.
            for _ in range(100):
                if transport.get_write_buffer_size() == 0 or transport.is_closing():
                    break
                await asyncio.sleep(0.001)
        req.aborted = True
        self._finalize(req)
        transport.abort()

    # ----------------------------------------------------------------- dispatch

    async def _dispatch(self, req: _Request) -> None:
        path = req.path
        if path.startswith(_LOCAL_PREFIX):
            await self._local_route(req)
            return
        if not path.startswith(_PREFIX):
            await self._send_json(req, 404, {"error": "Not Found", "output": None})
            return
        if req.body:
            try:
                req.json = json.loads(req.body)
            except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
                req.json = None
        if isinstance(req.json, dict):
            req.stream = req.json.get("stream") is True
        rest = path[len(_PREFIX) :]
        method = req.method
        route = "model"
        model_id: str | None = None
        if rest in ("list/models", "list/tasks", "list/clusters") and method == "GET":
            route = rest
            model_id = req.query.get("modelId")
        elif rest.startswith("request/") and method == "POST":
            route = "request"
            model_id = rest[len("request/") :]
        else:
            model_id = rest
        req.model_id = model_id
        req.auth_ok = self._auth_ok(req.headers)
        if not req.auth_ok:
            await self._send_json(req, 401, {"error": "Unauthorized", "output": None})
            return
        valid_id = bool(_MODEL_ID_RE.match(rest)) and ".." not in rest.split("/")
        fault = self._take_fault(req, route == "model" and valid_id)
        if fault is not None:
            if fault.kind is FaultKind.SLOW_FIRST_BYTE:
                await asyncio.sleep(fault.delay)
                if self._gone(req):
                    await self._abort(req, rst=False)
                    return
            else:
                await self._apply_fault(req, fault, self._models.get(model_id or ""))
                return
        try:
            if route == "list/models":
                await self._list_models(req)
            elif route == "list/tasks":
                await self._send_json(req, 200, {"error": None, "output": list(self._tasks)})
            elif route == "list/clusters":
                if not self.cluster_routes:
                    raise _envelope_error(404, "Not Found")
                clusters = sorted(self._clusters.values(), key=lambda c: c.created)
                await self._send_json(
                    req, 200, {"error": None, "output": [c.to_json() for c in clusters]}
                )
            elif route == "request":
                if not _MODEL_ID_RE.match(model_id or ""):
                    raise _envelope_error(400, f"Invalid model id: {model_id!r}")
                await self._send_json(req, 200, {"error": None, "output": "Job queued"})
            elif not valid_id:
                raise _envelope_error(404, "Not Found")
            elif method == "POST":
                await self._run(req, rest)
            elif method in ("PUT", "GET", "PATCH", "DELETE"):
                await self._cluster_route(req, rest)
            else:
                raise _envelope_error(405, "Method Not Allowed")
        except _HTTPError as exc:
            model = self._models.get(model_id or "")
            await self._send_json(req, exc.status, exc.payload, meta=self._meta_headers(model))

    def _gone(self, req: _Request) -> bool:
        """Whether the client hung up or a reset() happened while the request waited."""
        return req.reader.at_eof() or req.epoch != self._epoch

    def _auth_ok(self, headers: dict[str, str]) -> bool:
        raw = headers.get("authorization", "").strip()
        scheme, _, rest = raw.partition(" ")
        key = rest.strip() if scheme.lower() in ("key", "bearer") else raw
        if not key:
            return False
        return self._api_keys is None or key in self._api_keys

    def _take_fault(self, req: _Request, model_route: bool) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(req, model_route):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._faults[index]
                    return fault
        return None

    async def _local_route(self, req: _Request) -> None:
        peer = req.writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else ""
        if not _is_loopback(str(host)):
            await self._send_json(req, 403, {"error": "Forbidden", "output": None})
            return
        if req.method != "POST":
            await self._send_json(req, 405, {"error": "Method Not Allowed", "output": None})
            return
        if req.path == "/_local/reset":
            self.reset()
            await self._send_json(req, 200, {"error": None, "output": "reset"})
            return
        if req.path != "/_local/faults":
            await self._send_json(req, 404, {"error": "Not Found", "output": None})
            return
        try:
            data = json.loads(req.body or b"{}")
            if not isinstance(data, dict) or "kind" not in data:
                raise ValueError("body must be an object with a `kind`")  # noqa: TRY301
            req.json = data
            kwargs = {k: v for k, v in data.items() if k != "kind"}
            self.inject(data["kind"], **kwargs)
        except (ValueError, TypeError, RecursionError) as exc:
            await self._send_json(req, 400, {"error": str(exc), "output": None})
            return
        await self._send_json(req, 200, {"error": None, "output": "queued"})

    async def _list_models(self, req: _Request) -> None:
        task = req.query.get("task")
        model_id = req.query.get("modelId")
        output = [
            dict(entry)
            for entry in CATALOGUE
            if (task is None or entry["task"] == task)
            and (model_id is None or entry["modelId"] == model_id)
        ]
        await self._send_json(req, 200, {"error": None, "output": output})

    # ----------------------------------------------------------------- faults

    async def _apply_fault(
        self, req: _Request, fault: _Fault, model: dict[str, Any] | None
    ) -> None:
        kind = fault.kind
        meta = self._meta_headers(model)
        if kind is FaultKind.STATUS_503:
            await self._send_json(
                req, 503, {"error": "Service Unavailable", "output": None}, meta=meta
            )
        elif kind is FaultKind.RATE_LIMIT:
            wait = _fmt(fault.retry_after if fault.retry_after is not None else 1)
            meta = self._meta_headers(model, reset=wait, remaining=0)
            await self._send_json(
                req, 429, {"error": "Rate limit exceeded", "output": None}, meta=meta
            )
        elif kind is FaultKind.RATE_LIMIT_RETRY_AFTER:
            wait = _fmt(fault.retry_after if fault.retry_after is not None else 1)
            meta = [h for h in self._meta_headers(model, remaining=0) if h[0] != "ratelimit-reset"]
            await self._send_json(
                req,
                429,
                {"error": "Rate limit exceeded", "output": None},
                meta=meta,
                extra=[("retry-after", wait)],
            )
        elif kind is FaultKind.RESET:
            await self._abort(req, rst=True)
        elif kind is FaultKind.DISCONNECT_MID_STREAM:
            if req.stream:
                await self._stream_tokens(req, self._fault_tokens(req, model), model, fault=fault)
            else:
                body = _dumps({"error": None, "output": "".join(self._fault_tokens(req, model))})
                headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
                headers.extend(meta)
                req.writer.write(self._head(req, 200, headers) + body[: len(body) // 2])
                await req.writer.drain()
                await self._abort(req, rst=False)
        elif kind in (FaultKind.ERROR_MID_STREAM, FaultKind.ERROR_AT_START):
            if req.stream:
                tokens = (
                    self._fault_tokens(req, model) if kind is FaultKind.ERROR_MID_STREAM else []
                )
                await self._stream_tokens(req, tokens, model, fault=fault)
            else:
                await self._send_json(req, 200, {"error": fault.message, "output": None}, meta=meta)
        elif kind is FaultKind.MALFORMED_JSON:
            await self._send(req, 200, b'{"error": null, "output": "tru', meta=meta)
        elif kind is FaultKind.ERROR_ENVELOPE:
            await self._send_json(req, 200, {"error": fault.message, "output": None}, meta=meta)
        elif kind is FaultKind.PAYMENT_REQUIRED:
            payload = {
                "status": 402,
                "error": "Payment Required",
                "message": "Insufficient credits. Add credits at https://bytez.com/settings",
            }
            await self._send_json(req, 402, payload, meta=meta)
        elif kind is FaultKind.HTML_502:
            await self._send(req, 502, _HTML_502, content_type="text/html", meta=meta)
        elif kind is FaultKind.UNAUTHORIZED:
            await self._send_json(req, 401, {"error": "Unauthorized", "output": None}, meta=meta)
        elif kind is FaultKind.NOT_FOUND:
            await self._send_json(req, 404, {"error": _NOT_IN_CATALOGUE, "output": None}, meta=meta)
        elif kind is FaultKind.INVALID_PARAMS:
            error = _invalid_params(fault.message)
            await self._send_json(req, 422, error.payload, meta=meta)

    def _fault_tokens(self, req: _Request, model: dict[str, Any] | None) -> list[str]:
        """Tokens for a faulty stream: the real reply when the body is valid."""
        if model is not None and isinstance(req.json, dict):
            with contextlib.suppress(_HTTPError, KeyError, TypeError):
                tokens, _ = self._generate(model, req.json)
                if tokens:
                    return tokens
        seed = req.body.decode("utf-8", "replace")
        return generate_continuation(seed, self.default_max_new_tokens)

    def _random_fault(self, req: _Request) -> _Fault | None:
        rate = self.fault_rate
        if rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= rate:
                return None
            kind = self._rng.choice(_RANDOM_STREAM_FAULTS if req.stream else _RANDOM_FAULTS)
            after = self._rng.randint(1, 3)
        return _Fault(
            kind=kind,
            model_id=None,
            method=None,
            path_prefix=None,
            delay=0.0,
            retry_after=self.random_fault_retry_after,
            after_tokens=after,
            message="simulated random failure",
        )

    # ----------------------------------------------------------------- runs

    def _generate(self, model: dict[str, Any], body: dict[str, Any]) -> tuple[list[str], Any]:
        """Validate a run body; return (stream tokens, non-stream output)."""
        unknown = sorted(set(body) - _ALLOWED_TOP_LEVEL)
        if unknown:
            raise _envelope_error(400, f"Unknown field(s): {', '.join(unknown)}")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise _envelope_error(400, "`stream` must be a boolean")
        params = _check_params(body.get("params"))
        task = model["task"]
        model_id = model["modelId"]
        stops_raw = params.get("stop_strings")
        stops: list[str] = [stops_raw] if isinstance(stops_raw, str) else list(stops_raw or [])
        given_max = params.get("max_new_tokens")
        max_new: int = self.default_max_new_tokens if given_max is None else given_max
        with self._lock:
            reply = self._replies.get(model_id, self._replies.get(None))

        if task in _CHAT_TASKS:
            if "messages" not in body:
                raise _envelope_error(400, f"Task {task} expects `messages` (a list of messages)")
            messages = _check_messages(body["messages"])
            if reply is not None:
                tokens = list(reply if given_max is None else reply[:given_max])
            else:
                prefix, user_text = _chat_prefix(messages)
                tokens = _words_as_tokens(prefix)[:max_new]
                if len(tokens) < max_new:
                    seed = json.dumps(messages, sort_keys=True, ensure_ascii=True)
                    tokens += generate_continuation(
                        user_text, max_new - len(tokens), seed_text=seed
                    )
            tokens = _cut_at_stops(tokens, stops)
            text = "".join(tokens)
            last_content = messages[-1].get("content")
            content: Any = (
                [{"type": "text", "text": text}] if isinstance(last_content, list) else text
            )
            return tokens, {"role": "assistant", "content": content}

        if "messages" in body and "text" not in body:
            raise _envelope_error(400, f"Task {task} expects `text` (a string), not `messages`")
        text_in = body.get("text")
        if task in _EMBEDDING_TASKS:
            if not isinstance(text_in, str) or not text_in:
                raise _envelope_error(400, "text must be a non-empty string")
            if stream:
                raise _envelope_error(400, f"Streaming is not supported for task {task}")
            shape, dim = _EMBEDDING_SHAPES.get(model_id, ("flat", 384))
            if shape == "per_token":
                return [], [_per_token_vectors(text_in, dim)]
            vector = embed_text(text_in, dim)
            return [], ([vector] if shape == "nested" else vector)
        if not isinstance(text_in, str):
            raise _envelope_error(400, "`text` is required and must be a string")

        if task == "text-generation":
            if reply is not None:
                tokens = list(reply if given_max is None else reply[:given_max])
            else:
                tokens = generate_continuation(text_in, max_new)
            tokens = _cut_at_stops(tokens, stops)
            return tokens, text_in + "".join(tokens)

        if reply is not None:
            tokens = list(reply if given_max is None else reply[:given_max])
        else:
            if task == "summarization":
                out = _summarize(text_in)
            elif task == "translation":
                out = _translate(text_in)
            else:
                out = _text2text(text_in, max_new)
            tokens = _words_as_tokens(out)
            if given_max is not None:
                tokens = tokens[:given_max]
        tokens = _cut_at_stops(tokens, stops)
        return tokens, "".join(tokens)

    async def _run(self, req: _Request, model_id: str) -> None:
        model = self._models.get(model_id)
        if model is None:
            raise _envelope_error(404, _NOT_IN_CATALOGUE)
        body = req.json
        if not isinstance(body, dict):
            message = "Request body must be a JSON object" if req.body else "Request body is empty"
            raise _envelope_error(400, message)
        tokens, output = self._generate(model, body)
        fault = self._random_fault(req)
        if fault is not None:
            await self._apply_fault(req, fault, model)
            return
        limit = self.concurrency_limit
        if limit is not None and self._in_flight >= limit:
            meta = self._meta_headers(model, reset="1", remaining=0)
            await self._send_json(
                req, 429, {"error": "Rate limit exceeded", "output": None}, meta=meta
            )
            return
        started = time.perf_counter()
        self._admit(model_id, 1)
        cluster = self._clusters.get(model_id)
        if cluster is None or cluster.removed:
            cluster = self._create_cluster(model_id, {"min": 1, "desired": 1, "max": 1}, 5)
        cluster.pending += 1
        running = False
        held = True

        def release() -> None:
            # Runs just before the answer's last byte (or on failure): a client that
            # sends its next request as soon as it has the answer finds the slot free.
            nonlocal running, held
            if running:
                running = False
                self._running(model_id, -1)
                cluster.release()
            if held:
                held = False
                cluster.pending -= 1
                self._touch(cluster)
                self._admit(model_id, -1)

        req.on_final = release
        try:
            await self._wait_ready(cluster)
            await cluster.acquire()
            running = True
            self._running(model_id, 1)
            cluster.last_activity = asyncio.get_running_loop().time()
            if self.ttfb > 0:
                await asyncio.sleep(self.ttfb)
            if self._gone(req):
                await self._abort(req, rst=False)
                return
            cluster.inferences += 1
            cluster.last_inference = _now_iso()
            if req.stream:
                await self._stream_tokens(req, tokens, model, started=started)
            else:
                meta = self._meta_headers(model, time.perf_counter() - started)
                await self._send_json(req, 200, {"error": None, "output": output}, meta=meta)
        finally:
            req.on_final = None
            release()

    def _admit(self, model_id: str, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            now = self._model_in_flight.get(model_id, 0) + delta
            self._model_in_flight[model_id] = now
            if delta > 0:
                self._peak = max(self._peak, self._in_flight)
                if now > self._model_peak.get(model_id, 0):
                    self._model_peak[model_id] = now

    def _running(self, model_id: str, delta: int) -> None:
        with self._lock:
            now = self._model_running.get(model_id, 0) + delta
            self._model_running[model_id] = now
            if delta > 0 and now > self._model_running_peak.get(model_id, 0):
                self._model_running_peak[model_id] = now

    async def _stream_tokens(
        self,
        req: _Request,
        tokens: list[str],
        model: dict[str, Any] | None,
        *,
        started: float | None = None,
        fault: _Fault | None = None,
    ) -> None:
        writer = req.writer
        elapsed = 0.0 if started is None else time.perf_counter() - started
        # HTTP/1.0 has no chunked coding: there the body ends when the connection closes.
        chunked = not req.http10
        if not chunked:
            req.keep_alive = False
        headers = [("content-type", "text/plain; charset=utf-8")]
        if chunked:
            headers.append(("transfer-encoding", "chunked"))
        headers.append(("cache-control", "no-cache"))

        def frame(data: bytes) -> bytes:
            return b"%x\r\n%b\r\n" % (len(data), data) if chunked else data

        headers.extend(self._meta_headers(model, elapsed))
        head = self._head(req, 200, headers)
        limit = len(tokens)
        tail: bytes | None = None
        if fault is not None:
            if fault.kind is FaultKind.ERROR_AT_START:
                limit = 0
                tail = f"Error: {fault.message}".encode()
            else:
                limit = min(limit, fault.after_tokens)
                if fault.kind is FaultKind.ERROR_MID_STREAM:
                    tail = f"Error: {fault.message}".encode()
        delay = self.token_delay
        pending = head
        for index in range(limit):
            data = tokens[index].encode("utf-8", "replace")
            if not data:
                continue
            if index and delay > 0:
                await asyncio.sleep(delay)
            writer.write(pending + frame(data))
            pending = b""
            await writer.drain()
        if fault is not None and fault.kind is FaultKind.DISCONNECT_MID_STREAM:
            if pending:
                writer.write(pending)
            await self._abort(req, rst=False)
            return
        if tail is not None:
            if limit and delay > 0:
                await asyncio.sleep(delay)
            pending += frame(tail)
        self._finalize(req)
        writer.write(pending + (b"0\r\n\r\n" if chunked else b""))
        await writer.drain()

    # ----------------------------------------------------------------- clusters

    def _create_cluster(self, model_id: str, capacity: dict[str, int], timeout: int) -> _Cluster:
        cluster = _Cluster(model_id, capacity, timeout)
        self._clusters[model_id] = cluster
        self._start_loading(cluster)
        return cluster

    def _start_loading(self, cluster: _Cluster) -> None:
        cluster.generation += 1
        cluster.status = "loading"
        cluster.reason = None
        cluster.modified = _now_iso()
        if cluster.ready.is_set():
            cluster.ready = asyncio.Event()
        cluster.cancel_timers()
        with self._lock:
            failure = self._fail_next.pop(cluster.model_id, None)
        delay = self.load_delay
        if delay <= 0:
            self._finish_load(cluster, cluster.generation, failure)
            return
        loop = asyncio.get_running_loop()
        cluster.load_handle = loop.call_later(
            delay, self._finish_load, cluster, cluster.generation, failure
        )

    def _finish_load(self, cluster: _Cluster, generation: int, failure: str | None) -> None:
        if cluster.removed or cluster.generation != generation:
            return
        cluster.load_handle = None
        cluster.modified = _now_iso()
        if failure is not None:
            cluster.status = "failed"
            cluster.reason = failure
        else:
            cluster.status = "on"
            self._touch(cluster)
        cluster.ready.set()

    async def _wait_ready(self, cluster: _Cluster) -> None:
        while True:
            if cluster.removed:
                raise _envelope_error(503, "Model instance was stopped")
            status = cluster.status
            if status == "on":
                return
            if status == "failed":
                raise _envelope_error(503, f"Model failed to load: {cluster.reason}")
            if status == "off":
                self._start_loading(cluster)
                continue
            await cluster.ready.wait()

    def _touch(self, cluster: _Cluster) -> None:
        """Record activity and make sure an idle timer is armed."""
        loop = asyncio.get_running_loop()
        cluster.last_activity = loop.time()
        if cluster.idle_handle is None and not cluster.removed:
            delay = cluster.timeout * self._idle_seconds_per_minute
            cluster.idle_handle = loop.call_later(delay, self._idle_fire, cluster)

    def _rearm_idle_timers(self) -> None:
        for cluster in list(self._clusters.values()):
            if cluster.idle_handle is not None:
                cluster.idle_handle.cancel()
                cluster.idle_handle = None
                self._idle_fire(cluster)

    def _idle_fire(self, cluster: _Cluster) -> None:
        cluster.idle_handle = None
        if cluster.removed or cluster.pending > 0 or cluster.status == "loading":
            return  # the run ending (or the load finishing) re-arms the timer
        loop = asyncio.get_running_loop()
        delay = cluster.timeout * self._idle_seconds_per_minute
        remaining = cluster.last_activity + delay - loop.time()
        if remaining > 0.001:
            cluster.idle_handle = loop.call_later(remaining, self._idle_fire, cluster)
            return
        self._remove_cluster(cluster)

    def _remove_cluster(self, cluster: _Cluster) -> None:
        cluster.cancel_timers()
        cluster.removed = True
        cluster.status = "off"
        cluster.ready.set()
        if self._clusters.get(cluster.model_id) is cluster:
            del self._clusters[cluster.model_id]

    def _parse_cluster_body(
        self, req: _Request, current: dict[str, int] | None, *, allow_status: bool
    ) -> tuple[dict[str, int] | None, int | None, str | None]:
        body = req.json
        if req.body and body is None:
            raise _envelope_error(400, "Request body must be valid JSON")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise _envelope_error(400, "Request body must be a JSON object")
        allowed = {"capacity", "timeout", "status"} if allow_status else {"capacity", "timeout"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _envelope_error(400, f"Unknown field(s): {', '.join(unknown)}")
        capacity: dict[str, int] | None = None
        raw_capacity = body.get("capacity")
        if raw_capacity is not None:
            if not isinstance(raw_capacity, dict):
                raise _envelope_error(400, "`capacity` must be an object {min, desired, max}")
            bad = sorted(set(raw_capacity) - {"min", "desired", "max"})
            if bad:
                raise _envelope_error(400, f"Unknown capacity field(s): {', '.join(bad)}")
            for key, value in raw_capacity.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise _envelope_error(
                        400, f"capacity.{key} must be a non-negative integer, got {value!r}"
                    )
            base = current or {}
            desired = raw_capacity.get("desired", base.get("desired", 1))
            minimum = raw_capacity.get("min", base.get("min", min(1, desired)))
            maximum = raw_capacity.get("max", base.get("max", max(1, desired)))
            if maximum < 1:
                raise _envelope_error(400, "capacity.max must be at least 1")
            if not minimum <= desired <= maximum:
                raise _envelope_error(400, "capacity must satisfy min <= desired <= max")
            capacity = {"min": minimum, "desired": desired, "max": maximum}
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int)
            or not 1 <= timeout <= _MAX_TIMEOUT_MINUTES
        ):
            raise _envelope_error(
                400,
                f"timeout must be an integer number of minutes in 1..{_MAX_TIMEOUT_MINUTES}, "
                f"got {timeout!r}",
            )
        status = body.get("status")
        if status is not None and status not in ("on", "off"):
            raise _envelope_error(400, f"status must be 'on' or 'off', got {status!r}")
        return capacity, timeout, status

    async def _cluster_route(self, req: _Request, model_id: str) -> None:
        method = req.method
        if not self.cluster_routes:
            if method in ("PUT", "PATCH"):
                raise _envelope_error(405, "Method Not Allowed")
            raise _envelope_error(404, "Not Found")
        model = self._models.get(model_id)
        if model is None:
            raise _envelope_error(404, _NOT_IN_CATALOGUE)
        meta = self._meta_headers(model)
        cluster = self._clusters.get(model_id)
        if method == "GET":
            if cluster is None:
                raise _envelope_error(404, "Cluster not found")
            await self._send_json(req, 200, {"error": None, "output": cluster.to_json()}, meta=meta)
        elif method == "DELETE":
            if cluster is None:
                raise _envelope_error(404, "Cluster not found")
            self._remove_cluster(cluster)
            await self._send_json(req, 200, {"error": None, "output": None}, meta=meta)
        elif method == "PUT":
            capacity, timeout, _ = self._parse_cluster_body(req, None, allow_status=False)
            if cluster is not None and cluster.status not in ("off", "failed"):
                raise _envelope_error(409, "Cluster already exists")
            if cluster is not None:
                self._remove_cluster(cluster)
            self._create_cluster(
                model_id,
                capacity or {"min": 1, "desired": 1, "max": 1},
                timeout or _DEFAULT_TIMEOUT_MINUTES,
            )
            await self._send_json(req, 202, {"error": None, "output": "Loading"}, meta=meta)
        else:  # PATCH
            if cluster is None:
                raise _envelope_error(404, "Cluster not found")
            capacity, timeout, status = self._parse_cluster_body(
                req, cluster.capacity, allow_status=True
            )
            changed = capacity is not None and capacity != cluster.capacity
            if capacity is not None:
                cluster.capacity = capacity
            if timeout is not None:
                cluster.timeout = timeout
                if cluster.idle_handle is not None:
                    cluster.idle_handle.cancel()
                    cluster.idle_handle = None
                    self._touch(cluster)
            cluster.modified = _now_iso()
            if status == "off":
                cluster.cancel_timers()
                cluster.generation += 1
                cluster.status = "off"
                cluster.ready.set()
                self._touch(cluster)
            elif (status == "on" and cluster.status in ("off", "failed")) or (
                changed and cluster.status == "on"
            ):
                self._start_loading(cluster)
            if changed:
                cluster.wake(len(cluster.waiters))
            await self._send_json(req, 200, {"error": None, "output": cluster.to_json()}, meta=meta)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_bytez.server",
        description="Serve a local Bytez-compatible API (for tests, demos and benchmarks).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0: a free port)")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key (repeatable; default: any non-empty key)",
    )
    parser.add_argument("--ttfb", type=float, default=0.0, help="seconds before a run's first byte")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--load-delay", type=float, default=0.3, help="cold start seconds")
    parser.add_argument(
        "--idle-seconds-per-minute",
        type=float,
        default=60.0,
        help="real seconds per minute of cluster idle timeout",
    )
    parser.add_argument(
        "--concurrency-limit", type=int, default=None, help="account-wide in-flight run limit"
    )
    parser.add_argument(
        "--no-cluster-routes",
        action="store_true",
        help="answer the cluster routes 404/405 like the live API after Sep 2025",
    )
    parser.add_argument("--fault-rate", type=float, default=0.0, help="random fault fraction")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:COUNT]",
        help=f"queue faults on runs (repeatable); kinds: {', '.join(k.value for k in FaultKind)}",
    )
    parser.add_argument("--port-file", default=None, help="write the bound port to this file")
    parser.add_argument("--quiet", action="store_true", help="no request log")
    return parser


async def _serve_cli(server: LocalBytezServer, port_file: str | None) -> int:
    loop = asyncio.get_running_loop()
    await server._astart(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if port_file:
        tmp = f"{port_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:  # noqa: ASYNC230 - tiny, once
            handle.write(f"{server.port}\n")
        os.replace(tmp, port_file)
    print(f"Local Bytez-compatible server listening on {server.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await server._ashutdown()
    return 0


@dataclass(frozen=True)
class Endpoint:
    """Where an example or app sends its Bytez requests, and what to close afterwards.

    Attributes:
        base_url: The API base URL (Bytez's, or the local server's loopback URL).
        api_key: The key to send (from ``BYTEZ_API_KEY``, or the local server's key).
        server: The local server started for this endpoint, or ``None`` for Bytez.
    """

    base_url: str
    # Kept out of repr: endpoints get printed and logged.
    api_key: str = field(repr=False)
    server: LocalBytezServer | None = None

    @property
    def is_local(self) -> bool:
        """Whether requests go to a local Bytez-compatible server started for us."""
        return self.server is not None

    def describe(self) -> str:
        """One line saying which endpoint is used and why, never the key.

        Returns:
            For example ``"Endpoint: http://127.0.0.1:8080 (local Bytez-compatible
            server: BYTEZ_API_KEY is not set)"``.
        """
        if self.server is not None:
            why = "local Bytez-compatible server: BYTEZ_API_KEY is not set"
        else:
            why = "Bytez API, key from BYTEZ_API_KEY"
        return f"Endpoint: {self.base_url} ({why})"

    def close(self) -> None:
        """Stop the local server, if one was started (idempotent)."""
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Endpoint:
        """Use the endpoint as a context manager that closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the local server, if any."""
        self.close()


def endpoint_from_env(*, local_api_key: str = "local-key", **server_knobs: Any) -> Endpoint:
    """Pick the endpoint for a demo or example: Bytez with a key, a local server without.

    With ``BYTEZ_API_KEY`` set, requests go to ``BYTEZ_BASE_URL`` (default
    ``https://api.bytez.com``) and nothing is started. Without it, a
    [`LocalBytezServer`][langchain_bytez.server.LocalBytezServer] is started on a free
    loopback port, accepting ``local_api_key``, so the same code runs offline.

    Args:
        local_api_key: The key the local server accepts (and the endpoint carries).
        **server_knobs: Knobs for the local server (``load_delay``, ``token_delay``...);
            ignored when a real key is set.

    Returns:
        The endpoint; close it (or use it in a ``with`` block) to stop a local server.
    """
    api_key = os.environ.get("BYTEZ_API_KEY", "").strip()
    if api_key:
        base_url = os.environ.get("BYTEZ_BASE_URL", "").strip() or "https://api.bytez.com"
        return Endpoint(base_url=base_url.rstrip("/"), api_key=api_key)
    server = LocalBytezServer(api_keys={local_api_key}, **server_knobs).start()
    return Endpoint(base_url=server.url, api_key=local_api_key, server=server)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        print(
            f"error: --host must be a loopback address (127.0.0.1, ::1, localhost); "
            f"got {args.host!r}. The local server never listens on other interfaces.",
            file=sys.stderr,
        )
        return 2
    faults: list[tuple[str, int]] = []
    for spec in args.fault:
        kind, _, raw_count = spec.partition(":")
        try:
            FaultKind(kind)
            count = int(raw_count) if raw_count else 1
        except ValueError:
            print(f"error: bad --fault {spec!r} (KIND[:COUNT])", file=sys.stderr)
            return 2
        faults.append((kind, count))
    if not args.quiet:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    server = LocalBytezServer(
        host=args.host,
        port=args.port,
        api_keys=args.api_keys,
        ttfb=args.ttfb,
        token_delay=args.token_delay,
        load_delay=args.load_delay,
        idle_seconds_per_minute=args.idle_seconds_per_minute,
        concurrency_limit=args.concurrency_limit,
        cluster_routes=not args.no_cluster_routes,
        fault_rate=args.fault_rate,
        seed=args.seed,
    )
    for kind, count in faults:
        server.inject(kind, count)
    try:
        return asyncio.run(_serve_cli(server, args.port_file))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
