"""``AsyncTextStream``: the I/O of an async streamed run, over the wire core's ``StreamCore``.

It is [`StreamCore`][langchain_bytez.wire.stream.StreamCore] (the state, the decoder, the
``Error:`` rule, the typed errors) plus the few lines that touch the socket: open the
response (through the client's retry driver), read its chunks, close it. Import it from
[`langchain_bytez.client`][langchain_bytez.client].
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from langchain_bytez.errors import BytezError, BytezResponseTooLargeError
from langchain_bytez.limiter import Slot
from langchain_bytez.wire.stream import STREAMING_EXCEPTIONS, StreamCore

if TYPE_CHECKING:
    # Quoted in the base class: the client module imports this one.
    from langchain_bytez.clients._async.client import AsyncBytezClient  # noqa: F401

__all__ = ["AsyncTextStream"]


class AsyncTextStream(StreamCore["AsyncBytezClient"]):
    """An async streamed run: iterate it with ``async for`` to get the model's text chunks.

    The request is sent on ``__aenter__`` (or on first iteration), retried only until the
    response starts; a failed answer raises its typed error there. Iteration yields
    ``str`` chunks (multi-byte characters are never split) and raises
    [`BytezStreamError`][langchain_bytez.errors.BytezStreamError] if the body turns out to
    be an in-band ``Error: ...`` or the connection drops; a stream is never retried after
    text was delivered. Leaving the ``async with`` block, the end of the loop or an error
    releases the connection; when you may break out of the loop, use ``async with``
    (otherwise the connection is released only when the iterator is finalised).

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

    def __del__(self) -> None:
        """Garbage-collected without aclose(): still give back the account's slot.

        The connection is given back too where no event loop is needed to close it
        (otherwise httpx closes it when its pool is collected).
        """
        with contextlib.suppress(Exception):  # nothing can be done in a finaliser
            self._release_slot()
            # unasync: sync-only response = getattr(self, "_response", None)
            # unasync: sync-only if response is not None:
            # unasync: sync-only     response.close()

    async def aclose(self) -> None:
        """Release the connection and the account's concurrency slot (idempotent)."""
        self._closed = True
        response, self._response = self._response, None
        try:
            if response is not None:
                await response.aclose()
        finally:
            self._release_slot()

    async def _open_stream(self) -> httpx.Response:
        """One attempt: take a slot, send, return a 2xx response or raise its error."""
        client = self._client
        deadline = self._budget
        slot: Slot | None = await client._acquire(self._call, deadline, self._next_attempt())
        error: BaseException | None = None
        try:
            response = await client._send(self._call, deadline, client._stream_idle)
            if 200 <= response.status_code < 300:
                self._hold(slot, response)  # type: ignore[arg-type]
                slot = None
                return response
            try:
                body = (await client._read(response, deadline, self.model_id)).content
            except BytezResponseTooLargeError:
                raise
            except BytezError:
                body = b""  # the status alone still says what happened
            error = client._stream_error(response, body, self.model_id)
        finally:
            self._give_back(slot, error)
        raise error

    async def _ensure_open(self) -> None:
        if self._response is not None or not self._check_openable():
            return
        client = self._client
        response = await client._with_retries(
            self._open_stream, self._call.label, self._on_retry, self._budget
        )
        if not self._started(response):
            self._response = response
            return
        failure: BytezError | None = None
        try:
            read = await client._read(response, self._budget, self.model_id)
        except BytezError as exc:
            failure = self._json_broken(exc)
        finally:
            self._release_slot()
        if failure is not None:
            raise failure  # outside the except: see _caused_by
        self._prefetch_json(read.content, read)

    # unasync: async-only begin
    async def _next_bounded(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        """The next chunk, within the idle limit and the time left.

        httpcore applies the body's read timeouts (``Deadline.body_timeouts``) to every
        read; other transports (aiohttp, an injected client's) fix them when the request
        is sent, so the limits are kept here instead.
        """
        idle = self._client._stream_idle
        limit = min(idle if idle is not None else math.inf, self._budget.remaining())
        if math.isinf(limit):
            return await anext(chunks, None)
        try:
            async with asyncio.timeout(limit):
                return await anext(chunks, None)
        except TimeoutError:
            raise httpx.ReadTimeout("no chunk arrived in time") from None

    # unasync: async-only end
    async def _iterate(self) -> AsyncIterator[str]:
        self._begin_iteration()
        chunks: AsyncIterator[bytes] | None = None
        try:
            await self._ensure_open()
            if self._prefetched is not None:
                if text := self._take_prefetched():
                    yield text
                return
            response = self._response
            if response is None:  # closed while opening
                return
            chunks = response.aiter_raw() if self._raw else response.aiter_bytes()
            failure: BaseException | None = None
            bounded = self._client.transport != "httpx"  # unasync: async-only
            while not self._finished:
                try:
                    # unasync: async-only begin
                    if bounded:
                        chunk = await self._next_bounded(chunks)
                    else:
                        chunk = await anext(chunks, None)
                    # unasync: async-only end
                    # unasync: sync-only chunk = next(chunks, None)
                except httpx.StreamClosed:
                    return  # closed by the caller: they asked for the end
                except STREAMING_EXCEPTIONS as exc:
                    failure = exc
                    break
                if text := self._feed(chunk):
                    yield text
            if failure is not None:
                raise self._broken(failure)  # outside the except: see _caused_by
            self._raise_in_band()
        finally:
            # Finish httpx's own generator now rather than leaving it to its finaliser.
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
            await self.aclose()
