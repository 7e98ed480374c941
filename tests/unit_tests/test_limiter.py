"""The in-flight limiters: FIFO fairness, bounded waits, threads and loops, AIMD."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from langchain_bytez.limiter import (
    INITIAL_LIMIT,
    AccountLimiter,
    InFlightLimiter,
    Outcome,
    account_limiter,
)


def test_free_slots_are_taken_at_once_and_released_once() -> None:
    limiter = InFlightLimiter(2)
    first = limiter.acquire()
    second = limiter.acquire(0.01)
    assert first is not None
    assert second is not None
    assert limiter.in_use == 2
    assert limiter.acquire(0.05) is None  # full: the bounded wait gives up
    first.release()
    first.release()  # idempotent: the count is not decremented twice
    assert limiter.in_use == 1
    assert not first.held
    assert second.held


def test_a_timed_out_waiter_leaves_the_queue() -> None:
    limiter = InFlightLimiter(1)
    held = limiter.acquire()
    assert held is not None
    started = time.monotonic()
    assert limiter.acquire(0.2) is None
    assert time.monotonic() - started >= 0.19
    held.release()
    # Nobody is waiting any more: the released slot is free, not handed to a ghost.
    assert limiter.in_use == 0
    assert limiter.try_acquire() is not None


def test_waiters_are_served_in_arrival_order_across_threads() -> None:
    limiter = InFlightLimiter(1)
    held = limiter.acquire()
    assert held is not None
    order: list[int] = []

    def worker(n: int) -> None:
        slot = limiter.acquire(5)
        assert slot is not None
        order.append(n)
        slot.release()

    threads = []
    for n in range(5):
        thread = threading.Thread(target=worker, args=(n,))
        thread.start()
        threads.append(thread)
        while len(limiter._waiters) < n + 1:  # queued before the next one starts
            time.sleep(0.001)
    held.release()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_a_retry_queues_at_the_front() -> None:
    limiter = InFlightLimiter(1)
    held = limiter.acquire()
    assert held is not None
    order: list[str] = []

    def worker(name: str, front: bool) -> None:
        slot = limiter.acquire(5, front=front)
        assert slot is not None
        order.append(name)
        slot.release()

    late = threading.Thread(target=worker, args=("new", False))
    late.start()
    while len(limiter._waiters) < 1:
        time.sleep(0.001)
    retry = threading.Thread(target=worker, args=("retry", True))
    retry.start()
    while len(limiter._waiters) < 2:
        time.sleep(0.001)
    held.release()
    late.join(5)
    retry.join(5)
    assert order == ["retry", "new"]


def test_a_holders_cap_bounds_only_that_holder() -> None:
    limiter = InFlightLimiter(4)
    capped = limiter.acquire(cap=1)
    assert capped is not None
    assert limiter.acquire(0.05, cap=1) is None  # the capped caller already holds one
    other = limiter.acquire(0.05)  # an uncapped caller still gets a slot
    assert other is not None
    assert limiter.limit_for(1) == 1
    assert limiter.limit_for(None) == 4


async def test_async_waiters_on_two_loops_and_a_thread_share_one_limiter() -> None:
    limiter = InFlightLimiter(1)
    held = limiter.acquire()
    assert held is not None
    got: list[str] = []

    def other_loop() -> None:
        async def main() -> None:
            slot = await limiter.aacquire(5)
            assert slot is not None
            got.append("other loop")
            slot.release()

        asyncio.run(main())

    thread = threading.Thread(target=other_loop)
    thread.start()
    while len(limiter._waiters) < 1:
        await asyncio.sleep(0.001)
    waiting = asyncio.ensure_future(limiter.aacquire(5))
    while len(limiter._waiters) < 2:
        await asyncio.sleep(0.001)
    held.release()  # from this loop's thread: wakes the other loop first (FIFO)
    mine = await waiting
    assert mine is not None
    got.append("this loop")
    mine.release()
    await asyncio.to_thread(thread.join, 5)
    assert got == ["other loop", "this loop"]
    assert limiter.in_use == 0


async def test_async_wait_is_bounded_and_cancellation_frees_the_place() -> None:
    limiter = InFlightLimiter(1)
    held = limiter.acquire()
    assert held is not None
    started = time.monotonic()
    assert await limiter.aacquire(0.1) is None
    assert time.monotonic() - started >= 0.09
    task = asyncio.ensure_future(limiter.aacquire())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    held.release()
    assert limiter.in_use == 0  # the cancelled waiter was not given the slot


def _fill(limiter: InFlightLimiter, n: int) -> list:  # type: ignore[type-arg]
    slots = [limiter.try_acquire() for _ in range(n)]
    assert all(slot is not None for slot in slots)
    return slots


def test_aimd_starts_modestly_and_grows_while_full_before_the_first_429() -> None:
    limiter = AccountLimiter()
    assert limiter.capacity == INITIAL_LIMIT
    slots = _fill(limiter, INITIAL_LIMIT)
    assert limiter.try_acquire() is None
    for slot in slots:
        slot.release(Outcome.OK)  # each was granted while the limiter was full
    # Slow start: only the last granted slot saw the limiter full.
    assert limiter.capacity == INITIAL_LIMIT + 1
    # Successes of a limiter that was not full prove nothing: no growth.
    lone = limiter.try_acquire()
    assert lone is not None
    lone.release(Outcome.OK)
    assert limiter.capacity == INITIAL_LIMIT + 1


def test_aimd_halves_once_per_round_on_429_and_then_grows_additively() -> None:
    limiter = AccountLimiter(8)
    slots = _fill(limiter, 8)
    slots[0].release(Outcome.THROTTLED)
    assert limiter.capacity == 4
    slots[1].release(Outcome.THROTTLED)  # sent before the decrease: not counted again
    assert limiter.capacity == 4
    for slot in slots[2:]:
        slot.release(Outcome.FAILED)
    after = _fill(limiter, 4)
    after[0].release(Outcome.THROTTLED)  # a new round: halves again
    assert limiter.capacity == 2
    for slot in after[1:]:
        slot.release(Outcome.OK)
    assert limiter.capacity == 2  # granted before the decrease, and not full since
    # Congestion avoidance: one more per `limit` successes while full.
    for _ in range(2):
        pair = _fill(limiter, 2)
        for slot in pair:
            slot.release(Outcome.OK)
    assert limiter.capacity == 3
    floor = AccountLimiter(1)
    (only,) = _fill(floor, 1)
    only.release(Outcome.THROTTLED)
    assert floor.capacity == 1  # never below one


def test_aimd_never_grows_past_the_ceiling_and_an_explicit_cap_raises_it() -> None:
    limiter = AccountLimiter(2, ceiling=2)
    for _ in range(3):
        for slot in _fill(limiter, 2):
            slot.release(Outcome.OK)
    assert limiter.capacity == 2
    limiter.allow_cap(3)
    assert limiter.ceiling == 3
    for slot in _fill(limiter, 2):
        slot.release(Outcome.OK)
    assert limiter.capacity == 3


def test_a_stream_reports_success_while_keeping_its_slot() -> None:
    limiter = AccountLimiter(1)
    (slot,) = _fill(limiter, 1)
    slot.succeeded()
    assert limiter.capacity == 2
    assert slot.held
    slot.release(Outcome.OK)  # success already reported: no second increase
    assert limiter.capacity == 2


def test_one_limiter_per_account_while_anyone_holds_it() -> None:
    first = account_limiter(("https://a.test", "f1"))
    assert account_limiter(("https://a.test", "f1")) is first
    assert account_limiter(("https://a.test", "f2")) is not first
    assert account_limiter(("https://b.test", "f1")) is not first


def test_outcome_of_an_error() -> None:
    class Refused(Exception):
        status_code = 429

    assert Outcome.of(Refused()) is Outcome.THROTTLED
    assert Outcome.of(ValueError()) is Outcome.FAILED
