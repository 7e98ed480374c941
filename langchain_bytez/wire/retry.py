"""The retry loop, written once as a state machine both client shells drive: pure.

A shell makes the first attempt directly (the happy path builds nothing). Only after a
failure does it create a [`RetryLoop`][langchain_bytez.wire.retry.RetryLoop] and ask it,
after each failed attempt, how long to wait before the next one
(``None``: give up and raise). The shell does the sleeping and the sending; the loop does
the deciding, the logging and the ``on_retry`` callbacks::

    try:
        return attempt()
    except BytezError as exc:
        failure = exc
    loop = RetryLoop(policy, ...)
    while (wait := loop.after_failure(failure)) is not None:
        sleep(wait)
        try:
            return attempt()
        except BytezError as exc:
            failure = exc
    raise failure

Callbacks receive a ``tenacity.RetryCallState`` filled in exactly as tenacity's own
loop fills it (one state per call, ``attempt_number``, ``outcome``, ``next_action``,
``idle_for``), so user code written against the ``OnRetry`` contract keeps working.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import tenacity

from langchain_bytez.errors import BytezError

if TYPE_CHECKING:
    from langchain_bytez.protocol import RetryPolicy

__all__ = ["OnRetry", "RetryLoop"]

OnRetry = Callable[[tenacity.RetryCallState], None]
"""Callback invoked before each retry sleep, with tenacity's state."""

logger = logging.getLogger("langchain_bytez")


class RetryLoop:
    """Decides, after each failed attempt of one call, whether and when to try again.

    Attributes:
        state: The ``tenacity.RetryCallState`` handed to the callbacks.
    """

    __slots__ = ("_callbacks", "_label", "_policy", "state")

    def __init__(
        self,
        policy: RetryPolicy,
        label: str,
        callbacks: Sequence[OnRetry | None] = (),
        *,
        retrying: type[tenacity.BaseRetrying] = tenacity.Retrying,
    ) -> None:
        """Start the loop after the first attempt failed.

        Args:
            policy: Attempts, waits and what is retryable.
            label: ``"POST /models/v2/..."``: names the request in log lines.
            callbacks: Called in order with the state before each sleep (``None``
                entries are skipped): the client's ``on_retry``, then the call's.
            retrying: The tenacity class the state's ``retry_object`` is an instance
                of (``AsyncRetrying`` for the async client, as before).
        """
        self._policy = policy
        self._label = label
        self._callbacks = tuple(c for c in callbacks if c is not None)
        retry_object = retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=policy.wait,
            retry=policy.retry,
            reraise=True,
        )
        retry_object.begin()
        self.state = tenacity.RetryCallState(retry_object, fn=None, args=(), kwargs={})

    def after_failure(self, error: BytezError) -> float | None:
        """Record a failed attempt; return the seconds to wait, or ``None`` to give up.

        Gives up when the error is not retryable or the attempts are used up. Before
        returning a wait it logs a warning and calls the callbacks, as tenacity's
        ``before_sleep`` did.

        Args:
            error: The typed error the attempt raised.

        Returns:
            Seconds to sleep before the next attempt, or ``None``.
        """
        state = self.state
        if state.outcome is not None:  # a previous attempt failed: this is the next one
            state.prepare_for_next_attempt()
        state.set_exception((type(error), error, error.__traceback__))
        number = state.attempt_number
        if not self._policy.should_retry(error) or number >= self._policy.attempts:
            return None
        wait = self._policy.wait_after(error, number)
        state.upcoming_sleep = wait
        state.next_action = tenacity.RetryAction(wait)
        state.idle_for += wait
        statistics = state.retry_object.statistics
        statistics["idle_for"] = statistics.get("idle_for", 0) + wait
        statistics["attempt_number"] = number + 1
        status = error.status_code
        logger.warning(
            "Bytez %s failed (attempt %d of %d): %s%s; retrying in %.2f s",
            self._label,
            number,
            self._policy.attempts,
            type(error).__name__,
            f" (HTTP {status})" if status is not None else "",
            wait,
        )
        for callback in self._callbacks:
            callback(state)
        return wait
