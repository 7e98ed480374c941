"""The package's own async httpx clients: made on the chosen transport, closed on their loop.

[`make_async_http`][langchain_bytez.clients.pools.make_async_http] builds the pooled
``httpx.AsyncClient`` of an [`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient]
(``DEFAULT_LIMITS``, httpx's pool or the aiohttp transport);
[`close_on_its_loop`][langchain_bytez.clients.pools.close_on_its_loop] is what its
finaliser calls when the Bytez client is dropped. Closing with the loop itself is the
registry's loop scope ([`langchain_bytez.registry`][langchain_bytez.registry]).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Mapping
from typing import Literal

import httpx

from langchain_bytez.wire.config import DEFAULT_LIMITS

__all__ = ["close_on_its_loop", "make_async_http"]


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
