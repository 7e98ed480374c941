"""Injected httpx clients whose redirects never carry the keys to another host.

An ``http_client`` / ``http_async_client`` a caller injects may have
``follow_redirects=True``; httpx then drops ``Authorization`` on a cross-origin redirect
but keeps ``provider-key`` and any credential header of ``default_headers``. These
wrappers send every hop with ``follow_redirects=False`` and follow the redirects
themselves, as the injected client would, through the client's ``_next_hop``
([`ClientCore`][langchain_bytez.wire.config.ClientCore]), which strips every credential
header unless the target is the configured origin. Hooks, auth,
cookies and transport of the injected client all still apply to each hop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

if TYPE_CHECKING:
    from langchain_bytez.wire.config import ClientCore

__all__ = ["AsyncRedirectGuard", "RedirectGuard"]


_H = TypeVar("_H", httpx.Client, httpx.AsyncClient)


class _Guard(Generic[_H]):
    """What both guards share: the injected client, and building requests with it."""

    def __init__(self, http: _H, core: ClientCore) -> None:
        """Wrap ``http`` for the client ``core`` (whose origin keeps the keys).

        Args:
            http: The injected client.
            core: The Bytez client sending through it.
        """
        self.http: _H = http
        self._core = core

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        """``http.build_request``.

        Returns:
            The request.
        """
        return self.http.build_request(*args, **kwargs)

    def _next(self, response: httpx.Response, hops: int) -> httpx.Request | None:
        http = self.http
        return self._core._next_hop(response, http.follow_redirects, hops, http.max_redirects)


class RedirectGuard(_Guard[httpx.Client]):
    """An injected ``httpx.Client`` seen through the two methods the client uses."""

    def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send ``request``, following redirects only as far as the keys may go.

        Args:
            request: The first request.
            stream: Whether the final response's body is left unread.

        Returns:
            The final response (``history`` holds the redirects).
        """
        response = self.http.send(request, stream=stream, follow_redirects=False)
        history: list[httpx.Response] = []
        while True:
            try:
                hop = self._next(response, len(history))
            except httpx.TooManyRedirects:
                response.close()
                raise
            if hop is None:
                break
            response.read()  # as httpx does: the connection goes back to the pool
            history.append(response)
            response = self.http.send(hop, stream=stream, follow_redirects=False)
        response.history = history
        return response


class AsyncRedirectGuard(_Guard[httpx.AsyncClient]):
    """An injected ``httpx.AsyncClient`` seen through the two methods the client uses."""

    async def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Async version of ``RedirectGuard.send``.

        Returns:
            The final response.
        """
        response = await self.http.send(request, stream=stream, follow_redirects=False)
        history: list[httpx.Response] = []
        while True:
            try:
                hop = self._next(response, len(history))
            except httpx.TooManyRedirects:
                await response.aclose()
                raise
            if hop is None:
                break
            await response.aread()
            history.append(response)
            response = await self.http.send(hop, stream=stream, follow_redirects=False)
        response.history = history
        return response
