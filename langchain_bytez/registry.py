"""One mechanism for the package's shared instances: clients and managers.

Every "one per configuration" object of the package is kept here:

* pooled Bytez clients of the LangChain classes, one per configuration (sync) and one per
  configuration and event loop (async: an httpx async client is bound to its loop), in
  [`CLIENTS`][langchain_bytez.registry.CLIENTS];
* lifecycle managers, one per endpoint and key, in
  [`ModelManager.for_client`][langchain_bytez.manager.ModelManager.for_client].

Managers are a [`SharedInstances`][langchain_bytez.registry.SharedInstances]: a dict with a
lock-free read path and a create-once write path. Clients are
[`RecentInstances`][langchain_bytez.registry.RecentInstances]: reference-counted by their
users (every LangChain object holds the client it uses; the registry holds them weakly)
plus the ``WARM_CLIENTS`` most recently used configurations, so that objects created per
request still reuse warm connections. When the last object of a configuration is dropped
and it has left the warm set, the client is collected and closes its pool (each client
closes its connections when it is garbage-collected; a call still using it keeps it
alive until it ends), so throwaway configurations do not pile up pools and sockets.

Async clients live in a *loop scope*: the clients of one event loop, and every
``httpx.AsyncClient`` the package opened on it, closed while the loop shuts down
(``asyncio.run`` and ``asyncio.Runner`` shut down a loop's async generators before
closing it; the scope registers one for that). A loop closed without that step is
noticed the next time a scope is created, and its clients are dropped.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import httpx

    from langchain_bytez.client import AsyncBytezClient, BytezClient

__all__ = ["CLIENTS", "WARM_CLIENTS", "ClientPool", "RecentInstances", "SharedInstances"]

WARM_CLIENTS = 4
"""Configurations whose clients are kept open with no object using them (per kind, and
per event loop for async): the most recently used ones."""

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class SharedInstances(Generic[_K, _V]):
    """Instances shared per key, each created once even when threads race for it."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._lock = threading.Lock()
        self._items: dict[_K, _V] = {}

    def get(self, key: _K, factory: Callable[[], _V]) -> _V:
        """Return the instance of ``key``, creating it with ``factory`` on first use.

        Args:
            key: The configuration the instance serves.
            factory: Builds the instance; called at most once per key.

        Returns:
            The shared instance.
        """
        item = self._items.get(key)  # lock-free fast path: dict reads are atomic
        if item is None:
            with self._lock:
                item = self._items.get(key)
                if item is None:
                    item = self._items[key] = factory()
        return item

    def drain(self) -> list[_V]:
        """Forget every instance and return them (for the caller to close).

        Returns:
            The instances that were registered.
        """
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        return items


class RecentInstances(Generic[_K, _V]):
    """Like ``SharedInstances``, but instances live while used, or among the recent ones.

    Every instance is found again while anything references it (weakly registered);
    the ``size`` most recently used are also held here, so that they outlive a
    short-lived user.
    """

    def __init__(self, size: int = WARM_CLIENTS) -> None:
        """Create an empty registry.

        Args:
            size: How many recently used instances are held without a user.
        """
        self._lock = threading.Lock()
        self._items: OrderedDict[_K, _V] = OrderedDict()  # the recent ones
        self._all: weakref.WeakValueDictionary[_K, _V] = weakref.WeakValueDictionary()
        self._size = size

    def get(self, key: _K, factory: Callable[[], _V]) -> _V:
        """Return the instance of ``key``, creating it with ``factory`` on first use.

        Args:
            key: The configuration the instance serves.
            factory: Builds the instance; called once per key while it is kept.

        Returns:
            The shared instance.
        """
        items = self._items
        item = items.get(key)  # lock-free fast path: dict reads are atomic
        if item is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile: still valid to use
                items.move_to_end(key)
            return item
        with self._lock:
            item = items.get(key)
            if item is None:
                item = self._all.get(key)  # still used somewhere: share it
                if item is None:
                    item = self._all[key] = factory()
                items[key] = item
                while len(items) > self._size:
                    items.popitem(last=False)
        return item

    def __len__(self) -> int:
        """The number of instances alive (used somewhere, or recent)."""
        return len(self._all)

    def drain(self) -> list[_V]:
        """Forget every instance and return them (for the caller to close).

        Returns:
            The instances that were registered.
        """
        with self._lock:
            items = list(self._all.values())
            self._items.clear()
            self._all.clear()
        return items


class _LoopScope:
    """The package's async clients of one event loop, closed while the loop shuts down."""

    def __init__(self, pool: ClientPool, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)
        self.clients: RecentInstances[Hashable, AsyncBytezClient] = RecentInstances()
        # Weak: an httpx client dropped earlier is closed by its owner's finaliser.
        self.https: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()
        self.closed = False
        self._pool = pool
        # An async generator suspended at its first yield: the loop closes it in
        # shutdown_asyncgens() (asyncio.run, asyncio.Runner), with the loop still
        # running, so the clients can be closed properly (their sockets freed).
        self._watch = self._until_shutdown()
        starting = self._watch.asend(None)
        with contextlib.suppress(StopIteration):
            starting.send(None)

    def alive(self, loop: asyncio.AbstractEventLoop) -> bool:
        return not self.closed and self.loop() is loop and not loop.is_closed()

    async def _until_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if not self.closed:
                await self.aclose()

    async def aclose(self) -> None:
        """Forget this loop's clients and close every httpx client opened on it."""
        self.closed = True
        self._pool._forget(self)
        self.clients.drain()
        for http in list(self.https):
            with contextlib.suppress(Exception):  # closing is best effort at shutdown
                await http.aclose()

    def abandon(self) -> None:
        """The loop closed without shutting down its generators: drop what it held.

        Its sockets cannot be closed through a closed loop; they are released when the
        dropped objects are collected.
        """
        self.closed = True
        self.clients.drain()
        self.https = weakref.WeakSet()
        # Exhaust the watcher without awaiting (its finally sees closed=True).
        with contextlib.suppress(StopIteration, RuntimeError):
            self._watch.aclose().send(None)


class ClientPool:
    """Pooled clients of the LangChain classes: per configuration, and per loop for async."""

    def __init__(self) -> None:
        """Create an empty pool."""
        self._lock = threading.Lock()
        self._sync: RecentInstances[Hashable, BytezClient] = RecentInstances()
        self._loops: dict[int, _LoopScope] = {}

    def sync_client(self, key: Hashable, factory: Callable[[], BytezClient]) -> BytezClient:
        """Return the pooled sync client of a configuration.

        Args:
            key: The client configuration.
            factory: Builds the client on first use.

        Returns:
            The shared client.
        """
        return self._sync.get(key, factory)

    def async_client(
        self, key: Hashable, factory: Callable[[], AsyncBytezClient]
    ) -> AsyncBytezClient:
        """Return the pooled async client of a configuration on the running loop.

        Args:
            key: The client configuration.
            factory: Builds the client on first use on this loop.

        Returns:
            The shared client (closed with its loop).
        """
        return self._scope(asyncio.get_running_loop()).clients.get(key, factory)

    def track(self, http: httpx.AsyncClient) -> None:
        """Close ``http`` (opened on the running loop) when that loop shuts down.

        Args:
            http: An ``httpx.AsyncClient`` the package created and owns.
        """
        self._scope(asyncio.get_running_loop()).https.add(http)

    def _scope(self, loop: asyncio.AbstractEventLoop) -> _LoopScope:
        scope = self._loops.get(id(loop))  # lock-free fast path
        if scope is not None and scope.alive(loop):
            return scope
        with self._lock:
            scope = self._loops.get(id(loop))
            if scope is not None and scope.alive(loop):
                return scope
            # A new loop: drop the scopes of loops closed without shutting down
            # (and of the dead loop whose id this one may reuse).
            for key, old in list(self._loops.items()):
                owner = old.loop()
                if owner is None or owner.is_closed() or old.closed:
                    del self._loops[key]
                    old.abandon()
            scope = self._loops[id(loop)] = _LoopScope(self, loop)
        return scope

    def _forget(self, scope: _LoopScope) -> None:
        with self._lock:
            for key, known in list(self._loops.items()):
                if known is scope:
                    del self._loops[key]

    def close_all(self) -> None:
        """Close every pooled sync client; async ones are dropped with their loops."""
        clients = self._sync.drain()
        with self._lock:
            scopes = list(self._loops.values())
            self._loops.clear()
        for scope in scopes:
            scope.abandon()
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()


CLIENTS = ClientPool()
"""The process-wide client pool of the LangChain classes (closed at exit)."""
atexit.register(CLIENTS.close_all)
