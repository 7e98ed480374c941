"""A call's time and size budgets, written once for both client shells: pure.

* [`Deadline`][langchain_bytez.wire.deadline.Deadline]: the call's total time (``timeout``)
  from its start: waiting for a concurrency slot, connecting, the server's time, reading
  the body and the waits between retries all count. Every socket read is bounded by
  what is left, and each body chunk is checked against it, so a server trickling a
  byte at a time cannot stretch a call past its deadline by more than one read.
* [`BodyReader`][langchain_bytez.wire.deadline.BodyReader]: a body's bytes, decompressed
  here in bounded steps (``gzip``/``deflate``) and counted *after* decompression, so a
  small compressed bomb or an endless body stops at ``max_response_bytes`` with
  [`BytezResponseTooLargeError`][langchain_bytez.errors.BytezResponseTooLargeError]
  instead of exhausting memory.
* The typed errors of a deadline or a slot wait that ran out.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from langchain_bytez.errors import (
    BytezConcurrencyTimeoutError,
    BytezResponseTooLargeError,
    BytezStreamTimeoutError,
    BytezTimeoutError,
)

if TYPE_CHECKING:
    from langchain_bytez.limiter import InFlightLimiter

__all__ = [
    "ACCEPT_ENCODING",
    "BodyReader",
    "Deadline",
    "concurrency_timeout",
    "seconds",
]

ACCEPT_ENCODING = "gzip, deflate"
"""The encodings asked for: the ones ``BodyReader`` decompresses in bounded steps."""

_STEP = 256 * 1024  # most bytes one decompression step produces


def seconds(value: float) -> str:
    """``2.5 s``-style rendering of a duration for messages."""
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


class Deadline:
    """The end of one call's time budget (``timeout``), from when the call started.

    The budget is the ``read`` value of the call's ``httpx.Timeout`` (a number ``t``
    gives ``read=t``); ``None`` means no total limit (each phase keeps its own).

    Attributes:
        total: The budget in seconds, or ``None``.
        phases: The per-phase timeouts (connect, read, write, pool).
    """

    __slots__ = ("_end", "_started", "phases", "total")

    def __init__(self, phases: httpx.Timeout, *, clock: float | None = None) -> None:
        """Start the budget now (or at ``clock``, a ``time.monotonic()`` value)."""
        self.phases = phases
        self.total = phases.read
        self._started = time.monotonic() if clock is None else clock
        self._end = math.inf if self.total is None else self._started + self.total

    def remaining(self) -> float:
        """Seconds left (``inf`` without a total); never negative."""
        return max(0.0, self._end - time.monotonic())

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.monotonic() - self._started

    @property
    def expired(self) -> bool:
        """Whether the budget is used up."""
        return time.monotonic() >= self._end

    def timeout(self, model_id: str | None) -> httpx.Timeout:
        """The phases for the next request, each at most the time left.

        Raises:
            BytezTimeoutError: If no time is left.
        """
        left = self._end - time.monotonic()
        if left <= 0:
            raise self.error(model_id)
        if math.isinf(left):
            return self.phases
        p = self.phases
        return httpx.Timeout(
            connect=_at_most(p.connect, left),
            read=_at_most(p.read, left),
            write=_at_most(p.write, left),
            pool=_at_most(p.pool, left),
        )

    def body_timeouts(self, request: httpx.Request, idle: float | None = None) -> None:
        """Bound each read of the body that follows to the time left (and ``idle``).

        httpcore reads the request's ``timeout`` extension when the body read starts:
        set here, after the headers arrived, the body's reads no longer get the whole
        budget the request started with.
        """
        current = request.extensions.get("timeout")
        if not isinstance(current, dict):
            return
        read = _at_most(current.get("read"), self.remaining())
        request.extensions["timeout"] = {**current, "read": _at_most(read, idle)}

    def check(self, model_id: str | None) -> None:
        """Raise the deadline's error if the budget is used up.

        Raises:
            BytezTimeoutError: If it is.
        """
        if time.monotonic() >= self._end:
            raise self.error(model_id)

    def error(self, model_id: str | None) -> BytezTimeoutError:
        """The error of a call that used up its budget."""
        total = seconds(self.total or 0.0)
        message = (
            f"The call took longer than its timeout of {total} (queueing for a slot, "
            "connecting, the server's time and reading the answer all count); pass a "
            "larger timeout=... if the model needs longer (cold starts can take minutes)"
        )
        # Retryable like any timeout: a retry loop finds no time left and stops, while a
        # caller with a new call (a status poll) may try again.
        return BytezTimeoutError(message, model_id=model_id)

    def stream_error(
        self, model_id: str, delivered: str, status: int, idle: float | None
    ) -> BytezStreamTimeoutError:
        """The error of a stream past its deadline, or idle for longer than ``idle``."""
        if idle is not None:
            what = (
                f"no text arrived for {seconds(idle)} (stream_idle_timeout); raise "
                "stream_idle_timeout if the model pauses longer"
            )
        else:
            what = (
                f"it ran past the call's timeout of {seconds(self.total or 0.0)}; pass a "
                "larger timeout=... for longer answers"
            )
        return BytezStreamTimeoutError(
            f"The stream stopped after {len(delivered)} characters: {what}",
            status_code=status,
            model_id=model_id,
            delivered_text=delivered,
        )


def _at_most(value: float | None, bound: float | None) -> float | None:
    if bound is None or math.isinf(bound):
        return value
    return bound if value is None else min(value, bound)


def concurrency_timeout(
    limiter: InFlightLimiter, cap: int | None, waited: float, model_id: str | None
) -> BytezConcurrencyTimeoutError:
    """The error of a call that found no concurrency slot before its deadline.

    Args:
        limiter: The account's limiter.
        cap: The caller's ``max_concurrent_requests`` (``None``: learned).
        waited: Seconds the call waited.
        model_id: The model the call was for.
    """
    in_flight = limiter.in_use
    limit = limiter.limit_for(cap)
    source = (
        f"max_concurrent_requests={cap}"
        if cap is not None and cap <= limiter.capacity
        else "learned from the account's 429 answers"
        if limit < 4
        else "the limiter's current limit"
    )
    message = (
        f"Waited {seconds(waited)} for a concurrency slot: {in_flight} request(s) to this "
        f"Bytez account were in flight and the limit is {limit} ({source}). Raise timeout, "
        "set max_concurrent_requests to what your account allows, or close streams you "
        "no longer read (an open stream holds its slot until it is closed or exhausted)."
    )
    return BytezConcurrencyTimeoutError(
        message, model_id=model_id, in_flight=in_flight, limit=limit, waited=waited
    )


class BodyReader:
    """Decodes a body's raw bytes in bounded steps and counts what they decode to.

    ``gzip`` and ``deflate`` are decompressed here, at most ``_STEP`` bytes at a time,
    so memory grows only with what is kept. Any other encoding (a server ignoring our
    ``Accept-Encoding``) is left to httpx (``raw`` is ``False``: read decoded bytes),
    and counted after httpx decoded each chunk.

    A body sent as is (no ``Content-Encoding``, the usual small JSON answer) takes a
    short path: each chunk is counted and kept as it arrived, and a body of one chunk
    is handed on without a copy (``content``). The size limit and the deadline are
    checked for every chunk on both paths.

    Attributes:
        received: Decoded bytes so far.
        raw: Whether the shell must feed raw bytes (``iter_raw``) rather than httpx's
            decoded ones (``iter_bytes``).
        body: The decoded body so far (``bytes`` while it is one chunk).
    """

    __slots__ = ("_decoder", "_first", "_limit", "body", "failure", "model_id", "raw", "received")

    def __init__(
        self, limit: int, content_encoding: str, model_id: str | None, *, read: bool = False
    ) -> None:
        """Prepare for a body with ``content_encoding``, allowed ``limit`` decoded bytes.

        ``read``: the body was already read and decoded (a transport or event hook that
        read it); it is only counted.
        """
        self._limit = limit
        self.model_id = model_id
        self.received = 0
        self.body: bytes | bytearray = b""
        self.failure: httpx.HTTPError | None = None
        self._first = True
        self.raw = not read
        encoding = "identity" if read else content_encoding.strip().lower()
        self._decoder: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            self.raw = False

    def feed(self, raw: bytes) -> list[bytes]:
        """Decode ``raw`` and return its pieces.

        Raises:
            BytezResponseTooLargeError: When the decoded total passes the limit.
            httpx.DecodingError: If the compressed data is corrupt.
        """
        decoder = self._decoder
        if decoder is None:
            self._count(len(raw))
            return [raw] if raw else []
        pieces: list[bytes] = []
        data = raw
        while data:
            try:
                piece = decoder.decompress(data, _STEP)
            except zlib.error as exc:
                if self._first and self.received == 0:
                    # "deflate" is sometimes sent raw, without the zlib header.
                    self._decoder = decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._first = False
                    continue
                raise httpx.DecodingError(str(exc)) from exc
            self._first = False
            if piece:
                self._count(len(piece))
                pieces.append(piece)
            data = decoder.unconsumed_tail
        return pieces

    def take(self, raw: bytes | None, deadline: Deadline) -> None:
        """Add the decoded ``raw`` chunk (``None``: the end) to ``body``; check the time.

        Raises:
            BytezResponseTooLargeError: When the body passes the limit.
            BytezTimeoutError: When the call's deadline passed.
        """
        if raw is not None and self._decoder is None:
            if raw:  # sent as is: no decoding step, no list of pieces
                self._count(len(raw))
                self._keep(raw)
        else:
            for piece in self.feed(raw) if raw is not None else self.finish():
                self._keep(piece)
        deadline.check(self.model_id)

    def _keep(self, piece: bytes) -> None:
        body = self.body
        if not body:
            self.body = piece  # the first piece is kept as it is: no copy
        elif isinstance(body, bytearray):
            body += piece
        else:
            self.body = bytearray(body) + piece  # a second piece: grow in place from now

    def content(self) -> bytes:
        """The body read, as ``bytes`` (the piece itself for a body of one piece)."""
        body = self.body
        return body if isinstance(body, bytes) else bytes(body)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Keep a transport failure of the block in ``failure`` (raised later, unchained)."""
        try:
            yield
        except httpx.HTTPError as exc:
            self.failure = exc

    def finish(self) -> list[bytes]:
        """What the decoder still holds at the end of the body."""
        decoder = self._decoder
        if decoder is None:
            return []
        piece = decoder.flush(_STEP)
        if piece:
            self._count(len(piece))
            return [piece]
        return []

    def _count(self, size: int) -> None:
        self.received += size
        if self.received > self._limit:
            raise self.too_large()

    def too_large(self) -> BytezResponseTooLargeError:
        """The error of a body past the limit."""
        message = (
            f"The answer is larger than max_response_bytes={self._limit} bytes (counted "
            f"after decompression; {self.received} bytes read before stopping). Raise "
            "max_response_bytes if such answers are expected."
        )
        return BytezResponseTooLargeError(
            message, model_id=self.model_id, limit=self._limit, received=self.received
        )
