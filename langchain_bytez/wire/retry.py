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
import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import tenacity

from langchain_bytez.errors import BytezError

if TYPE_CHECKING:
    from langchain_bytez.protocol import RetryPolicy
    from langchain_bytez.wire.deadline import Deadline

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

    def after_failure(self, error: BytezError, remaining: float = math.inf) -> float | None:
        """Record a failed attempt; return the seconds to wait, or ``None`` to give up.

        Gives up when the error is not retryable, the attempts are used up, or the wait
        does not fit: a server's wait (``Retry-After``, ``ratelimit-reset``) longer than
        ``max_retry_wait`` or than the call's time left, or a backoff longer than the
        time left, ends the call at once, the wait named in the error's message. Before
        returning a wait it logs a warning and calls the callbacks, as tenacity's
        ``before_sleep`` did.

        Args:
            error: The typed error the attempt raised.
            remaining: Seconds left of the call's deadline.

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
        wait = self._wait(error, number, remaining)
        if wait is None:
            return None
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

    def after(self, error: BytezError, deadline: Deadline) -> float | None:
        """``after_failure`` with the time left of ``deadline``."""
        return self.after_failure(error, deadline.remaining())

    def _wait(self, error: BytezError, number: int, remaining: float) -> float | None:
        """The wait before the next attempt, or ``None`` (the error amended) if none fits.

        A server's wait gets jitter on top (up to ``jitter`` x 2 x the larger of that
        wait and the backoff), so that callers refused together do not come back
        together; never more than ``max_retry_wait``.
        """
        policy = self._policy
        asked = getattr(error, "retry_after", None)
        if not isinstance(asked, (int, float)) or asked < 0:
            wait = policy.backoff(number)
            if wait >= remaining:
                error._amend(
                    f"Not retried: the {wait:.3g} s backoff would pass the call's "
                    f"timeout ({remaining:.3g} s left)"
                )
                return None
            return wait
        asked = float(asked)
        if asked > policy.max_wait:
            error._amend(
                f"Not retried: the server asked to wait {asked:.3g} s, longer than "
                f"max_retry_wait={policy.max_wait:.3g} s; raise max_retry_wait or try later"
            )
            return None
        if asked >= remaining:
            error._amend(
                f"Not retried: the server asked to wait {asked:.3g} s, longer than the "
                f"{remaining:.3g} s left of the call's timeout; raise timeout or try later"
            )
            return None
        base = policy.initial_backoff * policy.backoff_multiplier ** max(0, number - 1)
        spread = 2 * policy.jitter * max(asked, min(base, policy.max_backoff))
        wait = asked + random.uniform(0.0, spread) if spread else asked  # noqa: S311
        return min(wait, policy.max_wait, asked + max(0.0, (remaining - asked) / 2))
