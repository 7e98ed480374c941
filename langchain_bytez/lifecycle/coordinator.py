"""The load coordinator: lifecycle state and single flight, shared by sync and async.

[`LoadCoordinator`][langchain_bytez.lifecycle.coordinator.LoadCoordinator] is the part of
[`ModelManager`][langchain_bytez.manager.ModelManager] that remembers (running models,
serverless mode, models whose auto-load is skipped) and coordinates (one load per model
at a time, shared by every thread and task). It builds plans
([`plans`][langchain_bytez.lifecycle.plans]) from that state and runs them with the
drivers; the decisions themselves are in the plans. The public methods built on it
(``ensure_loaded``, ``ensure_available``, ``limit`` and their async twins) are the
manager's, in ``lifecycle/_async/manager.py`` (the sync ones generated from it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypedDict, TypeVar

from langchain_bytez.errors import (
    BytezAuthenticationError,
    BytezError,
    BytezPaymentRequiredError,
)
from langchain_bytez.lifecycle import plans, settings
from langchain_bytez.lifecycle.drivers import PlanRun, adrive, drive
from langchain_bytez.lifecycle.flight import Flight, LeaderGone, loop_running_here
from langchain_bytez.lifecycle.plans import Plan, Polling, is_route_gone
from langchain_bytez.lifecycle.progress import (
    AnyProgressCallback,
    AsyncProgressOption,
    LoadProgress,
    ProgressOption,
    call_async,
    call_sync,
    resolve_progress,
)
from langchain_bytez.lifecycle.settings import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    LoadSpec,
    check_count,
)
from langchain_bytez.limiter import InFlightLimiter
from langchain_bytez.protocol import is_closed_source, validate_model_id
from langchain_bytez.types import ClusterState, ClusterStatus, check_options

if TYPE_CHECKING:
    from langchain_bytez.client import AsyncBytezClient, BytezClient

__all__ = ["AutoLoadOptions", "LoadCoordinator", "LoadRequest"]

logger = logging.getLogger("langchain_bytez")

# (model id, base URL) pairs already warned about a skipped implicit auto-load.
_IMPLICIT_WARNED: set[tuple[str, str]] = set()
_IMPLICIT_WARNED_LOCK = threading.Lock()


_P = TypeVar("_P")


class AutoLoadOptions(TypedDict, Generic[_P], total=False):
    """The keyword-only settings of an implicit auto-load (``ensure_available``).

    Attributes:
        concurrency: Instances of a cluster created here (default 1).
        timeout: Idle seconds of a cluster created here (default 300).
        progress: ``True``, a callable (the async method also takes an async one), or
            ``False``/``None`` (the default).
        deadline: Longest wait for a loading cluster; past it the run is sent (default
            15 minutes).
    """

    concurrency: int
    timeout: float
    progress: _P
    deadline: float


class LoadRequest(NamedTuple):
    """One load asked for: the model, its checked settings, and whether it is implicit."""

    model_id: str
    spec: LoadSpec
    implicit: bool = False


Callback = AnyProgressCallback | None
_Settle = Callable[[ClusterStatus | None], None]


@dataclass(frozen=True)
class _CacheEntry:
    expires: float
    status: ClusterStatus
    key: tuple[int, int, int, int]


class LoadCoordinator:
    """Lifecycle state of one endpoint and key, single flight, implicit auto-load and limits.

    Attributes:
        running_ttl: Upper bound, in seconds, on how long "running" is remembered.
        poll_initial: First delay between status polls while loading, in seconds.
        poll_max: Longest delay between polls (the delay doubles up to it).
    """

    def __init__(
        self, *, running_ttl: float = 30.0, poll_initial: float = 0.05, poll_max: float = 5.0
    ) -> None:
        """Create a manager (prefer ``for_client``, which shares one per endpoint).

        Args:
            running_ttl: Most seconds a model seen running is trusted without a request.
            poll_initial: First delay between status polls while loading, in seconds.
            poll_max: Longest delay between status polls, in seconds.
        """
        self.running_ttl = running_ttl
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self._lock = threading.Lock()
        self._running: dict[str, _CacheEntry] = {}
        self._flights: dict[str, Flight] = {}
        self._limiters: dict[str, InFlightLimiter] = {}
        self._serverless = False
        self._warned = False
        # Models whose implicit auto-load is skipped until the given monotonic time.
        self._implicit_skip: dict[str, float] = {}

    @property
    def serverless(self) -> bool:
        """Whether the cluster routes were found missing (serverless fallback active)."""
        return self._serverless

    def __repr__(self) -> str:
        """Return a short description (models and mode; no secrets)."""
        mode = "serverless" if self._serverless else "clusters"
        return f"ModelManager(mode={mode!r}, running={sorted(self._running)})"

    # ------------------------------------------------------------------ state

    def forget(self, model_id: str) -> None:
        """Drop what is remembered about a model being running.

        Call it when a run says the model is not loaded; the next
        [`ensure_loaded`][langchain_bytez.manager.ModelManager.ensure_loaded] then asks the service
        again.

        Args:
            model_id: The Bytez model id.
        """
        with self._lock:
            self._running.pop(model_id, None)

    def _cached(self, model_id: str, spec: LoadSpec | None) -> ClusterStatus | None:
        """The remembered running status; with ``spec``, only if loaded with its settings.

        Implicit auto-load passes ``None``: it takes a running cluster whatever its settings.
        """
        with self._lock:
            entry = self._running.get(model_id)
            if entry is None:
                return None
            if entry.expires <= time.monotonic():
                del self._running[model_id]
                return None
            return entry.status if spec is None or entry.key == spec.key else None

    def _implicit_memory(self, model_id: str) -> tuple[bool, ClusterStatus | None]:
        """Whether the model's implicit auto-load is skipped, and its remembered status.

        One lock and one clock read for both: every auto-loaded run asks.
        """
        with self._lock:
            now = time.monotonic()
            until = self._implicit_skip.get(model_id)
            if until is not None:
                if until > now:
                    return True, None
                del self._implicit_skip[model_id]
            entry = self._running.get(model_id)
            if entry is None:
                return False, None
            if entry.expires <= now:
                del self._running[model_id]
                return False, None
            return False, entry.status

    def _skip_implicit(self, model_id: str, seconds: float) -> None:
        with self._lock:
            if len(self._implicit_skip) >= 4096:  # bounded: ids come from callers
                self._implicit_skip.clear()
            self._implicit_skip[model_id] = time.monotonic() + seconds

    def _implicit_fallback(self, base_url: str, model_id: str, error: BytezError) -> None:
        """Turn a failed implicit auto-load into a serverless run (record, warn once).

        401 and 402 are raised: the run would fail the same way.
        """
        if isinstance(error, (BytezAuthenticationError, BytezPaymentRequiredError)) or (
            error.status_code in {401, 402}
        ):
            raise error
        self._implicit_failed(base_url, model_id, error)

    def _implicit_failed(self, base_url: str, model_id: str, error: BytezError) -> None:
        """Record a failed implicit auto-load: skip it for a while, warn once."""
        if is_route_gone(error):
            with self._lock:
                self._serverless = True  # the routes are gone for every model
                self._running.clear()
        self._skip_implicit(model_id, settings.IMPLICIT_RETRY_AFTER)
        with _IMPLICIT_WARNED_LOCK:
            first = (model_id, base_url) not in _IMPLICIT_WARNED
            if first and len(_IMPLICIT_WARNED) < 4096:
                _IMPLICIT_WARNED.add((model_id, base_url))
        status = f"HTTP {error.status_code}: " if error.status_code else ""
        detail = f"{type(error).__name__}: {status}{error.message}"
        if not first:
            logger.info("Bytez auto-load of %s skipped again (%s)", model_id, detail)
            return
        msg = (
            f"Bytez auto-load of {model_id} failed ({detail[:300]}); the run is sent "
            "anyway (serverless: the service starts the model on the first run). "
            "Set auto_load=False to skip the cluster calls."
        )
        # Said once, as a warning only: logging it at WARNING too would print it twice
        # to a script that has not configured logging (logging's last-resort handler).
        logger.info(msg)
        warnings.warn(msg, UserWarning, stacklevel=6)

    def _remember(self, model_id: str, spec: LoadSpec, status: ClusterStatus | None) -> None:
        if status is None or status.state is not ClusterState.RUNNING:
            return
        # Trust "running" for less than the idle timeout: the cluster may shut itself
        # down after that many idle minutes, and then runs would hit a cold start.
        idle = spec.minutes * 60.0
        if status.idle_timeout_minutes:
            idle = min(idle, status.idle_timeout_minutes * 60.0)
        ttl = min(self.running_ttl, idle / 2)
        entry = _CacheEntry(time.monotonic() + ttl, status, spec.key)
        with self._lock:
            self._running[model_id] = entry

    def _enter_serverless(self, error: BytezError) -> None:
        with self._lock:
            first = not self._warned
            self._serverless = True
            self._warned = True
            self._running.clear()
        if first:
            detail = f"HTTP {error.status_code}" if error.status_code else "not available"
            msg = (
                f"Bytez cluster routes are not available on this endpoint ({detail}); "
                "falling back to serverless mode: the first run of a model starts it "
                "and is held open through the cold start. load() returns None and "
                "status() reports raw_status='serverless'."
            )
            logger.info(msg)  # as above: the warning is the one place it is said
            warnings.warn(msg, UserWarning, stacklevel=5)

    def _join(
        self, model_id: str, spec: LoadSpec, printer: bool, *, implicit: bool = False
    ) -> tuple[Flight, bool]:
        with self._lock:
            flight = self._flights.get(model_id)
            if flight is not None:
                return flight, False
            # An implicit load sets no settings: explicit callers never take its result.
            flight = Flight(None if implicit else spec.key, printer)
            self._flights[model_id] = flight
            return flight, True

    def _finish(
        self,
        model_id: str,
        spec: LoadSpec,
        flight: Flight,
        result: ClusterStatus | None = None,
        error: BaseException | None = None,
    ) -> None:
        # Remember first, then retire the flight, then wake the waiters: a caller
        # arriving in between finds the cache instead of starting a second load.
        if error is None:
            self._remember(model_id, spec, result)
        with self._lock:
            if self._flights.get(model_id) is flight:
                del self._flights[model_id]
        if error is None:
            flight.future.set_result(result)
        elif isinstance(error, Exception):
            flight.future.set_exception(error)
        else:
            flight.future.set_exception(LeaderGone())

    # ------------------------------------------------------------------ plans

    def _polling(self) -> Polling:
        return Polling(initial=self.poll_initial, maximum=self.poll_max)

    def _load_plan(
        self, model_id: str, spec: LoadSpec, *, wait: bool
    ) -> Plan[ClusterStatus | None]:
        return plans.load_plan(
            model_id, spec, wait=wait, serverless=self._serverless, polling=self._polling()
        )

    def _status_plan(self, model_id: str) -> Plan[ClusterStatus]:
        return plans.status_plan(model_id, serverless=self._serverless)

    def _stop_plan(self, model_id: str) -> Plan[None]:
        return plans.stop_plan(model_id, serverless=self._serverless)

    def _plan_for(
        self, model_id: str, spec: LoadSpec, *, implicit: bool
    ) -> Plan[ClusterStatus | None]:
        if implicit:
            return plans.implicit_plan(
                model_id, spec, skip_seconds=self.running_ttl, polling=self._polling()
            )
        return self._load_plan(model_id, spec, wait=True)

    def _known(
        self, model_id: str, spec: LoadSpec, *, use_cache: bool
    ) -> tuple[ClusterStatus | None] | None:
        """The answer of a load that needs no request (serverless, or remembered), if any."""
        if self._serverless:
            return (None,)
        if use_cache and (cached := self._cached(model_id, spec)) is not None:
            return (cached,)
        return None

    def _load_sync(
        self, client: BytezClient, load: LoadRequest, progress: ProgressOption, *, use_cache: bool
    ) -> ClusterStatus | None:
        model_id, spec, implicit = load
        if (known := self._known(model_id, spec, use_cache=use_cache)) is not None:
            return known[0]
        own, printer = resolve_progress(progress), progress is True
        while True:
            flight, leader = self._join(model_id, spec, printer, implicit=implicit)
            if leader:
                return self._lead_sync(client, load, flight, own)
            if loop_running_here():
                # Blocking this thread on a load led by a task of our own event loop
                # would deadlock it: load independently (a racing PUT is answered 409,
                # which the plan handles).
                plan = self._plan_for(model_id, spec, implicit=implicit)
                result = drive(plan, client, PlanRun(model_id, own, self, implicit))
                self._remember(model_id, spec, result)
                return result
            if not implicit and flight.key != spec.key:
                # A load with other settings (or an implicit one, which sets none) is
                # under way: its result is not ours. Let it finish, then load again
                # (which updates the cluster to our settings).
                concurrent.futures.wait([flight.future])
                continue
            if own is not None:
                flight.subscribe(own, printer=printer)
            try:
                return flight.future.result()
            except LeaderGone:
                continue

    @contextmanager
    def _leading(self, load: LoadRequest, flight: Flight) -> Iterator[_Settle]:
        """Lead a flight: yields how to settle it with the result; a failure settles it too."""
        model_id, spec, _ = load
        try:
            yield functools.partial(self._finish, model_id, spec, flight)
        except BaseException as exc:
            self._finish(model_id, spec, flight, error=exc)
            raise

    def _lead_sync(
        self, client: BytezClient, load: LoadRequest, flight: Flight, own: Callback
    ) -> ClusterStatus | None:
        def emit(event: LoadProgress) -> None:
            if own is not None:
                call_sync(own, event)
            flight.broadcast(event)

        with self._leading(load, flight) as settle:
            plan = self._plan_for(load.model_id, load.spec, implicit=load.implicit)
            result = drive(plan, client, PlanRun(load.model_id, emit, self, load.implicit))
            settle(result)
        return result

    async def _load_async(
        self,
        client: AsyncBytezClient,
        load: LoadRequest,
        progress: AsyncProgressOption,
        *,
        use_cache: bool,
    ) -> ClusterStatus | None:
        model_id, spec, implicit = load
        if (known := self._known(model_id, spec, use_cache=use_cache)) is not None:
            return known[0]
        own, printer = resolve_progress(progress), progress is True
        while True:
            flight, leader = self._join(model_id, spec, printer, implicit=implicit)
            if leader:
                return await self._lead_async(client, load, flight, own)
            if not implicit and flight.key != spec.key:
                # Another settings' load is under way (see _load_sync): wait, then retry.
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(flight.future)
                continue
            try:
                return await self._follow_async(flight, own, printer)
            except LeaderGone:
                continue

    async def _lead_async(
        self, client: AsyncBytezClient, load: LoadRequest, flight: Flight, own: Callback
    ) -> ClusterStatus | None:
        async def emit(event: LoadProgress) -> None:
            flight.broadcast(event)
            if own is not None:
                await call_async(own, event)

        with self._leading(load, flight) as settle:
            plan = self._plan_for(load.model_id, load.spec, implicit=load.implicit)
            result = await adrive(plan, client, PlanRun(load.model_id, emit, self, load.implicit))
            settle(result)
        return result

    async def _follow_async(
        self, flight: Flight, own: AnyProgressCallback | None, printer: bool
    ) -> ClusterStatus | None:
        waiting = asyncio.wrap_future(flight.future)
        if own is None:
            return await waiting
        # The leader may run in another thread or loop: events reach this task through a
        # queue fed with call_soon_threadsafe, and the callback runs here, in our loop.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[LoadProgress] = asyncio.Queue()

        def forward(event: LoadProgress) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        if not flight.subscribe(forward, printer=printer):
            return await waiting
        try:
            while not waiting.done():
                getter = asyncio.ensure_future(queue.get())
                pending: set[asyncio.Future[Any]] = {waiting, getter}
                try:
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not getter.done():
                        getter.cancel()
                if getter.done() and not getter.cancelled():
                    await call_async(own, getter.result())
        finally:
            # A cancelled follower stops listening: once its loop is closed, forwarding
            # would fail (and log) on every later event of the load.
            flight.unsubscribe(forward)
        while not queue.empty():
            await call_async(own, queue.get_nowait())
        return await waiting

    # ------------------------------------------------------------------ implicit auto-load

    def _implicit_start(
        self, model_id: str, options: AutoLoadOptions[Any]
    ) -> tuple[LoadRequest | None, ClusterStatus | None]:
        """Check an implicit auto-load's settings and id, and whether it must send anything.

        Returns:
            The load to run, or ``None`` when no cluster call is to be made, with then
            the remembered status (or ``None``: send the run).
        """
        check_options("ensure_available", options, AutoLoadOptions)
        spec = LoadSpec.build(
            options.get("concurrency", 1),
            options.get("timeout", DEFAULT_TIMEOUT_SECONDS),
            None,
            options.get("deadline", DEFAULT_DEADLINE_SECONDS),
        )
        model_id = validate_model_id(model_id)
        if self._serverless or is_closed_source(model_id):
            return None, None
        skipped, cached = self._implicit_memory(model_id)
        if skipped or cached is not None:
            return None, cached
        return LoadRequest(model_id, spec, implicit=True), None

    # ------------------------------------------------------------------ limits

    def _limiter(self, model_id: str, concurrency: int) -> InFlightLimiter:
        limiter = self._limiters.get(model_id)  # lock-free fast path: dict reads are atomic
        if limiter is not None and type(concurrency) is int and limiter.capacity == concurrency:
            return limiter  # the cap of last time: already checked, nothing to resize
        concurrency = check_count("concurrency", concurrency, 1)
        with self._lock:
            limiter = self._limiters.get(model_id)
            if limiter is None:
                limiter = self._limiters[model_id] = InFlightLimiter(concurrency)
        # A new cap applies from the next acquisition; runs already in flight finish.
        limiter.resize(concurrency)
        return limiter
