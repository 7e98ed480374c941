"""What the local server lets tests see and steer: the request log, counters, ``/_local/*``.

The control routes (``POST /_local/faults``, ``POST /_local/reset``) change the server's
behaviour, so they are guarded: they answer only loopback peers, refuse any request whose
``Origin`` is not this server's own (a web page open in a browser could otherwise inject
faults), and require an API key the server accepts.
"""

from __future__ import annotations

import collections
import ipaddress
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from langchain_bytez.testing.http import Exchange, dumps

__all__ = ["DEFAULT_LOG_LIMIT", "Counters", "RecordedRequest", "RequestLog", "is_loopback"]

DEFAULT_LOG_LIMIT = 100_000
"""Requests the log keeps by default (oldest dropped first): a soak run stays bounded."""

SECRET_HEADERS = frozenset({"authorization", "provider-key"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP address.

    Args:
        host: A host name or address (IPv6 without brackets).

    Returns:
        Whether it is loopback.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        arrival: The request's place in the order requests arrived (the log is in this
            order: a request answered late, or aborted when its client gave up, stands
            where it arrived, not where it ended).
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
    arrival: int = 0


class RequestLog:
    """The requests answered since the last reset, in arrival order, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        """An empty log.

        Args:
            limit: Most requests kept (older ones are dropped).

        Raises:
            ValueError: If ``limit`` is not a positive integer.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            msg = f"request_log_limit must be a positive integer, got {limit!r}"
            raise ValueError(msg)
        self._lock = threading.Lock()
        self._entries: collections.deque[RecordedRequest] = collections.deque(maxlen=limit)
        self._arrivals = itertools.count(1)
        self.dropped = 0

    def arrived(self) -> int:
        """The arrival number of a request that has just come in."""
        return next(self._arrivals)  # atomic under the GIL: no lock needed

    @property
    def limit(self) -> int:
        """Most requests kept."""
        return self._entries.maxlen or 0

    def add(self, record: RecordedRequest) -> None:
        """Append a request (dropping the oldest when full)."""
        with self._lock:
            if len(self._entries) == self._entries.maxlen:
                self.dropped += 1
            self._entries.append(record)

    def snapshot(self) -> list[RecordedRequest]:
        """A copy of the log."""
        with self._lock:
            return sorted(self._entries, key=lambda record: record.arrival)

    def clear(self) -> None:
        """Empty the log."""
        with self._lock:
            self._entries.clear()
            self.dropped = 0


class Counters:
    """Runs in flight and running, account-wide and per model, with their peaks."""

    def __init__(self) -> None:
        """All zero."""
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.model_in_flight: dict[str, int] = {}
        self.model_peak: dict[str, int] = {}
        self.model_running: dict[str, int] = {}
        self.model_running_peak: dict[str, int] = {}

    def admit(self, model_id: str, delta: int) -> None:
        """A run enters (``+1``) or leaves (``-1``) the server."""
        with self._lock:
            self.in_flight += delta
            now = self.model_in_flight.get(model_id, 0) + delta
            self.model_in_flight[model_id] = now
            if delta > 0:
                self.peak = max(self.peak, self.in_flight)
                if now > self.model_peak.get(model_id, 0):
                    self.model_peak[model_id] = now

    def running(self, model_id: str, delta: int) -> None:
        """A run starts (``+1``) or stops (``-1``) executing on an instance."""
        with self._lock:
            now = self.model_running.get(model_id, 0) + delta
            self.model_running[model_id] = now
            if delta > 0 and now > self.model_running_peak.get(model_id, 0):
                self.model_running_peak[model_id] = now

    def restart_peaks(self) -> None:
        """Peaks start again from what is in flight now."""
        with self._lock:
            self.peak = self.in_flight
            self.model_peak = dict(self.model_in_flight)
            self.model_running_peak = dict(self.model_running)

    def peak_of(self, model_id: str | None) -> int:
        """Peak in flight (account-wide for ``None``)."""
        with self._lock:
            return self.peak if model_id is None else self.model_peak.get(model_id, 0)

    def running_peak_of(self, model_id: str) -> int:
        """Peak running of one model."""
        with self._lock:
            return self.model_running_peak.get(model_id, 0)

    def in_flight_of(self, model_id: str | None) -> int:
        """In flight now (account-wide for ``None``)."""
        with self._lock:
            return self.in_flight if model_id is None else self.model_in_flight.get(model_id, 0)


def _own_origin(origin: str, host_header: str) -> bool:
    """Whether ``Origin`` names this server (loopback host, same host:port as requested)."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    return is_loopback(parts.hostname) and parts.netloc == host_header


async def local_route(
    ex: Exchange,
    *,
    key_ok: bool,
    inject: Callable[..., None],
    reset: Callable[[], None],
) -> Any:
    """Answer ``/_local/*``.

    Args:
        ex: The exchange.
        key_ok: Whether the request carries a key the server accepts.
        inject: ``LocalBytezServer.inject``.
        reset: ``LocalBytezServer.reset``.

    Returns:
        The parsed JSON body (for the request log), if any.
    """
    peer = ex.writer.get_extra_info("peername")
    host = peer[0] if isinstance(peer, tuple) and peer else ""
    origin = ex.headers.get("origin")
    if not is_loopback(str(host)) or (
        origin is not None and not _own_origin(origin, ex.headers.get("host", ""))
    ):
        await _json(ex, 403, {"error": "Forbidden", "output": None})
        return None
    if not key_ok:
        await _json(ex, 401, {"error": "Unauthorized", "output": None})
        return None
    if ex.method != "POST":
        await _json(ex, 405, {"error": "Method Not Allowed", "output": None})
        return None
    if ex.path == "/_local/reset":
        reset()
        await _json(ex, 200, {"error": None, "output": "reset"})
        return None
    if ex.path != "/_local/faults":
        await _json(ex, 404, {"error": "Not Found", "output": None})
        return None
    data: Any = None
    try:
        data = json.loads(ex.body or b"{}")
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError("body must be an object with a `kind`")  # noqa: TRY301
        inject(data["kind"], **{k: v for k, v in data.items() if k != "kind"})
    except (ValueError, TypeError, RecursionError) as exc:
        await _json(ex, 400, {"error": str(exc), "output": None})
        return data
    await _json(ex, 200, {"error": None, "output": "queued"})
    return data


async def _json(ex: Exchange, status: int, payload: Any) -> None:
    await ex.send(status, dumps(payload), [("content-type", "application/json")])
