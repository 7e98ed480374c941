"""The package's own httpx clients: made on first use, reused, closed (on their loop).

[`SyncPooledClient`][langchain_bytez.clients.pools.SyncPooledClient] and
[`AsyncPooledClient`][langchain_bytez.clients.pools.AsyncPooledClient] are the pool side of
[`BytezClient`][langchain_bytez.client.BytezClient] and
[`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient]: which ``httpx`` client a
request goes through (the injected one, its redirect guard, or our own pool) and how our
pool is closed. [`make_async_http`][langchain_bytez.clients.pools.make_async_http] builds the pooled
``httpx.AsyncClient`` of an [`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient]
(``DEFAULT_LIMITS``, httpx's pool or the aiohttp transport);
[`close_on_its_loop`][langchain_bytez.clients.pools.close_on_its_loop] is what its
finaliser calls when the Bytez client is dropped. Closing with the loop itself is the
registry's loop scope ([`langchain_bytez.registry`][langchain_bytez.registry]).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from langchain_bytez.clients.redirects import AsyncRedirectGuard, RedirectGuard
from langchain_bytez.registry import CLIENTS
from langchain_bytez.wire.config import (
    DEFAULT_LIMITS,
    AsyncTransport,
    ClientCore,
    resolve_async_transport,
)

__all__ = ["AsyncPooledClient", "SyncPooledClient", "close_on_its_loop", "make_async_http"]


def make_async_http(
    transport: Literal["httpx", "aiohttp"], headers: Mapping[str, str], timeout: httpx.Timeout
) -> httpx.AsyncClient:
    """A new pooled ``httpx.AsyncClient`` on the chosen transport, with ``DEFAULT_LIMITS``.

    Args:
        transport: What ``resolve_async_transport`` chose.
        headers: Headers of every request.
        timeout: The default timeout.

    Returns:
        The client (bound to the running loop once it connects).
    """
    if transport == "aiohttp":
        from langchain_bytez.clients.transports import BytezAiohttpTransport  # noqa: PLC0415

        return httpx.AsyncClient(
            headers=headers, timeout=timeout, transport=BytezAiohttpTransport(limits=DEFAULT_LIMITS)
        )
    return httpx.AsyncClient(headers=headers, timeout=timeout, limits=DEFAULT_LIMITS)


_closing: set[asyncio.Task[None]] = set()  # strong references until the closes finish


def close_on_its_loop(
    http: httpx.AsyncClient, loop_ref: weakref.ref[asyncio.AbstractEventLoop]
) -> None:
    """Close a pooled ``httpx.AsyncClient`` on the loop that owns its connections.

    Called by finalisers, from any thread: the close is scheduled on that loop. A loop
    that is gone or closed already closed (or dropped) the client in its shutdown.
    """
    loop = loop_ref()
    if loop is None or loop.is_closed() or http.is_closed:
        return

    def spawn() -> None:
        task = loop.create_task(http.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    with contextlib.suppress(RuntimeError):  # closed in the meantime
        loop.call_soon_threadsafe(spawn)


class SyncPooledClient(ClientCore):
    """The pool of a sync client: one ``httpx.Client``, created on first use.

    Threads may share the client: only the pool's creation is locked, requests never are.
    """

    def __init__(
        self, api_key: str | SecretStr | None, *, http_client: httpx.Client | None, **settings: Any
    ) -> None:
        """Check ``http_client``, resolve the settings, and set up an empty pool.

        Args:
            api_key: The key, or ``None`` for ``BYTEZ_API_KEY``.
            http_client: An injected ``httpx.Client``, or ``None`` for our own pool.
            **settings: The other keyword arguments of ``ClientCore``.

        Raises:
            TypeError: If ``http_client`` is not an ``httpx.Client``.
        """
        self._check_http_client(http_client, httpx.Client)
        super().__init__(api_key, injected=http_client is not None, **settings)
        self._injected = http_client
        self._guard = RedirectGuard(http_client, self) if http_client is not None else None
        self._http: httpx.Client | None = http_client
        self._release: weakref.finalize[Any, Any] | None = None
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client | RedirectGuard:
        injected, guard = self._injected, self._guard
        if injected is not None:
            # Redirects an injected client would follow are followed by the guard,
            # which keeps the keys off other hosts.
            return guard if guard is not None and injected.follow_redirects else injected
        http = self._http
        if http is None:
            # Only creation is locked; requests never are.
            with self._lock:
                if self._http is None:
                    self._http = httpx.Client(
                        headers=self._headers, timeout=self._timeout, limits=DEFAULT_LIMITS
                    )
                    # Dropped without close() (or evicted from the shared pool): the
                    # sockets are closed when the client is collected.
                    self._release = weakref.finalize(self, self._http.close)
                http = self._http
        return http

    def close(self) -> None:
        """Close our pooled connections (an injected ``http_client`` is left open).

        The client stays usable: a new pool is opened on the next call.
        """
        with self._lock:
            self._http = self._injected
            release, self._release = self._release, None
        if release is not None:
            release()  # closes http, once


class AsyncPooledClient(ClientCore):
    """The pool of an async client: one ``httpx.AsyncClient`` per event loop.

    The pool is opened on first use in an event loop; if the client is later used from
    another loop, a fresh pool is opened there (connections belong to the loop that
    opened them). Concurrent calls and streams of one loop share the pool.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None,
        *,
        http_client: httpx.AsyncClient | None,
        async_transport: AsyncTransport,
        **settings: Any,
    ) -> None:
        """Check ``http_client``, resolve the settings and the transport of our own pool.

        Args:
            api_key: The key, or ``None`` for ``BYTEZ_API_KEY``.
            http_client: An injected ``httpx.AsyncClient``, or ``None`` for our own pools.
            async_transport: The transport of our own pools (``resolve_async_transport``).
            **settings: The other keyword arguments of ``ClientCore``.

        Raises:
            TypeError: If ``http_client`` is not an ``httpx.AsyncClient``.
            ValueError: If ``async_transport`` is none of ``"auto"``, ``"httpx"``,
                ``"aiohttp"``.
            ImportError: If ``async_transport="aiohttp"`` and the extra is not installed.
        """
        self._check_http_client(http_client, httpx.AsyncClient)
        super().__init__(api_key, injected=http_client is not None, **settings)
        self._transport = resolve_async_transport(async_transport, self._base_url)
        if self._transport == "aiohttp" and http_client is None:
            # Imported here, not by the first request: importing aiohttp takes a few
            # hundred ms, which must not count against that call's deadline.
            import langchain_bytez.clients.transports  # noqa: F401, PLC0415
        self._injected = http_client
        self._guard = AsyncRedirectGuard(http_client, self) if http_client is not None else None
        self._http: httpx.AsyncClient | None = http_client
        self._http_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._release: weakref.finalize[Any, Any] | None = None

    @property
    def transport(self) -> Literal["httpx", "aiohttp", "injected"]:
        """The transport of the requests: our own ``"httpx"`` or ``"aiohttp"`` pool, or
        ``"injected"`` (the ``http_client`` given)."""  # noqa: D205, D209 - one sentence
        return "injected" if self._injected is not None else self._transport

    def _client(self) -> httpx.AsyncClient | AsyncRedirectGuard:
        injected, guard = self._injected, self._guard
        if injected is not None:
            return guard if guard is not None and injected.follow_redirects else injected
        loop = asyncio.get_running_loop()
        http = self._http
        if http is None or self._http_loop is None or self._http_loop() is not loop:
            # No await between the check and the assignment: no race within a loop.
            self._let_go()  # a pool of another loop: closed on that loop, if it still runs
            http = make_async_http(self._transport, self._headers, self._timeout)
            self._http = http
            self._http_loop = weakref.ref(loop)
            # Closed when this loop shuts down, or when this client is collected.
            CLIENTS.track(http)
            self._release = weakref.finalize(self, close_on_its_loop, http, self._http_loop)
        return http

    def _let_go(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    async def aclose(self) -> None:
        """Close our pooled connections (an injected ``http_client`` is left open).

        The client stays usable: a new pool is opened on the next call.
        """
        http, self._http = self._http, self._injected
        owner = self._http_loop() if self._http_loop is not None else None
        self._http_loop = None
        if http is None or http is self._injected:
            return
        if owner is asyncio.get_running_loop():
            release, self._release = self._release, None
            if release is not None:
                release.detach()
            await http.aclose()
        else:
            # A pool of another loop is closed there (or with that loop's shutdown).
            self._let_go()
