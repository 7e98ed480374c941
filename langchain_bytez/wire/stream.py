"""The state and rules of one streamed run, shared by ``TextStream`` and ``AsyncTextStream``.

Pure: the shells read bytes from the socket and hand them here. This core decodes them
([`StreamTextDecoder`][langchain_bytez.streaming.StreamTextDecoder]: UTF-8 and the
``Error:`` hold-back rule), keeps the transcript of what was delivered, reads a JSON
answer to a stream request (an error envelope, or a server that did not stream), and
builds the typed errors of a broken stream or an in-band failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from langchain_bytez import protocol
from langchain_bytez.errors import (
    BytezAPIError,
    BytezConnectionError,
    BytezError,
    BytezStreamError,
)
from langchain_bytez.limiter import Outcome, Slot
from langchain_bytez.streaming import StreamTextDecoder
from langchain_bytez.types import ResponseMeta
from langchain_bytez.wire.config import ClientCore, ReadResponse
from langchain_bytez.wire.deadline import BodyReader, Deadline
from langchain_bytez.wire.endpoints import stream_call
from langchain_bytez.wire.outputs import text_of_output

if TYPE_CHECKING:
    from langchain_bytez.wire.retry import OnRetry

__all__ = ["StreamCore"]

STREAMING_EXCEPTIONS = (httpx.TransportError, httpx.DecodingError)
"""What a body read raises when the connection breaks mid-stream."""


class _Transcript:
    """The text a stream delivered, kept as UTF-8 in one buffer.

    A list of the chunks would cost ~60 bytes of object overhead per token (about 8 MB
    for a 1 MB answer); the buffer costs the text's size. ``surrogatepass`` keeps any
    lone surrogate of a JSON answer, so :meth:`text` returns exactly what was appended.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def append(self, text: str) -> None:
        self._buffer += text.encode("utf-8", "surrogatepass")

    def text(self) -> str:
        return self._buffer.decode("utf-8", "surrogatepass")


def _is_json(response: httpx.Response) -> bool:
    return "application/json" in response.headers.get("content-type", "")


ClientT = TypeVar("ClientT", bound=ClientCore)


class StreamCore(Generic[ClientT]):
    """What a streamed run knows, whichever shell reads its bytes.

    Attributes:
        model_id: The Bytez model id.
        meta: The response metadata, once the response has started.
    """

    def __init__(
        self,
        client: ClientT,
        model_id: str,
        path: str,
        content: bytes,
        timeout: httpx.Timeout,
        on_retry: OnRetry | None,
    ) -> None:
        """Prepare the stream; the request is sent when it is entered or iterated.

        Args:
            client: The client that sends the request.
            model_id: The Bytez model id (already validated).
            path: The API path of the model.
            content: The encoded request body.
            timeout: The request timeout.
            on_retry: Per-call retry callback.
        """
        self.model_id = model_id
        self.meta: ResponseMeta | None = None
        self._client = client
        self._response: httpx.Response | None = None
        self._call = stream_call(model_id, path, content)
        self._timeout = timeout
        self._on_retry = on_retry
        self._delivered = _Transcript()
        self._decoder = StreamTextDecoder()
        self._finished = False
        self._prefetched: str | None = None
        self._status = 0
        self._closed = False
        self._iterated = False
        # Set when the request is sent: the call's deadline, the account slot held
        # until the stream is closed or exhausted, the bounded body reader.
        self._deadline: Deadline | None = None
        self._slot: Slot | None = None
        self._reader: BodyReader | None = None
        self._attempts = 0

    @property
    def text(self) -> str:
        """All text delivered so far."""
        return self._delivered.text()

    @property
    def closed(self) -> bool:
        """Whether the stream was closed (its connection is released)."""
        return self._closed

    # -- the shells' steps ---------------------------------------------------------------

    def _check_openable(self) -> bool:
        """Whether the request is still to be sent; raises if the stream was closed first.

        The shell also checks its own open response first. Starts the call's deadline.
        """
        if self._prefetched is not None:
            return False
        if self._closed:
            msg = "This Bytez stream is closed"
            raise RuntimeError(msg)
        if self._deadline is None:
            self._deadline = Deadline(self._timeout)
        return True

    @property
    def _budget(self) -> Deadline:
        deadline = self._deadline
        assert deadline is not None  # noqa: S101 - set by _check_openable
        return deadline

    def _next_attempt(self) -> bool:
        """Whether the attempt about to be made is a retry (it queues first for a slot)."""
        self._attempts += 1
        return self._attempts > 1

    def _hold(self, slot: Slot, response: httpx.Response) -> None:
        """The stream started: keep ``slot`` until it is closed; report the success."""
        slot.succeeded()
        self._slot = slot
        self._reader = self._client._body_reader(response, self.model_id)

    @property
    def _raw(self) -> bool:
        """Whether the body is read raw (decoded by the ``BodyReader``)."""
        return self._reader is None or self._reader.raw

    @staticmethod
    def _give_back(slot: Slot | None, error: BaseException | None) -> None:
        if slot is not None:
            slot.release(Outcome.FAILED if error is None else Outcome.of(error))

    def _release_slot(self) -> None:
        """Give the account slot back (idempotent; safe in a finaliser)."""
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release(Outcome.OK)

    def _feed(self, raw: bytes | None) -> str:
        """Text of the next raw body chunk (``None``: the body ended), within the budgets.

        Raises:
            BytezResponseTooLargeError: When the stream passes ``max_response_bytes``.
            BytezStreamTimeoutError: When the call's deadline passed.
        """
        reader = self._reader
        assert reader is not None  # noqa: S101 - set when the stream started
        if raw is not None and self._budget.expired:
            # Checked before decoding: delivered_text is exactly what was yielded.
            raise self._budget.stream_error(self.model_id, self.text, self._status, None)
        pieces = reader.feed(raw) if raw is not None else reader.finish()
        text = ""
        for piece in pieces:
            if self._finished:
                break  # an in-band error ended the stream
            text += self._decode(piece)
        if raw is None and not self._finished:
            text += self._decode(None)
        return text

    def _started(self, response: httpx.Response) -> bool:
        """Record a 2xx response; return whether its body must be read whole (JSON)."""
        self.meta = ResponseMeta.from_headers(response.headers, response.status_code)
        self._status = response.status_code
        return _is_json(response)

    def _begin_iteration(self) -> None:
        if self._iterated:
            msg = "A Bytez stream can only be iterated once"
            raise RuntimeError(msg)
        if self._closed:
            msg = "This Bytez stream is closed"
            raise RuntimeError(msg)
        self._iterated = True

    def _take_prefetched(self) -> str:
        text = self._prefetched or ""
        if text:
            self._delivered.append(text)
        return text

    def _decode(self, chunk: bytes | None) -> str:
        """Text of the next body chunk (``None``: the body ended), added to the transcript.

        Sets ``_finished`` when nothing more is to be read: the body ended, or it
        turned out to be an in-band ``Error:`` (raise it with ``_raise_in_band``).
        """
        decoder = self._decoder
        if chunk is None:
            text = decoder.finish()
            self._finished = True
        else:
            text = decoder.feed(chunk)
            if not text and decoder.error is not None:
                text = decoder.finish()
                self._finished = True
        if text:
            self._delivered.append(text)
        return text

    def _raise_in_band(self) -> None:
        """Raise the in-band failure the body ended with, if it did."""
        if self._decoder.error is not None:
            raise self._in_band_error(self._decoder.error)

    # -- errors --------------------------------------------------------------------------

    def _broken(self, exc: BaseException) -> BytezStreamError:
        # Raise the result outside the except block that caught exc (see _caused_by).
        client = self._client
        delivered = self.text
        if isinstance(exc, httpx.TimeoutException):
            budget = self._budget
            idle = None if budget.expired else client._stream_idle or budget.total
            late = budget.stream_error(self.model_id, delivered, self._status, idle)
            return client._caused_by(late, exc)
        detail = client._redact(str(exc)) or type(exc).__name__
        message = (
            f"The stream broke after {len(delivered)} characters "
            f"({type(exc).__name__}: {detail}); the text is incomplete"
        )
        error = BytezStreamError(
            message, status_code=self._status, model_id=self.model_id, delivered_text=delivered
        )
        return client._caused_by(error, exc)

    def _json_broken(self, error: BytezError) -> BytezError:
        """A JSON answer to a stream request cut short is a broken stream, as before."""
        if not isinstance(error, BytezConnectionError):
            return error
        broken = BytezStreamError(
            f"The stream broke before its answer was complete: {error.message}",
            status_code=self._status,
            model_id=self.model_id,
            delivered_text="",
        )
        broken.cause = error.cause
        broken.__suppress_context__ = True
        return broken

    def _in_band_error(self, message: str) -> BytezStreamError:
        text = self._client._redact(message)
        return BytezStreamError(
            f"The model failed while streaming: {text}",
            status_code=self._status,
            model_id=self.model_id,
            body=protocol.excerpt(text, 500),
            delivered_text=self.text,
        )

    def _prefetch_json(self, body: bytes, response: ReadResponse) -> None:
        # A JSON answer to a stream request: either an error envelope (raise it, never
        # stream it as text) or a server that did not stream (deliver its text at once).
        redact: Callable[[str], str] = self._client._redact
        try:
            output, _ = protocol.parse_envelope(response, self.model_id, redact=redact)
        except BytezAPIError:
            # Only a body that is no JSON at all is a mislabelled text stream. An error
            # envelope (even one whose message says "JSON") or truncated JSON is an
            # error: never deliver it to the consumer as model text.
            if body.lstrip()[:1] in (b"{", b"["):
                raise
            # Not JSON after all: a text stream under the wrong label, so the stream
            # rules apply, the in-band "Error: " included.
            decoder = StreamTextDecoder()
            text = decoder.feed(body) + decoder.finish()
            if decoder.error is not None:
                raise self._in_band_error(decoder.error) from None
            self._prefetched = text
            return
        self._prefetched = text_of_output(output, self.model_id, expected="a text stream")
