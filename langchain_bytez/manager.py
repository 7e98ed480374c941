"""Model lifecycle on Bytez: load (instance clusters), wait, status, stop, and run caps.

Bytez serves a model from an *instance cluster*: ``capacity.desired`` instances, each
serving one request at a time, shut down after ``timeout`` idle minutes. This module maps
that onto a small, typed API:

* [`ModelHandle`][langchain_bytez.manager.ModelHandle] /
  [`AsyncModelHandle`][langchain_bytez.manager.AsyncModelHandle] (what ``client.model(id)``
  returns): ``load`` (create or update the cluster and wait until it runs, with progress), ``start``
  (the same without waiting), ``status``, ``run``, ``stream``, ``stop``.
* [`ModelManager`][langchain_bytez.manager.ModelManager]: one per API endpoint and key
  (``client.cache_key``). It makes concurrent first calls single-flight (one create-cluster request
  however many threads or tasks ask at once), remembers which models are running for a short while,
  caps in-flight runs per model (``limit`` / ``alimit``) and detects the serverless fallback.
  Its [`ensure_available`][langchain_bytez.manager.ModelManager.ensure_available] is the
  *implicit* auto-load the LangChain classes run before a model's first run: it never
  changes an existing cluster (no PATCH, no DELETE), creates one only when none exists,
  skips closed-source models, bounds each cluster call (one attempt,
  ``IMPLICIT_CALL_TIMEOUT`` seconds) and turns any failure but 401/402 into a serverless
  run with one warning per model and base URL.
* [`LoadProgress`][langchain_bytez.manager.LoadProgress] events, a default console reporter and
  [`langchain_progress_dispatcher`][langchain_bytez.manager.langchain_progress_dispatcher], which
  turns the events into LangChain custom events named ``"bytez_model_loading"`` (visible in
  ``astream_events``).

Idle timeouts are given in **seconds** (the LangChain-facing unit) and sent to Bytez in
whole **minutes, rounded up**, between 1 and 1440 (24 h): ``timeout=90`` keeps the model
for 2 idle minutes. When the service no longer offers the cluster routes (they were
dropped from the official SDKs in September 2025) everything here degrades to serverless
mode: ``load`` returns ``None`` after one warning and the first run starts the model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import math
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TextIO, TypeVar, cast

from langchain_core.callbacks.manager import AsyncCallbackManager, CallbackManager
from langchain_core.callbacks.manager import AsyncRunManager as AsyncRunManagerType

from langchain_bytez.errors import (
    BytezAuthenticationError,
    BytezError,
    BytezModelLoadError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
)
from langchain_bytez.protocol import is_closed_source, validate_model_id
from langchain_bytez.types import Capacity, ClusterState, ClusterStatus, RunResult

if TYPE_CHECKING:
    from langchain_core.callbacks.manager import AsyncRunManager, RunManager

    from langchain_bytez.client import (
        AsyncBytezClient,
        AsyncTextStream,
        BytezClient,
        TextStream,
    )

__all__ = [
    "LOADING_EVENT_NAME",
    "AsyncModelHandle",
    "AsyncProgressCallback",
    "ConsoleProgressReporter",
    "LoadProgress",
    "ModelHandle",
    "ModelManager",
    "ProgressCallback",
    "alangchain_progress_dispatcher",
    "langchain_progress_dispatcher",
    "timeout_to_minutes",
]

logger = logging.getLogger("langchain_bytez")
"""The package logger, ``logging.getLogger("langchain_bytez")``.

Status-poll retries and ignored progress-callback failures are logged here."""

_T = TypeVar("_T")

LOADING_EVENT_NAME = "bytez_model_loading"
"""Name of the LangChain custom event dispatched while a model loads."""

MAX_TIMEOUT_MINUTES = 1440
"""Longest idle timeout Bytez accepts, in minutes (24 hours)."""

DEFAULT_TIMEOUT_SECONDS = 300
"""Default idle timeout of a loaded model, in seconds (sent to Bytez as 5 minutes)."""

DEFAULT_DEADLINE_SECONDS = 900.0
"""Default time a load waits for the cluster to run before giving up, in seconds (15 min)."""

IMPLICIT_CALL_TIMEOUT = 10.0
"""Timeout, in seconds, of each cluster call implicit auto-load makes before a run.

Implicit calls (status, create, polls) are sent once, without retries, with this
timeout: a cluster route that hangs or fails costs the run at most this long before the
run is sent anyway."""

IMPLICIT_RETRY_AFTER = 300.0
"""Seconds during which a model whose implicit auto-load failed is run without cluster
calls (the failure is not retried on every call)."""

# (model id, base URL) pairs already warned about a skipped implicit auto-load.
_IMPLICIT_WARNED: set[tuple[str, str]] = set()
_IMPLICIT_WARNED_LOCK = threading.Lock()

# A fresh cluster may not be visible to GET for a moment after the PUT on an eventually
# consistent backend; a "stopped" answer within this window is not yet a failure.
_STOPPED_GRACE_SECONDS = 2.0
# While nothing changes, still report progress this often so a long cold start does not
# look like a hang.
_HEARTBEAT_SECONDS = 10.0


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class LoadProgress:
    """One progress event of a model load.

    Attributes:
        model_id: The Bytez model id being loaded.
        state: Normalised cluster state at this point.
        raw_status: The server's own status string (``"loading"``, ``"on"``...), or
            ``"serverless"`` when the cluster routes are unavailable.
        elapsed: Seconds since the load started.
        message: A one-line human-readable summary.
        done: ``True`` on the last event of the load (running, failed or given up).
    """

    model_id: str
    state: ClusterState
    raw_status: str | None
    elapsed: float
    message: str
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the event as JSON-friendly data (what LangChain custom events carry).

        Returns:
            A new dict with the state as its string value.
        """
        return {
            "model_id": self.model_id,
            "state": self.state.value,
            "raw_status": self.raw_status,
            "elapsed": self.elapsed,
            "message": self.message,
            "done": self.done,
        }


ProgressCallback = Callable[[LoadProgress], None]
"""A synchronous receiver of [`LoadProgress`][langchain_bytez.manager.LoadProgress] events."""

AsyncProgressCallback = Callable[[LoadProgress], Awaitable[None]]
"""An asynchronous receiver of ``LoadProgress`` events (async APIs only)."""

_AnyCallback = Callable[[LoadProgress], Awaitable[None] | None]
ProgressOption = bool | ProgressCallback | None
"""How a sync load reports progress.

``True`` for the console reporter (stderr), a
[`ProgressCallback`][langchain_bytez.manager.ProgressCallback] to receive the events,
``False``/``None`` for silence."""

AsyncProgressOption = bool | ProgressCallback | AsyncProgressCallback | None
"""How an async load reports progress.

As [`ProgressOption`][langchain_bytez.manager.ProgressOption], and the callback may also be an
[`AsyncProgressCallback`][langchain_bytez.manager.AsyncProgressCallback]."""


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        # Closed or exotic streams (pytest capture, io wrappers) are not terminals.
        return False


class ConsoleProgressReporter:
    r"""The default progress reporter (``progress=True``): writes to stderr.

    On a terminal it keeps one line up to date (``\r``) and clears it when the load
    ends; otherwise (logs, CI, notebooks' captured stderr) it writes one plain line per
    event, which is one per status change plus a heartbeat on long loads.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        """Create the reporter.

        Args:
            stream: Where to write; ``None`` means ``sys.stderr`` looked up at each event
                (so redirections made after creation are honoured).
        """
        self._stream = stream
        self._width = 0

    def __call__(self, event: LoadProgress) -> None:
        """Write one event.

        Args:
            event: The progress event.
        """
        stream = self._stream if self._stream is not None else sys.stderr
        line = f"[bytez] {event.message}"
        if _isatty(stream):
            padding = " " * max(0, self._width - len(line))
            self._width = max(self._width, len(line))
            if event.done:
                stream.write("\r" + " " * self._width + "\r")
                self._width = 0
            else:
                stream.write("\r" + line + padding)
        else:
            stream.write(line + "\n")
        stream.flush()


def _resolve_progress(progress: AsyncProgressOption) -> _AnyCallback | None:
    if progress is None or progress is False:
        return None
    if progress is True:
        return ConsoleProgressReporter()
    candidate: object = progress  # typed callers can't get here; untyped ones can
    if callable(candidate):
        return cast("_AnyCallback", candidate)
    msg = f"progress must be True, False, None or a callable, got {type(progress).__name__}"
    raise ValueError(msg)


def _call_sync(callback: _AnyCallback, event: LoadProgress) -> None:
    """Call a progress callback from synchronous code; its failures never stop a load."""
    try:
        result = callback(event)
    except Exception:  # noqa: BLE001 - a reporter's bug must not fail the load
        logger.warning("Bytez progress callback failed; ignoring it", exc_info=True)
        return
    if inspect.isawaitable(result):
        # An async callback given to a sync API cannot be awaited here.
        if inspect.iscoroutine(result):
            result.close()
        logger.warning("async progress callback ignored in a synchronous load")


async def _call_async(callback: _AnyCallback, event: LoadProgress) -> None:
    try:
        result = callback(event)
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - a reporter's bug must not fail the load
        logger.warning("Bytez progress callback failed; ignoring it", exc_info=True)


def _callback_manager_kwargs(run_manager: RunManager | AsyncRunManager) -> dict[str, Any]:
    # Run managers of LLM runs have no ``on_custom_event``; a callback manager over the
    # same handlers does, and ``run_id=run_manager.run_id`` ties the events to the LLM
    # run so ``astream_events`` reports them under it.
    return {
        "handlers": run_manager.handlers,
        "inheritable_handlers": run_manager.inheritable_handlers,
        "parent_run_id": run_manager.parent_run_id,
        "tags": run_manager.tags,
        "inheritable_tags": run_manager.inheritable_tags,
        "metadata": run_manager.metadata,
        "inheritable_metadata": run_manager.inheritable_metadata,
    }


# Fire-and-forget dispatch tasks are kept referenced until done (asyncio holds only
# weak references to tasks).
_PENDING_DISPATCHES: set[asyncio.Task[None]] = set()


def langchain_progress_dispatcher(
    run_manager: RunManager | AsyncRunManager, progress: ProgressOption = None
) -> ProgressCallback:
    """Build a progress callback that also dispatches LangChain custom events.

    Each [`LoadProgress`][langchain_bytez.manager.LoadProgress] becomes a custom event named
    ``"bytez_model_loading"`` whose data is
    [`LoadProgress.as_dict`][langchain_bytez.manager.LoadProgress.as_dict], attached to the LLM run,
    so it shows in ``astream_events(version="v2")`` as an ``on_custom_event`` event and reaches any
    handler's ``on_custom_event``.

    Given an async run manager (``AsyncCallbackManagerForLLMRun``) the returned callback
    is still synchronous: it schedules the async dispatch on the running event loop (in
    order).
    [`alangchain_progress_dispatcher`][langchain_bytez.manager.alangchain_progress_dispatcher]
    awaits it instead.

    Args:
        run_manager: The run manager of the current LLM run
            (``CallbackManagerForLLMRun`` or ``AsyncCallbackManagerForLLMRun``).
        progress: The user's own progress setting, honoured as well: ``True`` (console
            reporter), ``False``/``None`` (nothing more) or a callable.

    Returns:
        A synchronous progress callback.

    Example:
        ```python
        def _call(self, prompt, stop=None, run_manager=None, **kwargs):
            callback = langchain_progress_dispatcher(run_manager, self.progress)
            manager.ensure_loaded(client, self.model, progress=callback)
        ```
    """
    # The callback managers are built at the first event, not here: every auto-loaded
    # run builds a dispatcher, and once the model is known to run no event comes.
    user = _resolve_progress(progress)
    run_id = run_manager.run_id
    if isinstance(run_manager, AsyncRunManagerType):
        async_managers: list[AsyncCallbackManager] = []

        def dispatch_async(event: LoadProgress) -> None:
            if user is not None:
                _call_sync(user, event)
            if not async_managers:
                async_managers.append(AsyncCallbackManager(**_callback_manager_kwargs(run_manager)))
            coro = async_managers[0].on_custom_event(
                LOADING_EVENT_NAME, event.as_dict(), run_id=run_id
            )
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                asyncio.run(coro)  # no loop in this thread: just run it here
                return
            task = loop.create_task(coro)
            _PENDING_DISPATCHES.add(task)
            task.add_done_callback(_PENDING_DISPATCHES.discard)

        return dispatch_async

    managers: list[CallbackManager] = []

    def dispatch(event: LoadProgress) -> None:
        if user is not None:
            _call_sync(user, event)
        if not managers:
            managers.append(CallbackManager(**_callback_manager_kwargs(run_manager)))
        managers[0].on_custom_event(LOADING_EVENT_NAME, event.as_dict(), run_id=run_id)

    return dispatch


def alangchain_progress_dispatcher(
    run_manager: AsyncRunManager, progress: AsyncProgressOption = None
) -> AsyncProgressCallback:
    """Async twin of ``langchain_progress_dispatcher`` for ``AsyncCallbackManagerForLLMRun``.

    Args:
        run_manager: The async run manager of the current LLM run.
        progress: The user's own progress setting, honoured as well: ``True`` (console
            reporter), ``False``/``None`` (nothing more) or a (sync or async) callable.

    Returns:
        An async progress callback, for
        [`ModelManager.aensure_loaded`][langchain_bytez.manager.ModelManager.aensure_loaded].
    """
    user = _resolve_progress(progress)
    run_id = run_manager.run_id
    managers: list[AsyncCallbackManager] = []  # built at the first event, as above

    async def dispatch(event: LoadProgress) -> None:
        if user is not None:
            await _call_async(user, event)
        if not managers:
            managers.append(AsyncCallbackManager(**_callback_manager_kwargs(run_manager)))
        await managers[0].on_custom_event(LOADING_EVENT_NAME, event.as_dict(), run_id=run_id)

    return dispatch


# --------------------------------------------------------------------------- validation


def _check_count(name: str, value: object, minimum: int) -> int:
    # bool is an int subclass; True as "1 instance" is almost always a bug upstream.
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an integer, got {type(value).__name__} {value!r}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    if value < minimum:
        msg = f"{name} must be at least {minimum}, got {value}"
        raise ValueError(msg)
    return value


def timeout_to_minutes(timeout: float) -> int:
    """Convert an idle timeout in seconds to Bytez's whole minutes (rounded up).

    Args:
        timeout: Idle seconds before the cluster shuts down; more than 0 and at most
            86400 (1440 minutes, the service's maximum).

    Returns:
        Minutes between 1 and 1440.

    Raises:
        ValueError: If ``timeout`` is not a finite positive number in range.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        msg = f"timeout must be a number of seconds, got {type(timeout).__name__} {timeout!r}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    if (isinstance(timeout, float) and not math.isfinite(timeout)) or timeout <= 0:
        msg = f"timeout must be a positive number of seconds, got {timeout!r}"
        raise ValueError(msg)
    # Integer seconds are rounded in integers: exact, and no float overflow on huge ones.
    minutes = -(-timeout // 60) if isinstance(timeout, int) else math.ceil(timeout / 60)
    if minutes > MAX_TIMEOUT_MINUTES:
        msg = (
            f"timeout must be at most {MAX_TIMEOUT_MINUTES * 60} seconds "
            f"({MAX_TIMEOUT_MINUTES} minutes), got {timeout!r}"
        )
        raise ValueError(msg)
    return minutes


def _to_capacity(concurrency: int, capacity: Capacity | Mapping[str, int] | None) -> Capacity:
    concurrency = _check_count("concurrency", concurrency, 1)
    if capacity is None:
        return Capacity.fixed(concurrency)
    given: object = capacity  # typed callers can't pass anything else; untyped ones can
    values: Mapping[str, object]
    if isinstance(given, Capacity):
        values = given.model_dump()
    elif isinstance(given, Mapping):
        keys = set(given)
        if keys != {"min", "desired", "max"}:
            msg = (
                "capacity must have exactly the keys 'min', 'desired' and 'max', "
                f"got {sorted(map(str, keys))}"
            )
            raise ValueError(msg)
        values = given
    else:
        msg = f"capacity must be a Capacity or a dict, got {type(given).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    low = _check_count("capacity['min']", values["min"], 0)
    desired = _check_count("capacity['desired']", values["desired"], 0)
    high = _check_count("capacity['max']", values["max"], 1)
    if not low <= desired <= high:
        msg = f"capacity must satisfy min <= desired <= max, got {low}/{desired}/{high}"
        raise ValueError(msg)
    return Capacity(min=low, desired=desired, max=high)


def _check_deadline(deadline: float) -> float:
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        msg = f"deadline must be a number of seconds, got {type(deadline).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    if (isinstance(deadline, float) and not math.isfinite(deadline)) or deadline <= 0:
        msg = f"deadline must be a positive number of seconds, got {deadline!r}"
        raise ValueError(msg)
    try:
        return float(deadline)
    except OverflowError:
        return math.inf  # a huge integer: no deadline worth the name


_SPECS: dict[tuple[object, ...], _LoadSpec] = {}


@dataclass(frozen=True)
class _LoadSpec:
    capacity: Capacity
    minutes: int
    deadline: float
    # Whether the caller chose the capacity / the idle timeout. Unchosen ones are only
    # used to create a cluster; an existing cluster keeps its own (issue: load() with no
    # sizes must not reset a cluster to the defaults).
    sets_capacity: bool = True
    sets_timeout: bool = True

    @classmethod
    def build(
        cls,
        concurrency: int | None,
        timeout: float | None,
        capacity: Capacity | Mapping[str, int] | None,
        deadline: float,
    ) -> _LoadSpec:
        key: tuple[object, ...] | None = None
        if capacity is None:
            # Every auto-loaded run asks for one of a few specs; they are immutable, so
            # each is checked and built once. Types are in the key because True == 1.
            key = (type(concurrency), concurrency, type(timeout), timeout)
            key += (type(deadline), deadline)
            try:
                cached = _SPECS.get(key)
            except TypeError:  # unhashable: the checks below say what is wrong
                cached = key = None
            if cached is not None:
                return cached
        spec = cls(
            capacity=_to_capacity(1 if concurrency is None else concurrency, capacity),
            minutes=timeout_to_minutes(DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout),
            deadline=_check_deadline(deadline),
            sets_capacity=concurrency is not None or capacity is not None,
            sets_timeout=timeout is not None,
        )
        if key is not None and len(_SPECS) < 256:
            _SPECS[key] = spec
        return spec

    @property
    def key(self) -> tuple[int, int, int, int]:
        cap = self.capacity
        return (cap.min, cap.desired, cap.max, self.minutes)

    def differs_from(self, status: ClusterStatus) -> bool:
        # Only what the caller chose is compared. Unreported values are not treated as
        # different: a PATCH on every call would cost a write per request for nothing.
        cap = status.capacity
        if (
            self.sets_capacity
            and cap is not None
            and (cap.min, cap.desired, cap.max) != self.key[:3]
        ):
            return True
        return (
            self.sets_timeout
            and status.idle_timeout_minutes is not None
            and status.idle_timeout_minutes != self.minutes
        )


def _payload(
    input: str | Sequence[Mapping[str, Any]],  # noqa: A002 - mirrors Bytez's own SDKs
    params: Mapping[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any]
    value: object = input
    if isinstance(value, str):
        body = {"text": value}
    elif isinstance(value, (list, tuple)) and all(isinstance(m, Mapping) for m in value):
        body = {"messages": [dict(m) for m in value]}
    else:
        msg = (
            "input must be a string (text tasks) or a list of message dicts "
            f"(chat tasks), got {type(value).__name__}"
        )
        raise TypeError(msg)
    extra: object = params
    if extra is not None:
        if not isinstance(extra, Mapping):
            msg = f"params must be a dict, got {type(extra).__name__}"
            raise TypeError(msg)
        body["params"] = dict(extra)
    return body


# --------------------------------------------------------------------------- plans
#
# The load algorithm is written once, as a generator that yields the I/O it needs
# (_Get, _Put, ...) and receives the results (or has the BytezError thrown into it).
# A sync and an async driver execute the steps, so both clients share one algorithm.


@dataclass(frozen=True)
class _Get:
    """Step: read the cluster (GET)."""


@dataclass(frozen=True)
class _Put:
    capacity: Capacity
    minutes: int


@dataclass(frozen=True)
class _Patch:
    capacity: Capacity | None
    minutes: int | None
    status: Literal["on", "off"] | None


@dataclass(frozen=True)
class _Delete:
    """Step: delete the cluster (DELETE), e.g. to replace a failed one."""


@dataclass(frozen=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True)
class _Emit:
    event: LoadProgress


_Op = _Get | _Put | _Patch | _Delete | _Sleep | _Emit
_Plan = Generator[_Op, Any, _T]


def _drive(
    plan: _Plan[_T],
    client: BytezClient,
    model_id: str,
    emit: _AnyCallback | None,
    *,
    implicit: bool = False,
) -> _T:
    # Implicit calls are bounded: one attempt each, a short timeout (see IMPLICIT_CALL_TIMEOUT).
    call: dict[str, Any] = {"timeout": IMPLICIT_CALL_TIMEOUT, "retry": False} if implicit else {}
    value: Any = None
    error: BytezError | None = None
    try:
        while True:
            try:
                op = plan.send(value) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            try:
                if isinstance(op, _Get):
                    value = client.get_cluster(model_id, **call)
                elif isinstance(op, _Put):
                    value = client.create_cluster(model_id, op.capacity, op.minutes, **call)
                elif isinstance(op, _Patch):
                    value = client.update_cluster(
                        model_id,
                        capacity=op.capacity,
                        timeout_minutes=op.minutes,
                        status=op.status,
                    )
                elif isinstance(op, _Delete):
                    client.delete_cluster(model_id)
                elif isinstance(op, _Sleep):
                    time.sleep(op.seconds)
                elif emit is not None:
                    _call_sync(emit, op.event)
            except BytezError as exc:
                error = exc
    finally:
        plan.close()


async def _adrive(
    plan: _Plan[_T],
    client: AsyncBytezClient,
    model_id: str,
    emit: _AnyCallback | None,
    *,
    implicit: bool = False,
) -> _T:
    # Implicit calls are bounded: one attempt each, a short timeout (see IMPLICIT_CALL_TIMEOUT).
    call: dict[str, Any] = {"timeout": IMPLICIT_CALL_TIMEOUT, "retry": False} if implicit else {}
    value: Any = None
    error: BytezError | None = None
    try:
        while True:
            try:
                op = plan.send(value) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            try:
                if isinstance(op, _Get):
                    value = await client.get_cluster(model_id, **call)
                elif isinstance(op, _Put):
                    value = await client.create_cluster(model_id, op.capacity, op.minutes, **call)
                elif isinstance(op, _Patch):
                    value = await client.update_cluster(
                        model_id,
                        capacity=op.capacity,
                        timeout_minutes=op.minutes,
                        status=op.status,
                    )
                elif isinstance(op, _Delete):
                    await client.delete_cluster(model_id)
                elif isinstance(op, _Sleep):
                    await asyncio.sleep(op.seconds)
                elif emit is not None:
                    await _call_async(emit, op.event)
            except BytezError as exc:
                error = exc
    finally:
        plan.close()


def _is_route_gone(error: BytezError) -> bool:
    """Whether a cluster-route error means the route itself is missing (not the model)."""
    if error.status_code == 405:
        return True
    if not isinstance(error, BytezNotFoundError):
        return False
    return not _is_unknown_model(error)


def _is_unknown_model(error: BytezError) -> bool:
    # Bytez says "Model does not exist or has yet to be added to the Bytez catalog";
    # a vanished route answers a bare "Not Found" / "Cannot PUT ..." instead.
    text = (error.message or "").lower()
    if "cluster" in text or "instance" in text or "route" in text:
        return False
    return "catalog" in text or ("model" in text and ("not exist" in text or "not found" in text))


def _describe(status: ClusterStatus | None) -> str:
    if status is None:
        return "none"
    raw = f" ({status.raw_status!r})" if status.raw_status else ""
    return f"{status.state.value}{raw}"


def _serverless_status(model_id: str) -> ClusterStatus:
    return ClusterStatus(model_id=model_id, state=ClusterState.STOPPED, raw_status="serverless")


# --------------------------------------------------------------------------- concurrency


class _Waiter:
    __slots__ = ("abandoned", "event", "future", "granted", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.event = event
        self.loop = loop
        self.future = future
        self.granted = False
        self.abandoned = False


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Limiter:
    """A FIFO counting semaphore shared by threads and any number of event loops.

    ``asyncio.Semaphore`` is bound to one loop and ``threading.Semaphore`` blocks the
    loop, so the count lives behind a plain lock held only for bookkeeping; waiters are
    either a ``threading.Event`` or a future woken with ``call_soon_threadsafe``. A
    released slot is handed straight to the oldest waiter, which keeps the order fair.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._in_use = 0
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        return self._in_use

    def resize(self, capacity: int) -> None:
        with self._lock:
            if capacity == self._capacity:
                return
            self._capacity = capacity
            woken = self._grant_locked()
        self._wake(woken)

    def _grant_locked(self) -> list[_Waiter]:
        woken: list[_Waiter] = []
        while self._waiters and self._in_use < self._capacity:
            waiter = self._waiters.popleft()
            if waiter.abandoned:
                continue
            waiter.granted = True
            self._in_use += 1
            woken.append(waiter)
        return woken

    def _wake(self, woken: list[_Waiter]) -> None:
        for waiter in woken:
            if waiter.event is not None:
                waiter.event.set()
                continue
            assert waiter.loop is not None  # noqa: S101
            assert waiter.future is not None  # noqa: S101
            try:
                waiter.loop.call_soon_threadsafe(_resolve_future, waiter.future)
            except RuntimeError:
                # Its loop is closed: nobody will use the slot, pass it on.
                self.release()

    def acquire(self) -> None:
        with self._lock:
            if self._in_use < self._capacity and not self._waiters:
                self._in_use += 1
                return
            waiter = _Waiter(event=threading.Event())
            self._waiters.append(waiter)
        try:
            assert waiter.event is not None  # noqa: S101
            waiter.event.wait()
        except BaseException:
            self._abandon(waiter)
            raise

    async def aacquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_use < self._capacity and not self._waiters:
                self._in_use += 1
                return
            future: asyncio.Future[None] = loop.create_future()
            waiter = _Waiter(loop=loop, future=future)
            self._waiters.append(waiter)
        try:
            await future
        except BaseException:
            self._abandon(waiter)
            raise

    def _abandon(self, waiter: _Waiter) -> None:
        with self._lock:
            owned = waiter.granted
            if not owned:
                waiter.abandoned = True
        if owned:
            # The slot was handed over just as we gave up: give it back.
            self.release()

    def release(self) -> None:
        with self._lock:
            self._in_use -= 1
            woken = self._grant_locked()
        self._wake(woken)


# --------------------------------------------------------------------------- single flight


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _LeaderGone(Exception):  # noqa: N818
    """The caller doing a shared load was cancelled; a waiter takes over."""


class _Flight:
    """One in-progress load that concurrent callers share."""

    def __init__(self, key: tuple[int, int, int, int] | None, printer: bool) -> None:
        self.future: concurrent.futures.Future[ClusterStatus | None] = concurrent.futures.Future()
        # Running futures cannot be cancelled: a cancelled asyncio waiter (wrap_future
        # propagates cancellation) must not cancel the load for everyone else.
        self.future.set_running_or_notify_cancel()
        # The settings (capacity, minutes) this load applies: only callers asking for
        # the same may take its result as their own.
        self.key = key
        self._lock = threading.Lock()
        self._subscribers: list[_AnyCallback] = []
        self._last: LoadProgress | None = None
        self._printer = printer

    def subscribe(self, callback: _AnyCallback, *, printer: bool) -> bool:
        """Add a follower's callback and replay the latest event to it.

        The replay happens under the lock, so no newer event can reach the callback
        before it (a console line replayed after the final "done" would stay on screen).
        Returns whether the callback was added (a second console printer is not).
        """
        with self._lock:
            if printer:
                # One console line per load, not one per waiting caller.
                if self._printer:
                    return False
                self._printer = True
            self._subscribers.append(callback)
            if self._last is not None:
                _call_sync(callback, self._last)
            return True

    def unsubscribe(self, callback: _AnyCallback) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    def broadcast(self, event: LoadProgress) -> None:
        with self._lock:
            self._last = event
            subscribers = list(self._subscribers)
        for callback in subscribers:
            _call_sync(callback, event)


@dataclass(frozen=True)
class _CacheEntry:
    expires: float
    status: ClusterStatus
    key: tuple[int, int, int, int]


# --------------------------------------------------------------------------- manager


class ModelManager:
    """Shared model-lifecycle state for one Bytez endpoint and API key.

    Obtain it with [`for_client`][langchain_bytez.manager.ModelManager.for_client] (one instance per
    ``client.cache_key``, shared by sync and async clients of the same endpoint and key). It
    provides:

    * [`ensure_loaded`][langchain_bytez.manager.ModelManager.ensure_loaded] /
      [`aensure_loaded`][langchain_bytez.manager.ModelManager.aensure_loaded]: make sure a model's
      cluster is running. Concurrent first calls for one model, from threads or asyncio tasks on any
      event loop, share a single load: exactly one create-cluster request is sent. A model seen
      running is remembered for ``min(running_ttl, idle timeout / 2)`` seconds, so hot paths cost no
      request; [`forget`][langchain_bytez.manager.ModelManager.forget] drops that memory.
    * [`limit`][langchain_bytez.manager.ModelManager.limit] /
      [`alimit`][langchain_bytez.manager.ModelManager.alimit]: at most ``concurrency`` in-flight
      runs per model; the rest queue in arrival order. Threads and tasks of all loops share one
      count.
    * [`session`][langchain_bytez.manager.ModelManager.session] /
      [`asession`][langchain_bytez.manager.ModelManager.asession]: load on entry, stop on exit.
    * [`load`][langchain_bytez.manager.ModelManager.load],
      [`status`][langchain_bytez.manager.ModelManager.status],
      [`stop`][langchain_bytez.manager.ModelManager.stop] (and ``a``-prefixed twins): shortcuts to
      the model handles.

    When the service answers the cluster routes with 404/405 (routes removed), the manager
    switches to serverless mode for good: it warns once, loads return ``None`` and the
    first run starts the model.

    [`ensure_available`][langchain_bytez.manager.ModelManager.ensure_available] /
    [`aensure_available`][langchain_bytez.manager.ModelManager.aensure_available] are the
    implicit, best-effort twins of ``ensure_loaded`` that the LangChain classes use
    before a run: they never change an existing cluster and never raise for a cluster
    problem (only 401/402).

    Attributes:
        running_ttl: Upper bound, in seconds, on how long "running" is remembered.
        poll_initial: First delay between status polls while loading, in seconds.
        poll_max: Longest delay between polls (the delay doubles up to it).

    Example:
        ```python
        from langchain_bytez.client import BytezClient
        from langchain_bytez.manager import ModelManager

        client = BytezClient()
        manager = ModelManager.for_client(client)
        manager.ensure_loaded(client, "openai-community/gpt2", concurrency=2)
        with manager.limit("openai-community/gpt2", 2):
            result = client.run("openai-community/gpt2", {"text": "Hello"})
        ```
    """

    _registry: ClassVar[dict[Any, ModelManager]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

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
        self._flights: dict[str, _Flight] = {}
        self._limiters: dict[str, _Limiter] = {}
        self._serverless = False
        self._warned = False
        # Models whose implicit auto-load is skipped until the given monotonic time.
        self._implicit_skip: dict[str, float] = {}

    @classmethod
    def for_client(cls, client: BytezClient | AsyncBytezClient) -> ModelManager:
        """Return the manager shared by every client of the same endpoint and key.

        Args:
            client: A sync or async Bytez client; its ``cache_key`` (base URL and a key
                fingerprint, never the key) selects the manager.

        Returns:
            The shared manager, created on first use.
        """
        key = client.cache_key
        with cls._registry_lock:
            manager = cls._registry.get(key)
            if manager is None:
                manager = cls()
                cls._registry[key] = manager
            return manager

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

    def _cached(self, model_id: str, spec: _LoadSpec) -> ClusterStatus | None:
        with self._lock:
            entry = self._running.get(model_id)
            if entry is None:
                return None
            if entry.expires <= time.monotonic():
                del self._running[model_id]
                return None
            return entry.status if entry.key == spec.key else None

    def _cached_any(self, model_id: str) -> ClusterStatus | None:
        # Implicit auto-load takes a running cluster whatever its settings.
        with self._lock:
            entry = self._running.get(model_id)
            if entry is None:
                return None
            if entry.expires <= time.monotonic():
                del self._running[model_id]
                return None
            return entry.status

    def _implicit_skipped(self, model_id: str) -> bool:
        with self._lock:
            until = self._implicit_skip.get(model_id)
            if until is None:
                return False
            if until <= time.monotonic():
                del self._implicit_skip[model_id]
                return False
            return True

    def _skip_implicit(self, model_id: str, seconds: float) -> None:
        with self._lock:
            if len(self._implicit_skip) >= 4096:  # bounded: ids come from callers
                self._implicit_skip.clear()
            self._implicit_skip[model_id] = time.monotonic() + seconds

    def _implicit_failed(self, base_url: str, model_id: str, error: BytezError) -> None:
        """Record a failed implicit auto-load: skip it for a while, warn once."""
        if _is_route_gone(error):
            with self._lock:
                self._serverless = True  # the routes are gone for every model
                self._running.clear()
        self._skip_implicit(model_id, IMPLICIT_RETRY_AFTER)
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
        logger.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=5)

    def _remember(self, model_id: str, spec: _LoadSpec, status: ClusterStatus | None) -> None:
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
            logger.warning(msg)
            warnings.warn(msg, UserWarning, stacklevel=4)

    # ------------------------------------------------------------------ plans

    def _serverless_plan(self, model_id: str, started: float) -> _Plan[None]:
        yield _Emit(
            LoadProgress(
                model_id=model_id,
                state=ClusterState.STOPPED,
                raw_status="serverless",
                elapsed=time.monotonic() - started,
                message=(
                    f"{model_id}: cluster routes unavailable; serverless mode "
                    "(the first run starts the model)"
                ),
                done=True,
            )
        )

    def _load_plan(
        self, model_id: str, spec: _LoadSpec, *, wait: bool
    ) -> _Plan[ClusterStatus | None]:
        started = time.monotonic()
        if self._serverless:
            yield from self._serverless_plan(model_id, started)
            return None

        current: ClusterStatus | None
        try:
            current = yield _Get()
        except BytezNotFoundError:
            # Either no cluster yet or the route is gone: only the PUT can tell.
            current = None
        except BytezError as exc:
            if exc.status_code != 405:
                raise
            self._enter_serverless(exc)
            yield from self._serverless_plan(model_id, started)
            return None

        if current is not None and current.state is ClusterState.FAILED:
            # A failed cluster would answer the PUT with 409; start over.
            logger.info("Bytez model %s: replacing a failed cluster", model_id)
            with contextlib.suppress(BytezNotFoundError):
                yield _Delete()
            current = None

        created = False
        if current is None:
            try:
                output = yield _Put(spec.capacity, spec.minutes)
            except BytezError as exc:
                if exc.status_code == 409:
                    # Someone else created it between our GET and PUT.
                    current = yield _Get()
                elif _is_route_gone(exc):
                    self._enter_serverless(exc)
                    yield from self._serverless_plan(model_id, started)
                    return None
                else:
                    raise
            else:
                created = True
                raw = output if isinstance(output, str) and output else "loading"
                current = ClusterStatus(
                    model_id=model_id,
                    state=ClusterState.DEPLOYING,
                    raw_status=raw,
                    capacity=spec.capacity,
                    timeout=spec.minutes,
                )

        assert current is not None  # noqa: S101
        if not created and (current.state is ClusterState.STOPPED or spec.differs_from(current)):
            turn_on: Literal["on"] | None = "on" if current.state is ClusterState.STOPPED else None
            patched = yield _Patch(
                spec.capacity if spec.sets_capacity else None,
                spec.minutes if spec.sets_timeout else None,
                turn_on,
            )
            if isinstance(patched, ClusterStatus):
                current = patched

        if not wait:
            return current
        return (yield from self._wait_plan(model_id, spec, current, started))

    def _implicit_plan(self, model_id: str, spec: _LoadSpec) -> _Plan[ClusterStatus | None]:
        """Auto-load before a run: never changes an existing cluster.

        Returns the running cluster, or ``None`` to send the run as it is. Raises the
        cluster call's error; the caller turns every one but 401/402 into a serverless
        run.
        """
        started = time.monotonic()
        try:
            current: ClusterStatus | None = yield _Get()
        except BytezNotFoundError:
            current = None  # no cluster yet, or the route is gone: only the PUT can tell
        if current is None:
            try:
                output = yield _Put(spec.capacity, spec.minutes)
            except BytezError as exc:
                if exc.status_code != 409:
                    raise
                current = yield _Get()  # created by someone else meanwhile: use theirs
            else:
                raw = output if isinstance(output, str) and output else "loading"
                current = ClusterStatus(
                    model_id=model_id,
                    state=ClusterState.DEPLOYING,
                    raw_status=raw,
                    capacity=spec.capacity,
                    timeout=spec.minutes,
                )
        if current.state is ClusterState.RUNNING:
            return current
        if current.state is not ClusterState.DEPLOYING:
            # Off or failed: turning it on or replacing it would change the user's
            # cluster. The run is sent as it is; the service decides.
            logger.info(
                "Bytez model %s: cluster is %s; auto-load leaves it as it is",
                model_id,
                _describe(current),
            )
            self._skip_implicit(model_id, self.running_ttl)
            return None
        return (yield from self._wait_plan(model_id, spec, current, started, implicit=True))

    def _event(
        self, model_id: str, status: ClusterStatus, started: float, *, done: bool = False
    ) -> LoadProgress:
        elapsed = time.monotonic() - started
        state = status.state
        if state is ClusterState.RUNNING:
            text = f"{model_id}: running ({elapsed:.1f} s)"
        elif state is ClusterState.FAILED:
            reason = f": {status.reason}" if status.reason else ""
            text = f"{model_id}: failed after {elapsed:.1f} s{reason}"
        else:
            raw = f" ({status.raw_status})" if status.raw_status else ""
            text = f"{model_id}: {state.value}{raw}, {elapsed:.1f} s elapsed"
        return LoadProgress(
            model_id=model_id,
            state=state,
            raw_status=status.raw_status,
            elapsed=elapsed,
            message=text,
            done=done,
        )

    def _wait_plan(
        self,
        model_id: str,
        spec: _LoadSpec,
        current: ClusterStatus,
        started: float,
        *,
        implicit: bool = False,
    ) -> _Plan[ClusterStatus]:
        interval = self.poll_initial
        last_seen = (current.state, (current.raw_status or "").lower())
        last_emit = time.monotonic()
        seen_alive = current.state is not ClusterState.STOPPED
        if current.state is not ClusterState.RUNNING:
            yield _Emit(self._event(model_id, current, started))
        while True:
            elapsed = time.monotonic() - started
            if current.state is ClusterState.RUNNING:
                yield _Emit(self._event(model_id, current, started, done=True))
                return current
            if current.state is ClusterState.FAILED:
                yield _Emit(self._event(model_id, current, started, done=True))
                reason = current.reason or "no reason given"
                msg = (
                    f"Loading {model_id} failed: {reason} "
                    f"(last status: {_describe(current)}, after {elapsed:.1f} s)"
                )
                raise BytezModelLoadError(msg, model_id=model_id, last_status=current)
            if current.state is ClusterState.STOPPED and (
                seen_alive or elapsed > _STOPPED_GRACE_SECONDS
            ):
                yield _Emit(self._event(model_id, current, started, done=True))
                msg = (
                    f"The cluster of {model_id} stopped while loading (deleted or shut "
                    f"down; last status: {_describe(current)}, after {elapsed:.1f} s)"
                )
                raise BytezModelLoadError(msg, model_id=model_id, last_status=current)
            remaining = spec.deadline - elapsed
            if remaining <= 0:
                yield _Emit(self._event(model_id, current, started, done=True))
                msg = (
                    f"{model_id} was not running after {elapsed:.1f} s (deadline "
                    f"{spec.deadline:g} s); last status: {_describe(current)}"
                )
                raise BytezModelLoadError(msg, model_id=model_id, last_status=current)
            # Exponential backoff: quick for warm or small models, gentle on long loads.
            yield _Sleep(min(interval, remaining))
            interval = min(interval * 2, self.poll_max)
            try:
                current = yield _Get()
            except BytezNotFoundError:
                current = ClusterStatus.stopped(model_id)
            except BytezError as exc:
                if implicit or not exc.is_retryable:
                    raise  # implicit: a failing poll sends the run at once
                logger.info("Bytez model %s: status poll failed (%s); retrying", model_id, exc)
                continue
            if current.state is not ClusterState.STOPPED:
                seen_alive = True
            seen = (current.state, (current.raw_status or "").lower())  # "Loading" == "loading"
            now = time.monotonic()
            if current.state is ClusterState.RUNNING or current.state is ClusterState.FAILED:
                continue  # the final event is emitted at the top of the loop
            if seen != last_seen or now - last_emit >= _HEARTBEAT_SECONDS:
                last_seen, last_emit = seen, now
                yield _Emit(self._event(model_id, current, started))

    def _status_plan(self, model_id: str) -> _Plan[ClusterStatus]:
        if self._serverless:
            return _serverless_status(model_id)
        try:
            status: ClusterStatus = yield _Get()
        except BytezNotFoundError:
            self.forget(model_id)
            return ClusterStatus.stopped(model_id)
        except BytezError as exc:
            if exc.status_code != 405:
                raise
            self._enter_serverless(exc)
            return _serverless_status(model_id)
        if status.state is not ClusterState.RUNNING:
            self.forget(model_id)
        return status

    def _stop_plan(self, model_id: str) -> _Plan[None]:
        self.forget(model_id)
        if self._serverless:
            return None
        try:
            yield _Delete()
        except BytezNotFoundError:
            return None  # already stopped (or never started): stop is idempotent
        except BytezError as exc:
            if exc.status_code != 405:
                raise
            self._enter_serverless(exc)
        return None

    # ------------------------------------------------------------------ loading

    def _join(
        self, model_id: str, spec: _LoadSpec, printer: bool, *, implicit: bool = False
    ) -> tuple[_Flight, bool]:
        with self._lock:
            flight = self._flights.get(model_id)
            if flight is not None:
                return flight, False
            # An implicit load sets no settings: explicit callers never take its result.
            flight = _Flight(None if implicit else spec.key, printer)
            self._flights[model_id] = flight
            return flight, True

    def _finish(
        self,
        model_id: str,
        spec: _LoadSpec,
        flight: _Flight,
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
            flight.future.set_exception(_LeaderGone())

    def _plan_for(
        self, model_id: str, spec: _LoadSpec, *, implicit: bool
    ) -> _Plan[ClusterStatus | None]:
        if implicit:
            return self._implicit_plan(model_id, spec)
        return self._load_plan(model_id, spec, wait=True)

    def _load_sync(
        self,
        client: BytezClient,
        model_id: str,
        spec: _LoadSpec,
        progress: ProgressOption,
        *,
        use_cache: bool,
        implicit: bool = False,
    ) -> ClusterStatus | None:
        if self._serverless:
            return None
        if use_cache and (cached := self._cached(model_id, spec)) is not None:
            return cached
        own = _resolve_progress(progress)
        printer = progress is True
        while True:
            flight, leader = self._join(model_id, spec, printer, implicit=implicit)
            if leader:
                return self._lead_sync(client, model_id, spec, flight, own, implicit=implicit)
            if _loop_running_here():
                # Blocking this thread on a load led by a task of our own event loop
                # would deadlock it: load independently (a racing PUT is answered 409,
                # which the plan handles).
                plan = self._plan_for(model_id, spec, implicit=implicit)
                result = _drive(plan, client, model_id, own, implicit=implicit)
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
            except _LeaderGone:
                continue

    def _lead_sync(
        self,
        client: BytezClient,
        model_id: str,
        spec: _LoadSpec,
        flight: _Flight,
        own: _AnyCallback | None,
        *,
        implicit: bool = False,
    ) -> ClusterStatus | None:
        def emit(event: LoadProgress) -> None:
            if own is not None:
                _call_sync(own, event)
            flight.broadcast(event)

        try:
            plan = self._plan_for(model_id, spec, implicit=implicit)
            result = _drive(plan, client, model_id, emit, implicit=implicit)
        except BaseException as exc:
            self._finish(model_id, spec, flight, error=exc)
            raise
        self._finish(model_id, spec, flight, result)
        return result

    async def _load_async(
        self,
        client: AsyncBytezClient,
        model_id: str,
        spec: _LoadSpec,
        progress: AsyncProgressOption,
        *,
        use_cache: bool,
        implicit: bool = False,
    ) -> ClusterStatus | None:
        if self._serverless:
            return None
        if use_cache and (cached := self._cached(model_id, spec)) is not None:
            return cached
        own = _resolve_progress(progress)
        printer = progress is True
        while True:
            flight, leader = self._join(model_id, spec, printer, implicit=implicit)
            if leader:
                return await self._lead_async(
                    client, model_id, spec, flight, own, implicit=implicit
                )
            if not implicit and flight.key != spec.key:
                # Another settings' load is under way (see _load_sync): wait, then retry.
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(flight.future)
                continue
            try:
                return await self._follow_async(flight, own, printer)
            except _LeaderGone:
                continue

    async def _lead_async(
        self,
        client: AsyncBytezClient,
        model_id: str,
        spec: _LoadSpec,
        flight: _Flight,
        own: _AnyCallback | None,
        *,
        implicit: bool = False,
    ) -> ClusterStatus | None:
        async def emit(event: LoadProgress) -> None:
            flight.broadcast(event)
            if own is not None:
                await _call_async(own, event)

        try:
            plan = self._plan_for(model_id, spec, implicit=implicit)
            result = await _adrive(plan, client, model_id, emit, implicit=implicit)
        except BaseException as exc:
            self._finish(model_id, spec, flight, error=exc)
            raise
        self._finish(model_id, spec, flight, result)
        return result

    async def _follow_async(
        self, flight: _Flight, own: _AnyCallback | None, printer: bool
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
                    await _call_async(own, getter.result())
        finally:
            # A cancelled follower stops listening: once its loop is closed, forwarding
            # would fail (and log) on every later event of the load.
            flight.unsubscribe(forward)
        while not queue.empty():
            await _call_async(own, queue.get_nowait())
        return await waiting

    def ensure_loaded(
        self,
        client: BytezClient,
        model_id: str,
        *,
        concurrency: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: ProgressOption = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Make sure a model's cluster is running, loading it if needed (single-flight).

        Args:
            client: The sync client to use.
            model_id: The Bytez model id.
            concurrency: Instances to run (``min = desired = max``).
            timeout: Idle seconds before the cluster shuts down; sent as whole minutes,
                rounded up, 1 to 1440.
            capacity: Full capacity (``Capacity`` or dict with ``min``, ``desired``,
                ``max``) for autoscaling; overrides ``concurrency``.
            progress: ``True`` for the console reporter, a callable for events,
                ``False``/``None`` for silence.
            deadline: Seconds to wait for the cluster to run before giving up.

        Returns:
            The running cluster's status, or ``None`` in serverless mode.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the load fails or misses the deadline.
            BytezError: On other service errors (unknown model, bad key...).
        """
        spec = _LoadSpec.build(concurrency, timeout, capacity, deadline)
        model_id = validate_model_id(model_id)
        return self._load_sync(client, model_id, spec, progress, use_cache=True)

    async def aensure_loaded(
        self,
        client: AsyncBytezClient,
        model_id: str,
        *,
        concurrency: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: AsyncProgressOption = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Async ``ensure_loaded``; shares the single flight with sync callers.

        Args:
            client: The async client to use.
            model_id: The Bytez model id.
            concurrency: Instances to run (``min = desired = max``).
            timeout: Idle seconds before the cluster shuts down (whole minutes, rounded
                up, 1 to 1440).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.
            progress: ``True``, ``False``/``None``, or a sync or async callable.
            deadline: Seconds to wait for the cluster to run before giving up.

        Returns:
            The running cluster's status, or ``None`` in serverless mode.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the load fails or misses the deadline.
            BytezError: On other service errors.
        """
        spec = _LoadSpec.build(concurrency, timeout, capacity, deadline)
        model_id = validate_model_id(model_id)
        return await self._load_async(client, model_id, spec, progress, use_cache=True)

    def _implicit_wanted(self, model_id: str) -> bool:
        return not (
            self._serverless or is_closed_source(model_id) or self._implicit_skipped(model_id)
        )

    def ensure_available(
        self,
        client: BytezClient,
        model_id: str,
        *,
        concurrency: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        progress: ProgressOption = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Implicit auto-load before a run: best effort, never breaks or alters anything.

        The rule (``docs/model-management.md``):

        * closed-source models (``openai/...``, ``anthropic/...``; see
          [`is_closed_source`][langchain_bytez.protocol.is_closed_source]) get no cluster
          call;
        * a cluster that is on is used as it is; one that is loading is waited for; one
          that is off or failed is left alone (the run is sent; never PATCH, PUT on top
          of it, or DELETE);
        * a cluster is created (PUT, with ``concurrency`` and ``timeout``) only when none
          exists;
        * each cluster call is sent once with a timeout of
          [`IMPLICIT_CALL_TIMEOUT`][langchain_bytez.manager.IMPLICIT_CALL_TIMEOUT] seconds;
          any failure except 401/402 returns ``None`` (the run is sent anyway), warns once
          per model and base URL, and skips the model's auto-load for
          [`IMPLICIT_RETRY_AFTER`][langchain_bytez.manager.IMPLICIT_RETRY_AFTER] seconds.

        Args:
            client: The sync client to use.
            model_id: The Bytez model id.
            concurrency: Instances of a cluster created here.
            timeout: Idle seconds of a cluster created here.
            progress: ``True``, a callable, or ``False``/``None``.
            deadline: Longest wait for a loading cluster; past it the run is sent.

        Returns:
            The running cluster's status, or ``None`` when the run is to be sent as is.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezAuthenticationError: On 401 (the run would fail the same way).
            BytezPaymentRequiredError: On 402.
        """
        spec = _LoadSpec.build(concurrency, timeout, None, deadline)
        model_id = validate_model_id(model_id)
        if not self._implicit_wanted(model_id):
            return None
        if (cached := self._cached_any(model_id)) is not None:
            return cached
        try:
            return self._load_sync(client, model_id, spec, progress, use_cache=False, implicit=True)
        except (BytezAuthenticationError, BytezPaymentRequiredError):
            raise
        except BytezError as error:
            if error.status_code in {401, 402}:
                raise
            self._implicit_failed(client.cache_key[0], model_id, error)
            return None

    async def aensure_available(
        self,
        client: AsyncBytezClient,
        model_id: str,
        *,
        concurrency: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        progress: AsyncProgressOption = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Async [`ensure_available`][langchain_bytez.manager.ModelManager.ensure_available].

        Args:
            client: The async client to use.
            model_id: The Bytez model id.
            concurrency: Instances of a cluster created here.
            timeout: Idle seconds of a cluster created here.
            progress: ``True``, ``False``/``None``, or a sync or async callable.
            deadline: Longest wait for a loading cluster; past it the run is sent.

        Returns:
            The running cluster's status, or ``None`` when the run is to be sent as is.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezAuthenticationError: On 401.
            BytezPaymentRequiredError: On 402.
        """
        spec = _LoadSpec.build(concurrency, timeout, None, deadline)
        model_id = validate_model_id(model_id)
        if not self._implicit_wanted(model_id):
            return None
        if (cached := self._cached_any(model_id)) is not None:
            return cached
        try:
            return await self._load_async(
                client, model_id, spec, progress, use_cache=False, implicit=True
            )
        except (BytezAuthenticationError, BytezPaymentRequiredError):
            raise
        except BytezError as error:
            if error.status_code in {401, 402}:
                raise
            self._implicit_failed(client.cache_key[0], model_id, error)
            return None

    # ------------------------------------------------------------------ limits

    def _limiter(self, model_id: str, concurrency: int) -> _Limiter:
        limiter = self._limiters.get(model_id)  # lock-free fast path: dict reads are atomic
        if limiter is not None and type(concurrency) is int and limiter.capacity == concurrency:
            return limiter  # the cap of last time: already checked, nothing to resize
        concurrency = _check_count("concurrency", concurrency, 1)
        with self._lock:
            limiter = self._limiters.get(model_id)
            if limiter is None:
                limiter = self._limiters[model_id] = _Limiter(concurrency)
        # A new cap applies from the next acquisition; runs already in flight finish.
        limiter.resize(concurrency)
        return limiter

    @contextmanager
    def limit(self, model_id: str, concurrency: int) -> Iterator[None]:
        """Hold one of ``concurrency`` run slots of a model (blocks while all are taken).

        Args:
            model_id: The Bytez model id.
            concurrency: Most runs of this model in flight at once through this manager.

        Yields:
            Nothing; the slot is released on exit.

        Raises:
            ValueError: If ``concurrency`` is not a positive integer.
        """
        limiter = self._limiter(model_id, concurrency)
        limiter.acquire()
        try:
            yield
        finally:
            limiter.release()

    @asynccontextmanager
    async def alimit(self, model_id: str, concurrency: int) -> AsyncIterator[None]:
        """Async ``limit``: waits without blocking the loop; any loop may use it.

        Args:
            model_id: The Bytez model id.
            concurrency: Most runs of this model in flight at once through this manager.

        Yields:
            Nothing; the slot is released on exit.

        Raises:
            ValueError: If ``concurrency`` is not a positive integer.
        """
        limiter = self._limiter(model_id, concurrency)
        await limiter.aacquire()
        try:
            yield
        finally:
            limiter.release()

    # ------------------------------------------------------------------ conveniences

    def load(
        self,
        model_id: str,
        *,
        client: BytezClient,
        concurrency: int | None = None,
        timeout: float | None = None,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: ProgressOption = True,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Shortcut for ``ModelHandle(client, model_id, manager=self).load(...)``.

        Args:
            model_id: The Bytez model id.
            client: The sync client to use.
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.
            progress: ``True``, ``False``/``None`` or a callable.
            deadline: Seconds to wait for the cluster to run.

        Returns:
            The running cluster's status, or ``None`` in serverless mode.
        """
        return ModelHandle(client, model_id, manager=self).load(
            concurrency, timeout, capacity=capacity, progress=progress, deadline=deadline
        )

    async def aload(
        self,
        model_id: str,
        *,
        client: AsyncBytezClient,
        concurrency: int | None = None,
        timeout: float | None = None,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: AsyncProgressOption = True,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Async ``load``.

        Args:
            model_id: The Bytez model id.
            client: The async client to use.
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.
            progress: ``True``, ``False``/``None`` or a sync or async callable.
            deadline: Seconds to wait for the cluster to run.

        Returns:
            The running cluster's status, or ``None`` in serverless mode.
        """
        return await AsyncModelHandle(client, model_id, manager=self).load(
            concurrency, timeout, capacity=capacity, progress=progress, deadline=deadline
        )

    def status(self, model_id: str, *, client: BytezClient) -> ClusterStatus:
        """Shortcut for ``ModelHandle(client, model_id, manager=self).status()``.

        Args:
            model_id: The Bytez model id.
            client: The sync client to use.

        Returns:
            The cluster status (stopped when there is no cluster).
        """
        return ModelHandle(client, model_id, manager=self).status()

    async def astatus(self, model_id: str, *, client: AsyncBytezClient) -> ClusterStatus:
        """Async ``status``.

        Args:
            model_id: The Bytez model id.
            client: The async client to use.

        Returns:
            The cluster status (stopped when there is no cluster).
        """
        return await AsyncModelHandle(client, model_id, manager=self).status()

    def stop(self, model_id: str, *, client: BytezClient) -> None:
        """Shortcut for ``ModelHandle(client, model_id, manager=self).stop()``.

        Args:
            model_id: The Bytez model id.
            client: The sync client to use.
        """
        ModelHandle(client, model_id, manager=self).stop()

    async def astop(self, model_id: str, *, client: AsyncBytezClient) -> None:
        """Async ``stop``.

        Args:
            model_id: The Bytez model id.
            client: The async client to use.
        """
        await AsyncModelHandle(client, model_id, manager=self).stop()

    @contextmanager
    def session(
        self,
        model_id: str,
        *,
        client: BytezClient,
        concurrency: int | None = None,
        timeout: float | None = None,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: ProgressOption = True,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> Iterator[ModelHandle]:
        """Load a model for the duration of a ``with`` block, then stop it.

        The model is stopped on exit, also when the block (or the load itself) raises,
        so a session never leaves instances billing.

        Args:
            model_id: The Bytez model id.
            client: The sync client to use.
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.
            progress: ``True``, ``False``/``None`` or a callable.
            deadline: Seconds to wait for the cluster to run.

        Yields:
            The loaded model's handle.
        """
        handle = ModelHandle(client, model_id, manager=self)
        try:
            handle.load(
                concurrency, timeout, capacity=capacity, progress=progress, deadline=deadline
            )
            yield handle
        except BaseException:
            try:
                handle.stop()
            except Exception:  # noqa: BLE001 - keep the original error, log this one
                logger.warning("Bytez model %s: stop after error failed", model_id, exc_info=True)
            raise
        handle.stop()

    @asynccontextmanager
    async def asession(
        self,
        model_id: str,
        *,
        client: AsyncBytezClient,
        concurrency: int | None = None,
        timeout: float | None = None,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: AsyncProgressOption = True,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> AsyncIterator[AsyncModelHandle]:
        """Async ``session``: ``async with manager.asession(...) as handle``.

        Args:
            model_id: The Bytez model id.
            client: The async client to use.
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.
            progress: ``True``, ``False``/``None`` or a sync or async callable.
            deadline: Seconds to wait for the cluster to run.

        Yields:
            The loaded model's async handle.
        """
        handle = AsyncModelHandle(client, model_id, manager=self)
        try:
            await handle.load(
                concurrency, timeout, capacity=capacity, progress=progress, deadline=deadline
            )
            yield handle
        except BaseException:
            try:
                await handle.stop()
            except Exception:  # noqa: BLE001 - keep the original error, log this one
                logger.warning("Bytez model %s: stop after error failed", model_id, exc_info=True)
            raise
        await handle.stop()


# --------------------------------------------------------------------------- handles


class ModelHandle:
    """One Bytez model seen through a sync client: what ``client.model(id)`` returns.

    Example:
        ```python
        from langchain_bytez.client import BytezClient

        with BytezClient() as client:
            gpt2 = client.model("openai-community/gpt2")
            gpt2.load(concurrency=2, timeout=600)  # waits, showing progress
            print(gpt2.run("Once upon a time", {"max_new_tokens": 20}).output)
            gpt2.stop()
        ```
    """

    def __init__(
        self, client: BytezClient, model_id: str, *, manager: ModelManager | None = None
    ) -> None:
        """Create the handle (no request is sent).

        Args:
            client: The sync client to use.
            model_id: The Bytez model id (validated here).
            manager: The manager to share state with; defaults to the client's shared one.

        Raises:
            InvalidModelIdError: If the model id is not valid.
        """
        self._client = client
        self._model_id = validate_model_id(model_id)
        self._manager = manager if manager is not None else ModelManager.for_client(client)

    @property
    def model_id(self) -> str:
        """The Bytez model id."""
        return self._model_id

    @property
    def client(self) -> BytezClient:
        """The client the handle sends requests with."""
        return self._client

    @property
    def manager(self) -> ModelManager:
        """The manager sharing load state for this endpoint."""
        return self._manager

    def __repr__(self) -> str:
        """Return ``ModelHandle(model_id=...)``."""
        return f"{type(self).__name__}(model_id={self._model_id!r})"

    def load(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        *,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: ProgressOption = True,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Create (or update) the model's cluster and wait until it is running.

        An existing cluster is updated (PATCH) when the capacity or timeout *given here*
        differ from its own (sizes left ``None`` are kept as they are), and turned back
        on when off. Polling backs off from 0.05 s, doubling up to 5 s.

        Args:
            concurrency: Instances to run (``min = desired = max = concurrency``);
                ``None`` keeps an existing cluster's capacity (a new one gets 1).
            timeout: Idle seconds before the cluster shuts down (``None`` keeps an
                existing cluster's, a new one gets 300 s); Bytez counts whole
                minutes, so this is rounded **up** to minutes and must be 1..1440
                minutes (at most 86400 s).
            capacity: Full capacity (``Capacity`` or ``{"min", "desired", "max"}``) for
                autoscaling; when given it overrides ``concurrency``.
            progress: ``True`` (default) prints progress to stderr; a callable receives
                [`LoadProgress`][langchain_bytez.manager.LoadProgress] events; ``False``/``None`` is
                silent.
            deadline: Seconds to wait overall before giving up (default 15 min).

        Returns:
            The running cluster's status, or ``None`` in serverless mode (cluster
            routes unavailable: the first run starts the model).

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the cluster fails (message has the server's reason)
                or is not running by the deadline (message has the last status).
            BytezError: On other service errors (unknown model, bad key...).
        """
        spec = _LoadSpec.build(concurrency, timeout, capacity, deadline)
        return self._manager._load_sync(
            self._client, self._model_id, spec, progress, use_cache=False
        )

    def start(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        *,
        capacity: Capacity | Mapping[str, int] | None = None,
    ) -> ClusterStatus | None:
        """Like ``load`` but returns as soon as the cluster is requested.

        Args:
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.

        Returns:
            The cluster status known right after the request (usually deploying), or
            ``None`` in serverless mode.
        """
        spec = _LoadSpec.build(concurrency, timeout, capacity, DEFAULT_DEADLINE_SECONDS)
        plan = self._manager._load_plan(self._model_id, spec, wait=False)
        return _drive(plan, self._client, self._model_id, None)

    def status(self) -> ClusterStatus:
        """Read the cluster's status.

        Returns:
            The status; ``ClusterState.STOPPED`` when the model has no cluster, and
            ``raw_status="serverless"`` in serverless mode.
        """
        return _drive(
            self._manager._status_plan(self._model_id), self._client, self._model_id, None
        )

    def stop(self) -> None:
        """Delete the cluster. Idempotent: stopping a stopped model is fine."""
        _drive(self._manager._stop_plan(self._model_id), self._client, self._model_id, None)

    def run(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run the model once.

        Args:
            input: A string (sent as ``text``) or a list of message dicts (sent as
                ``messages``) for chat and ``*-text-to-text`` models.
            params: Generation parameters (``max_new_tokens``, ``temperature``...).

        Returns:
            The run's output and response metadata.
        """
        return self._client.run(self._model_id, _payload(input, params))

    def stream(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> TextStream:
        """Stream the model's output as text.

        Args:
            input: A string or a list of message dicts, as for
                [`run`][langchain_bytez.manager.ModelHandle.run].
            params: Generation parameters.

        Returns:
            The client's ``TextStream``: ``with handle.stream(...) as s: for t in s``.
        """
        return self._client.stream(self._model_id, _payload(input, params))


class AsyncModelHandle:
    """One Bytez model seen through an async client: what ``async_client.model(id)`` returns.

    Example:
        ```python
        from langchain_bytez.client import AsyncBytezClient

        async with AsyncBytezClient() as client:
            gpt2 = client.model("openai-community/gpt2")
            await gpt2.load(concurrency=2)
            async with gpt2.stream("Once upon a time") as stream:
                async for text in stream:
                    print(text, end="")
            await gpt2.stop()
        ```
    """

    def __init__(
        self, client: AsyncBytezClient, model_id: str, *, manager: ModelManager | None = None
    ) -> None:
        """Create the handle (no request is sent).

        Args:
            client: The async client to use.
            model_id: The Bytez model id (validated here).
            manager: The manager to share state with; defaults to the client's shared one.

        Raises:
            InvalidModelIdError: If the model id is not valid.
        """
        self._client = client
        self._model_id = validate_model_id(model_id)
        self._manager = manager if manager is not None else ModelManager.for_client(client)

    @property
    def model_id(self) -> str:
        """The Bytez model id."""
        return self._model_id

    @property
    def client(self) -> AsyncBytezClient:
        """The client the handle sends requests with."""
        return self._client

    @property
    def manager(self) -> ModelManager:
        """The manager sharing load state for this endpoint."""
        return self._manager

    def __repr__(self) -> str:
        """Return ``AsyncModelHandle(model_id=...)``."""
        return f"{type(self).__name__}(model_id={self._model_id!r})"

    async def load(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        *,
        capacity: Capacity | Mapping[str, int] | None = None,
        progress: AsyncProgressOption = True,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClusterStatus | None:
        """Create (or update) the model's cluster and wait until it is running.

        See [`ModelHandle.load`][langchain_bytez.manager.ModelHandle.load]; ``progress`` may also be
        an async callable.

        Args:
            concurrency: Instances to run (``min = desired = max = concurrency``);
                ``None`` keeps an existing cluster's capacity (a new one gets 1).
            timeout: Idle seconds before shutdown (``None`` keeps an existing
                cluster's, a new one gets 300 s), rounded **up** to whole minutes,
                1..1440 minutes.
            capacity: Full capacity for autoscaling; overrides ``concurrency``.
            progress: ``True`` (stderr), ``False``/``None``, or a sync or async callable.
            deadline: Seconds to wait overall before giving up (default 15 min).

        Returns:
            The running cluster's status, or ``None`` in serverless mode.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the cluster fails or misses the deadline.
            BytezError: On other service errors.
        """
        spec = _LoadSpec.build(concurrency, timeout, capacity, deadline)
        return await self._manager._load_async(
            self._client, self._model_id, spec, progress, use_cache=False
        )

    async def start(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        *,
        capacity: Capacity | Mapping[str, int] | None = None,
    ) -> ClusterStatus | None:
        """Like ``load`` but returns as soon as the cluster is requested.

        Args:
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.

        Returns:
            The cluster status known right after the request, or ``None`` in serverless
            mode.
        """
        spec = _LoadSpec.build(concurrency, timeout, capacity, DEFAULT_DEADLINE_SECONDS)
        plan = self._manager._load_plan(self._model_id, spec, wait=False)
        return await _adrive(plan, self._client, self._model_id, None)

    async def status(self) -> ClusterStatus:
        """Read the cluster's status.

        Returns:
            The status; ``ClusterState.STOPPED`` when the model has no cluster.
        """
        return await _adrive(
            self._manager._status_plan(self._model_id), self._client, self._model_id, None
        )

    async def stop(self) -> None:
        """Delete the cluster. Idempotent: stopping a stopped model is fine."""
        await _adrive(self._manager._stop_plan(self._model_id), self._client, self._model_id, None)

    async def run(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run the model once.

        Args:
            input: A string (``text``) or a list of message dicts (``messages``).
            params: Generation parameters.

        Returns:
            The run's output and response metadata.
        """
        return await self._client.run(self._model_id, _payload(input, params))

    def stream(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> AsyncTextStream:
        """Stream the model's output as text.

        Args:
            input: A string or a list of message dicts, as for
                [`run`][langchain_bytez.manager.AsyncModelHandle.run].
            params: Generation parameters.

        Returns:
            The client's ``AsyncTextStream``:
            ``async with handle.stream(...) as s: async for t in s``.
        """
        return self._client.stream(self._model_id, _payload(input, params))
