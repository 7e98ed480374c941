"""The lifecycle plans, fed directly: send answers, assert the steps they yield.

No client, fake or real, and no sleeping: a plan is a generator of steps, and the clock
is a fake one the test moves.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_bytez.errors import (
    BytezAPIError,
    BytezError,
    BytezInvalidRequestError,
    BytezModelLoadError,
    BytezNotFoundError,
)
from langchain_bytez.lifecycle.plans import (
    Delete,
    Emit,
    EnterServerless,
    Forget,
    Get,
    Patch,
    Plan,
    Polling,
    Put,
    SkipImplicit,
    Sleep,
    Step,
    implicit_plan,
    is_route_gone,
    load_plan,
    status_plan,
    stop_plan,
)
from langchain_bytez.lifecycle.settings import LoadSpec
from langchain_bytez.types import Capacity, ClusterState, ClusterStatus

MODEL = "openai-community/gpt2"
_CATALOG_404 = "Model does not exist or has yet to be added to the Bytez catalog"


class FakeClock:
    """A monotonic clock that only moves when a ``Sleep`` step is 'executed'."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status(state: ClusterState, raw: str, **kwargs: Any) -> ClusterStatus:
    return ClusterStatus(model_id=MODEL, state=state, raw_status=raw, **kwargs)


RUNNING = status(ClusterState.RUNNING, "on")
LOADING = status(ClusterState.DEPLOYING, "loading")
OFF = status(ClusterState.STOPPED, "off")
FAILED = status(ClusterState.FAILED, "failed", reason="out of memory")


class Feeder:
    """Run a plan by hand: each answer is a value to send or an error to throw."""

    def __init__(self, plan: Plan[Any], clock: FakeClock | None = None) -> None:
        self.plan = plan
        self.clock = clock
        self.steps: list[Step] = []
        self.result: Any = None
        self.done = False
        self._next(self.plan.send, None)

    def _next(self, method: Any, value: Any) -> None:
        try:
            step = method(value)
        except StopIteration as stop:
            self.result, self.done = stop.value, True
            return
        self.steps.append(step)
        if isinstance(step, Sleep) and self.clock is not None:
            self.clock.now += step.seconds

    @property
    def last(self) -> Step:
        return self.steps[-1]

    def answer(self, value: Any = None) -> Feeder:
        assert not self.done
        if isinstance(value, BaseException):
            self._next(self.plan.throw, value)
        else:
            self._next(self.plan.send, value)
        return self

    def skip_notes(self) -> Feeder:
        """Answer every Emit/Sleep/note step with None until an I/O step or the end."""
        while not self.done and isinstance(
            self.last, (Emit, Sleep, Forget, SkipImplicit, EnterServerless)
        ):
            self.answer(None)
        return self

    def io_steps(self) -> list[Step]:
        return [s for s in self.steps if isinstance(s, (Get, Put, Patch, Delete))]


def spec(
    concurrency: int | None = 1, timeout: float | None = 300, deadline: float = 60.0
) -> LoadSpec:
    return LoadSpec.build(concurrency, timeout, None, deadline)


def polling(clock: FakeClock) -> Polling:
    return Polling(initial=0.05, maximum=5.0, clock=clock)


def not_found(message: str = "Not Found") -> BytezNotFoundError:
    return BytezNotFoundError(message, status_code=404, model_id=MODEL)


# --------------------------------------------------------------------------- explicit load


def test_load_creates_a_missing_cluster_and_waits_until_it_runs() -> None:
    clock = FakeClock()
    feed = Feeder(load_plan(MODEL, spec(2, 600), wait=True, polling=polling(clock)), clock)
    assert feed.last == Get()
    feed.answer(not_found(_CATALOG_404.replace("Model", "Cluster")))
    assert feed.last == Put(Capacity.fixed(2), 10)
    feed.answer("loading").skip_notes()
    assert feed.last == Get()
    feed.answer(LOADING).skip_notes()
    assert feed.last == Get()
    feed.answer(RUNNING).skip_notes()
    assert feed.done
    assert feed.result is RUNNING
    sleeps = [s.seconds for s in feed.steps if isinstance(s, Sleep)]
    assert sleeps == pytest.approx([0.05, 0.1])  # exponential backoff
    events = [s.event for s in feed.steps if isinstance(s, Emit)]
    assert events[0].state is ClusterState.DEPLOYING
    assert events[-1].done
    assert events[-1].state is ClusterState.RUNNING


def test_load_patches_a_cluster_whose_chosen_settings_differ() -> None:
    feed = Feeder(load_plan(MODEL, spec(3, None), wait=False))
    feed.answer(status(ClusterState.RUNNING, "on", capacity=Capacity.fixed(1), timeout=5))
    # Only the capacity was chosen: the timeout is left as the cluster has it.
    assert feed.last == Patch(Capacity.fixed(3), None, None)
    feed.answer(RUNNING)
    assert feed.done
    assert feed.result is RUNNING


def test_load_turns_on_a_stopped_cluster_without_resizing_it() -> None:
    feed = Feeder(load_plan(MODEL, spec(None, None), wait=False))
    feed.answer(OFF)
    assert feed.last == Patch(None, None, "on")


def test_load_leaves_a_matching_running_cluster_alone() -> None:
    feed = Feeder(load_plan(MODEL, spec(None, None), wait=True))
    feed.answer(RUNNING).skip_notes()
    assert feed.done
    assert feed.io_steps() == [Get()]


def test_load_replaces_a_failed_cluster() -> None:
    feed = Feeder(load_plan(MODEL, spec(), wait=False))
    feed.answer(FAILED)
    assert feed.last == Delete()
    feed.answer(None)
    assert isinstance(feed.last, Put)


def test_load_uses_the_cluster_someone_else_created_meanwhile() -> None:
    feed = Feeder(load_plan(MODEL, spec(None, None), wait=False))
    feed.answer(not_found())
    feed.answer(BytezInvalidRequestError("exists", status_code=409))
    assert feed.last == Get()
    feed.answer(LOADING)
    assert feed.done
    assert feed.result is LOADING


@pytest.mark.parametrize("code", [404, 405])
def test_load_notes_serverless_when_the_routes_are_gone(code: int) -> None:
    error: BytezError = (
        not_found("Cannot PUT /models/v2/x")
        if code == 404
        else BytezAPIError("no", status_code=405)
    )
    feed = Feeder(load_plan(MODEL, spec(), wait=True))
    feed.answer(not_found())
    feed.answer(error)
    assert feed.last == EnterServerless(error)
    feed.answer(None)
    assert isinstance(feed.last, Emit)
    assert feed.last.event.raw_status == "serverless"
    feed.answer(None)
    assert feed.done
    assert feed.result is None


def test_load_in_serverless_mode_sends_nothing() -> None:
    feed = Feeder(load_plan(MODEL, spec(), wait=True, serverless=True)).skip_notes()
    assert feed.done
    assert feed.io_steps() == []


def test_load_of_an_unknown_model_raises_not_found() -> None:
    feed = Feeder(load_plan(MODEL, spec(), wait=True))
    feed.answer(not_found(_CATALOG_404))
    with pytest.raises(BytezNotFoundError):
        feed.answer(not_found(_CATALOG_404))


def test_load_raises_with_the_servers_reason_when_the_cluster_fails() -> None:
    clock = FakeClock()
    feed = Feeder(load_plan(MODEL, spec(), wait=True, polling=polling(clock)), clock)
    feed.answer(not_found()).answer("loading").skip_notes()
    with pytest.raises(BytezModelLoadError, match="out of memory") as info:
        feed.answer(FAILED).skip_notes()
    assert info.value.last_status is FAILED


def test_load_gives_up_at_the_deadline_with_the_last_status() -> None:
    clock = FakeClock()
    feed = Feeder(load_plan(MODEL, spec(deadline=1.0), wait=True, polling=polling(clock)), clock)
    feed.answer(LOADING)

    def poll_until_given_up() -> None:
        for _ in range(50):  # bounded: the fake clock passes 1 s within a few polls
            feed.skip_notes().answer(LOADING)

    with pytest.raises(BytezModelLoadError, match="deadline") as info:
        poll_until_given_up()
    assert info.value.last_status is LOADING
    assert sum(s.seconds for s in feed.steps if isinstance(s, Sleep)) == pytest.approx(1.0)


def test_a_retryable_poll_failure_is_retried_and_a_final_one_raised() -> None:
    clock = FakeClock()
    feed = Feeder(load_plan(MODEL, spec(), wait=True, polling=polling(clock)), clock)
    feed.answer(LOADING).skip_notes()
    feed.answer(BytezAPIError("busy", status_code=503)).skip_notes()
    assert feed.last == Get()  # polled again
    with pytest.raises(BytezAPIError):
        feed.answer(BytezAPIError("bad", status_code=500, retryable=False))


# --------------------------------------------------------------------------- implicit auto-load


@pytest.mark.parametrize("existing", [OFF, FAILED])
def test_implicit_never_alters_an_off_or_failed_cluster(existing: ClusterStatus) -> None:
    feed = Feeder(implicit_plan(MODEL, spec(), skip_seconds=30.0))
    feed.answer(existing)
    assert feed.last == SkipImplicit(30.0)
    feed.answer(None)
    assert feed.done
    assert feed.result is None
    assert feed.io_steps() == [Get()]  # no PATCH, no PUT over it, no DELETE


def test_implicit_never_patches_a_running_cluster_with_other_settings() -> None:
    feed = Feeder(implicit_plan(MODEL, spec(4, 900), skip_seconds=30.0))
    other = status(ClusterState.RUNNING, "on", capacity=Capacity.fixed(1), timeout=1)
    feed.answer(other)
    assert feed.done
    assert feed.result is other
    assert feed.io_steps() == [Get()]


def test_implicit_creates_only_when_no_cluster_exists_and_waits() -> None:
    clock = FakeClock()
    feed = Feeder(
        implicit_plan(MODEL, spec(2, 60), skip_seconds=30.0, polling=polling(clock)), clock
    )
    feed.answer(not_found())
    assert feed.last == Put(Capacity.fixed(2), 1)
    feed.answer("loading").skip_notes().answer(RUNNING).skip_notes()
    assert feed.done
    assert feed.result is RUNNING
    assert not any(isinstance(s, (Patch, Delete)) for s in feed.steps)


def test_implicit_raises_the_first_failing_poll() -> None:
    # Any error is the caller's cue to send the run serverless, at once.
    clock = FakeClock()
    feed = Feeder(implicit_plan(MODEL, spec(), skip_seconds=30.0, polling=polling(clock)), clock)
    feed.answer(LOADING).skip_notes()
    with pytest.raises(BytezAPIError):
        feed.answer(BytezAPIError("busy", status_code=503))


def test_implicit_raises_a_failed_create_for_the_caller_to_fall_back() -> None:
    feed = Feeder(implicit_plan(MODEL, spec(), skip_seconds=30.0))
    feed.answer(not_found())
    with pytest.raises(BytezAPIError):
        feed.answer(BytezAPIError("no", status_code=500))


# --------------------------------------------------------------------------- status and stop


def test_status_of_a_missing_cluster_is_stopped_and_forgets_the_model() -> None:
    feed = Feeder(status_plan(MODEL))
    feed.answer(not_found())
    assert feed.last == Forget()
    feed.answer(None)
    assert feed.result.state is ClusterState.STOPPED


def test_status_of_a_running_cluster_keeps_the_memo() -> None:
    feed = Feeder(status_plan(MODEL)).answer(RUNNING)
    assert feed.done
    assert feed.result is RUNNING
    assert Forget() not in feed.steps


def test_status_notes_serverless_on_405() -> None:
    error = BytezAPIError("no", status_code=405)
    feed = Feeder(status_plan(MODEL)).answer(error)
    assert feed.last == EnterServerless(error)
    feed.answer(None)
    assert feed.result.raw_status == "serverless"


def test_stop_forgets_then_deletes_and_is_idempotent() -> None:
    feed = Feeder(stop_plan(MODEL))
    assert feed.steps == [Forget()]
    feed.answer(None)
    assert feed.last == Delete()
    feed.answer(not_found())
    assert feed.done


def test_stop_in_serverless_mode_sends_nothing() -> None:
    feed = Feeder(stop_plan(MODEL, serverless=True)).skip_notes()
    assert feed.done
    assert feed.io_steps() == []


def test_route_gone_is_told_apart_from_an_unknown_model() -> None:
    assert is_route_gone(BytezAPIError("x", status_code=405))
    assert is_route_gone(not_found("Cannot PUT /x"))
    assert not is_route_gone(not_found(_CATALOG_404))
    assert not is_route_gone(BytezAPIError("x", status_code=500))
