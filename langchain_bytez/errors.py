"""One error hierarchy for everything that can go wrong talking to Bytez.

Every class subclasses [`BytezError`][langchain_bytez.errors.BytezError] *and* the matching
``langchain_core.exceptions`` ``ModelError`` class, so code written against
LangChain's provider-neutral errors (``except ModelRateLimitError``) and code
written against this package (``except BytezRateLimitError``) both work.

Messages never contain the API key: errors are built from the status code and the
server's own message only, never from request headers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

__all__ = [
    "BytezAPIError",
    "BytezAuthenticationError",
    "BytezConcurrencyTimeoutError",
    "BytezConnectionError",
    "BytezError",
    "BytezInvalidRequestError",
    "BytezModelLoadError",
    "BytezNotFoundError",
    "BytezPaymentRequiredError",
    "BytezRateLimitError",
    "BytezResponseTooLargeError",
    "BytezStreamError",
    "BytezStreamTimeoutError",
    "BytezTimeoutError",
    "InvalidHeaderError",
    "InvalidModelIdError",
    "MissingAPIKeyError",
]


class BytezError(ModelError):
    """Base class of every error raised by ``langchain_bytez``.

    Subclasses that carry more (``retry_after``, ``delivered_text``...) name those
    attributes in ``_details``; they are passed to the constructor as keywords.

    Attributes:
        message: The server's message (or ours, for client-side failures).
        status_code: The HTTP status, when the failure came with a response.
        model_id: The Bytez model the request was for, when known.
        body: A short excerpt of the raw response body, for diagnosis.
        cause: The transport exception behind the failure, when there is one.
    """

    _details: ClassVar[frozenset[str]] = frozenset()
    """The extra keyword arguments (and attributes) of this class."""
    _default_status: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        model_id: str | None = None,
        body: str | None = None,
        retryable: bool | None = None,
        **details: Any,
    ) -> None:
        """Create the error.

        Args:
            message: What went wrong, in words a user can act on.
            status_code: The HTTP status of the failed response, if any.
            model_id: The Bytez model id the request was for, if any.
            body: An excerpt of the response body (kept short by the caller).
            retryable: Overrides the class's ``is_retryable``.
            **details: The class's extra attributes (see its ``_details``).

        Raises:
            TypeError: If ``details`` names an attribute the class does not have.
        """
        unknown = details.keys() - self._details
        if unknown:
            msg = f"{type(self).__name__} got unexpected keyword arguments {sorted(unknown)}"
            raise TypeError(msg)
        self.__dict__.update(details)
        if retryable is not None:
            self.is_retryable = retryable
        self.message = message
        self.status_code = status_code if status_code is not None else self._default_status
        self.model_id = model_id
        self.body = body
        self.cause: BaseException | None = None
        """The transport exception behind a connection, timeout or stream failure.

        Kept here rather than chained as ``__cause__`` (which would add dozens of lines
        of httpx internals to every traceback); ``None`` when there is none or when
        its text would reveal a key."""
        super().__init__(self._render())

    def _amend(self, note: str) -> None:
        """Add ``note`` to the message (a client-side reason, such as why no retry)."""
        self.message = f"{self.message}. {note}" if self.message else note
        self.args = (self._render(),)

    def _render(self) -> str:
        parts = []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.model_id:
            parts.append(f"model {self.model_id!r}")
        prefix = f"[{', '.join(parts)}] " if parts else ""
        return f"{prefix}{self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle support: rebuild through the keyword-only constructor."""
        # Keyword-only constructor arguments need help to survive pickling
        # (errors cross process boundaries in multiprocessing pools).
        return (
            _rebuild_error,
            (type(self), self.message, self.status_code, self.model_id, self.body),
            # The transport exception may hold unpicklable requests: it stays behind.
            {k: v for k, v in self.__dict__.items() if k != "cause"},
        )


def _rebuild_error(
    cls: type[BytezError],
    message: str,
    status_code: int | None,
    model_id: str | None,
    body: str | None,
) -> BytezError:
    error = cls.__new__(cls)
    BytezError.__init__(error, message, status_code=status_code, model_id=model_id, body=body)
    return error


class BytezAuthenticationError(BytezError, ModelAuthenticationError):
    """The API key was missing, malformed or refused (HTTP 401)."""


class MissingAPIKeyError(BytezAuthenticationError):
    """No API key was given and ``BYTEZ_API_KEY`` is not set (raised before any request)."""


class BytezPaymentRequiredError(BytezError, ModelPermissionDeniedError):
    """The account is out of credits (HTTP 402). Never retried."""


class BytezNotFoundError(BytezError, ModelNotFoundError):
    """The model (or cluster) does not exist (HTTP 404)."""


class BytezInvalidRequestError(BytezError, ModelInvalidRequestError):
    """The request was rejected as invalid, or the model raised (HTTP 400 / 422)."""


class InvalidModelIdError(BytezInvalidRequestError, ValueError):
    """A model id failed client-side validation; nothing was sent."""


class InvalidHeaderError(BytezInvalidRequestError, ValueError):
    """``default_headers`` cannot be sent as HTTP headers; raised at construction.

    Attributes:
        header: The name of the offending header (``""`` when the whole value is wrong).
    """

    _details = frozenset({"header"})
    header: str = ""


class BytezRateLimitError(BytezError, ModelRateLimitError):
    """Rate or concurrency limit exceeded (HTTP 429).

    Attributes:
        retry_after: Seconds the server asked us to wait (``Retry-After`` or
            ``ratelimit-reset``), or ``None`` when it did not say.
    """

    _details = frozenset({"retry_after"})
    _default_status = 429
    retry_after: float | None = None


class BytezAPIError(BytezError, ModelAPIError):
    """The server failed (HTTP 5xx), or answered with something that is not the API's.

    This also covers a 200 whose envelope carries an ``error`` and bodies that are not
    JSON (an HTML error page from a proxy); ``is_retryable`` tells them apart.

    Attributes:
        is_retryable: Whether retrying the same request may succeed: ``True`` for HTTP
            500/502/503/504 (gateway or capacity trouble), ``False`` for an error
            envelope or a non-JSON body on a 2xx, other 5xx and unexpected statuses
            (pass ``retryable=`` to say which).
        retry_after: Seconds the server asked us to wait (``Retry-After``), or ``None``
            when it did not say.
    """

    _details = frozenset({"retry_after"})
    retry_after: float | None = None


class BytezResponseTooLargeError(BytezAPIError):
    """A response was larger than the client accepts (``max_response_bytes``).

    Counted on the bytes after decompression, so a small compressed body that unpacks
    to gigabytes stops at the limit. Never retried: the same request would get the same
    answer. Raise the limit if such answers are expected.

    Attributes:
        limit: The limit in bytes that was exceeded.
        received: How many bytes had arrived when the client stopped reading.
    """

    is_retryable = False
    _details = frozenset({"retry_after", "limit", "received"})
    limit: int = 0
    received: int = 0


class BytezConnectionError(BytezError, ModelConnectionError):
    """The server could not be reached, or the connection broke before any answer."""


class BytezTimeoutError(BytezError, ModelTimeoutError):
    """The request timed out before the server answered."""


class BytezConcurrencyTimeoutError(BytezTimeoutError):
    """No concurrency slot became free before the call's deadline; nothing was sent.

    The account-wide limiter lets only so many requests to one Bytez account run at
    once (Bytez answers 429 beyond the account's limit); this call waited for a slot
    until its ``timeout`` ran out.

    Attributes:
        in_flight: Requests to the account in flight when the wait ended.
        limit: The number of requests the limiter allowed at once at that moment.
        waited: Seconds this call waited for a slot.
    """

    is_retryable = False
    _details = frozenset({"in_flight", "limit", "waited"})
    in_flight: int = 0
    limit: int = 0
    waited: float = 0.0


class BytezStreamError(BytezError, ModelAPIError):
    """A stream failed after it started: ``Error: ...`` in the body, or a dropped connection.

    Never retried: part of the text may already have been delivered, and a retry would
    deliver it twice.

    Attributes:
        delivered_text: The text delivered to the consumer before the failure.
        is_retryable: Always ``False``: a failed stream is never retried.
    """

    is_retryable = False
    _details = frozenset({"delivered_text"})
    delivered_text: str = ""


class BytezStreamTimeoutError(BytezStreamError, ModelTimeoutError):
    """A stream ran past its call's ``timeout``, or went quiet longer than allowed.

    The call's ``timeout`` is the total time a stream may take, from its request to its
    last chunk; ``stream_idle_timeout`` is the longest wait for the next chunk. Never
    retried; ``delivered_text`` holds what arrived before.
    """


class BytezModelLoadError(BytezError, ModelAPIError):
    """Loading a model's instances failed or did not finish before the deadline.

    Attributes:
        last_status: The last cluster status seen (a ``ClusterStatus``), if any.
        is_retryable: Always ``False``: the load already waited (and polled) up to its
            deadline, so an immediate retry would not help.
    """

    is_retryable = False
    _details = frozenset({"last_status"})
    last_status: object | None = None
