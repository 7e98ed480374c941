"""Cluster plans: every lifecycle decision, written once as a pure generator.

A plan yields the steps it needs (``Get``, ``Put``, ``Patch``, ``Delete``, ``Sleep``,
``Emit`` and the state notes ``Forget``, ``EnterServerless``, ``SkipImplicit``) and
receives each step's result, or has the step's ``BytezError`` thrown into it. It sends
nothing and keeps no state: the sync and async drivers
([`langchain_bytez.lifecycle.drivers`][langchain_bytez.lifecycle.drivers]) do the I/O and
apply the notes to the manager. Tests feed plans directly: send answers, assert steps.

The rules live here, in one place each:

* explicit load (``load_plan``): create when absent, replace a failed cluster, PATCH a
  stopped one or one whose chosen settings differ, wait with exponential backoff;
* implicit auto-load before a run (``implicit_plan``): never PATCH, PUT over, or DELETE
  an existing cluster; create only when none exists; leave an off/failed one alone;
* cluster routes gone (404 route / 405): note serverless mode, emit one final event;
* ``status_plan`` and ``stop_plan`` (idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from langchain_bytez.errors import BytezError, BytezModelLoadError, BytezNotFoundError
from langchain_bytez.lifecycle.progress import LoadProgress
from langchain_bytez.lifecycle.settings import (
    HEARTBEAT_SECONDS,
    STOPPED_GRACE_SECONDS,
    LoadSpec,
)
from langchain_bytez.types import Capacity, ClusterState, ClusterStatus

__all__ = [
    "Delete",
    "Emit",
    "EnterServerless",
    "Forget",
    "Get",
    "Patch",
    "Plan",
    "Polling",
    "Put",
    "SkipImplicit",
    "Sleep",
    "Step",
    "implicit_plan",
    "is_route_gone",
    "load_plan",
    "status_plan",
    "stop_plan",
]

logger = logging.getLogger("langchain_bytez")

_T = TypeVar("_T")

Clock = Callable[[], float]


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Get:
    """Step: read the cluster (GET); answered with a ``ClusterStatus``."""


@dataclass(frozen=True)
class Put:
    """Step: create the cluster (PUT); answered with the service's output."""

    capacity: Capacity
    minutes: int


@dataclass(frozen=True)
class Patch:
    """Step: update the cluster (PATCH); answered with a status or the raw output."""

    capacity: Capacity | None
    minutes: int | None
    status: Literal["on", "off"] | None


@dataclass(frozen=True)
class Delete:
    """Step: delete the cluster (DELETE), e.g. to replace a failed one."""


@dataclass(frozen=True)
class Sleep:
    """Step: wait before the next poll."""

    seconds: float


@dataclass(frozen=True)
class Emit:
    """Step: report a progress event."""

    event: LoadProgress


@dataclass(frozen=True)
class Forget:
    """Note: the model is not known to run any more (drop the running memo)."""


@dataclass(frozen=True)
class EnterServerless:
    """Note: the cluster routes are gone on this endpoint; warn once, stop using them."""

    error: BytezError


@dataclass(frozen=True)
class SkipImplicit:
    """Note: send this model's runs without implicit auto-load for ``seconds``."""

    seconds: float


Step = Get | Put | Patch | Delete | Sleep | Emit | Forget | EnterServerless | SkipImplicit
Plan = Generator[Step, Any, _T]


@dataclass(frozen=True)
class Polling:
    """How a plan waits for a loading cluster.

    Attributes:
        initial: First delay between status polls, in seconds (doubles each poll).
        maximum: Longest delay between polls.
        clock: Monotonic clock (seconds); tests pass a fake one.
    """

    initial: float = 0.05
    maximum: float = 5.0
    clock: Clock = time.monotonic


# --------------------------------------------------------------------------- rules


def is_route_gone(error: BytezError) -> bool:
    """Whether a cluster-route error means the route itself is missing (not the model).

    Args:
        error: The error a cluster call raised.

    Returns:
        ``True`` for 405, and for a 404 that does not name an unknown model.
    """
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


def describe(status: ClusterStatus | None) -> str:
    """Describe a status for error messages: ``deploying ('loading')``.

    Args:
        status: The status, or ``None``.

    Returns:
        A short text.
    """
    if status is None:
        return "none"
    raw = f" ({status.raw_status!r})" if status.raw_status else ""
    return f"{status.state.value}{raw}"


def serverless_status(model_id: str) -> ClusterStatus:
    """The status reported in serverless mode (stopped, ``raw_status="serverless"``).

    Args:
        model_id: The Bytez model id.

    Returns:
        The status.
    """
    return ClusterStatus(model_id=model_id, state=ClusterState.STOPPED, raw_status="serverless")


def progress_event(
    model_id: str, status: ClusterStatus, elapsed: float, *, done: bool = False
) -> LoadProgress:
    """Build the progress event of a status seen ``elapsed`` seconds into a load.

    Args:
        model_id: The Bytez model id.
        status: The status seen.
        elapsed: Seconds since the load started.
        done: Whether this is the load's last event.

    Returns:
        The event, with a one-line message.
    """
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


def _created(model_id: str, spec: LoadSpec, output: object) -> ClusterStatus:
    raw = output if isinstance(output, str) and output else "loading"
    return ClusterStatus(
        model_id=model_id,
        state=ClusterState.DEPLOYING,
        raw_status=raw,
        capacity=spec.capacity,
        timeout=spec.minutes,
    )


# --------------------------------------------------------------------------- plans


def serverless_plan(model_id: str, elapsed: float) -> Plan[None]:
    """Report serverless mode: one final progress event.

    Args:
        model_id: The Bytez model id.
        elapsed: Seconds since the load started.

    Yields:
        One ``Emit``.
    """
    yield Emit(
        LoadProgress(
            model_id=model_id,
            state=ClusterState.STOPPED,
            raw_status="serverless",
            elapsed=elapsed,
            message=(
                f"{model_id}: cluster routes unavailable; serverless mode "
                "(the first run starts the model)"
            ),
            done=True,
        )
    )


def _route_gone(model_id: str, error: BytezError, elapsed: float) -> Plan[None]:
    yield EnterServerless(error)
    yield from serverless_plan(model_id, elapsed)


def load_plan(
    model_id: str,
    spec: LoadSpec,
    *,
    wait: bool,
    serverless: bool = False,
    polling: Polling = Polling(),  # noqa: B008 - immutable
) -> Plan[ClusterStatus | None]:
    """Explicit load: make the cluster match ``spec`` and (if ``wait``) wait until it runs.

    Args:
        model_id: The Bytez model id.
        spec: The settings asked for.
        wait: Wait for the cluster to run (``load``) or return once requested (``start``).
        serverless: Whether the endpoint is already known to have no cluster routes.
        polling: Poll delays and clock.

    Yields:
        Steps (see the module docstring).

    Returns:
        The cluster's status (running, when waiting), or ``None`` in serverless mode.

    Raises:
        BytezModelLoadError: If the cluster fails, stops or misses the deadline.
        BytezError: On other service errors (unknown model, bad key...).
    """
    clock = polling.clock
    started = clock()
    if serverless:
        yield from serverless_plan(model_id, clock() - started)
        return None

    current: ClusterStatus | None
    try:
        current = yield Get()
    except BytezNotFoundError:
        current = None  # either no cluster yet or the route is gone: only the PUT can tell
    except BytezError as exc:
        if exc.status_code != 405:
            raise
        yield from _route_gone(model_id, exc, clock() - started)
        return None

    if current is not None and current.state is ClusterState.FAILED:
        # A failed cluster would answer the PUT with 409; start over.
        logger.info("Bytez model %s: replacing a failed cluster", model_id)
        try:
            yield Delete()
        except BytezNotFoundError:
            logger.debug("Bytez model %s: the failed cluster was already gone", model_id)
        current = None

    created = False
    if current is None:
        try:
            output = yield Put(spec.capacity, spec.minutes)
        except BytezError as exc:
            if exc.status_code == 409:
                current = yield Get()  # someone else created it between our GET and PUT
            elif is_route_gone(exc):
                yield from _route_gone(model_id, exc, clock() - started)
                return None
            else:
                raise
        else:
            created = True
            current = _created(model_id, spec, output)

    assert current is not None  # noqa: S101
    if not created and (current.state is ClusterState.STOPPED or spec.differs_from(current)):
        turn_on: Literal["on"] | None = "on" if current.state is ClusterState.STOPPED else None
        patched = yield Patch(
            spec.capacity if spec.sets_capacity else None,
            spec.minutes if spec.sets_timeout else None,
            turn_on,
        )
        if isinstance(patched, ClusterStatus):
            current = patched

    if not wait:
        return current
    return (yield from wait_plan(model_id, spec, current, started, polling=polling))


def implicit_plan(
    model_id: str,
    spec: LoadSpec,
    *,
    skip_seconds: float,
    polling: Polling = Polling(),  # noqa: B008 - immutable
) -> Plan[ClusterStatus | None]:
    """Auto-load before a run: best effort, never changes an existing cluster.

    Args:
        model_id: The Bytez model id.
        spec: Settings of a cluster created here (an existing one keeps its own).
        skip_seconds: How long to skip auto-load of a model whose cluster is off/failed.
        polling: Poll delays and clock.

    Yields:
        Steps: ``Get``, at most one ``Put``, polls; never ``Patch`` or ``Delete``.

    Returns:
        The running cluster, or ``None`` to send the run as it is.

    Raises:
        BytezError: The cluster call's error; the caller turns every one but 401/402
            into a serverless run.
    """
    clock = polling.clock
    started = clock()
    try:
        current: ClusterStatus | None = yield Get()
    except BytezNotFoundError:
        current = None  # no cluster yet, or the route is gone: only the PUT can tell
    if current is None:
        try:
            output = yield Put(spec.capacity, spec.minutes)
        except BytezError as exc:
            if exc.status_code != 409:
                raise
            current = yield Get()  # created by someone else meanwhile: use theirs
        else:
            current = _created(model_id, spec, output)
    if current.state is ClusterState.RUNNING:
        return current
    if current.state is not ClusterState.DEPLOYING:
        # Off or failed: turning it on or replacing it would change the user's
        # cluster. The run is sent as it is; the service decides.
        logger.info(
            "Bytez model %s: cluster is %s; auto-load leaves it as it is",
            model_id,
            describe(current),
        )
        yield SkipImplicit(skip_seconds)
        return None
    return (yield from wait_plan(model_id, spec, current, started, polling=polling, implicit=True))


def wait_plan(
    model_id: str,
    spec: LoadSpec,
    current: ClusterStatus,
    started: float,
    *,
    polling: Polling = Polling(),  # noqa: B008 - immutable
    implicit: bool = False,
) -> Plan[ClusterStatus]:
    """Poll a cluster until it runs, fails, stops or the deadline passes.

    Args:
        model_id: The Bytez model id.
        spec: The load's settings (its ``deadline`` counts from ``started``).
        current: The status seen last.
        started: When the load started (``polling.clock`` time).
        polling: Poll delays and clock.
        implicit: An implicit auto-load: a failing poll is raised at once.

    Yields:
        ``Emit`` on each change (and a heartbeat), ``Sleep`` and ``Get`` per poll.

    Returns:
        The running cluster's status.

    Raises:
        BytezModelLoadError: If the cluster fails, stops or misses the deadline.
        BytezError: A poll's non-retryable error (any, when implicit).
    """
    clock = polling.clock
    interval = polling.initial
    last_seen = (current.state, (current.raw_status or "").lower())
    last_emit = clock()
    seen_alive = current.state is not ClusterState.STOPPED
    if current.state is not ClusterState.RUNNING:
        yield Emit(progress_event(model_id, current, clock() - started))
    while True:
        elapsed = clock() - started
        if current.state is ClusterState.RUNNING:
            yield Emit(progress_event(model_id, current, clock() - started, done=True))
            return current
        if current.state is ClusterState.FAILED:
            yield Emit(progress_event(model_id, current, clock() - started, done=True))
            reason = current.reason or "no reason given"
            msg = (
                f"Loading {model_id} failed: {reason} "
                f"(last status: {describe(current)}, after {elapsed:.1f} s)"
            )
            raise BytezModelLoadError(msg, model_id=model_id, last_status=current)
        if current.state is ClusterState.STOPPED and (
            seen_alive or elapsed > STOPPED_GRACE_SECONDS
        ):
            yield Emit(progress_event(model_id, current, clock() - started, done=True))
            msg = (
                f"The cluster of {model_id} stopped while loading (deleted or shut "
                f"down; last status: {describe(current)}, after {elapsed:.1f} s)"
            )
            raise BytezModelLoadError(msg, model_id=model_id, last_status=current)
        remaining = spec.deadline - elapsed
        if remaining <= 0:
            yield Emit(progress_event(model_id, current, clock() - started, done=True))
            msg = (
                f"{model_id} was not running after {elapsed:.1f} s (deadline "
                f"{spec.deadline:g} s); last status: {describe(current)}"
            )
            raise BytezModelLoadError(msg, model_id=model_id, last_status=current)
        # Exponential backoff: quick for warm or small models, gentle on long loads.
        yield Sleep(min(interval, remaining))
        interval = min(interval * 2, polling.maximum)
        try:
            current = yield Get()
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
        now = clock()
        if current.state is ClusterState.RUNNING or current.state is ClusterState.FAILED:
            continue  # the final event is emitted at the top of the loop
        if seen != last_seen or now - last_emit >= HEARTBEAT_SECONDS:
            last_seen, last_emit = seen, now
            yield Emit(progress_event(model_id, current, clock() - started))


def status_plan(model_id: str, *, serverless: bool = False) -> Plan[ClusterStatus]:
    """Read a cluster's status (stopped when there is none).

    Args:
        model_id: The Bytez model id.
        serverless: Whether the endpoint is known to have no cluster routes.

    Yields:
        ``Get``, and ``Forget`` / ``EnterServerless`` notes.

    Returns:
        The status; ``raw_status="serverless"`` in serverless mode.
    """
    if serverless:
        return serverless_status(model_id)
    try:
        status: ClusterStatus = yield Get()
    except BytezNotFoundError:
        yield Forget()
        return ClusterStatus.stopped(model_id)
    except BytezError as exc:
        if exc.status_code != 405:
            raise
        yield EnterServerless(exc)
        return serverless_status(model_id)
    if status.state is not ClusterState.RUNNING:
        yield Forget()
    return status


def stop_plan(model_id: str, *, serverless: bool = False) -> Plan[None]:
    """Delete a cluster; idempotent (a missing cluster is already stopped).

    Args:
        model_id: The Bytez model id.
        serverless: Whether the endpoint is known to have no cluster routes.

    Yields:
        ``Forget``, then ``Delete`` unless serverless.
    """
    yield Forget()
    if serverless:
        return None
    try:
        yield Delete()
    except BytezNotFoundError:
        return None  # already stopped (or never started): stop is idempotent
    except BytezError as exc:
        if exc.status_code != 405:
            raise
        yield EnterServerless(exc)
    return None
