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
flight in [`coordinator`][langchain_bytez.lifecycle.coordinator]. The I/O methods are
written once, async, in ``lifecycle/_async/`` (``handle.py``: the handles' methods;
``manager.py``: ``ensure_loaded``, ``ensure_available``, ``limit``) and their sync twins
generated into ``lifecycle/_sync/``; the classes here put them together. The shortcuts
and sessions stay here: they build handles, and the handles need ``ModelManager`` (the
default manager), so they cannot live below it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from typing_extensions import Unpack

from langchain_bytez.lifecycle._async.handle import AsyncHandleMethods
from langchain_bytez.lifecycle._async.manager import AsyncManagerMethods
from langchain_bytez.lifecycle._sync.handle import HandleMethods
from langchain_bytez.lifecycle._sync.manager import ManagerMethods
from langchain_bytez.lifecycle.options import (
    AsyncLoad,
    Load,
    LoadOptions,
    SizedLoadOptions,
)
from langchain_bytez.protocol import validate_model_id
from langchain_bytez.registry import SharedInstances
from langchain_bytez.types import ClusterStatus

if TYPE_CHECKING:
    from langchain_bytez.client import (
        AsyncBytezClient,
        BytezClient,
    )

__all__ = [
    "AsyncModelHandle",
    "LoadOptions",
    "ModelHandle",
    "ModelManager",
    "SizedLoadOptions",
]

logger = logging.getLogger("langchain_bytez")


class ModelManager(ManagerMethods, AsyncManagerMethods):
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

    # ------------------------------------------------------------------ conveniences

    def load(
        self, model_id: str, *, client: BytezClient, **options: Unpack[Load]
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
        self, model_id: str, *, client: AsyncBytezClient, **options: Unpack[AsyncLoad]
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
        self, model_id: str, *, client: BytezClient, **options: Unpack[Load]
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
        self, model_id: str, *, client: AsyncBytezClient, **options: Unpack[AsyncLoad]
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


class ModelHandle(_ModelHandleBase["BytezClient"], HandleMethods):
    """One Bytez model seen through a sync client: what ``client.model(id)`` returns.

    Its methods (``load``, ``start``, ``status``, ``stop``, ``run``, ``stream``) are
    generated from [`AsyncModelHandle`][langchain_bytez.manager.AsyncModelHandle]'s.

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


class AsyncModelHandle(_ModelHandleBase["AsyncBytezClient"], AsyncHandleMethods):
    """One Bytez model seen through an async client: what ``async_client.model(id)`` returns.

    Its methods are those of [`ModelHandle`][langchain_bytez.manager.ModelHandle], to be
    awaited (``stream`` returns an ``AsyncTextStream``); ``load``'s ``progress`` may
    also be an async callable.

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
