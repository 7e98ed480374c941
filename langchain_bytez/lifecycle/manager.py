"""``ModelManager`` and the model handles: the public face of the model lifecycle.

* [`ModelManager`][langchain_bytez.manager.ModelManager]: one per API endpoint and key.
  ``ensure_loaded`` (explicit, single-flight), ``ensure_available`` (the implicit,
  best-effort auto-load before a run), ``limit``/``alimit`` (an optional per-model cap
  for callers' own code, which runs do not take: they are limited account-wide by the
  clients, see [`langchain_bytez.limiter`][langchain_bytez.limiter]), and the
  ``load``/``status``/``stop``/``session`` shortcuts.
* [`ModelHandle`][langchain_bytez.manager.ModelHandle] /
  [`AsyncModelHandle`][langchain_bytez.manager.AsyncModelHandle]: what ``client.model(id)``
  returns; they share everything but the I/O.

The decisions are in [`plans`][langchain_bytez.lifecycle.plans]; the state and single
flight in [`coordinator`][langchain_bytez.lifecycle.coordinator].
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypedDict, TypeVar

from typing_extensions import Unpack

from langchain_bytez.lifecycle.coordinator import LoadCoordinator, LoadRequest
from langchain_bytez.lifecycle.drivers import PlanRun, adrive, drive
from langchain_bytez.lifecycle.plans import Plan
from langchain_bytez.lifecycle.progress import AsyncProgressOption, ProgressOption
from langchain_bytez.lifecycle.settings import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    LoadSpec,
    run_payload,
)
from langchain_bytez.protocol import validate_model_id
from langchain_bytez.registry import SharedInstances
from langchain_bytez.types import Capacity, ClusterStatus, RunResult, check_options

if TYPE_CHECKING:
    from langchain_bytez.client import (
        AsyncBytezClient,
        AsyncTextStream,
        BytezClient,
        TextStream,
    )

__all__ = [
    "AsyncModelHandle",
    "LoadOptions",
    "ModelHandle",
    "ModelManager",
    "SizedLoadOptions",
]

logger = logging.getLogger("langchain_bytez")

_P = TypeVar("_P")


class LoadOptions(TypedDict, Generic[_P], total=False):
    """The keyword-only settings of an explicit load, besides its sizes.

    Attributes:
        capacity: Full capacity (``Capacity`` or ``{"min", "desired", "max"}``) for
            autoscaling; when given it overrides ``concurrency``.
        progress: ``True`` prints progress to stderr (the default, but for
            ``ensure_loaded``: silent); a callable receives
            [`LoadProgress`][langchain_bytez.manager.LoadProgress] events (the async
            methods also take an async callable); ``False``/``None`` is silent.
        deadline: Seconds to wait overall before giving up (default 15 min).
    """

    capacity: Capacity | Mapping[str, int] | None
    progress: _P
    deadline: float


class SizedLoadOptions(LoadOptions[_P], total=False):
    """[`LoadOptions`][langchain_bytez.manager.LoadOptions] and the sizes (``None`` by default).

    Attributes:
        concurrency: Instances to run (``min = desired = max``); ``None`` keeps an
            existing cluster's capacity (a new one gets 1).
        timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
            ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
    """

    concurrency: int | None
    timeout: float | None


# Short names for the signatures below.
_SyncLoad = SizedLoadOptions[ProgressOption]
_AsyncLoad = SizedLoadOptions[AsyncProgressOption]


def _spec(
    concurrency: int | None, timeout: float | None, options: LoadOptions[Any], function: str
) -> LoadSpec:
    """Check a load's settings into its spec (``function`` names the caller in errors)."""
    check_options(function, options, LoadOptions)
    deadline = options.get("deadline", DEFAULT_DEADLINE_SECONDS)
    return LoadSpec.build(concurrency, timeout, options.get("capacity"), deadline)


class ModelManager(LoadCoordinator):
    """Shared model-lifecycle state for one Bytez endpoint and API key.

    Obtain it with [`for_client`][langchain_bytez.manager.ModelManager.for_client] (one instance per
    ``client.cache_key``, shared by sync and async clients of the same endpoint and key). It
    provides:

    * [`ensure_loaded`][langchain_bytez.manager.ModelManager.ensure_loaded] /
      [`aensure_loaded`][langchain_bytez.manager.ModelManager.aensure_loaded]: make sure a model's
      cluster is running. Concurrent first calls for one model, from threads or asyncio tasks on any
      event loop, share a single load: exactly one create-cluster request is sent. A model seen
      running is remembered for ``min(running_ttl, idle timeout / 2)`` seconds, so hot paths cost no
      request; [`forget`][langchain_bytez.manager.ModelManager.forget] drops that memory.
    * [`limit`][langchain_bytez.manager.ModelManager.limit] /
      [`alimit`][langchain_bytez.manager.ModelManager.alimit]: an optional per-model cap for your
      own code: at most ``concurrency`` holders of a model's slots at once through this manager,
      the rest waiting in arrival order; threads and tasks of all loops share one count, and a
      new ``concurrency`` applies from the next acquisition. The LangChain classes and the
      clients do not take it: model runs are limited account-wide by the clients (one
      ``AccountLimiter`` per base URL and key, see ``max_concurrent_requests``).
    * [`session`][langchain_bytez.manager.ModelManager.session] /
      [`asession`][langchain_bytez.manager.ModelManager.asession]: load on entry, stop on exit.
    * [`load`][langchain_bytez.manager.ModelManager.load],
      [`status`][langchain_bytez.manager.ModelManager.status],
      [`stop`][langchain_bytez.manager.ModelManager.stop] (and ``a``-prefixed twins): shortcuts to
      the model handles.

    When the service answers the cluster routes with 404/405 (routes removed), the manager
    switches to serverless mode for good: it warns once, loads return ``None`` and the
    first run starts the model.

    [`ensure_available`][langchain_bytez.manager.ModelManager.ensure_available] /
    [`aensure_available`][langchain_bytez.manager.ModelManager.aensure_available] are the
    implicit, best-effort twins of ``ensure_loaded`` that the LangChain classes use
    before a run: they never change an existing cluster and never raise for a cluster
    problem (only 401/402).

    Attributes:
        running_ttl: Upper bound, in seconds, on how long "running" is remembered.
        poll_initial: First delay between status polls while loading, in seconds.
        poll_max: Longest delay between polls (the delay doubles up to it).

    Example:
        ```python
        from langchain_bytez.client import BytezClient
        from langchain_bytez.manager import ModelManager

        client = BytezClient()
        manager = ModelManager.for_client(client)
        manager.ensure_loaded(client, "openai-community/gpt2", concurrency=2)
        with manager.limit("openai-community/gpt2", 2):
            result = client.run("openai-community/gpt2", {"text": "Hello"})
        ```
    """

    _registry: ClassVar[SharedInstances[Any, ModelManager]] = SharedInstances()

    @classmethod
    def for_client(cls, client: BytezClient | AsyncBytezClient) -> ModelManager:
        """Return the manager shared by every client of the same endpoint and key.

        Args:
            client: A sync or async Bytez client; its ``cache_key`` (base URL and a key
                fingerprint, never the key) selects the manager.

        Returns:
            The shared manager, created on first use.
        """
        return cls._registry.get(client.cache_key, cls)

    # ------------------------------------------------------------------ loading

    def ensure_loaded(
        self,
        client: BytezClient,
        model_id: str,
        *,
        concurrency: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        **options: Unpack[LoadOptions[ProgressOption]],
    ) -> ClusterStatus | None:
        """Make sure a model's cluster is running, loading it if needed (single-flight).

        Args:
            client: The sync client to use.
            model_id: The Bytez model id.
            concurrency: Instances to run (``min = desired = max``).
            timeout: Idle seconds before the cluster shuts down; sent as whole minutes,
                rounded up, 1 to 1440.
            **options: Keyword-only [`LoadOptions`][langchain_bytez.manager.LoadOptions]
                (``capacity``, ``progress``: silent by default, ``deadline``).

        Returns:
            The running cluster's status, or ``None`` in serverless mode.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the load fails or misses the deadline.
            BytezError: On other service errors (unknown model, bad key...).
        """
        spec = _spec(concurrency, timeout, options, "ensure_loaded")
        model_id = validate_model_id(model_id)
        load, progress = LoadRequest(model_id, spec), options.get("progress")
        return self._load_sync(client, load, progress, use_cache=True)

    async def aensure_loaded(
        self,
        client: AsyncBytezClient,
        model_id: str,
        *,
        concurrency: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        **options: Unpack[LoadOptions[AsyncProgressOption]],
    ) -> ClusterStatus | None:
        """Async version of [`ensure_loaded`][langchain_bytez.manager.ModelManager.ensure_loaded].

        It shares the single flight with sync callers; ``progress`` may also be an async
        callable.
        """
        spec = _spec(concurrency, timeout, options, "aensure_loaded")
        model_id = validate_model_id(model_id)
        progress = options.get("progress")
        return await self._load_async(client, LoadRequest(model_id, spec), progress, use_cache=True)

    # ------------------------------------------------------------------ conveniences

    def load(
        self, model_id: str, *, client: BytezClient, **options: Unpack[_SyncLoad]
    ) -> ClusterStatus | None:
        """Shortcut for ``ModelHandle(client, model_id, manager=self).load(...)``.

        Args:
            model_id: The Bytez model id.
            client: The sync client to use.
            **options: Keyword-only
                [`SizedLoadOptions`][langchain_bytez.manager.SizedLoadOptions]:
                ``concurrency``, ``timeout``, ``capacity``, ``progress``, ``deadline``.

        Returns:
            The running cluster's status, or ``None`` in serverless mode.
        """
        return ModelHandle(client, model_id, manager=self).load(**options)

    async def aload(
        self, model_id: str, *, client: AsyncBytezClient, **options: Unpack[_AsyncLoad]
    ) -> ClusterStatus | None:
        """Async version of [`load`][langchain_bytez.manager.ModelManager.load].

        ``progress`` may also be an async callable.
        """
        return await AsyncModelHandle(client, model_id, manager=self).load(**options)

    def status(self, model_id: str, *, client: BytezClient) -> ClusterStatus:
        """Shortcut for ``ModelHandle(client, model_id, manager=self).status()``.

        Args:
            model_id: The Bytez model id.
            client: The sync client to use.

        Returns:
            The cluster status (stopped when there is no cluster).
        """
        return ModelHandle(client, model_id, manager=self).status()

    async def astatus(self, model_id: str, *, client: AsyncBytezClient) -> ClusterStatus:
        """Async version of [`status`][langchain_bytez.manager.ModelManager.status]."""
        return await AsyncModelHandle(client, model_id, manager=self).status()

    def stop(self, model_id: str, *, client: BytezClient) -> None:
        """Shortcut for ``ModelHandle(client, model_id, manager=self).stop()``.

        Args:
            model_id: The Bytez model id.
            client: The sync client to use.
        """
        ModelHandle(client, model_id, manager=self).stop()

    async def astop(self, model_id: str, *, client: AsyncBytezClient) -> None:
        """Async version of [`stop`][langchain_bytez.manager.ModelManager.stop]."""
        await AsyncModelHandle(client, model_id, manager=self).stop()

    @contextmanager
    def session(
        self, model_id: str, *, client: BytezClient, **options: Unpack[_SyncLoad]
    ) -> Iterator[ModelHandle]:
        """Load a model for the duration of a ``with`` block, then stop it.

        The model is stopped on exit, also when the block (or the load itself) raises,
        so a session never leaves instances billing. The arguments are those of
        [`load`][langchain_bytez.manager.ModelManager.load].

        Yields:
            The loaded model's handle.
        """
        handle = ModelHandle(client, model_id, manager=self)
        try:
            handle.load(**options)
            yield handle
        except BaseException:
            with _stop_failure_logged(model_id):
                handle.stop()
            raise
        handle.stop()

    @asynccontextmanager
    async def asession(
        self, model_id: str, *, client: AsyncBytezClient, **options: Unpack[_AsyncLoad]
    ) -> AsyncIterator[AsyncModelHandle]:
        """Async version of [`session`][langchain_bytez.manager.ModelManager.session].

        Use it as ``async with manager.asession(...) as handle``.
        """
        handle = AsyncModelHandle(client, model_id, manager=self)
        try:
            await handle.load(**options)
            yield handle
        except BaseException:
            with _stop_failure_logged(model_id):
                await handle.stop()
            raise
        await handle.stop()


@contextmanager
def _stop_failure_logged(model_id: str) -> Iterator[None]:
    """Keep a session's original error: a failure to stop the model is logged only."""
    try:
        yield
    except Exception:  # noqa: BLE001 - keep the original error, log this one
        logger.warning("Bytez model %s: stop after error failed", model_id, exc_info=True)


# --------------------------------------------------------------------------- handles


_C = TypeVar("_C", "BytezClient", "AsyncBytezClient")
_T = TypeVar("_T")


class _ModelHandleBase(Generic[_C]):
    """What the sync and async handles share: the model, its client and its manager."""

    def __init__(self, client: _C, model_id: str, *, manager: ModelManager | None = None) -> None:
        """Create the handle (no request is sent).

        Args:
            client: The client to use (sync for ``ModelHandle``, async for
                ``AsyncModelHandle``).
            model_id: The Bytez model id (validated here).
            manager: The manager to share state with; defaults to the client's shared one.

        Raises:
            InvalidModelIdError: If the model id is not valid.
        """
        self._client: _C = client
        self._model_id = validate_model_id(model_id)
        self._manager = manager if manager is not None else ModelManager.for_client(client)

    @property
    def model_id(self) -> str:
        """The Bytez model id."""
        return self._model_id

    @property
    def client(self) -> _C:
        """The client the handle sends requests with."""
        return self._client

    @property
    def manager(self) -> ModelManager:
        """The manager sharing load state for this endpoint."""
        return self._manager

    def __repr__(self) -> str:
        """Return ``ModelHandle(model_id=...)`` (or ``AsyncModelHandle``)."""
        return f"{type(self).__name__}(model_id={self._model_id!r})"


class ModelHandle(_ModelHandleBase["BytezClient"]):
    """One Bytez model seen through a sync client: what ``client.model(id)`` returns.

    Example:
        ```python
        from langchain_bytez.client import BytezClient

        with BytezClient() as client:
            gpt2 = client.model("openai-community/gpt2")
            gpt2.load(concurrency=2, timeout=600)  # waits, showing progress
            print(gpt2.run("Once upon a time", {"max_new_tokens": 20}).output)
            gpt2.stop()
        ```
    """

    def load(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        **options: Unpack[LoadOptions[ProgressOption]],
    ) -> ClusterStatus | None:
        """Create (or update) the model's cluster and wait until it is running.

        An existing cluster is updated (PATCH) when the capacity or timeout *given here*
        differ from its own (sizes left ``None`` are kept as they are), and turned back
        on when off. Polling backs off from 0.05 s, doubling up to 5 s.

        Args:
            concurrency: Instances to run (``min = desired = max = concurrency``);
                ``None`` keeps an existing cluster's capacity (a new one gets 1).
            timeout: Idle seconds before the cluster shuts down (``None`` keeps an
                existing cluster's, a new one gets 300 s); Bytez counts whole
                minutes, so this is rounded **up** to minutes and must be 1..1440
                minutes (at most 86400 s).
            **options: Keyword-only [`LoadOptions`][langchain_bytez.manager.LoadOptions]:
                ``capacity`` (autoscaling; overrides ``concurrency``), ``progress``
                (``True``, the default, prints to stderr), ``deadline`` (default 15 min).

        Returns:
            The running cluster's status, or ``None`` in serverless mode (cluster
            routes unavailable: the first run starts the model).

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the cluster fails (message has the server's reason)
                or is not running by the deadline (message has the last status).
            BytezError: On other service errors (unknown model, bad key...).
        """
        spec, progress = _spec(concurrency, timeout, options, "load"), options.get("progress", True)
        load = LoadRequest(self._model_id, spec)
        return self._manager._load_sync(self._client, load, progress, use_cache=False)

    def _drive(self, plan: Plan[_T]) -> _T:
        return drive(plan, self._client, PlanRun(self._model_id, state=self._manager))

    def start(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        *,
        capacity: Capacity | Mapping[str, int] | None = None,
    ) -> ClusterStatus | None:
        """Like ``load`` but returns as soon as the cluster is requested.

        Args:
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.

        Returns:
            The cluster status known right after the request (usually deploying), or
            ``None`` in serverless mode.
        """
        spec = LoadSpec.build(concurrency, timeout, capacity, DEFAULT_DEADLINE_SECONDS)
        plan = self._manager._load_plan(self._model_id, spec, wait=False)
        return self._drive(plan)

    def status(self) -> ClusterStatus:
        """Read the cluster's status.

        Returns:
            The status; ``ClusterState.STOPPED`` when the model has no cluster, and
            ``raw_status="serverless"`` in serverless mode.
        """
        return self._drive(self._manager._status_plan(self._model_id))

    def stop(self) -> None:
        """Delete the cluster. Idempotent: stopping a stopped model is fine."""
        self._drive(self._manager._stop_plan(self._model_id))

    def run(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run the model once.

        Args:
            input: A string (sent as ``text``) or a list of message dicts (sent as
                ``messages``) for chat and ``*-text-to-text`` models.
            params: Generation parameters (``max_new_tokens``, ``temperature``...).

        Returns:
            The run's output and response metadata.
        """
        return self._client.run(self._model_id, run_payload(input, params))

    def stream(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> TextStream:
        """Stream the model's output as text.

        Args:
            input: A string or a list of message dicts, as for
                [`run`][langchain_bytez.manager.ModelHandle.run].
            params: Generation parameters.

        Returns:
            The client's ``TextStream``: ``with handle.stream(...) as s: for t in s``.
        """
        return self._client.stream(self._model_id, run_payload(input, params))


class AsyncModelHandle(_ModelHandleBase["AsyncBytezClient"]):
    """One Bytez model seen through an async client: what ``async_client.model(id)`` returns.

    Example:
        ```python
        from langchain_bytez.client import AsyncBytezClient

        async with AsyncBytezClient() as client:
            gpt2 = client.model("openai-community/gpt2")
            await gpt2.load(concurrency=2)
            async with gpt2.stream("Once upon a time") as stream:
                async for text in stream:
                    print(text, end="")
            await gpt2.stop()
        ```
    """

    async def load(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        **options: Unpack[LoadOptions[AsyncProgressOption]],
    ) -> ClusterStatus | None:
        """Async version of [`ModelHandle.load`][langchain_bytez.manager.ModelHandle.load].

        ``progress`` may also be an async callable.
        """
        spec, progress = _spec(concurrency, timeout, options, "load"), options.get("progress", True)
        load = LoadRequest(self._model_id, spec)
        return await self._manager._load_async(self._client, load, progress, use_cache=False)

    async def _drive(self, plan: Plan[_T]) -> _T:
        return await adrive(plan, self._client, PlanRun(self._model_id, state=self._manager))

    async def start(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        *,
        capacity: Capacity | Mapping[str, int] | None = None,
    ) -> ClusterStatus | None:
        """Async version of [`ModelHandle.start`][langchain_bytez.manager.ModelHandle.start]."""
        spec = LoadSpec.build(concurrency, timeout, capacity, DEFAULT_DEADLINE_SECONDS)
        plan = self._manager._load_plan(self._model_id, spec, wait=False)
        return await self._drive(plan)

    async def status(self) -> ClusterStatus:
        """Async version of [`ModelHandle.status`][langchain_bytez.manager.ModelHandle.status]."""
        return await self._drive(self._manager._status_plan(self._model_id))

    async def stop(self) -> None:
        """Async version of [`ModelHandle.stop`][langchain_bytez.manager.ModelHandle.stop]."""
        await self._drive(self._manager._stop_plan(self._model_id))

    async def run(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Async version of [`ModelHandle.run`][langchain_bytez.manager.ModelHandle.run]."""
        return await self._client.run(self._model_id, run_payload(input, params))

    def stream(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> AsyncTextStream:
        """Async version of [`ModelHandle.stream`][langchain_bytez.manager.ModelHandle.stream].

        Use it as ``async with handle.stream(...) as s: async for t in s``.
        """
        return self._client.stream(self._model_id, run_payload(input, params))
