"""``TextStream`` and ``AsyncTextStream``: the I/O of a streamed run, over one core.

Both are [`StreamCore`][langchain_bytez.wire.stream.StreamCore] (the state, the
decoder, the ``Error:`` rule, the typed errors) plus the few lines that touch the
socket: open the response (through the client's retry driver), read its chunks, close
it. Import them from [`langchain_bytez.client`][langchain_bytez.client].
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from langchain_bytez.wire.stream import STREAMING_EXCEPTIONS, StreamCore

if TYPE_CHECKING:
    # Quoted in the base classes: the client module imports this one.
    from langchain_bytez.client import AsyncBytezClient, BytezClient  # noqa: F401

__all__ = ["AsyncTextStream", "TextStream"]


class TextStream(StreamCore["BytezClient"]):
    """A streamed run: iterate it for text chunks as the model produces them.

    The request is sent on ``__enter__`` (or on first iteration), retried only until the
    response starts; a failed answer raises its typed error there. Iteration yields
    ``str`` chunks (multi-byte characters are never split) and raises
    [`BytezStreamError`][langchain_bytez.errors.BytezStreamError] if the body turns out to be an
    in-band ``Error: ...`` or the connection drops; a stream is never retried after text
    was delivered. Leaving the ``with`` block, breaking out of the loop, or an error
    releases the connection.

    Create it with [`BytezClient.stream`][langchain_bytez.client.BytezClient.stream].

    Attributes:
        model_id: The Bytez model id.
        meta: The response metadata, once the response has started.
    """

    def __enter__(self) -> TextStream:
        """Send the request and wait for the response to start.

        Returns:
            The stream itself.

        Raises:
            BytezError: The typed error if the request failed (after any retries).
        """
        self._ensure_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the connection."""
        self.close()

    def __iter__(self) -> Iterator[str]:
        """Iterate the text chunks.

        Returns:
            An iterator of text chunks.
        """
        return self._iterate()

    def __del__(self) -> None:
        """Garbage-collected without close(): still give the connection back."""
        response = getattr(self, "_response", None)
        if response is not None:
            with contextlib.suppress(Exception):  # nothing can be done in a finaliser
                response.close()

    def close(self) -> None:
        """Release the connection (idempotent)."""
        self._closed = True
        response, self._response = self._response, None
        if response is not None:
            response.close()

    def _open_stream(self) -> httpx.Response:
        """One attempt: send the request, return a 2xx response or raise its error."""
        client = self._client
        response = client._send(self._call, self._timeout, stream=True)
        if 200 <= response.status_code < 300:
            return response
        try:
            body = response.read()
        except httpx.HTTPError:
            body = b""  # the status alone still says what happened
        finally:
            response.close()
        raise client._stream_error(response, body, self.model_id)

    def _ensure_open(self) -> None:
        if self._response is not None or not self._check_openable():
            return
        response = self._client._with_retries(self._open_stream, self._call.label, self._on_retry)
        if not self._started(response):
            self._response = response
            return
        failure: httpx.HTTPError | None = None
        try:
            body = response.read()
        except httpx.HTTPError as exc:
            failure = exc
        finally:
            response.close()
        if failure is not None:
            raise self._broken(failure)
        self._prefetch_json(body, response)

    def _iterate(self) -> Iterator[str]:
        self._begin_iteration()
        try:
            self._ensure_open()
            if self._prefetched is not None:
                if text := self._take_prefetched():
                    yield text
                return
            response = self._response
            if response is None:  # closed while opening
                return
            chunks = response.iter_bytes()
            failure: BaseException | None = None
            while not self._finished:
                try:
                    chunk = next(chunks, None)
                except httpx.StreamClosed:
                    return  # closed by the caller: they asked for the end
                except STREAMING_EXCEPTIONS as exc:
                    failure = exc
                    break
                if text := self._decode(chunk):
                    yield text
            if failure is not None:
                raise self._broken(failure)  # outside the except: see _caused_by
            self._raise_in_band()
        finally:
            self.close()


class AsyncTextStream(StreamCore["AsyncBytezClient"]):
    """An async streamed run: ``async for`` it for text chunks.

    Same rules as [`TextStream`][langchain_bytez.client.TextStream]: the request is sent on
    ``__aenter__`` (or first iteration) and retried only until the response starts; iteration raises
    [`BytezStreamError`][langchain_bytez.errors.BytezStreamError] for an in-band error or a dropped
    connection; leaving the ``async with`` block releases the connection. Without
    ``async with``, breaking out of the loop releases it when the event loop finalises
    the iterator; prefer ``async with``.

    Create it with [`AsyncBytezClient.stream`][langchain_bytez.client.AsyncBytezClient.stream].

    Attributes:
        model_id: The Bytez model id.
        meta: The response metadata, once the response has started.
    """

    async def __aenter__(self) -> AsyncTextStream:
        """Send the request and wait for the response to start.

        Returns:
            The stream itself.

        Raises:
            BytezError: The typed error if the request failed (after any retries).
        """
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the connection."""
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[str]:
        """Iterate the text chunks.

        Returns:
            An async iterator of text chunks.
        """
        return self._iterate()

    async def aclose(self) -> None:
        """Release the connection (idempotent)."""
        self._closed = True
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()

    async def _open_stream(self) -> httpx.Response:
        """One attempt: send the request, return a 2xx response or raise its error."""
        client = self._client
        response = await client._send(self._call, self._timeout, stream=True)
        if 200 <= response.status_code < 300:
            return response
        try:
            body = await response.aread()
        except httpx.HTTPError:
            body = b""  # the status alone still says what happened
        finally:
            await response.aclose()
        raise client._stream_error(response, body, self.model_id)

    async def _ensure_open(self) -> None:
        if self._response is not None or not self._check_openable():
            return
        client = self._client
        response = await client._with_retries(self._open_stream, self._call.label, self._on_retry)
        if not self._started(response):
            self._response = response
            return
        failure: httpx.HTTPError | None = None
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            failure = exc
        finally:
            await response.aclose()
        if failure is not None:
            raise self._broken(failure)
        self._prefetch_json(body, response)

    async def _iterate(self) -> AsyncIterator[str]:
        self._begin_iteration()
        chunks: AsyncGenerator[bytes, None] | None = None
        try:
            await self._ensure_open()
            if self._prefetched is not None:
                if text := self._take_prefetched():
                    yield text
                return
            response = self._response
            if response is None:  # closed while opening
                return
            chunks = response.aiter_bytes()  # type: ignore[assignment]
            failure: BaseException | None = None
            while not self._finished:
                try:
                    chunk = await anext(chunks, None)  # type: ignore[arg-type]
                except httpx.StreamClosed:
                    return  # closed by the caller: they asked for the end
                except STREAMING_EXCEPTIONS as exc:
                    failure = exc
                    break
                if text := self._decode(chunk):
                    yield text
            if failure is not None:
                raise self._broken(failure)  # outside the except: see _caused_by
            self._raise_in_band()
        finally:
            if chunks is not None:
                # Finish httpx's own async generator now rather than leaving it to the
                # event loop's finaliser.
                await chunks.aclose()
            await self.aclose()
