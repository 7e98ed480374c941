# Generated from langchain_bytez/clients/_async/streams.py by .ci/unasync.py:
# do not edit; edit the async source and run `make generate`.
# `make lint` and tests/unit_tests/test_generated.py check it.
"""``TextStream``: the I/O of a streamed run, over the wire core's ``StreamCore``.

It is [`StreamCore`][langchain_bytez.wire.stream.StreamCore] (the state, the decoder, the
``Error:`` rule, the typed errors) plus the few lines that touch the socket: open the
response (through the client's retry driver), read its chunks, close it. Import it from
[`langchain_bytez.client`][langchain_bytez.client].
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from langchain_bytez.errors import BytezError, BytezResponseTooLargeError
from langchain_bytez.limiter import Slot
from langchain_bytez.wire.stream import STREAMING_EXCEPTIONS, StreamCore

if TYPE_CHECKING:
    # Quoted in the base class: the client module imports this one.
    from langchain_bytez.clients._sync.client import BytezClient  # noqa: F401

__all__ = ["TextStream"]


class TextStream(StreamCore["BytezClient"]):
    """A streamed run: iterate it with ``for`` to get the model's text chunks.

    The request is sent on ``__enter__`` (or on first iteration), retried only until the
    response starts; a failed answer raises its typed error there. Iteration yields
    ``str`` chunks (multi-byte characters are never split) and raises
    [`BytezStreamError`][langchain_bytez.errors.BytezStreamError] if the body turns out to
    be an in-band ``Error: ...`` or the connection drops; a stream is never retried after
    text was delivered. Leaving the ``with`` block, the end of the loop or an error
    releases the connection; when you may break out of the loop, use ``with``
    (otherwise the connection is released only when the iterator is finalised).

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
        """Garbage-collected without close(): still give back the account's slot.

        The connection is given back too where no event loop is needed to close it
        (otherwise httpx closes it when its pool is collected).
        """
        with contextlib.suppress(Exception):  # nothing can be done in a finaliser
            self._release_slot()
            response = getattr(self, "_response", None)
            if response is not None:
                response.close()

    def close(self) -> None:
        """Release the connection and the account's concurrency slot (idempotent)."""
        self._closed = True
        response, self._response = self._response, None
        try:
            if response is not None:
                response.close()
        finally:
            self._release_slot()

    def _open_stream(self) -> httpx.Response:
        """One attempt: take a slot, send, return a 2xx response or raise its error."""
        client = self._client
        deadline = self._budget
        slot: Slot | None = client._acquire(self._call, deadline, self._next_attempt())
        error: BaseException | None = None
        try:
            response = client._send(self._call, deadline, client._stream_idle)
            if 200 <= response.status_code < 300:
                self._hold(slot, response)  # type: ignore[arg-type]
                slot = None
                return response
            try:
                body = (client._read(response, deadline, self.model_id)).content
            except BytezResponseTooLargeError:
                raise
            except BytezError:
                body = b""  # the status alone still says what happened
            error = client._stream_error(response, body, self.model_id)
        finally:
            self._give_back(slot, error)
        raise error

    def _ensure_open(self) -> None:
        if self._response is not None or not self._check_openable():
            return
        client = self._client
        response = client._with_retries(
            self._open_stream, self._call.label, self._on_retry, self._budget
        )
        if not self._started(response):
            self._response = response
            return
        failure: BytezError | None = None
        try:
            read = client._read(response, self._budget, self.model_id)
        except BytezError as exc:
            failure = self._json_broken(exc)
        finally:
            self._release_slot()
        if failure is not None:
            raise failure  # outside the except: see _caused_by
        self._prefetch_json(read.content, read)

    def _iterate(self) -> Iterator[str]:
        self._begin_iteration()
        chunks: Iterator[bytes] | None = None
        try:
            self._ensure_open()
            if self._prefetched is not None:
                if text := self._take_prefetched():
                    yield text
                return
            response = self._response
            if response is None:  # closed while opening
                return
            chunks = response.iter_raw() if self._raw else response.iter_bytes()
            failure: BaseException | None = None
            while not self._finished:
                try:
                    chunk = next(chunks, None)
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
            if isinstance(chunks, Generator):
                chunks.close()
            self.close()
