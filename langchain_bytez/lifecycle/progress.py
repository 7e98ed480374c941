"""Load progress as plain data: the ``LoadProgress`` event and how callbacks receive it.

The lifecycle layer only produces events and calls plain callables with them; showing
them (the console reporter) and turning them into LangChain custom events happen in the
LangChain layer ([`langchain_bytez.progress`][langchain_bytez.progress]), which plugs its
console reporter in with
[`set_console_reporter`][langchain_bytez.lifecycle.progress.set_console_reporter].
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from langchain_bytez.types import ClusterState

__all__ = [
    "AsyncProgressCallback",
    "AsyncProgressOption",
    "LoadProgress",
    "ProgressCallback",
    "ProgressOption",
    "call_async",
    "call_sync",
    "resolve_progress",
    "set_console_reporter",
]

logger = logging.getLogger("langchain_bytez")


@dataclass(frozen=True)
class LoadProgress:
    """One progress event of a model load.

    Attributes:
        model_id: The Bytez model id being loaded.
        state: Normalised cluster state at this point.
        raw_status: The server's own status string (``"loading"``, ``"on"``...), or
            ``"serverless"`` when the cluster routes are unavailable.
        elapsed: Seconds since the load started.
        message: A one-line human-readable summary.
        done: ``True`` on the last event of the load (running, failed or given up).
    """

    model_id: str
    state: ClusterState
    raw_status: str | None
    elapsed: float
    message: str
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the event as JSON-friendly data (what LangChain custom events carry).

        Returns:
            A new dict with the state as its string value.
        """
        return {
            "model_id": self.model_id,
            "state": self.state.value,
            "raw_status": self.raw_status,
            "elapsed": self.elapsed,
            "message": self.message,
            "done": self.done,
        }


ProgressCallback = Callable[[LoadProgress], None]
"""A synchronous receiver of [`LoadProgress`][langchain_bytez.manager.LoadProgress] events."""

AsyncProgressCallback = Callable[[LoadProgress], Awaitable[None]]
"""An asynchronous receiver of ``LoadProgress`` events (async APIs only)."""

AnyProgressCallback = Callable[[LoadProgress], Awaitable[None] | None]
"""A sync or async receiver of ``LoadProgress`` events."""

ProgressOption = bool | ProgressCallback | None
"""How a sync load reports progress.

``True`` for the console reporter (stderr), a
[`ProgressCallback`][langchain_bytez.manager.ProgressCallback] to receive the events,
``False``/``None`` for silence."""

AsyncProgressOption = bool | ProgressCallback | AsyncProgressCallback | None
"""How an async load reports progress.

As [`ProgressOption`][langchain_bytez.manager.ProgressOption], and the callback may also be an
[`AsyncProgressCallback`][langchain_bytez.manager.AsyncProgressCallback]."""


def _log_progress(event: LoadProgress) -> None:
    logger.info("%s", event.message)


# What ``progress=True`` builds. The LangChain layer installs its console reporter at
# import (``langchain_bytez.progress``); until then events go to the package logger.
_console_reporter: Callable[[], ProgressCallback] = lambda: _log_progress  # noqa: E731


def set_console_reporter(factory: Callable[[], ProgressCallback]) -> None:
    """Choose what ``progress=True`` reports to (a new reporter per load).

    Args:
        factory: Builds the reporter; called once per load that asks for ``True``.
    """
    global _console_reporter  # noqa: PLW0603 - one process-wide default, set at import
    _console_reporter = factory


def resolve_progress(progress: AsyncProgressOption) -> AnyProgressCallback | None:
    """Turn a ``progress`` option into the callback to call, or ``None`` for silence.

    Args:
        progress: ``True`` (console reporter), ``False``/``None`` or a callable.

    Returns:
        The callback, or ``None``.

    Raises:
        ValueError: If ``progress`` is anything else.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        return _console_reporter()
    candidate: object = progress  # typed callers can't get here; untyped ones can
    if callable(candidate):
        return cast("AnyProgressCallback", candidate)
    msg = f"progress must be True, False, None or a callable, got {type(progress).__name__}"
    raise ValueError(msg)


def call_sync(callback: AnyProgressCallback, event: LoadProgress) -> None:
    """Call a progress callback from synchronous code; its failures never stop a load.

    Args:
        callback: The receiver (an async one is closed unawaited, with a warning).
        event: The event.
    """
    try:
        result = callback(event)
    except Exception:  # noqa: BLE001 - a reporter's bug must not fail the load
        logger.warning("Bytez progress callback failed; ignoring it", exc_info=True)
        return
    if inspect.isawaitable(result):
        # An async callback given to a sync API cannot be awaited here.
        if inspect.iscoroutine(result):
            result.close()
        logger.warning("async progress callback ignored in a synchronous load")


async def call_async(callback: AnyProgressCallback, event: LoadProgress) -> None:
    """Call (and await, if async) a progress callback; its failures never stop a load.

    Args:
        callback: The sync or async receiver.
        event: The event.
    """
    try:
        result = callback(event)
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - a reporter's bug must not fail the load
        logger.warning("Bytez progress callback failed; ignoring it", exc_info=True)
