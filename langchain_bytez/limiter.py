"""In-flight limiters: fair counting semaphores shared by threads and any number of loops.

* [`InFlightLimiter`][langchain_bytez.limiter.InFlightLimiter]: at most N holders at once,
  FIFO, waits bounded by a timeout. ``ModelManager.limit`` uses one per model (a cap
  users may add themselves; runs do not take it).
* [`AccountLimiter`][langchain_bytez.limiter.AccountLimiter]: the same, with a limit it
  learns (AIMD) from the server's answers. Bytez limits concurrent requests per
  *account*, across all its models, and answers 429 beyond it; one limiter per
  (base URL, key fingerprint) in the process
  ([`account_limiter`][langchain_bytez.limiter.account_limiter]) is shared by every
  client, model, thread and event loop talking to that account.

A slot is a [`Slot`][langchain_bytez.limiter.Slot]: give it back once, saying how the
request went (``ok``, ``throttled`` by a 429, or ``failed`` for anything else). Nothing
here knows HTTP: the client shells take and release slots around model runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import deque
from enum import Enum
from typing import Any

__all__ = [
    "INITIAL_LIMIT",
    "LEARNED_CEILING",
    "AccountLimiter",
    "InFlightLimiter",
    "Outcome",
    "Slot",
    "account_limiter",
]

INITIAL_LIMIT = 4
"""Requests allowed at once before the account's limit is known (paid tiers start at 4)."""

LEARNED_CEILING = 400
"""Most requests at once the limiter learns by itself (Bytez's largest tier).

An explicit ``max_concurrent_requests`` above it raises the ceiling to that value."""


class Outcome(Enum):
    """How the request that held a slot went (AIMD feedback)."""

    OK = "ok"
    THROTTLED = "throttled"
    FAILED = "failed"

    @classmethod
    def of(cls, error: BaseException) -> Outcome:
        """``THROTTLED`` for an HTTP 429 error, else ``FAILED``."""
        return cls.THROTTLED if getattr(error, "status_code", None) == 429 else cls.FAILED


class _Waiter:
    __slots__ = ("abandoned", "cap", "event", "future", "loop", "slot")

    def __init__(
        self,
        cap: int | None,
        event: threading.Event | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.cap = cap
        self.event = event
        self.loop = loop
        self.future = future
        self.slot: Slot | None = None  # set, under the lock, when the slot is granted
        self.abandoned = False


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Slot:
    """One held slot of a limiter; ``release`` gives it back (only the first call counts).

    Attributes:
        epoch: The limiter's decrease count when the slot was granted: a 429 of a
            request sent before the last decrease does not decrease the limit again.
        saturated: Whether the limiter was full when the slot was granted (only such
            successes are evidence that the account allows more).
    """

    __slots__ = ("_limiter", "epoch", "saturated")

    def __init__(self, limiter: InFlightLimiter, epoch: int, saturated: bool) -> None:
        """Wrap a slot ``limiter`` granted."""
        self._limiter: InFlightLimiter | None = limiter
        self.epoch = epoch
        self.saturated = saturated

    @property
    def held(self) -> bool:
        """Whether the slot is still held."""
        return self._limiter is not None

    def succeeded(self) -> None:
        """Report success now and keep holding the slot (a stream that started)."""
        limiter = self._limiter
        if limiter is not None:
            limiter._feedback(self, Outcome.OK)
            self.saturated = False  # reported once

    def release(self, outcome: Outcome = Outcome.FAILED) -> None:
        """Give the slot back and report how the request went (idempotent, thread-safe).

        Args:
            outcome: ``OK`` may raise the learned limit, ``THROTTLED`` halves it.
        """
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._release(self, outcome)


class InFlightLimiter:
    """A FIFO counting semaphore shared by threads and any number of event loops.

    ``asyncio.Semaphore`` is bound to one loop and ``threading.Semaphore`` blocks the
    loop, so the count lives behind a plain lock held only for bookkeeping; waiters are
    either a ``threading.Event`` or a future woken with ``call_soon_threadsafe``. A
    released slot is handed straight to the oldest waiter, which keeps the order fair;
    a waiter with a lower ``cap`` at the head of the queue makes the others wait too.
    A free slot costs one lock and no allocation but the ``Slot``.
    """

    def __init__(self, capacity: int) -> None:
        """Create a limiter with every slot free.

        Args:
            capacity: Most slots held at once (the caller has checked it is >= 1).
        """
        self._capacity = capacity
        self._in_use = 0
        self._epoch = 0
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    @property
    def capacity(self) -> int:
        """Most slots held at once."""
        return self._capacity

    @property
    def in_use(self) -> int:
        """Slots held right now."""
        return self._in_use

    def limit_for(self, cap: int | None) -> int:
        """The slots a holder with ``cap`` may use: the capacity, or ``cap`` if lower."""
        return self._capacity if cap is None else min(self._capacity, cap)

    def resize(self, capacity: int) -> None:
        """Change the cap; waiters are woken if it grew, holders keep their slots.

        Args:
            capacity: The new most slots held at once.
        """
        with self._lock:
            if capacity == self._capacity:
                return
            self._capacity = capacity
            woken = self._grant_locked()
        self._wake(woken)

    # -- bookkeeping (under the lock) --------------------------------------------------

    def _free_locked(self, cap: int | None) -> bool:
        return self._in_use < (self._capacity if cap is None else min(self._capacity, cap))

    def _take_locked(self) -> Slot:
        self._in_use += 1
        return Slot(self, self._epoch, self._in_use >= self._capacity)

    def _grant_locked(self) -> list[_Waiter]:
        woken: list[_Waiter] = []
        waiters = self._waiters
        while waiters:
            waiter = waiters[0]
            if waiter.abandoned:
                waiters.popleft()
                continue
            if not self._free_locked(waiter.cap):
                break  # strict FIFO: the head waits, so do those behind it
            waiters.popleft()
            waiter.slot = self._take_locked()
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
                assert waiter.slot is not None  # noqa: S101
                waiter.slot.release()

    def _enqueue_locked(self, waiter: _Waiter, front: bool) -> None:
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)

    # -- taking a slot -----------------------------------------------------------------

    def try_acquire(self, cap: int | None = None) -> Slot | None:
        """Take a free slot if there is one and nobody waits; never blocks."""
        with self._lock:
            if not self._waiters and self._free_locked(cap):
                return self._take_locked()
        return None

    def acquire(
        self, timeout: float | None = None, *, cap: int | None = None, front: bool = False
    ) -> Slot | None:
        """Take a slot, blocking this thread while none is free.

        Args:
            timeout: Most seconds to wait (``None``: no limit).
            cap: This holder's own limit on slots in use (``None``: the capacity).
            front: Queue ahead of the other waiters (a retry that already waited).

        Returns:
            The slot, or ``None`` if ``timeout`` passed first.
        """
        with self._lock:
            if not self._waiters and self._free_locked(cap):
                return self._take_locked()
            waiter = _Waiter(cap, event=threading.Event())
            self._enqueue_locked(waiter, front)
        try:
            assert waiter.event is not None  # noqa: S101
            waiter.event.wait(timeout)
        except BaseException:
            self._abandon(waiter)
            raise
        return self._settle(waiter)

    async def aacquire(
        self, timeout: float | None = None, *, cap: int | None = None, front: bool = False
    ) -> Slot | None:
        """Take a slot, waiting without blocking the running event loop.

        Arguments and result as for [`acquire`][langchain_bytez.limiter.InFlightLimiter.acquire].
        """
        with self._lock:
            if not self._waiters and self._free_locked(cap):
                return self._take_locked()
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            waiter = _Waiter(cap, loop=loop, future=future)
            self._enqueue_locked(waiter, front)
        try:
            if timeout is None:
                await future
            else:
                # shield: a timeout must not cancel the future a releaser may resolve.
                # No slot in time is not an error here: _settle gives up the place in the
                # queue, or keeps a slot granted at the last moment.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), timeout)
        except BaseException:
            self._abandon(waiter)
            raise
        return self._settle(waiter)

    def _settle(self, waiter: _Waiter) -> Slot | None:
        """The granted slot, or ``None`` after giving up the place in the queue.

        A slot granted just as the wait timed out is kept: the caller uses it. A waiter
        leaving from the head of the queue may unblock those behind it (another cap).
        """
        with self._lock:
            slot = waiter.slot
            if slot is not None:
                return slot
            waiter.abandoned = True
            try:
                self._waiters.remove(waiter)
            except ValueError:
                woken = []  # already dropped
            else:
                woken = self._grant_locked()
        self._wake(woken)
        return None

    def _abandon(self, waiter: _Waiter) -> None:
        slot = self._settle(waiter)
        if slot is not None:
            # The slot was handed over just as we gave up: give it back.
            slot.release()

    # -- giving it back ----------------------------------------------------------------

    def _feedback_locked(self, slot: Slot, outcome: Outcome) -> None:
        """Adapt the limit to how a request went (nothing here: the capacity is fixed)."""

    def _feedback(self, slot: Slot, outcome: Outcome) -> None:
        with self._lock:
            self._feedback_locked(slot, outcome)
            woken = self._grant_locked()
        self._wake(woken)

    def _release(self, slot: Slot, outcome: Outcome) -> None:
        with self._lock:
            self._in_use -= 1
            self._feedback_locked(slot, outcome)
            woken = self._grant_locked()
        self._wake(woken)


class AccountLimiter(InFlightLimiter):
    """An in-flight limiter that learns an account's concurrency limit (AIMD).

    It starts at [`INITIAL_LIMIT`][langchain_bytez.limiter.INITIAL_LIMIT]. Until the first
    429 it grows by one per success while full (doubling per round trip, "slow start");
    a 429 halves it (at least 1), once per round: 429s of requests sent before the last
    decrease do not count again. After that it grows by one per ``limit`` successes
    while full. It never grows past
    [`LEARNED_CEILING`][langchain_bytez.limiter.LEARNED_CEILING] (or the largest explicit
    cap seen), and each holder's own ``cap`` bounds what that holder may use.
    """

    def __init__(self, capacity: int = INITIAL_LIMIT, ceiling: int = LEARNED_CEILING) -> None:
        """Create the limiter with the first guess ``capacity``.

        Args:
            capacity: The starting limit.
            ceiling: The most it learns by itself.
        """
        super().__init__(capacity)
        self._ceiling = ceiling
        self._slow_start = True
        self._successes = 0

    @property
    def ceiling(self) -> int:
        """The most the limit grows to by itself."""
        return self._ceiling

    def allow_cap(self, cap: int) -> None:
        """Let the learned limit grow up to an explicit ``cap`` above the ceiling."""
        if cap > self._ceiling:
            with self._lock:
                self._ceiling = max(self._ceiling, cap)

    def _feedback_locked(self, slot: Slot, outcome: Outcome) -> None:
        if outcome is Outcome.THROTTLED:
            if slot.epoch != self._epoch:
                return  # sent before the last decrease: already accounted for
            self._capacity = max(1, self._capacity // 2)
            self._epoch += 1
            self._slow_start = False
            self._successes = 0
            return
        if outcome is not Outcome.OK or not slot.saturated:
            return  # only a full limiter that succeeds shows the account allows more
        if self._capacity >= self._ceiling:
            return
        if self._slow_start:
            self._capacity += 1
            return
        self._successes += 1
        if self._successes >= self._capacity:
            self._successes = 0
            self._capacity += 1


_ACCOUNTS: weakref.WeakValueDictionary[Any, AccountLimiter] = weakref.WeakValueDictionary()
_ACCOUNTS_LOCK = threading.Lock()


def account_limiter(key: Any) -> AccountLimiter:
    """The limiter of one account (``client.cache_key``), shared while anyone holds it.

    Args:
        key: ``(base_url, key fingerprint)``.

    Returns:
        The shared limiter, created on first use.
    """
    limiter = _ACCOUNTS.get(key)
    if limiter is None:
        with _ACCOUNTS_LOCK:
            limiter = _ACCOUNTS.get(key)
            if limiter is None:
                limiter = AccountLimiter()
                _ACCOUNTS[key] = limiter
    return limiter
