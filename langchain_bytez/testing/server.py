"""The local Bytez-compatible server: public API, knobs, lifecycle.

Python use:

```python
from langchain_bytez.server import FaultKind, LocalBytezServer

with LocalBytezServer(api_keys={"k"}) as server:
    server.inject(FaultKind.STATUS_503)
    ...  # point a client at server.url
```
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_bytez.testing.catalogue import ROWS, CatalogueRow
from langchain_bytez.testing.clusters import ClusterBook
from langchain_bytez.testing.control import (
    DEFAULT_LOG_LIMIT,
    Counters,
    RecordedRequest,
    RequestLog,
    is_loopback,
)
from langchain_bytez.testing.faults import FaultKind, FaultQueue
from langchain_bytez.testing.http import serve_connection
from langchain_bytez.testing.modes import (
    AuthForm,
    ClusterRoutes,
    coerce_auth_forms,
    coerce_cluster_routes,
    coerce_tool_format,
)
from langchain_bytez.testing.routes import Router, logger

__all__ = ["DEFAULT_IDLE_TIMEOUT", "LocalBytezServer"]

_MAX_BODY = 64 * 1024 * 1024
_BACKLOG = 2048
DEFAULT_IDLE_TIMEOUT = 60.0
"""Seconds an idle keep-alive connection is kept before the server closes it."""


class LocalBytezServer:
    """A local Bytez-compatible server on its own event loop.

    Knobs that tests may change while it runs (plain attributes): ``ttfb``,
    ``token_delay``, ``load_delay``, ``concurrency_limit``, ``cluster_routes``,
    ``strict_params``, ``auth_forms``, ``fault_rate``, ``idle_seconds_per_minute``,
    ``default_max_new_tokens``, ``idle_timeout``, ``tool_format``. ``reset()`` restores
    the constructor's values.

    Attributes:
        host: The loopback address it binds.
        ttfb: Seconds before the first byte of a run answer.
        token_delay: Seconds between streamed tokens.
        load_delay: Seconds a new cluster stays ``loading`` before ``on``.
        concurrency_limit: Account-wide maximum of in-flight runs (``None``: no limit).
        strict_params: Refuse params outside the accepted list with the live 422.
        fault_rate: Fraction of run requests that get a random retryable/stream fault.
        default_max_new_tokens: Tokens generated when ``max_new_tokens`` is not given.
        idle_timeout: Seconds an idle keep-alive connection stays open.
        random_fault_retry_after: ``retry-after`` of randomly injected 429s (seconds).
    """

    random_fault_retry_after: float = 0.1

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] | None = None,
        ttfb: float = 0.0,
        token_delay: float = 0.0,
        load_delay: float = 0.3,
        idle_seconds_per_minute: float = 60.0,
        concurrency_limit: int | None = None,
        cluster_routes: ClusterRoutes | str | bool = ClusterRoutes.NOT_FOUND,
        strict_params: bool = True,
        auth_forms: AuthForm | str | Iterable[AuthForm | str] = AuthForm.KEY,
        fault_rate: float = 0.0,
        seed: int = 0,
        default_max_new_tokens: int = 20,
        request_log_limit: int = DEFAULT_LOG_LIMIT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        models: Iterable[CatalogueRow] | None = None,
        tool_format: str | None = None,
    ) -> None:
        """Configure the server (nothing is bound until ``start``).

        Defaults follow the live service as documented:

        - ``cluster_routes`` is ``"not_found"``: Bytez's docs and OpenAPI file no longer
          list the cluster routes and its SDKs stopped calling them in Sep 2025; pass
          ``"on"`` (or ``True``) to test model management, or another
          [`ClusterRoutes`][langchain_bytez.testing.modes.ClusterRoutes] mode.
        - ``strict_params`` is on: models behind Bytez's vLLM adapter answer params
          outside a fixed list with 422 (``"stop_strings is not supported for this model
          on Bytez"``), and Hugging Face refuses ``temperature: 0`` on models that sample.
        - ``auth_forms`` is ``Key`` only: every official SDK sends ``Key <k>``.

        Args:
            host: Loopback address to bind (anything else raises ``ValueError``).
            port: TCP port; ``0`` picks a free one.
            api_keys: Accepted API keys; ``None`` accepts any non-empty key.
            ttfb: Seconds before the first byte of a run answer.
            token_delay: Seconds between streamed tokens.
            load_delay: Seconds a new cluster stays ``loading`` (cold start).
            idle_seconds_per_minute: Real seconds per minute of cluster idle timeout.
            concurrency_limit: Account-wide in-flight run limit (429 beyond it).
            cluster_routes: How the cluster routes answer (a mode, its value, or a bool:
                ``True`` on, ``False`` 404 for reads and 405 for writes).
            strict_params: Refuse unknown params and ``temperature: 0`` on sampling
                models (422); when off, unknown params are accepted and ignored.
            auth_forms: The ``Authorization`` forms accepted (``"key"``, ``"bearer"``,
                ``"raw"``).
            fault_rate: Fraction of runs that get a random fault.
            seed: Seed of the random fault choice.
            default_max_new_tokens: Tokens generated when the request does not say.
            request_log_limit: Most requests the log keeps (the oldest are dropped).
            idle_timeout: Seconds before an idle keep-alive connection is closed
                (``None``: never).
            models: The catalogue (default: the built-in
                [`ROWS`][langchain_bytez.testing.catalogue.ROWS]).
            tool_format: How the tool-calling models (rows with a ``tool_format``)
                write a tool call: one of
                ``langchain_bytez.testing.fake_tools.TOOL_FORMATS``, or
                ``None`` (default) for each model's own form.

        Raises:
            ValueError: If ``host`` is not a loopback address or a mode is unknown.
        """
        if not is_loopback(host):
            msg = f"LocalBytezServer binds loopback addresses only, got {host!r}"
            raise ValueError(msg)
        self.host = host
        self._requested_port = port
        self._api_keys: frozenset[str] | None = None if api_keys is None else frozenset(api_keys)
        self._cluster_routes = coerce_cluster_routes(cluster_routes)
        self._auth_forms = coerce_auth_forms(auth_forms)
        self._tool_format = coerce_tool_format(tool_format)
        self._defaults: dict[str, Any] = {
            "ttfb": ttfb,
            "token_delay": token_delay,
            "load_delay": load_delay,
            "concurrency_limit": concurrency_limit,
            "cluster_routes": self._cluster_routes,
            "strict_params": strict_params,
            "auth_forms": self._auth_forms,
            "fault_rate": fault_rate,
            "default_max_new_tokens": default_max_new_tokens,
            "idle_timeout": idle_timeout,
            "tool_format": self._tool_format,
        }
        self._seed = seed
        self._epoch = 0
        self.ttfb = ttfb
        self.token_delay = token_delay
        self.load_delay = load_delay
        self.concurrency_limit = concurrency_limit
        self.strict_params = strict_params
        self.fault_rate = fault_rate
        self.default_max_new_tokens = default_max_new_tokens
        self.idle_timeout = idle_timeout
        self._default_idle_scale = idle_seconds_per_minute
        self._idle_seconds_per_minute = idle_seconds_per_minute

        self._lock = threading.Lock()
        self._faults = FaultQueue(seed)
        self._log = RequestLog(request_log_limit)
        self._counters = Counters()
        self._replies: dict[str | None, list[str]] = {}
        self._fail_next: dict[str, str] = {}
        rows = tuple(ROWS if models is None else models)
        self._rows = rows
        self._models: dict[str, CatalogueRow] = self._served_rows()
        self._tasks = list(dict.fromkeys(row.task for row in rows))
        self._clusters = ClusterBook(
            load_delay=lambda: self.load_delay,
            idle_seconds_per_minute=lambda: self._idle_seconds_per_minute,
            take_failure=self._take_failure,
        )
        self._router = Router(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._closing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._stop_lock = threading.Lock()

    # ----------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        """The bound TCP port (valid after ``start``)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080`` (valid after ``start``)."""
        host = "127.0.0.1" if self.host == "localhost" else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def cluster_routes(self) -> ClusterRoutes:
        """How the cluster routes answer (settable with a mode, its value or a bool)."""
        return self._cluster_routes

    @cluster_routes.setter
    def cluster_routes(self, value: ClusterRoutes | str | bool) -> None:
        self._cluster_routes = coerce_cluster_routes(value)

    @property
    def auth_forms(self) -> frozenset[AuthForm]:
        """The ``Authorization`` forms accepted (settable with one form or several)."""
        return self._auth_forms

    @auth_forms.setter
    def auth_forms(self, value: AuthForm | str | Iterable[AuthForm | str]) -> None:
        self._auth_forms = coerce_auth_forms(value)

    @property
    def tool_format(self) -> str | None:
        """How tool-calling models write calls (``None``: each model's own form).

        Settable with one of
        ``langchain_bytez.testing.fake_tools.TOOL_FORMATS`` or ``None``;
        the next run uses it.
        """
        return self._tool_format

    @tool_format.setter
    def tool_format(self, value: str | None) -> None:
        self._tool_format = coerce_tool_format(value)
        # One assignment: a run being routed sees the old table or the new one, whole.
        self._models = self._served_rows()

    def _served_rows(self) -> dict[str, CatalogueRow]:
        """The catalogue as served: the ``tool_format`` knob applied to tool models."""
        wanted = self._tool_format
        return {
            row.model_id: (
                dataclasses.replace(row, tool_format=wanted)
                if wanted is not None and row.tool_format is not None
                else row
            )
            for row in self._rows
        }

    @property
    def request_log_limit(self) -> int:
        """Most requests the log keeps."""
        return self._log.limit

    @property
    def idle_seconds_per_minute(self) -> float:
        """Real seconds per minute of cluster idle timeout (idle timers re-armed on set)."""
        return self._idle_seconds_per_minute

    @idle_seconds_per_minute.setter
    def idle_seconds_per_minute(self, value: float) -> None:
        self._idle_seconds_per_minute = value
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._clusters.rearm_idle_timers)

    @property
    def catalogue(self) -> list[CatalogueRow]:
        """The models this server serves."""
        return list(self._models.values())

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> LocalBytezServer:
        """Start serving on a daemon thread with its own event loop.

        Returns:
            The server itself, listening.

        Raises:
            RuntimeError: If the server did not come up within 10 seconds.
        """
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart(loop))
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="bytez-local-server", daemon=True)
        thread.start()
        if not ready.wait(10):
            msg = "the local Bytez server did not start within 10 s"
            raise RuntimeError(msg)
        if errors:
            raise errors[0]
        self._thread = thread
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then join the thread (idempotent).

        Raises:
            RuntimeError: If called from the server's own thread.
        """
        with self._stop_lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            if threading.current_thread() is thread:
                msg = "stop() cannot be called from the server's own thread"
                raise RuntimeError(msg)
            future = asyncio.run_coroutine_threadsafe(self._ashutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout=10)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None
            self._loop = None

    def __enter__(self) -> LocalBytezServer:
        """Start the server.

        Returns:
            The server, listening.
        """
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    # ----------------------------------------------------------------- steering

    def inject(
        self,
        kind: FaultKind | str,
        count: int = 1,
        *,
        model_id: str | None = None,
        method: str | None = "POST",
        path_prefix: str | None = None,
        delay: float = 1.0,
        retry_after: float | None = None,
        after_tokens: int = 3,
        message: str = "simulated failure",
    ) -> None:
        """Queue ``count`` faults, consumed first-in first-out by matching requests.

        By default a fault matches the next run request (``POST /models/v2/{modelId}``)
        of any model. With ``path_prefix`` it matches any route whose path starts with
        it; ``method=None`` matches any method.

        Args:
            kind: The fault (a [`FaultKind`][langchain_bytez.testing.faults.FaultKind] or
                its value).
            count: How many requests get it.
            model_id: Only requests for this model.
            method: Only requests with this method (``None``: any).
            path_prefix: Only paths starting with this (``None``: model routes).
            delay: Seconds of ``FaultKind.SLOW_FIRST_BYTE``.
            retry_after: Seconds announced by the 429 faults (default 1).
            after_tokens: Tokens sent before a mid-stream fault.
            message: The error message of the error faults.

        Raises:
            ValueError: If ``kind`` is unknown, ``count`` is negative, or ``delay``,
                ``retry_after`` or ``after_tokens`` is negative or not finite.
            TypeError: If ``delay``, ``retry_after`` or ``after_tokens`` is not a
                number, or ``model_id``, ``method``, ``path_prefix`` or ``message`` is
                not a string (``None`` allowed where documented).
        """
        self._faults.add(
            kind,
            count,
            model_id=model_id,
            method=method,
            path_prefix=path_prefix,
            delay=delay,
            retry_after=retry_after,
            after_tokens=after_tokens,
            message=message,
        )

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self._faults.clear()

    def reset(self) -> None:
        """Back to a fresh state: faults, log, clusters, counters, replies and knobs."""
        with self._lock:
            self._faults.reset()
            self._log.clear()
            self._replies.clear()
            self._fail_next.clear()
            self._counters.restart_peaks()
            self._epoch += 1
        for name, value in self._defaults.items():
            setattr(self, name, value)
        self._idle_seconds_per_minute = self._default_idle_scale
        loop = self._loop
        if loop is None or loop.is_closed():
            self._clusters.clusters.clear()
            return
        if self._in_loop_thread():
            self._clusters.drop_all()
        else:
            future = asyncio.run_coroutine_threadsafe(self._adrop_clusters(), loop)
            future.result(timeout=10)

    def set_reply(self, tokens: Sequence[str] | None, *, model_id: str | None = None) -> None:
        """Force the generated tokens (all models, or one); ``None`` restores generation.

        Each token is streamed as its own chunk, so a test can split a multi-byte
        character across chunks by giving its bytes' halves as separate tokens' text.
        ``max_new_tokens`` cuts a forced reply only when the request gives it.

        Args:
            tokens: The continuation / reply tokens, or ``None``.
            model_id: Only for this model (``None``: every model without its own).
        """
        with self._lock:
            if tokens is None:
                self._replies.pop(model_id, None)
            else:
                self._replies[model_id] = list(tokens)

    def fail_next_load(
        self, model_id: str, reason: str = "Instance failed to boot: out of memory"
    ) -> None:
        """Make the next cluster load of ``model_id`` end in ``failed`` with ``reason``.

        Args:
            model_id: The model.
            reason: The failure reason reported in the cluster object.
        """
        with self._lock:
            self._fail_next[model_id] = reason

    def _take_failure(self, model_id: str) -> str | None:
        with self._lock:
            return self._fail_next.pop(model_id, None)

    # ----------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests answered so far, oldest first (bounded log)."""
        return self._log.snapshot()

    def count(
        self, method: str | None = None, path: str | None = None, *, path_prefix: str | None = None
    ) -> int:
        """Count recorded requests.

        Args:
            method: Only this method.
            path: Only this exact path.
            path_prefix: Only paths starting with this.

        Returns:
            The number of matching requests.
        """
        wanted = None if method is None else method.upper()
        return sum(
            1
            for r in self._log.snapshot()
            if (wanted is None or r.method == wanted)
            and (path is None or r.path == path)
            and (path_prefix is None or r.path.startswith(path_prefix))
        )

    def peak_in_flight(self, model_id: str | None = None) -> int:
        """The highest number of run requests in flight at once since the last reset.

        A run is in flight from its admission until its answer ends, queued ones
        included (waiting for a cluster slot or a cold start).

        Args:
            model_id: Per model; ``None``: account-wide.

        Returns:
            The peak.
        """
        return self._counters.peak_of(model_id)

    def peak_running(self, model_id: str) -> int:
        """The highest number of runs of ``model_id`` executing at once (past the queue).

        Never above the cluster's ``capacity.desired`` (at least 1).

        Args:
            model_id: The model.

        Returns:
            The peak.
        """
        return self._counters.running_peak_of(model_id)

    def in_flight(self, model_id: str | None = None) -> int:
        """Runs in flight right now.

        Args:
            model_id: Per model; ``None``: account-wide.

        Returns:
            The count.
        """
        return self._counters.in_flight_of(model_id)

    def cluster(self, model_id: str) -> dict[str, Any] | None:
        """The cluster object of ``model_id`` as the API would report it, or ``None``.

        Args:
            model_id: The model.

        Returns:
            A copy of the cluster object.
        """
        found = self._clusters.clusters.get(model_id)
        return None if found is None else found.to_json()

    # ----------------------------------------------------------------- loop plumbing

    def _in_loop_thread(self) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    async def _astart(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._closing = False
        host = "127.0.0.1" if self.host == "localhost" else self.host
        self._server = await asyncio.start_server(
            self._on_connection, host, self._requested_port, backlog=_BACKLOG, reuse_address=True
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _ashutdown(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        tasks = [t for t in self._conn_tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        self._clusters.drop_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _adrop_clusters(self) -> None:
        self._clusters.drop_all()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        self._writers.add(writer)
        aborted = False
        try:
            aborted = await serve_connection(
                reader,
                writer,
                self._router.handle,
                idle_timeout=self.idle_timeout,
                max_body=_MAX_BODY,
                closing=lambda: self._closing,
            )
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            aborted = True
        except asyncio.CancelledError:
            # Shutdown: end quietly (asyncio 3.11 logs cancelled connection callbacks).
            aborted = True
        except Exception:  # noqa: BLE001 - logged; one connection must not stop the server
            logger.exception("local Bytez server: connection handler failed")
            aborted = True
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._conn_tasks.discard(task)
            if aborted:
                writer.transport.abort()
            else:
                writer.close()
