"""One mechanism for the package's shared instances: clients and managers.

Every "one per configuration" object of the package is kept here:

* pooled Bytez clients of the LangChain classes, one per configuration (sync) and one per
  configuration and event loop (async: an httpx async client is bound to its loop), in
  [`CLIENTS`][langchain_bytez.registry.CLIENTS];
* lifecycle managers, one per endpoint and key, in
  [`ModelManager.for_client`][langchain_bytez.manager.ModelManager.for_client].

Both are a [`SharedInstances`][langchain_bytez.registry.SharedInstances]: a dict with a
lock-free read path and a create-once write path.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from langchain_bytez.client import AsyncBytezClient, BytezClient

__all__ = ["CLIENTS", "ClientPool", "SharedInstances"]

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


class ClientPool:
    """Pooled clients of the LangChain classes: per configuration, and per loop for async."""

    def __init__(self) -> None:
        """Create an empty pool."""
        self._lock = threading.Lock()
        self._sync: SharedInstances[Hashable, BytezClient] = SharedInstances()
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, SharedInstances[Hashable, AsyncBytezClient]
        ] = weakref.WeakKeyDictionary()

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
            The shared client (dropped with its loop).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            per_loop = self._async.get(loop)
            if per_loop is None:
                per_loop = self._async[loop] = SharedInstances()
        return per_loop.get(key, factory)

    def close_all(self) -> None:
        """Close every pooled sync client; async ones die with their loops."""
        clients = self._sync.drain()
        with self._lock:
            self._async.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()


CLIENTS = ClientPool()
"""The process-wide client pool of the LangChain classes (closed at exit)."""
atexit.register(CLIENTS.close_all)
