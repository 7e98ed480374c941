"""What both plan drivers share: who a plan runs for, its state notes, its cluster calls.

[`PlanRun`][langchain_bytez.lifecycle.drivers.PlanRun] says who a plan is driven for;
its ``io_steps`` hands the steps that need I/O to the driver and applies the notes about
state (``Forget``, ``EnterServerless``, ``SkipImplicit``) on the way, through a
[`PlanState`][langchain_bytez.lifecycle.drivers.PlanState] (the manager);
``request`` starts the client call of a cluster step. No I/O is done here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
    Put,
    SkipImplicit,
    Sleep,
    Step,
)
from langchain_bytez.lifecycle.progress import AnyProgressCallback
from langchain_bytez.wire.endpoints import PlanDriver

if TYPE_CHECKING:
    from langchain_bytez.client import AsyncBytezClient, BytezClient, ClusterCallOptions

__all__ = ["IO_STEPS", "IoStep", "PlanRun", "PlanState", "request"]

_T = TypeVar("_T")


class PlanState(Protocol):
    """What the drivers tell about a plan's state notes (the manager implements it)."""

    def forget(self, model_id: str) -> None:
        """The model is not known to run any more."""

    def _enter_serverless(self, error: BytezError) -> None:
        """The cluster routes are gone on this endpoint."""

    def _skip_implicit(self, model_id: str, seconds: float) -> None:
        """Skip the model's implicit auto-load for a while."""


@dataclass(frozen=True)
class PlanRun:
    """Who a plan is driven for: its model, where its events and notes go, how it calls.

    Attributes:
        model_id: The model the plan is about.
        emit: Receiver of the plan's progress events (sync, or async with ``adrive``),
            or ``None``.
        state: Receiver of the plan's state notes, or ``None``.
        implicit: Send each call once with a short timeout (implicit auto-load).
    """

    model_id: str
    emit: AnyProgressCallback | None = None
    state: PlanState | None = None
    implicit: bool = False

    def call_options(self) -> ClusterCallOptions:
        """The options of the cluster calls (read at each call: tests shorten them)."""
        if not self.implicit:
            return {}
        return {"timeout": settings.IMPLICIT_CALL_TIMEOUT, "retry": False}

    def io_steps(self, driver: PlanDriver[Step, Any]) -> Iterator[IoStep]:
        """The plan's steps that need I/O; its state notes are applied on the way."""
        while (step := driver.next_call()) is not None:
            if isinstance(step, IO_STEPS):
                yield step
            else:
                _note(step, self.state, self.model_id)
                driver.reply(None)


def _note(step: Step, state: PlanState | None, model_id: str) -> None:
    """Apply a state note."""
    if state is None:
        return
    if isinstance(step, Forget):
        state.forget(model_id)
    elif isinstance(step, EnterServerless):
        state._enter_serverless(step.error)
    elif isinstance(step, SkipImplicit):
        state._skip_implicit(model_id, step.seconds)


def request(
    step: Get | Put | Patch | Delete, client: BytezClient | AsyncBytezClient, run: PlanRun
) -> Any:
    """Start the client call a cluster step asks for.

    Returns:
        The call's result with a sync client, an awaitable of it with an async one.
    """
    model_id, call = run.model_id, run.call_options()
    if isinstance(step, Get):
        return client.get_cluster(model_id, **call)
    if isinstance(step, Put):
        return client.create_cluster(model_id, step.capacity, step.minutes, **call)
    if isinstance(step, Patch):
        return client.update_cluster(
            model_id, capacity=step.capacity, timeout_minutes=step.minutes, status=step.status
        )
    return client.delete_cluster(model_id)


IoStep = Get | Put | Patch | Delete | Sleep | Emit
"""The steps a driver does itself (cluster calls, sleeps, progress events)."""
IO_STEPS = (Get, Put, Patch, Delete, Sleep, Emit)
