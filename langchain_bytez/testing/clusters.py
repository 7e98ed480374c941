"""Instance clusters of the local server: cold starts, capacity, idle shutdown, the routes.

A run on a model without a cluster creates one with defaults and waits through its cold
start, as the live service does. ``capacity.desired`` runs execute at once per cluster;
more wait their turn. A cluster with no run for ``timeout`` minutes shuts down (one
"minute" is ``idle_seconds_per_minute`` real seconds).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from langchain_bytez.testing.params import envelope_error

__all__ = ["DEFAULT_TIMEOUT_MINUTES", "Cluster", "ClusterBook"]

DEFAULT_TIMEOUT_MINUTES = 5
MAX_TIMEOUT_MINUTES = 1440


def now_iso() -> str:
    """The current UTC time as the API writes it (``2026-01-01T00:00:00.000Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Cluster:
    """One model's instance cluster."""

    def __init__(self, model_id: str, capacity: dict[str, int], timeout: int) -> None:
        """A new cluster, ``loading``.

        Args:
            model_id: The model.
            capacity: ``{min, desired, max}``.
            timeout: Idle minutes before shutdown.
        """
        now = now_iso()
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
        """How many runs execute at once."""
        return max(1, self.capacity["desired"])

    async def acquire(self) -> None:
        """Wait for a free instance, then take it."""
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
        """Give an instance back."""
        self.running -= 1
        self.wake(1)

    def wake(self, count: int) -> None:
        """Wake up to ``count`` waiting runs."""
        while count > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def cancel_timers(self) -> None:
        """Cancel the load and idle timers."""
        for handle in (self.load_handle, self.idle_handle):
            if handle is not None:
                handle.cancel()
        self.load_handle = None
        self.idle_handle = None

    def to_json(self) -> dict[str, Any]:
        """The cluster object as the API reports it."""
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


class ClusterBook:
    """Every cluster of one server, with their timers (used on the server's loop only)."""

    def __init__(
        self,
        *,
        load_delay: Callable[[], float],
        idle_seconds_per_minute: Callable[[], float],
        take_failure: Callable[[str], str | None],
    ) -> None:
        """An empty book.

        Args:
            load_delay: Seconds a cold start lasts (read at each load).
            idle_seconds_per_minute: Real seconds per idle minute (read at each arm).
            take_failure: The failure reason queued for a model's next load, consumed.
        """
        self.clusters: dict[str, Cluster] = {}
        self._load_delay = load_delay
        self._idle_seconds = idle_seconds_per_minute
        self._take_failure = take_failure

    def get(self, model_id: str) -> Cluster | None:
        """The live cluster of ``model_id``, or ``None``."""
        found = self.clusters.get(model_id)
        return None if found is None or found.removed else found

    def create(self, model_id: str, capacity: dict[str, int], timeout: int) -> Cluster:
        """Create a cluster and start its cold start."""
        cluster = Cluster(model_id, capacity, timeout)
        self.clusters[model_id] = cluster
        self.start_loading(cluster)
        return cluster

    def start_loading(self, cluster: Cluster) -> None:
        """(Re)start a cold start."""
        cluster.generation += 1
        cluster.status = "loading"
        cluster.reason = None
        cluster.modified = now_iso()
        if cluster.ready.is_set():
            cluster.ready = asyncio.Event()
        cluster.cancel_timers()
        failure = self._take_failure(cluster.model_id)
        delay = self._load_delay()
        if delay <= 0:
            self._finish_load(cluster, cluster.generation, failure)
            return
        loop = asyncio.get_running_loop()
        cluster.load_handle = loop.call_later(
            delay, self._finish_load, cluster, cluster.generation, failure
        )

    def _finish_load(self, cluster: Cluster, generation: int, failure: str | None) -> None:
        if cluster.removed or cluster.generation != generation:
            return
        cluster.load_handle = None
        cluster.modified = now_iso()
        if failure is not None:
            cluster.status = "failed"
            cluster.reason = failure
        else:
            cluster.status = "on"
            self.touch(cluster)
        cluster.ready.set()

    async def wait_ready(self, cluster: Cluster) -> None:
        """Wait until the cluster is on.

        Raises:
            HTTPError: 503 if it was stopped or failed to load.
        """
        while True:
            if cluster.removed:
                raise envelope_error(503, "Model instance was stopped")
            if cluster.status == "on":
                return
            if cluster.status == "failed":
                raise envelope_error(503, f"Model failed to load: {cluster.reason}")
            if cluster.status == "off":
                self.start_loading(cluster)
                continue
            await cluster.ready.wait()

    def touch(self, cluster: Cluster) -> None:
        """Record activity and make sure an idle timer is armed."""
        loop = asyncio.get_running_loop()
        cluster.last_activity = loop.time()
        if cluster.idle_handle is None and not cluster.removed:
            delay = cluster.timeout * self._idle_seconds()
            cluster.idle_handle = loop.call_later(delay, self._idle_fire, cluster)

    def rearm_idle_timers(self) -> None:
        """Re-arm every idle timer (after the idle scale changed)."""
        for cluster in list(self.clusters.values()):
            if cluster.idle_handle is not None:
                cluster.idle_handle.cancel()
                cluster.idle_handle = None
                self._idle_fire(cluster)

    def _idle_fire(self, cluster: Cluster) -> None:
        cluster.idle_handle = None
        if cluster.removed or cluster.pending > 0 or cluster.status == "loading":
            return  # the run ending (or the load finishing) re-arms the timer
        loop = asyncio.get_running_loop()
        delay = cluster.timeout * self._idle_seconds()
        remaining = cluster.last_activity + delay - loop.time()
        if remaining > 0.001:
            cluster.idle_handle = loop.call_later(remaining, self._idle_fire, cluster)
            return
        self.remove(cluster)

    def remove(self, cluster: Cluster) -> None:
        """Shut a cluster down and forget it."""
        cluster.cancel_timers()
        cluster.removed = True
        cluster.status = "off"
        cluster.ready.set()
        if self.clusters.get(cluster.model_id) is cluster:
            del self.clusters[cluster.model_id]

    def drop_all(self) -> None:
        """Remove every cluster (reset and shutdown)."""
        for cluster in self.clusters.values():
            cluster.cancel_timers()
            cluster.removed = True
            cluster.ready.set()
        self.clusters.clear()

    def handle(self, method: str, model_id: str, body: Any, raw: bytes) -> tuple[int, Any]:
        """Answer a cluster route of an existing catalogue model.

        Args:
            method: ``PUT``, ``GET``, ``PATCH`` or ``DELETE``.
            model_id: The model.
            body: The parsed JSON body (``None`` if empty or not JSON).
            raw: The raw body (to tell empty from invalid).

        Returns:
            The status and the ``output``.

        Raises:
            HTTPError: 400 for a bad body, 404 without a cluster, 409 on a second PUT.
        """
        cluster = self.get(model_id)
        if method == "GET":
            if cluster is None:
                raise envelope_error(404, "Cluster not found")
            return 200, cluster.to_json()
        if method == "DELETE":
            if cluster is None:
                raise envelope_error(404, "Cluster not found")
            self.remove(cluster)
            return 200, None
        if method == "PUT":
            capacity, timeout, _ = _parse_body(body, raw, None, allow_status=False)
            if cluster is not None and cluster.status not in ("off", "failed"):
                raise envelope_error(409, "Cluster already exists")
            if cluster is not None:
                self.remove(cluster)
            self.create(
                model_id,
                capacity or {"min": 1, "desired": 1, "max": 1},
                timeout or DEFAULT_TIMEOUT_MINUTES,
            )
            return 202, "Loading"
        if cluster is None:  # PATCH
            raise envelope_error(404, "Cluster not found")
        capacity, timeout, status = _parse_body(body, raw, cluster.capacity, allow_status=True)
        changed = capacity is not None and capacity != cluster.capacity
        if capacity is not None:
            cluster.capacity = capacity
        if timeout is not None:
            cluster.timeout = timeout
            if cluster.idle_handle is not None:
                cluster.idle_handle.cancel()
                cluster.idle_handle = None
                self.touch(cluster)
        cluster.modified = now_iso()
        if status == "off":
            cluster.cancel_timers()
            cluster.generation += 1
            cluster.status = "off"
            cluster.ready.set()
            self.touch(cluster)
        elif (status == "on" and cluster.status in ("off", "failed")) or (
            changed and cluster.status == "on"
        ):
            self.start_loading(cluster)
        if changed:
            cluster.wake(len(cluster.waiters))
        return 200, cluster.to_json()


def _parse_body(
    body: Any, raw: bytes, current: dict[str, int] | None, *, allow_status: bool
) -> tuple[dict[str, int] | None, int | None, str | None]:
    if raw and body is None:
        raise envelope_error(400, "Request body must be valid JSON")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise envelope_error(400, "Request body must be a JSON object")
    allowed = {"capacity", "timeout", "status"} if allow_status else {"capacity", "timeout"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise envelope_error(400, f"Unknown field(s): {', '.join(unknown)}")
    capacity: dict[str, int] | None = None
    raw_capacity = body.get("capacity")
    if raw_capacity is not None:
        if not isinstance(raw_capacity, dict):
            raise envelope_error(400, "`capacity` must be an object {min, desired, max}")
        bad = sorted(set(raw_capacity) - {"min", "desired", "max"})
        if bad:
            raise envelope_error(400, f"Unknown capacity field(s): {', '.join(bad)}")
        for key, value in raw_capacity.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise envelope_error(
                    400, f"capacity.{key} must be a non-negative integer, got {value!r}"
                )
        base = current or {}
        desired = raw_capacity.get("desired", base.get("desired", 1))
        minimum = raw_capacity.get("min", base.get("min", min(1, desired)))
        maximum = raw_capacity.get("max", base.get("max", max(1, desired)))
        if maximum < 1:
            raise envelope_error(400, "capacity.max must be at least 1")
        if not minimum <= desired <= maximum:
            raise envelope_error(400, "capacity must satisfy min <= desired <= max")
        capacity = {"min": minimum, "desired": desired, "max": maximum}
    timeout = body.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not 1 <= timeout <= MAX_TIMEOUT_MINUTES
    ):
        raise envelope_error(
            400,
            f"timeout must be an integer number of minutes in 1..{MAX_TIMEOUT_MINUTES}, "
            f"got {timeout!r}",
        )
    status = body.get("status")
    if status is not None and status not in ("on", "off"):
        raise envelope_error(400, f"status must be 'on' or 'off', got {status!r}")
    return capacity, timeout, status
