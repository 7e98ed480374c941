"""Fault injection: the failures the local server can be told to produce, and their queue."""

from __future__ import annotations

import enum
import math
import random
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["Fault", "FaultKind", "FaultQueue", "finite_seconds"]


class FaultKind(str, enum.Enum):
    """Faults the server can inject.

    Queue them with
    [`LocalBytezServer.inject`][langchain_bytez.testing.server.LocalBytezServer.inject];
    pass a member or its string value.
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
    """A stream sends ``after_tokens`` tokens, then ``Error: <message>`` as its last item.

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


RANDOM_FAULTS = (
    FaultKind.STATUS_503,
    FaultKind.RATE_LIMIT,
    FaultKind.RATE_LIMIT_RETRY_AFTER,
    FaultKind.RESET,
    FaultKind.HTML_502,
)
RANDOM_STREAM_FAULTS = (
    *RANDOM_FAULTS,
    FaultKind.DISCONNECT_MID_STREAM,
    FaultKind.ERROR_MID_STREAM,
)


def finite_seconds(name: str, value: Any) -> float:
    """``value`` as a finite, non-negative float.

    Args:
        name: The knob's name, for the error.
        value: The value.

    Returns:
        The number.

    Raises:
        TypeError: If it is not a number.
        ValueError: If it is negative or not finite.
    """
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


@dataclass
class Fault:
    """One queued fault and the requests it matches.

    Attributes:
        kind: What goes wrong.
        model_id: Only requests for this model (``None``: any).
        method: Only this method (``None``: any).
        path_prefix: Only paths starting with this (``None``: model routes).
        delay: Seconds of ``SLOW_FIRST_BYTE``.
        retry_after: Seconds announced by the 429 faults.
        after_tokens: Tokens sent before a mid-stream fault.
        message: The error message of the error faults.
        remaining: How many more matching requests get it.
    """

    kind: FaultKind
    model_id: str | None
    method: str | None
    path_prefix: str | None
    delay: float
    retry_after: float | None
    after_tokens: int
    message: str
    remaining: int = 1

    def matches(self, method: str, path: str, model_id: str | None, model_route: bool) -> bool:
        """Whether a request gets this fault.

        Args:
            method: The request's method.
            path: The request's path.
            model_id: The model the request is about.
            model_route: Whether it is ``/models/v2/{valid model id}``.

        Returns:
            Whether it matches.
        """
        if self.method is not None and self.method != method:
            return False
        if self.path_prefix is not None:
            if not path.startswith(self.path_prefix):
                return False
        elif not model_route:
            return False
        return self.model_id is None or self.model_id == model_id


class FaultQueue:
    """Faults waiting for matching requests (first in, first out), plus random faults."""

    def __init__(self, seed: int) -> None:
        """An empty queue.

        Args:
            seed: Seed of the random fault choice.
        """
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - not cryptographic

    def add(
        self,
        kind: FaultKind | str,
        count: int,
        *,
        model_id: str | None,
        method: str | None,
        path_prefix: str | None,
        delay: float,
        retry_after: float | None,
        after_tokens: int,
        message: str,
    ) -> None:
        """Validate and queue a fault (see ``LocalBytezServer.inject``).

        Raises:
            ValueError: If ``kind`` is unknown, ``count`` is negative, or a duration
                is negative or not finite.
            TypeError: If a value has the wrong type.
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
        fault = Fault(
            kind=fault_kind,
            model_id=model_id,
            method=None if method is None else method.upper(),
            path_prefix=path_prefix,
            delay=finite_seconds("delay", delay),
            retry_after=None if retry_after is None else finite_seconds("retry_after", retry_after),
            after_tokens=max(0, int(finite_seconds("after_tokens", after_tokens))),
            message=message,
            remaining=count,
        )
        if count:
            with self._lock:
                self._faults.append(fault)

    def take(self, method: str, path: str, model_id: str | None, model_route: bool) -> Fault | None:
        """The first queued fault matching a request, consumed once.

        Returns:
            The fault, or ``None``.
        """
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path, model_id, model_route):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._faults[index]
                    return fault
        return None

    def random(self, rate: float, *, stream: bool, retry_after: float) -> Fault | None:
        """A random retryable fault for ``rate`` of the calls (stream faults for streams).

        Returns:
            The fault, or ``None``.
        """
        if rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= rate:
                return None
            kind = self._rng.choice(RANDOM_STREAM_FAULTS if stream else RANDOM_FAULTS)
            after = self._rng.randint(1, 3)
        return Fault(kind, None, None, None, 0.0, retry_after, after, "simulated random failure")

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Drop every fault and restart the random sequence."""
        with self._lock:
            self._faults.clear()
            self._rng = random.Random(self._seed)  # noqa: S311 - not cryptographic
