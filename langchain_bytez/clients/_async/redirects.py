"""``AsyncRedirectGuard``: an injected client whose redirects never carry the keys away.

Why and how: see [`langchain_bytez.clients.redirects`][langchain_bytez.clients.redirects].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from langchain_bytez.wire.config import ClientCore

__all__ = ["AsyncRedirectGuard"]


class AsyncRedirectGuard:
    """An injected ``httpx.AsyncClient`` seen through the two methods the client uses.

    Attributes:
        http: The injected client.
    """

    def __init__(self, http: httpx.AsyncClient, core: ClientCore) -> None:
        """Wrap ``http`` for the client ``core`` (whose origin keeps the keys).

        Args:
            http: The injected client.
            core: The Bytez client sending through it.
        """
        self.http = http
        self._core = core

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        """``http.build_request``.

        Returns:
            The request.
        """
        return self.http.build_request(*args, **kwargs)

    async def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send ``request``, following redirects only as far as the keys may go.

        Each hop is sent with ``follow_redirects=False``; the next one is decided by the
        client's ``_next_hop``, with the injected client's ``follow_redirects`` and
        ``max_redirects``.

        Args:
            request: The first request.
            stream: Whether the final response's body is left unread.

        Returns:
            The final response (``history`` holds the redirects).

        Raises:
            httpx.TooManyRedirects: After ``max_redirects`` hops.
        """
        http = self.http
        response = await http.send(request, stream=stream, follow_redirects=False)
        history: list[httpx.Response] = []
        while True:
            try:
                hop = self._core._next_hop(
                    response, http.follow_redirects, len(history), http.max_redirects
                )
            except httpx.TooManyRedirects:
                await response.aclose()
                raise
            if hop is None:
                break
            await response.aread()  # as httpx does: the connection goes back to the pool
            history.append(response)
            response = await http.send(hop, stream=stream, follow_redirects=False)
        response.history = history
        return response
