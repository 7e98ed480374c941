"""Client configuration and the pure plumbing both client shells share: no I/O.

Resolving the key, base URL and timeout; the request headers; redacting secrets from
server text; turning an ``httpx`` transport exception into the typed error; the
parsed-URL cache. [`ClientCore`][langchain_bytez.wire.config.ClientCore] is the base of
[`BytezClient`][langchain_bytez.client.BytezClient] and
[`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient].
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import math
import os
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import tenacity
from pydantic import SecretStr

from langchain_bytez import protocol
from langchain_bytez.errors import (
    BytezConnectionError,
    BytezError,
    BytezTimeoutError,
    MissingAPIKeyError,
)
from langchain_bytez.limiter import Outcome, Slot, account_limiter
from langchain_bytez.types import ResponseMeta
from langchain_bytez.wire import headers as wire_headers
from langchain_bytez.wire.deadline import ACCEPT_ENCODING, BodyReader, Deadline, concurrency_timeout
from langchain_bytez.wire.endpoints import Answer, Call
from langchain_bytez.wire.retry import OnRetry, RetryLoop

if TYPE_CHECKING:
    from langchain_bytez.clients.redirects import AsyncRedirectGuard, RedirectGuard

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_STREAM_IDLE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "AsyncTransport",
    "ClientCore",
    "plain_http_warned",
    "resolve_async_transport",
    "warn_if_plain_http",
]

logger = logging.getLogger("langchain_bytez")

_E = TypeVar("_E", bound=BaseException)
_MAX_CACHED_URLS = 1024

DEFAULT_BASE_URL = "https://api.bytez.com"
"""API root used when neither ``base_url`` nor ``BYTEZ_BASE_URL`` is set."""

API_KEY_ENV = "BYTEZ_API_KEY"
"""Environment variable the API key is read from when none is passed."""

BASE_URL_ENV = "BYTEZ_BASE_URL"
"""Environment variable the API root is read from when no ``base_url`` is passed."""

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=600.0)
"""Default timeout: each call ends within 10 minutes, connecting within 10 seconds.

The ``read`` value is the call's total deadline (queue, connect, server, body, retry
waits), and bounds each read. Cold starts hold a run open for minutes; connecting
should be quick."""

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""Largest answer read (64 MiB), counted after decompression; streams included."""

DEFAULT_STREAM_IDLE_TIMEOUT = 120.0
"""Longest wait, in seconds, for a stream's next chunk once it has started."""

DEFAULT_LIMITS = httpx.Limits(
    max_connections=400, max_keepalive_connections=32, keepalive_expiry=5.0
)
"""Connection-pool limits of the package's own clients: 400 open, 32 kept idle for 5 s.

400 is the largest concurrency a Bytez account allows (the server answers 429 beyond
it), so the cap never queues a request the account could serve, while a runaway fan-out
cannot open thousands of sockets. Few idle connections: httpcore's pool walks its idle
connections on every request, and with 100 of them 128 concurrent streams took 5-8x one
stream instead of about 2x (docs/performance.md)."""

AsyncTransport = Literal["auto", "httpx", "aiohttp"]
"""Which transport the package's own async clients use (``async_transport=``).

``"aiohttp"``: ``httpx-aiohttp``'s ``AiohttpTransport`` (``pip install
'langchain-bytez[aiohttp]'``), which stays flat under hundreds of concurrent streams;
``"httpx"``: httpx's default pool; ``"auto"`` (default): aiohttp when it is installed and
no proxy is configured in the environment (that transport ignores ``HTTP(S)_PROXY``),
httpx otherwise. An injected ``http_async_client`` is always used as it is."""

_ASYNC_TRANSPORTS = ("auto", "httpx", "aiohttp")


def _aiohttp_available() -> bool:
    try:
        import httpx_aiohttp  # noqa: F401, PLC0415 - optional extra, imported on demand
    except ImportError:
        return False
    return True


def resolve_async_transport(choice: str, base_url: str) -> Literal["httpx", "aiohttp"]:
    """The transport an async client of ``base_url`` uses for ``async_transport=choice``.

    Args:
        choice: ``"auto"``, ``"httpx"`` or ``"aiohttp"``.
        base_url: The API root (its scheme decides which proxy variable matters).

    Returns:
        ``"httpx"`` or ``"aiohttp"``.

    Raises:
        ValueError: If ``choice`` is none of the three.
        ImportError: If ``"aiohttp"`` was asked for and ``httpx-aiohttp`` is missing.
    """
    if choice not in _ASYNC_TRANSPORTS:
        msg = f"async_transport must be one of {_ASYNC_TRANSPORTS}, got {choice!r}"
        raise ValueError(msg)
    if choice == "httpx":
        return "httpx"
    available = _aiohttp_available()
    if choice == "aiohttp":
        if not available:
            msg = (
                "async_transport='aiohttp' needs the httpx-aiohttp package: "
                "pip install 'langchain-bytez[aiohttp]' (or use async_transport='httpx')"
            )
            raise ImportError(msg)
        return "aiohttp"
    proxies = urllib.request.getproxies()
    scheme = httpx.URL(base_url).scheme
    if proxies.get(scheme) or proxies.get("all"):
        return "httpx"  # httpx honours the proxy variables; AiohttpTransport does not
    return "aiohttp" if available else "httpx"


# Set while a LangChain object builds its client: the object warned at construction.
_PLAIN_HTTP_WARNED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "langchain_bytez_plain_http_warned", default=False
)


@contextlib.contextmanager
def plain_http_warned() -> Iterator[None]:
    """Clients created inside do not repeat the plain-http warning (already given)."""
    token = _PLAIN_HTTP_WARNED.set(True)
    try:
        yield
    finally:
        _PLAIN_HTTP_WARNED.reset(token)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this package, pydantic and LangChain."""
    frame = sys._getframe(1)  # the warning must point at the user's line
    level = 1
    internal = ("langchain_bytez", "pydantic", "langchain_core", "langchain.", "functools")
    while frame is not None and frame.f_globals.get("__name__", "").startswith(internal):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def warn_if_plain_http(base_url: str) -> None:
    """Warn (once per call site) when the key would travel unencrypted to another host.

    Args:
        base_url: The resolved API root.
    """
    if _PLAIN_HTTP_WARNED.get():
        return
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        return  # refused elsewhere with its own message
    if url.scheme == "http" and not protocol.is_loopback_host(url.host):
        warnings.warn(
            f"Bytez base_url {base_url!r} uses plain http://: the API key would "
            "travel unencrypted. Use https:// for anything but a local server.",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )


def _resolve_api_key(api_key: str | SecretStr | None) -> str:
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV)
    # A trailing newline from a key file is a common copy-paste accident.
    key = (api_key or "").strip()
    if not key:
        msg = (
            f"No Bytez API key: pass api_key=... or set the {API_KEY_ENV} environment "
            "variable (keys are at https://bytez.com/api)."
        )
        raise MissingAPIKeyError(msg)
    return key


def _resolve_base_url(base_url: str | None) -> str:
    raw = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        msg = f"base_url is not a valid URL: {exc}"
        raise ValueError(msg) from None
    if url.scheme not in {"http", "https"} or not url.host:
        msg = f"base_url must be an http(s) URL with a host, got {raw!r}"
        raise ValueError(msg)
    if url.userinfo:
        # It would show in repr() and logs; credentials belong in api_key.
        msg = "base_url must not contain user info; pass credentials as api_key"
        raise ValueError(msg)
    if url.query or url.fragment:
        msg = f"base_url must not have a query or fragment, got {raw!r}"
        raise ValueError(msg)
    # SDKs and docs quote the base URL with the route prefix
    # ("https://api.bytez.com/models/v2"); both forms name the same API root.
    if url.path.rstrip("/").endswith(protocol.API_PREFIX):
        raw = raw[: len(raw) - len(protocol.API_PREFIX)].rstrip("/")
    return raw


def _to_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Normalise a timeout.

    A number ``t`` means: the whole call within ``t`` seconds, connecting within
    ``min(10, t)``. An ``httpx.Timeout`` keeps its phases; its ``read`` value is also the
    call's total deadline (``read=None``: no total limit).
    """
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        msg = f"timeout must be a number of seconds or an httpx.Timeout, got {timeout!r}"
        raise TypeError(msg)
    if not timeout > 0 or math.isinf(timeout):
        msg = f"timeout must be a positive, finite number of seconds, got {timeout!r}"
        raise ValueError(msg)
    seconds = float(timeout)
    return httpx.Timeout(connect=min(10.0, seconds), read=seconds, write=seconds, pool=seconds)


def _positive(name: str, value: float | None, *, integer: bool = False) -> Any:
    if value is None:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        msg = f"{name} must be {what} or None, got {value!r}"
        raise ValueError(msg)
    if not integer and math.isinf(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class ReadResponse:
    """A response whose body was read within the call's budgets (``ResponseLike``).

    Attributes:
        status_code: The HTTP status.
        headers: The response headers.
        content: The decoded body.
    """

    status_code: int
    headers: httpx.Headers
    content: bytes


def _secret_value(value: str | SecretStr | None) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    value = (value or "").strip()
    return value or None


class ClientCore:
    """Configuration, headers, retry policy and error plumbing shared by both clients."""

    def __init__(
        self,
        api_key: str | SecretStr | None,
        *,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        max_retry_wait: float,
        default_headers: Mapping[str, str] | None,
        provider_key: str | SecretStr | None,
        on_retry: OnRetry | None,
        injected: bool,
        max_concurrent_requests: int | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        stream_idle_timeout: float | None = DEFAULT_STREAM_IDLE_TIMEOUT,
    ) -> None:
        """Resolve and check the settings (see ``BytezClient`` for each argument).

        Args:
            api_key: The key, or ``None`` for ``BYTEZ_API_KEY``.
            base_url: The API root, or ``None`` for ``BYTEZ_BASE_URL`` or the default.
            timeout: Seconds or an ``httpx.Timeout``; ``None`` for the default.
            max_retries: Retries after the first attempt.
            max_retry_wait: Longest single wait between attempts, in seconds.
            default_headers: Extra headers for every request.
            provider_key: A closed-source provider's key.
            on_retry: Called before each retry sleep.
            injected: Whether the caller supplied the ``httpx`` client.
            max_concurrent_requests: Most model runs in flight to the account at once
                from this client (``None``: learned from 429 answers).
            max_response_bytes: Largest answer read, after decompression.
            stream_idle_timeout: Longest wait for a stream's next chunk, in seconds
                (``None``: only the call's timeout).

        Raises:
            MissingAPIKeyError: If there is no key.
            ValueError: If a setting is invalid.
        """
        key = _resolve_api_key(api_key)
        provider = _secret_value(provider_key)
        self._api_key = SecretStr(key)
        self._base_url = _resolve_base_url(base_url)
        self._timeout = _to_timeout(timeout)
        self._policy = protocol.RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait)
        extra = wire_headers.check_default_headers(default_headers)
        headers = protocol.build_headers(key, provider_key=provider, default_headers=extra)
        if not any(name.lower() == "content-type" for name in headers):
            # Case-insensitive: a caller's "content-type" must not become a second header.
            headers["Content-Type"] = "application/json"
        self._headers = headers
        # Our own httpx client carries the headers itself; an injected one gets them per
        # request (its own default headers stay as the caller set them).
        self._request_headers: dict[str, str] | None = headers if injected else None
        # Credentials in default_headers (X-Api-Key, Cookie...) are secrets like the key.
        # Very short secrets would redact ordinary words; they are not worth hiding.
        candidates = [
            key,
            provider,
            *(v for n, v in extra.items() if wire_headers.is_secret_header(n)),
        ]
        self._secrets = tuple(s for s in candidates if s is not None and len(s) >= 6)
        self._secret_re = wire_headers.secret_pattern(self._secrets)
        self._on_retry = on_retry
        self._cache_key = (self._base_url, hashlib.sha256(key.encode()).hexdigest()[:16])
        # One limiter per account (base URL and key): every client, model, thread and
        # loop of this process shares it (Bytez limits concurrency per account).
        self._max_concurrent: int | None = _positive(
            "max_concurrent_requests", max_concurrent_requests, integer=True
        )
        self._limiter = account_limiter(self._cache_key)
        if self._max_concurrent is not None:
            self._limiter.allow_cap(self._max_concurrent)
        self._max_response_bytes: int = _positive(
            "max_response_bytes", max_response_bytes, integer=True
        )
        if self._max_response_bytes is None:
            msg = "max_response_bytes must be a positive integer"
            raise ValueError(msg)
        self._stream_idle: float | None = _positive("stream_idle_timeout", stream_idle_timeout)
        self._own_encoding = not any(name.lower() == "accept-encoding" for name in self._headers)
        # Parsed request URLs by path (see _url): parsing costs more than the rest of
        # building a request, and one client only ever uses a few paths.
        self._urls: dict[str, httpx.URL] = {}
        url = httpx.URL(self._base_url)
        self._origin = (url.scheme, url.host, url.port)
        warn_if_plain_http(self._base_url)

    @staticmethod
    def _check_http_client(candidate: object, expected: type) -> None:
        # Checked at run time: the annotations are not enforced.
        if candidate is not None and not isinstance(candidate, expected):
            got = type(candidate).__name__
            msg = f"http_client must be an httpx.{expected.__name__}, got {got}"
            raise TypeError(msg)

    @property
    def base_url(self) -> str:
        """The API root, such as ``https://api.bytez.com`` (no trailing slash)."""
        return self._base_url

    @property
    def cache_key(self) -> tuple[str, str]:
        """``(base_url, fingerprint)``: identifies the account without holding the key.

        The fingerprint is the first 16 hex digits of the key's SHA-256.
        """
        return self._cache_key

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self._policy.max_retries

    @property
    def timeout(self) -> httpx.Timeout:
        """The default timeout of every call (``read`` is the total deadline)."""
        return self._timeout

    @property
    def max_concurrent_requests(self) -> int | None:
        """This client's cap on model runs in flight to the account (``None``: learned)."""
        return self._max_concurrent

    @property
    def concurrency_limit(self) -> int:
        """Model runs this client may have in flight to the account right now.

        The account limiter's learned limit, or ``max_concurrent_requests`` if lower.
        """
        return self._limiter.limit_for(self._max_concurrent)

    @property
    def max_response_bytes(self) -> int:
        """Largest answer read, in bytes after decompression."""
        return self._max_response_bytes

    def __repr__(self) -> str:
        """Show the base URL only: never the key."""
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    def __getstate__(self) -> None:
        """Refuse pickling: a pickle would carry the key, and sockets do not pickle."""
        msg = f"{type(self).__name__} cannot be pickled; create a new client instead"
        raise TypeError(msg)

    # -- helpers ----------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        # The secrets and their encoded echoes (URL-encoded, JSON-escaped, base64).
        return text if self._secret_re is None else self._secret_re.sub("***", text)

    def _reveals(self, text: str) -> bool:
        return self._secret_re is not None and self._secret_re.search(text) is not None

    def _keeps_keys(self, url: httpx.URL) -> bool:
        """Whether a redirect target is our own origin (or its https upgrade)."""
        scheme, host, port = self._origin
        if url.host != host:
            return False
        if url.scheme == scheme:
            return url.port == port
        return scheme == "http" and url.scheme == "https" and port is None and url.port is None

    def _next_hop(
        self, response: httpx.Response, follow: bool, hops: int, max_hops: int
    ) -> httpx.Request | None:
        """The redirect of an injected client to follow next, if any, keys removed off-host.

        httpx itself keeps ``provider-key`` (and custom credential headers) on a
        cross-origin redirect; here every credential header is dropped unless the target
        is the configured origin.

        Raises:
            httpx.TooManyRedirects: After ``max_hops`` redirects.
        """
        request = response.next_request
        if request is None or not follow:
            return None
        if hops >= max_hops:
            msg = f"Exceeded maximum allowed redirects ({max_hops})."
            raise httpx.TooManyRedirects(msg, request=request)
        if not self._keeps_keys(request.url):
            for name in [n for n in request.headers if wire_headers.is_secret_header(n)]:
                del request.headers[name]
        return request

    @staticmethod
    def _scrubbed(request: httpx.Request) -> httpx.Request:
        """A copy of a failed request without credential values (nor body) to keep."""
        headers = [
            (name, "[redacted]" if wire_headers.is_secret_header(name) else value)
            for name, value in request.headers.items()
        ]
        return httpx.Request(request.method, request.url, headers=headers)

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base_url + path)
            if len(self._urls) < _MAX_CACHED_URLS:  # bounded: paths embed model ids
                self._urls[path] = url
        return url

    def _call_timeout(self, timeout: float | httpx.Timeout | None) -> httpx.Timeout:
        return self._timeout if timeout is None else _to_timeout(timeout)

    def _deadline(self, timeout: float | httpx.Timeout | None) -> Deadline:
        """The call's deadline, started now."""
        return Deadline(self._call_timeout(timeout))

    def _request(
        self,
        http: httpx.Client | httpx.AsyncClient | RedirectGuard | AsyncRedirectGuard,
        call: Call[Any],
        deadline: Deadline,
    ) -> httpx.Request:
        """The request of ``call``, its timeouts cut to the time left of ``deadline``."""
        request = self._build_request(http, call, deadline.timeout(call.model_id))
        if self._own_encoding:
            # Only encodings BodyReader decompresses in bounded steps.
            request.headers["Accept-Encoding"] = ACCEPT_ENCODING
        return request

    @staticmethod
    def _slot_wait(deadline: Deadline) -> float | None:
        remaining = deadline.remaining()
        return None if math.isinf(remaining) else remaining

    def _no_slot(self, call: Call[Any], waited: float | None) -> BytezError:
        limiter, cap = self._limiter, self._max_concurrent
        return concurrency_timeout(limiter, cap, waited or 0.0, call.model_id)

    @staticmethod
    @contextmanager
    def _holding(slot: Slot | None) -> Iterator[None]:
        """Release ``slot`` (if any) after the attempt, reporting how it went."""
        outcome = Outcome.FAILED
        try:
            yield
            outcome = Outcome.OK
        except BytezError as exc:
            outcome = Outcome.of(exc)
            raise
        finally:
            if slot is not None:
                slot.release(outcome)

    def _body_reader(self, response: httpx.Response, model_id: str | None) -> BodyReader:
        encoding = response.headers.get("content-encoding", "")
        read = response.is_stream_consumed
        return BodyReader(self._max_response_bytes, encoding, model_id, read=read)

    def _body_read(
        self, response: httpx.Response, reader: BodyReader, deadline: Deadline
    ) -> ReadResponse:
        """The read response, or the typed error of the transport failure that cut it."""
        if reader.failure is not None:
            raise self._read_failure(reader.failure, deadline, reader.model_id)
        return ReadResponse(response.status_code, response.headers, reader.content())

    def _read_failure(
        self, exc: httpx.HTTPError, deadline: Deadline, model_id: str | None
    ) -> BytezError:
        """The typed error of a failed send or body read (the deadline's, if it ran out)."""
        if isinstance(exc, httpx.TimeoutException) and deadline.expired:
            return self._caused_by(deadline.error(model_id), exc)
        return self._transport_error(exc, model_id)

    def _transport_error(self, exc: httpx.HTTPError, model_id: str | None) -> BytezError:
        detail = self._redact(str(exc)) or type(exc).__name__
        error: BytezError
        if isinstance(exc, httpx.TimeoutException):
            message = f"Request to Bytez timed out ({type(exc).__name__}): {detail}"
            error = BytezTimeoutError(message, model_id=model_id)
        else:
            message = f"Could not reach Bytez at {self._base_url} ({type(exc).__name__}): {detail}"
            error = BytezConnectionError(message, model_id=model_id)
            if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
                # Our own request is at fault; sending it again cannot help.
                error.is_retryable = False
        return self._caused_by(error, exc)

    def _caused_by(self, error: _E, exc: BaseException) -> _E:
        """Keep ``exc`` as ``error.cause`` unless its text carries a secret.

        The transport exception is an attribute, not a ``__cause__`` chain: chained, it
        would print some 60 lines of httpx and httpcore internals above the one line
        that says what failed (its message is already in ``error``'s).

        Raise the result *outside* the ``except`` block that caught ``exc``: raised
        inside it, Python would keep ``exc`` as ``__context__`` anyway, where traceback
        walkers (and ``format_exception`` callers ignoring ``__suppress_context__``)
        would find the unredacted text.
        """
        if not self._reveals(str(exc)):
            # The failed request is still attached to the exception, with the keys in
            # its headers: keep a scrubbed copy instead (exc.request raises when unset).
            if isinstance(exc, httpx.HTTPError) and exc._request is not None:
                exc.request = self._scrubbed(exc._request)
            if isinstance(error, BytezError):
                error.cause = exc
            else:
                error.__cause__ = exc
        error.__suppress_context__ = True
        return error

    def _build_request(
        self,
        http: httpx.Client | httpx.AsyncClient | RedirectGuard | AsyncRedirectGuard,
        call: Call[Any],
        timeout: httpx.Timeout,
    ) -> httpx.Request:
        return http.build_request(
            call.method,
            self._url(call.path),
            content=call.content,
            params=call.params,
            headers=self._request_headers,
            timeout=timeout,
        )

    @staticmethod
    def _clock() -> float | None:
        """A start time for the request's debug log line, if debug logging is on."""
        return time.perf_counter() if logger.isEnabledFor(logging.DEBUG) else None

    def _answer(self, response: ReadResponse, model_id: str | None) -> Answer:
        """The envelope of a read response, or its typed error (raised)."""
        output, provider = protocol.parse_envelope(response, model_id, redact=self._redact)
        meta = ResponseMeta.from_headers(response.headers, response.status_code)
        return Answer(output, provider, meta)

    def _stream_error(self, response: httpx.Response, body: bytes, model_id: str) -> BytezError:
        """The typed error of a stream request answered with a non-2xx ``body``."""
        return protocol.error_from_response(
            response.status_code, response.headers, body, model_id, redact=self._redact
        )

    def _arrived(
        self,
        call: Call[Any],
        sent: tuple[httpx.Request, float | None],
        response: httpx.Response,
        deadline: Deadline,
        idle: float | None,
    ) -> httpx.Response:
        """A response's head arrived: log it; its body's reads are cut to the time left.

        Args:
            call: The call sent.
            sent: The request and when it was sent (``None`` when not timed).
            response: The response, its body still to be read.
            deadline: The call's deadline.
            idle: The longest wait for a chunk of a stream's body, if any.

        Returns:
            ``response``.
        """
        request, started = sent
        if started is not None:
            elapsed = (time.perf_counter() - started) * 1000
            logger.debug(
                "Bytez %s -> HTTP %d in %.1f ms", call.label, response.status_code, elapsed
            )
        deadline.body_timeouts(request, idle)
        return response

    def _retry_loop(
        self,
        first: BytezError,
        label: str,
        on_retry: OnRetry | None,
        retrying: type[tenacity.BaseRetrying],
    ) -> RetryLoop | None:
        """The retry loop after the first attempt failed with ``first``, if a retry is due.

        Built only after a retryable failure: the happy path creates no retry object.
        """
        if self._policy.max_retries == 0 or not self._policy.should_retry(first):
            return None
        return RetryLoop(self._policy, label, (self._on_retry, on_retry), retrying=retrying)
