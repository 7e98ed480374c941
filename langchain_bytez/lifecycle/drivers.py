"""The two plan drivers: run a plan's steps with a sync or an async client.

They are the only lifecycle code that does I/O. Each step is executed the same way in
both; they differ only in ``await``. Notes about state (``Forget``, ``EnterServerless``,
``SkipImplicit``) are handed to a [`PlanState`][langchain_bytez.lifecycle.drivers.PlanState]
(the manager).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from langchain_bytez.errors import BytezError
from langchain_bytez.lifecycle import settings
from langchain_bytez.lifecycle.plans import (
    Delete,
    Emit,
    EnterServerless,
    Forget,
    Get,
    Patch,
    Plan,
    Put,
    SkipImplicit,
    Sleep,
    Step,
)
from langchain_bytez.lifecycle.progress import AnyProgressCallback, call_async, call_sync
from langchain_bytez.wire.endpoints import PlanDriver

if TYPE_CHECKING:
    from langchain_bytez.client import AsyncBytezClient, BytezClient

__all__ = ["PlanState", "adrive", "drive"]

_T = TypeVar("_T")


class PlanState(Protocol):
    """What the drivers tell about a plan's state notes (the manager implements it)."""

    def forget(self, model_id: str) -> None:
        """The model is not known to run any more."""

    def _enter_serverless(self, error: BytezError) -> None:
        """The cluster routes are gone on this endpoint."""

    def _skip_implicit(self, model_id: str, seconds: float) -> None:
        """Skip the model's implicit auto-load for a while."""


def _call_options(implicit: bool) -> dict[str, Any]:
    # Implicit calls are bounded: one attempt each, a short timeout. Read at each call so
    # the module constant can be tuned (tests shorten it).
    if not implicit:
        return {}
    return {"timeout": settings.IMPLICIT_CALL_TIMEOUT, "retry": False}


def _note(step: Step, state: PlanState | None, model_id: str) -> bool:
    """Apply a state note; returns whether ``step`` was one."""
    if isinstance(step, Forget):
        if state is not None:
            state.forget(model_id)
    elif isinstance(step, EnterServerless):
        if state is not None:
            state._enter_serverless(step.error)
    elif isinstance(step, SkipImplicit):
        if state is not None:
            state._skip_implicit(model_id, step.seconds)
    else:
        return False
    return True


def _request(
    step: Get | Put | Patch | Delete,
    client: BytezClient | AsyncBytezClient,
    model_id: str,
    call: dict[str, Any],
) -> Any:
    """Start the client call a cluster step asks for.

    Returns:
        The call's result with a sync client, an awaitable of it with an async one.
    """
    if isinstance(step, Get):
        return client.get_cluster(model_id, **call)
    if isinstance(step, Put):
        return client.create_cluster(model_id, step.capacity, step.minutes, **call)
    if isinstance(step, Patch):
        return client.update_cluster(
            model_id, capacity=step.capacity, timeout_minutes=step.minutes, status=step.status
        )
    return client.delete_cluster(model_id)


_REQUESTS = (Get, Put, Patch, Delete)


def drive(
    plan: Plan[_T],
    client: BytezClient,
    model_id: str,
    emit: AnyProgressCallback | None,
    state: PlanState | None = None,
    *,
    implicit: bool = False,
) -> _T:
    """Run a plan with a sync client.

    Args:
        plan: The plan generator.
        client: The sync client that sends the cluster calls.
        model_id: The model the plan is about.
        emit: Receiver of the plan's progress events, or ``None``.
        state: Receiver of the plan's state notes, or ``None``.
        implicit: Send each call once with a short timeout (implicit auto-load).

    Returns:
        The plan's result.
    """
    call = _call_options(implicit)
    driver = PlanDriver(plan)
    try:
        while (step := driver.next_call()) is not None:
            value = None
            try:
                if isinstance(step, _REQUESTS):
                    value = _request(step, client, model_id, call)
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                elif isinstance(step, Emit):
                    if emit is not None:
                        call_sync(emit, step.event)
                else:
                    _note(step, state, model_id)
            except BytezError as exc:
                driver.fail(exc)
            else:
                driver.reply(value)
        return driver.result
    finally:
        plan.close()


async def adrive(
    plan: Plan[_T],
    client: AsyncBytezClient,
    model_id: str,
    emit: AnyProgressCallback | None,
    state: PlanState | None = None,
    *,
    implicit: bool = False,
) -> _T:
    """Async version of [`drive`][langchain_bytez.lifecycle.drivers.drive].

    ``client`` is an async client and ``emit`` may be an async callable.
    """
    call = _call_options(implicit)
    driver = PlanDriver(plan)
    try:
        while (step := driver.next_call()) is not None:
            value = None
            try:
                if isinstance(step, _REQUESTS):
                    value = await _request(step, client, model_id, call)
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Emit):
                    if emit is not None:
                        await call_async(emit, step.event)
                else:
                    _note(step, state, model_id)
            except BytezError as exc:
                driver.fail(exc)
            else:
                driver.reply(value)
        return driver.result
    finally:
        plan.close()
