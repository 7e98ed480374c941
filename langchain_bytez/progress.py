"""Progress of model loads, shown to people and to LangChain.

The lifecycle layer emits [`LoadProgress`][langchain_bytez.manager.LoadProgress] events to
plain callbacks. This module, in the LangChain layer, turns them into:

* console lines: [`ConsoleProgressReporter`][langchain_bytez.progress.ConsoleProgressReporter]
  (what ``progress=True`` uses, installed at import);
* LangChain custom events named ``"bytez_model_loading"``:
  [`langchain_progress_dispatcher`][langchain_bytez.progress.langchain_progress_dispatcher]
  and its async twin, visible in ``astream_events``.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from langchain_core.callbacks.manager import AsyncCallbackManager, CallbackManager
from langchain_core.callbacks.manager import AsyncRunManager as AsyncRunManagerType

from langchain_bytez.lifecycle import progress as lifecycle_progress
from langchain_bytez.lifecycle.progress import (
    AsyncProgressCallback,
    AsyncProgressOption,
    LoadProgress,
    ProgressCallback,
    ProgressOption,
    call_async,
    call_sync,
    resolve_progress,
)

if TYPE_CHECKING:
    from langchain_core.callbacks.manager import AsyncRunManager, RunManager

__all__ = [
    "LOADING_EVENT_NAME",
    "ConsoleProgressReporter",
    "alangchain_progress_dispatcher",
    "langchain_progress_dispatcher",
]

LOADING_EVENT_NAME = "bytez_model_loading"
"""Name of the LangChain custom event dispatched while a model loads."""


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        # Closed or exotic streams (pytest capture, io wrappers) are not terminals.
        return False


class _Shown:
    """The load events already written to the console, process-wide.

    Callers waiting for one load (threads, tasks, several objects) each get the
    leader's events, the very same objects: each is written once, by whichever
    reporter receives it first, so the console shows one line per load however many
    callers wait for it. A short memory suffices: an event is delivered to its waiters
    within moments, and the events are kept alive meanwhile (so ``is`` stays exact).
    """

    def __init__(self, size: int = 256) -> None:
        self._lock = threading.Lock()
        self._recent: collections.deque[LoadProgress] = collections.deque(maxlen=size)
        self.widths: dict[int, int] = {}  # of the line kept up to date, per terminal

    def first(self, event: LoadProgress) -> bool:
        """Whether ``event`` is seen for the first time (and remember it)."""
        with self._lock:
            if any(seen is event for seen in self._recent):
                return False
            self._recent.append(event)
            return True


_SHOWN = _Shown()


class ConsoleProgressReporter:
    r"""The default progress reporter (``progress=True``): writes to stderr.

    On a terminal it keeps one line up to date (``\r``) and clears it when the load
    ends; otherwise (logs, CI, notebooks' captured stderr) it writes one plain line per
    event, which is one per status change plus a heartbeat on long loads. An event is
    written once however many reporters receive it (every caller waiting for a load
    gets the same events): one console line per load, not one per waiting caller.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        """Create the reporter.

        Args:
            stream: Where to write; ``None`` means ``sys.stderr`` looked up at each event
                (so redirections made after creation are honoured).
        """
        self._stream = stream

    def __call__(self, event: LoadProgress) -> None:
        """Write one event.

        Args:
            event: The progress event.
        """
        if not _SHOWN.first(event):
            return
        stream = self._stream if self._stream is not None else sys.stderr
        line = f"[bytez] {event.message}"
        if _isatty(stream):
            # The width of the line on screen is the console's, not this reporter's:
            # another reporter may have written the previous event.
            width = _SHOWN.widths.get(id(stream), 0)
            if event.done:
                stream.write("\r" + " " * max(width, len(line)) + "\r")
                _SHOWN.widths.pop(id(stream), None)
            else:
                stream.write("\r" + line + " " * max(0, width - len(line)))
                _SHOWN.widths[id(stream)] = max(width, len(line))
        else:
            stream.write(line + "\n")
        stream.flush()


def _callback_manager_kwargs(run_manager: RunManager | AsyncRunManager) -> dict[str, Any]:
    # Run managers of LLM runs have no ``on_custom_event``; a callback manager over the
    # same handlers does, and ``run_id=run_manager.run_id`` ties the events to the LLM
    # run so ``astream_events`` reports them under it.
    return {
        "handlers": run_manager.handlers,
        "inheritable_handlers": run_manager.inheritable_handlers,
        "parent_run_id": run_manager.parent_run_id,
        "tags": run_manager.tags,
        "inheritable_tags": run_manager.inheritable_tags,
        "metadata": run_manager.metadata,
        "inheritable_metadata": run_manager.inheritable_metadata,
    }


# Fire-and-forget dispatch tasks are kept referenced until done (asyncio holds only
# weak references to tasks).
_PENDING_DISPATCHES: set[asyncio.Task[None]] = set()


def langchain_progress_dispatcher(
    run_manager: RunManager | AsyncRunManager, progress: ProgressOption = None
) -> ProgressCallback:
    """Build a progress callback that also dispatches LangChain custom events.

    Each [`LoadProgress`][langchain_bytez.manager.LoadProgress] becomes a custom event named
    ``"bytez_model_loading"`` whose data is
    [`LoadProgress.as_dict`][langchain_bytez.manager.LoadProgress.as_dict], attached to the LLM run,
    so it shows in ``astream_events(version="v2")`` as an ``on_custom_event`` event and reaches any
    handler's ``on_custom_event``.

    Given an async run manager (``AsyncCallbackManagerForLLMRun``) the returned callback
    is still synchronous: it schedules the async dispatch on the running event loop (in
    order).
    [`alangchain_progress_dispatcher`][langchain_bytez.manager.alangchain_progress_dispatcher]
    awaits it instead.

    Args:
        run_manager: The run manager of the current LLM run
            (``CallbackManagerForLLMRun`` or ``AsyncCallbackManagerForLLMRun``).
        progress: The user's own progress setting, honoured as well: ``True`` (console
            reporter), ``False``/``None`` (nothing more) or a callable.

    Returns:
        A synchronous progress callback.

    Example:
        ```python
        def _call(self, prompt, stop=None, run_manager=None, **kwargs):
            callback = langchain_progress_dispatcher(run_manager, self.progress)
            manager.ensure_loaded(client, self.model, progress=callback)
        ```
    """
    # The callback managers are built at the first event, not here: every auto-loaded
    # run builds a dispatcher, and once the model is known to run no event comes.
    user = resolve_progress(progress)
    run_id = run_manager.run_id
    if isinstance(run_manager, AsyncRunManagerType):
        async_managers: list[AsyncCallbackManager] = []

        def dispatch_async(event: LoadProgress) -> None:
            if user is not None:
                call_sync(user, event)
            if not async_managers:
                async_managers.append(AsyncCallbackManager(**_callback_manager_kwargs(run_manager)))
            coro = async_managers[0].on_custom_event(
                LOADING_EVENT_NAME, event.as_dict(), run_id=run_id
            )
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                asyncio.run(coro)  # no loop in this thread: just run it here
                return
            task = loop.create_task(coro)
            _PENDING_DISPATCHES.add(task)
            task.add_done_callback(_PENDING_DISPATCHES.discard)

        return dispatch_async

    managers: list[CallbackManager] = []

    def dispatch(event: LoadProgress) -> None:
        if user is not None:
            call_sync(user, event)
        if not managers:
            managers.append(CallbackManager(**_callback_manager_kwargs(run_manager)))
        managers[0].on_custom_event(LOADING_EVENT_NAME, event.as_dict(), run_id=run_id)

    return dispatch


def alangchain_progress_dispatcher(
    run_manager: AsyncRunManager, progress: AsyncProgressOption = None
) -> AsyncProgressCallback:
    """Async version of ``langchain_progress_dispatcher``, for async run managers.

    The returned callback suits
    [`ModelManager.aensure_loaded`][langchain_bytez.manager.ModelManager.aensure_loaded];
    ``progress`` may also be an async callable.
    """
    user = resolve_progress(progress)
    run_id = run_manager.run_id
    managers: list[AsyncCallbackManager] = []  # built at the first event, as above

    async def dispatch(event: LoadProgress) -> None:
        if user is not None:
            await call_async(user, event)
        if not managers:
            managers.append(AsyncCallbackManager(**_callback_manager_kwargs(run_manager)))
        await managers[0].on_custom_event(LOADING_EVENT_NAME, event.as_dict(), run_id=run_id)

    return dispatch


# --------------------------------------------------------------------------- validation


# What ``progress=True`` prints with, everywhere (the lifecycle layer cannot import this).
lifecycle_progress.set_console_reporter(ConsoleProgressReporter)
