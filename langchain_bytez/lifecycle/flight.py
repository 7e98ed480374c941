"""Single flight: concurrent loads of one model, from threads or tasks, share one load.

The first caller (the leader) runs the plan; the others follow a
[`Flight`][langchain_bytez.lifecycle.flight.Flight]: they get its result and its progress
events. Followers of an event loop never block it: they wait on the flight's future.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading

from langchain_bytez.lifecycle.progress import AnyProgressCallback, LoadProgress, call_sync
from langchain_bytez.types import ClusterStatus

__all__ = ["Flight", "LeaderGone", "loop_running_here"]


def loop_running_here() -> bool:
    """Whether this thread is running an event loop (blocking it would deadlock)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class LeaderGone(Exception):  # noqa: N818
    """The caller doing a shared load was cancelled; a waiter takes over."""


class Flight:
    """One in-progress load that concurrent callers share."""

    def __init__(self, key: tuple[int, int, int, int] | None, printer: bool) -> None:
        """Start a flight.

        Args:
            key: The ``LoadSpec.key`` it applies (``None`` for an implicit load).
            printer: Whether its leader prints to the console already.
        """
        self.future: concurrent.futures.Future[ClusterStatus | None] = concurrent.futures.Future()
        # Running futures cannot be cancelled: a cancelled asyncio waiter (wrap_future
        # propagates cancellation) must not cancel the load for everyone else.
        self.future.set_running_or_notify_cancel()
        # The settings (capacity, minutes) this load applies: only callers asking for
        # the same may take its result as their own.
        self.key = key
        self._lock = threading.Lock()
        self._subscribers: list[AnyProgressCallback] = []
        self._last: LoadProgress | None = None
        self._printer = printer

    def subscribe(self, callback: AnyProgressCallback, *, printer: bool) -> bool:
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
                call_sync(callback, self._last)
            return True

    def unsubscribe(self, callback: AnyProgressCallback) -> None:
        """Stop sending events to a follower's callback."""
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    def broadcast(self, event: LoadProgress) -> None:
        """Send an event of the leader's to every follower (and keep it for late ones)."""
        with self._lock:
            self._last = event
            subscribers = list(self._subscribers)
        for callback in subscribers:
            call_sync(callback, event)
