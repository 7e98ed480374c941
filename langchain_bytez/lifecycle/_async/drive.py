"""Drive a plan: do its steps with an async client.

The steps are those of [`PlanRun.io_steps`][langchain_bytez.lifecycle.drivers.PlanRun];
each is done here (a cluster call, a sleep, a progress event) and its answer, or the
``BytezError`` it raised, is handed back to the plan.
"""

from __future__ import annotations

import asyncio  # unasync: async-only

# unasync: sync-only import time
import contextlib
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_bytez.errors import BytezError
from langchain_bytez.lifecycle.plans import Emit, Plan, Sleep
from langchain_bytez.lifecycle.progress import call_async
from langchain_bytez.lifecycle.steps import IoStep, PlanRun, request
from langchain_bytez.wire.endpoints import PlanDriver

if TYPE_CHECKING:
    from langchain_bytez.client import AsyncBytezClient

__all__ = ["adrive"]

_T = TypeVar("_T")


async def _aperform(step: IoStep, client: AsyncBytezClient, run: PlanRun) -> Any:
    if isinstance(step, Sleep):
        await asyncio.sleep(step.seconds)  # unasync: async-only
        # unasync: sync-only time.sleep(step.seconds)
    elif isinstance(step, Emit):
        if run.emit is not None:
            await call_async(run.emit, step.event)
    else:
        return await request(step, client, run)
    return None


async def adrive(plan: Plan[_T], client: AsyncBytezClient, run: PlanRun) -> _T:
    """Run a plan with an async client.

    Args:
        plan: The plan generator (closed when the run ends, however it ends).
        client: The client that sends the cluster calls.
        run: The model, the receivers (``run.emit`` may be an async callable) and the
            call options.

    Returns:
        The plan's result.
    """
    driver = PlanDriver(plan)
    with contextlib.closing(plan):
        for step in run.io_steps(driver):
            try:
                value = await _aperform(step, client, run)
            except BytezError as exc:
                driver.fail(exc)
            else:
                driver.reply(value)
        return driver.result
