"""The aiohttp transport of the package's own async clients (the ``aiohttp`` extra).

``httpx-aiohttp``'s ``AiohttpTransport`` keeps httpx's API over aiohttp's connector,
which stays flat under hundreds of concurrent streams where httpcore's pool slows down
(docs/performance.md). Two of its behaviours differ from httpx's own transport in ways
the client would notice; this subclass puts them right:

* its body stream re-chunks the data (16 KiB reads), so tokens that arrive together
  come out as one piece; here each HTTP chunk the server sent is one piece, as with
  httpx;
* it maps every aiohttp connection error to ``httpx.ConnectTimeout``, so a refused
  connection or a dropped one would read as a timeout; here they map to the exceptions
  httpx itself raises (``ConnectError``, ``RemoteProtocolError``, ``ReadError``).

Only imported when ``httpx-aiohttp`` is installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["BytezAiohttpTransport"]


def _httpx_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx exception httpx's own transport raises for what aiohttp raised."""
    if isinstance(exc, httpx.TransportError):
        # Already mapped by httpx-aiohttp: judge by the aiohttp error behind it.
        cause = exc.__cause__
        if cause is None or isinstance(cause, httpx.TransportError):
            return exc
        mapped = _httpx_error(cause)
        return exc if mapped is None else mapped
    message = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutError subclasses
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return httpx.ConnectTimeout(message)
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return httpx.ReadError(message)
    return None


@contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        mapped = _httpx_error(exc)
        if mapped is None or mapped is exc:
            raise
        mapped.request = request
        raise mapped from exc


class _ChunkStream(httpx.AsyncByteStream):
    """The body as the HTTP chunks the server sent (not re-chunked)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for data, _end_of_chunk in self._response.content.iter_chunks():
                if data:
                    yield data

    async def aclose(self) -> None:
        with _mapped(self._request):
            await self._response.__aexit__(None, None, None)


class BytezAiohttpTransport(AiohttpTransport):
    """``AiohttpTransport`` with httpx's chunking and httpx's exceptions."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp.

        Args:
            request: The httpx request.

        Returns:
            The httpx response, its body streamed chunk by chunk.
        """
        with _mapped(request):
            response = await super().handle_async_request(request)
        # The aiohttp response behind httpx-aiohttp's own stream wrapper.
        aio: aiohttp.ClientResponse = response.stream._aiohttp_response  # type: ignore[union-attr]
        response.stream = _ChunkStream(aio, request)
        return response
