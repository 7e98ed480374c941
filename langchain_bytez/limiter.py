"""The in-flight limiter: at most N runs of one model at once, shared by threads and loops.

One [`InFlightLimiter`][langchain_bytez.limiter.InFlightLimiter] per (manager, model) caps
the runs in flight; [`ModelManager.limit`][langchain_bytez.manager.ModelManager.limit] and
``alimit`` hold a slot around each run. It knows nothing of Bytez: it is a fair counting
semaphore that both threads and any number of event loops can wait on.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

__all__ = ["InFlightLimiter"]


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


class InFlightLimiter:
    """A FIFO counting semaphore shared by threads and any number of event loops.

    ``asyncio.Semaphore`` is bound to one loop and ``threading.Semaphore`` blocks the
    loop, so the count lives behind a plain lock held only for bookkeeping; waiters are
    either a ``threading.Event`` or a future woken with ``call_soon_threadsafe``. A
    released slot is handed straight to the oldest waiter, which keeps the order fair.
    """

    def __init__(self, capacity: int) -> None:
        """Create a limiter with every slot free.

        Args:
            capacity: Most slots held at once (the caller has checked it is >= 1).
        """
        self._capacity = capacity
        self._in_use = 0
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
        """Take a slot, blocking this thread while none is free."""
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
        """Take a slot, waiting without blocking the running event loop."""
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
        """Give a slot back (to the oldest waiter, if any)."""
        with self._lock:
            self._in_use -= 1
            woken = self._grant_locked()
        self._wake(woken)
