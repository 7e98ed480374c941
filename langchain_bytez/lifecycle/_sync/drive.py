# Generated from langchain_bytez/lifecycle/_async/drive.py by .ci/unasync.py:
# do not edit; edit the async source and run `make generate`.
# `make lint` and tests/unit_tests/test_generated.py check it.
"""Drive a plan: do its steps with a client.

The steps are those of [`PlanRun.io_steps`][langchain_bytez.lifecycle.drivers.PlanRun];
each is done here (a cluster call, a sleep, a progress event) and its answer, or the
``BytezError`` it raised, is handed back to the plan.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_bytez.errors import BytezError
from langchain_bytez.lifecycle.plans import Emit, Plan, Sleep
from langchain_bytez.lifecycle.progress import call_sync
from langchain_bytez.lifecycle.steps import IoStep, PlanRun, request
from langchain_bytez.wire.endpoints import PlanDriver

if TYPE_CHECKING:
    from langchain_bytez.client import BytezClient

__all__ = ["drive"]

_T = TypeVar("_T")


def _perform(step: IoStep, client: BytezClient, run: PlanRun) -> Any:
    if isinstance(step, Sleep):
        time.sleep(step.seconds)
    elif isinstance(step, Emit):
        if run.emit is not None:
            call_sync(run.emit, step.event)
    else:
        return request(step, client, run)
    return None


def drive(plan: Plan[_T], client: BytezClient, run: PlanRun) -> _T:
    """Run a plan with a client.

    Args:
        plan: The plan generator (closed when the run ends, however it ends).
        client: The client that sends the cluster calls.
        run: The model, the receivers (``run.emit`` may be a callable) and the
            call options.

    Returns:
        The plan's result.
    """
    driver = PlanDriver(plan)
    with contextlib.closing(plan):
        for step in run.io_steps(driver):
            try:
                value = _perform(step, client, run)
            except BytezError as exc:
                driver.fail(exc)
            else:
                driver.reply(value)
        return driver.result
