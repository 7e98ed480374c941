"""Sync and async clients for the Bytez HTTP API, over one pooled ``httpx`` client each.

[`BytezClient`][langchain_bytez.client.BytezClient] and
[`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient] offer the same methods (the async
ones are coroutines): run a model, stream its text, read the catalogue, and manage a
model's instance cluster. Both build their requests and read their answers with
[`langchain_bytez.protocol`][langchain_bytez.protocol], so they differ only in I/O.

Retries: failures whose error ``is_retryable`` (429, 500/502/503/504, connection
failures and timeouts before any answer) are retried up to ``max_retries`` times,
waiting as long as the server asked (``Retry-After``, ``ratelimit-reset`` on a 429) or
with jittered exponential backoff. The first attempt is made directly; a tenacity loop
is only built after a retryable failure, so the happy path pays nothing for retries.
A stream is retried only until its response starts; never after text was delivered.

Secrets: the key is kept as a ``pydantic.SecretStr``, sent only in the
``Authorization`` header, and removed from every error message; ``repr`` shows the base
URL only, and ``cache_key`` carries a fingerprint, never the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import threading
import time
import warnings
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import tenacity
from pydantic import SecretStr, ValidationError

from langchain_bytez import protocol
from langchain_bytez.errors import (
    BytezAPIError,
    BytezConnectionError,
    BytezError,
    BytezNotFoundError,
    BytezStreamError,
    BytezTimeoutError,
    MissingAPIKeyError,
)
from langchain_bytez.streaming import StreamTextDecoder
from langchain_bytez.types import Capacity, ClusterStatus, ModelInfo, ResponseMeta, RunResult

if TYPE_CHECKING:
    from langchain_bytez.manager import AsyncModelHandle, ModelHandle

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AsyncBytezClient",
    "AsyncTextStream",
    "BytezClient",
    "OnRetry",
    "TextStream",
]

DEFAULT_BASE_URL = "https://api.bytez.com"
"""API root used when neither ``base_url`` nor ``BYTEZ_BASE_URL`` is set."""

API_KEY_ENV = "BYTEZ_API_KEY"
"""Environment variable the API key is read from when none is passed."""

BASE_URL_ENV = "BYTEZ_BASE_URL"
"""Environment variable the API root is read from when no ``base_url`` is passed."""

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=600.0)
"""Default request timeout: reads wait up to 10 minutes, connecting up to 10 seconds.

Cold starts hold a run open for minutes; connecting should be quick. ``pool`` only
matters with a connection cap (ours has none)."""

DEFAULT_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100)
"""Connection-pool limits: no cap on open connections, up to 100 idle ones kept.

Bytez accounts allow up to 400 concurrent requests and the server answers 429 beyond
that, so the client does not cap them itself."""

OnRetry = Callable[[tenacity.RetryCallState], None]
"""Callback invoked before each retry sleep, with tenacity's state."""

logger = logging.getLogger("langchain_bytez")
"""The package logger, ``logging.getLogger("langchain_bytez")``.

Request timings go to ``DEBUG``, retries and other recovered problems to
``INFO``/``WARNING``."""

_T = TypeVar("_T")
_E = TypeVar("_E", bound=BaseException)
_LIST_MODELS = f"{protocol.API_PREFIX}/list/models"
_LIST_TASKS = f"{protocol.API_PREFIX}/list/tasks"
_LIST_CLUSTERS = f"{protocol.API_PREFIX}/list/clusters"
_REQUEST_PREFIX = f"{protocol.API_PREFIX}/request/"
_STREAMING_EXCEPTIONS = (httpx.TransportError, httpx.DecodingError)
_MAX_CACHED_URLS = 1024


# Module-level so tests (and callers who must not block) can patch the retry sleeps.
def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


# ---------------------------------------------------------------------------------------
# Configuration shared by both clients


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

    A number ``t`` means: connect within ``min(10, t)`` seconds, then allow ``t`` seconds
    for each read, write and pool wait (httpx timeouts are per phase, not per request).
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


def _secret_value(value: str | SecretStr | None) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    value = (value or "").strip()
    return value or None


class _ClientBase:
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
    ) -> None:
        key = _resolve_api_key(api_key)
        provider = _secret_value(provider_key)
        self._api_key = SecretStr(key)
        self._base_url = _resolve_base_url(base_url)
        self._timeout = _to_timeout(timeout)
        self._policy = protocol.RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait)
        headers = protocol.build_headers(
            key, provider_key=provider, default_headers=default_headers
        )
        if not any(name.lower() == "content-type" for name in headers):
            # Case-insensitive: a caller's "content-type" must not become a second header.
            headers["Content-Type"] = "application/json"
        self._headers = headers
        # Our own httpx client carries the headers itself; an injected one gets them per
        # request (its own default headers stay as the caller set them).
        self._request_headers: dict[str, str] | None = headers if injected else None
        # Very short secrets would redact ordinary words; they are not worth hiding.
        self._secrets = tuple(s for s in (key, provider) if s is not None and len(s) >= 6)
        self._on_retry = on_retry
        self._cache_key = (self._base_url, hashlib.sha256(key.encode()).hexdigest()[:16])
        # Parsed request URLs by path (see _url): parsing costs more than the rest of
        # building a request, and one client only ever uses a few paths.
        self._urls: dict[str, httpx.URL] = {}
        url = httpx.URL(self._base_url)
        if url.scheme == "http" and not protocol.is_loopback_host(url.host):
            warnings.warn(
                f"Bytez base_url {self._base_url!r} uses plain http://: the API key would "
                "travel unencrypted. Use https:// for anything but a local server.",
                UserWarning,
                stacklevel=3,
            )

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
        """The default timeout of every request."""
        return self._timeout

    def __repr__(self) -> str:
        """Show the base URL only: never the key."""
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    def __getstate__(self) -> None:
        # A pickle would carry the key in the clear, and pooled sockets do not pickle.
        msg = f"{type(self).__name__} cannot be pickled; create a new client instead"
        raise TypeError(msg)

    # -- helpers ----------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base_url + path)
            if len(self._urls) < _MAX_CACHED_URLS:  # bounded: paths embed model ids
                self._urls[path] = url
        return url

    def _call_timeout(self, timeout: float | httpx.Timeout | None) -> httpx.Timeout:
        return self._timeout if timeout is None else _to_timeout(timeout)

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
        text = str(exc)
        if not any(secret in text for secret in self._secrets):
            if isinstance(error, BytezError):
                error.cause = exc
            else:
                error.__cause__ = exc
        error.__suppress_context__ = True
        return error

    def _log_response(self, method: str, path: str, status: int, started: float) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        logger.debug("Bytez %s %s -> HTTP %d in %.1f ms", method, path, status, elapsed)

    def _before_sleep(
        self, method: str, path: str, on_retry: OnRetry | None
    ) -> Callable[[tenacity.RetryCallState], None]:
        def hook(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            status = getattr(error, "status_code", None)
            logger.warning(
                "Bytez %s %s failed (attempt %d of %d): %s%s; retrying in %.2f s",
                method,
                path,
                state.attempt_number,
                self._policy.attempts,
                type(error).__name__,
                f" (HTTP {status})" if status is not None else "",
                wait,
            )
            if self._on_retry is not None:
                self._on_retry(state)
            if on_retry is not None:
                on_retry(state)

        return hook

    def _retry_kwargs(self, method: str, path: str, on_retry: OnRetry | None) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(self._policy.attempts),
            "wait": self._policy.wait,
            "retry": self._policy.retry,
            "before_sleep": self._before_sleep(method, path, on_retry),
            "reraise": True,
        }

    def _first_failure_retryable(self, error: BytezError) -> bool:
        return self._policy.max_retries > 0 and self._policy.should_retry(error)


def _replay_first(error: BytezError, attempt: Callable[[], _T]) -> Callable[[], _T]:
    """An attempt function whose first call re-raises the failure of the direct attempt.

    The direct first attempt happens outside tenacity (no ``Retrying`` on the happy
    path); replaying its failure as tenacity's attempt 1 keeps the attempt numbers,
    waits and ``RetryCallState`` exactly as if tenacity had made it.
    """
    pending = [error]

    def replay() -> _T:
        if pending:
            raise pending.pop()
        return attempt()

    return replay


def _areplay_first(
    error: BytezError, attempt: Callable[[], Awaitable[_T]]
) -> Callable[[], Awaitable[_T]]:
    pending = [error]

    async def replay() -> _T:
        if pending:
            raise pending.pop()
        return await attempt()

    return replay


def _catalogue_params(task: str | None, model_id: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if task is not None:
        params["task"] = task
    if model_id is not None:
        params["modelId"] = model_id
    return params


def _should_fall_back(error: BytezError) -> bool:
    # The server answered the filtered call with an error: maybe it does not know the
    # filter. Auth, credit and rate-limit failures would fail the unfiltered call too.
    status = error.status_code
    return status is not None and status >= 400 and status not in {401, 402, 429}


def _cluster_body(
    capacity: Capacity | Mapping[str, int] | None,
    timeout_minutes: int | None,
    status: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if capacity is not None:
        cap = capacity if isinstance(capacity, Capacity) else Capacity.model_validate(capacity)
        body["capacity"] = {"min": cap.min, "desired": cap.desired, "max": cap.max}
    if timeout_minutes is not None:
        if (
            isinstance(timeout_minutes, bool)
            or not isinstance(timeout_minutes, int)
            or not 1 <= timeout_minutes <= 1440
        ):
            msg = f"timeout_minutes must be an integer from 1 to 1440, got {timeout_minutes!r}"
            raise ValueError(msg)
        body["timeout"] = timeout_minutes
    if status is not None:
        if status not in {"on", "off"}:
            msg = f"status must be 'on' or 'off', got {status!r}"
            raise ValueError(msg)
        body["status"] = status
    return body


def _parse_models(output: Any, task: str | None, model_id: str | None) -> list[ModelInfo]:
    if not isinstance(output, list):
        msg = f"Unexpected catalogue answer: expected a list, got {type(output).__name__}"
        raise BytezAPIError(msg, retryable=False)
    models: list[ModelInfo] = []
    for item in output:
        if not isinstance(item, Mapping) or not item.get("modelId"):
            continue  # tolerate odd entries rather than fail the whole catalogue
        try:
            info = ModelInfo.model_validate(item)
        except ValidationError:
            logger.debug("Skipping a malformed catalogue entry: %r", item.get("modelId"))
            continue
        # Filter here too: an older server may ignore the query parameters.
        if task is not None and info.task != task:
            continue
        if model_id is not None and info.model_id != model_id:
            continue
        models.append(info)
    return models


def _parse_tasks(output: Any) -> list[str]:
    if not isinstance(output, list):
        msg = f"Unexpected task list: expected a list, got {type(output).__name__}"
        raise BytezAPIError(msg, retryable=False)
    tasks: list[str] = []
    for item in output:
        if isinstance(item, str):
            tasks.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("task"), str):
            tasks.append(item["task"])
    return tasks


def _parse_cluster(
    output: Any, model_id: str | None, redact: Callable[[str], str] | None = None
) -> ClusterStatus:
    if output is None:
        raise BytezNotFoundError("The model has no instance cluster", model_id=model_id)
    if not isinstance(output, Mapping):
        msg = f"Unexpected cluster answer: expected an object, got {type(output).__name__}"
        raise BytezAPIError(msg, model_id=model_id, retryable=False)
    try:
        status = ClusterStatus.from_api(output, model_id)
    except ValidationError as exc:
        # Typed like any other unusable answer (a pydantic error is no BytezError).
        msg = f"Unexpected cluster answer: {exc.error_count()} malformed field(s)"
        raise BytezAPIError(msg, model_id=model_id, retryable=False) from None
    if redact is not None and status.reason:
        # The failure reason is server text that ends up in BytezModelLoadError and in
        # load-progress events: redacted like every other server message.
        status = status.model_copy(update={"reason": redact(status.reason)})
    return status


def _parse_clusters(output: Any, redact: Callable[[str], str] | None = None) -> list[ClusterStatus]:
    if output is None:
        return []
    if not isinstance(output, list):
        msg = f"Unexpected cluster list: expected a list, got {type(output).__name__}"
        raise BytezAPIError(msg, retryable=False)
    clusters: list[ClusterStatus] = []
    for item in output:
        if not isinstance(item, Mapping):
            continue
        try:
            clusters.append(_parse_cluster(item, None, redact))
        except BytezAPIError:
            continue  # one odd entry does not hide the others
    return clusters


_LEGACY_TEXT_KEYS = ("generated_text", "summary_text", "translation_text")


def _text_of_json_output(output: Any, model_id: str) -> str:
    """Text of a JSON answer to a stream request (a server that did not stream).

    Accepts the protocol's output forms: a string, a chat message whose ``content`` is
    a string or a list of ``{"type": "text", "text": ...}`` blocks, and the older
    ``[{"generated_text": ...}]`` list.
    """
    if isinstance(output, str):
        return output
    if isinstance(output, Mapping):
        content = output.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list) and all(isinstance(b, Mapping) for b in content):
            return "".join(
                b["text"]
                for b in content
                if b.get("type") == "text" and isinstance(b.get("text"), str)
            )
    if isinstance(output, list) and len(output) == 1 and isinstance(output[0], Mapping):
        for key in _LEGACY_TEXT_KEYS:
            if isinstance(output[0].get(key), str):
                return str(output[0][key])
    msg = f"Expected a text stream, got a JSON {type(output).__name__} output"
    raise BytezAPIError(msg, model_id=model_id, retryable=False)


def _is_json(response: httpx.Response) -> bool:
    return "application/json" in response.headers.get("content-type", "")


# ---------------------------------------------------------------------------------------
# Sync client


class BytezClient(_ClientBase):
    """Synchronous client for the Bytez API.

    One pooled ``httpx.Client`` is created on first use and reused by every call
    (threads may share the client). Use it as a context manager, or call
    [`close`][langchain_bytez.client.BytezClient.close], to release the pool.

    Example:
        ```python
        from langchain_bytez.client import BytezClient

        with BytezClient() as client:  # reads BYTEZ_API_KEY
            result = client.run("openai-community/gpt2", {"text": "Once upon a time"})
            with client.stream("openai-community/gpt2", {"text": "Hi"}) as stream:
                for text in stream:
                    print(text, end="")
        ```
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        default_headers: Mapping[str, str] | None = None,
        provider_key: str | SecretStr | None = None,
        http_client: httpx.Client | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        """Create a client; nothing is sent until the first call.

        Args:
            api_key: The Bytez API key; defaults to the ``BYTEZ_API_KEY`` environment
                variable.
            base_url: The API root; defaults to ``BYTEZ_BASE_URL``, then
                ``https://api.bytez.com``.
            timeout: Seconds, or an ``httpx.Timeout``, applied to every request (also on
                an injected ``http_client``). A number ``t`` means connect within
                ``min(10, t)`` s and wait up to ``t`` s per read/write. Defaults to
                [`DEFAULT_TIMEOUT`][langchain_bytez.client.DEFAULT_TIMEOUT] (reads up to 10
                minutes, for cold starts).
            max_retries: Retries after the first attempt for retryable failures.
            max_retry_wait: Longest single wait between attempts, in seconds.
            default_headers: Extra headers sent with every request.
            provider_key: Key of a closed-source provider, sent as ``provider-key``.
            http_client: An ``httpx.Client`` to use instead of our own; it is not closed
                by [`close`][langchain_bytez.client.BytezClient.close].
            on_retry: Called with tenacity's ``RetryCallState`` before each retry.

        Raises:
            MissingAPIKeyError: If no key was given and ``BYTEZ_API_KEY`` is unset.
            ValueError: If ``base_url`` or a retry setting is invalid.
            TypeError: If ``http_client`` is not an ``httpx.Client``.
        """
        candidate: object = http_client  # checked at run time: the types are not enforced
        if candidate is not None and not isinstance(candidate, httpx.Client):
            msg = f"http_client must be an httpx.Client, got {type(candidate).__name__}"
            raise TypeError(msg)
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            default_headers=default_headers,
            provider_key=provider_key,
            on_retry=on_retry,
            injected=http_client is not None,
        )
        self._injected = http_client
        self._http: httpx.Client | None = http_client
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        http = self._http
        if http is None:
            # Only creation is locked; requests never are.
            with self._lock:
                if self._http is None:
                    self._http = httpx.Client(
                        headers=self._headers, timeout=self._timeout, limits=DEFAULT_LIMITS
                    )
                http = self._http
        return http

    def close(self) -> None:
        """Close our pooled connections (an injected ``http_client`` is left open).

        The client stays usable: a new pool is opened on the next call.
        """
        with self._lock:
            http, self._http = self._http, self._injected
        if http is not None and http is not self._injected:
            http.close()

    def __enter__(self) -> BytezClient:
        """Return the client itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        self.close()

    # -- plumbing ---------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        params: Mapping[str, str] | None,
        timeout: httpx.Timeout,
        stream: bool,
        model_id: str | None,
    ) -> httpx.Response:
        http = self._client()
        request = http.build_request(
            method,
            self._url(path),
            content=content,
            params=params,
            headers=self._request_headers,
            timeout=timeout,
        )
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        try:
            response = http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            failure = exc
        else:
            if debug:
                self._log_response(method, path, response.status_code, started)
            return response
        raise self._transport_error(failure, model_id)  # outside the except: see _caused_by

    def _with_retries(
        self, attempt: Callable[[], _T], method: str, path: str, on_retry: OnRetry | None
    ) -> _T:
        try:
            return attempt()
        except BytezError as exc:
            first = exc
        if not self._first_failure_retryable(first):
            raise first.with_traceback(None)  # the message says what failed: no internals
        retrying = tenacity.Retrying(sleep=_sleep, **self._retry_kwargs(method, path, on_retry))
        try:
            return retrying(_replay_first(first, attempt))
        except BytezError as exc:
            last = exc
        # Raised afresh: tenacity's and the attempt's frames add nothing to the traceback
        # of the last failure (its message says what failed).
        raise last.with_traceback(None)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        model_id: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_retry: OnRetry | None = None,
        retry: bool = True,
    ) -> tuple[Any, dict[str, Any] | None, ResponseMeta]:
        content = None if body is None else protocol.encode_json(body)
        call_timeout = self._call_timeout(timeout)

        def attempt() -> tuple[Any, dict[str, Any] | None, ResponseMeta]:
            response = self._send(
                method,
                path,
                content=content,
                params=params,
                timeout=call_timeout,
                stream=False,
                model_id=model_id,
            )
            output, provider = protocol.parse_envelope(response, model_id, redact=self._redact)
            return (
                output,
                provider,
                ResponseMeta.from_headers(response.headers, response.status_code),
            )

        if not retry:
            return attempt()
        return self._with_retries(attempt, method, path, on_retry)

    # -- runs -------------------------------------------------------------------------

    def run(
        self,
        model_id: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | httpx.Timeout | None = None,
        on_retry: OnRetry | None = None,
    ) -> RunResult:
        """Run a model once and return its whole output.

        Args:
            model_id: The Bytez model id, such as ``"openai-community/gpt2"``.
            payload: ``{"text": ...}`` or ``{"messages": ...}``, plus optional ``params``;
                ``None`` values are dropped.
            timeout: Overrides the client's timeout for this call.
            on_retry: Called with tenacity's ``RetryCallState`` before each retry.

        Returns:
            The output, response metadata and provider info.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If the payload has unknown keys.
            BytezError: The typed error for the failure, after any retries.
        """
        path = protocol.model_path(model_id)
        body = protocol.build_run_body(payload, stream=False)
        output, provider, meta = self._call(
            "POST", path, body=body, model_id=model_id, timeout=timeout, on_retry=on_retry
        )
        return RunResult(model_id=model_id, output=output, meta=meta, provider=provider)

    def stream(
        self,
        model_id: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | httpx.Timeout | None = None,
        on_retry: OnRetry | None = None,
    ) -> TextStream:
        """Prepare a streamed run; the request is sent when the stream is entered.

        Args:
            model_id: The Bytez model id.
            payload: As for [`run`][langchain_bytez.client.BytezClient.run].
            timeout: Overrides the client's timeout for this call (each read may
                wait this long for the next chunk).
            on_retry: Called with tenacity's ``RetryCallState`` before each retry.

        Returns:
            A [`TextStream`][langchain_bytez.client.TextStream]; use
            ``with client.stream(...) as s: for t in s: ...``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If the payload has unknown keys.
        """
        path = protocol.model_path(model_id)
        content = protocol.encode_json(protocol.build_run_body(payload, stream=True))
        return TextStream(self, model_id, path, content, self._call_timeout(timeout), on_retry)

    # -- catalogue --------------------------------------------------------------------

    def list_models(
        self, task: str | None = None, *, model_id: str | None = None
    ) -> list[ModelInfo]:
        """List catalogue models, optionally only those of one task or one id.

        The filter is applied by the server; if the server answers the filtered request
        with an error, the whole catalogue is fetched and filtered here.

        Args:
            task: Only models of this task (``"chat"``, ``"text-generation"``...).
            model_id: Only the model with this id.

        Returns:
            The matching catalogue entries.

        Raises:
            BytezError: The typed error for the failure.
        """
        params = _catalogue_params(task, model_id)
        try:
            output, _, _ = self._call("GET", _LIST_MODELS, params=params or None)
        except BytezError as exc:
            if not params or not _should_fall_back(exc):
                raise
            logger.info(
                "Bytez refused the filtered catalogue (HTTP %s); filtering client-side",
                exc.status_code,
            )
            output, _, _ = self._call("GET", _LIST_MODELS)
        return _parse_models(output, task, model_id)

    def list_tasks(self) -> list[str]:
        """List the tasks the catalogue knows.

        Returns:
            Task names such as ``"chat"`` and ``"text-generation"``.

        Raises:
            BytezError: The typed error for the failure.
        """
        output, _, _ = self._call("GET", _LIST_TASKS)
        return _parse_tasks(output)

    def request_model(self, model_id: str) -> str:
        """Ask Bytez to add a Hugging Face model to its catalogue.

        Args:
            model_id: The Hugging Face model id.

        Returns:
            The server's answer, such as ``"Job queued"``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            BytezError: The typed error for the failure.
        """
        protocol.validate_model_id(model_id)
        output, _, _ = self._call("POST", _REQUEST_PREFIX + model_id, model_id=model_id)
        return "" if output is None else str(output)

    # -- clusters ---------------------------------------------------------------------

    def create_cluster(
        self,
        model_id: str,
        capacity: Capacity,
        timeout_minutes: int,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: bool = True,
    ) -> str:
        """Start loading a model's instance cluster.

        Args:
            model_id: The Bytez model id.
            capacity: Instance counts (``Capacity.fixed(n)`` for ``n`` parallel runs).
            timeout_minutes: Idle minutes before the cluster shuts down (1 to 1440).
            timeout: Overrides the client's request timeout for this call.
            retry: ``False`` sends the request once, without the client's retries.

        Returns:
            The server's answer, such as ``"Loading"``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If ``timeout_minutes`` is out of range.
            BytezError: The typed error for the failure.
        """
        path = protocol.model_path(model_id)
        body = _cluster_body(capacity, timeout_minutes)
        output, _, _ = self._call(
            "PUT", path, body=body, model_id=model_id, timeout=timeout, retry=retry
        )
        return "" if output is None else str(output)

    def get_cluster(
        self,
        model_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: bool = True,
    ) -> ClusterStatus:
        """Read a model's instance cluster.

        Args:
            model_id: The Bytez model id.
            timeout: Overrides the client's request timeout for this call.
            retry: ``False`` sends the request once, without the client's retries.

        Returns:
            The cluster's status.

        Raises:
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        output, _, _ = self._call(
            "GET", protocol.model_path(model_id), model_id=model_id, timeout=timeout, retry=retry
        )
        return _parse_cluster(output, model_id, self._redact)

    def update_cluster(
        self,
        model_id: str,
        *,
        capacity: Capacity | None = None,
        timeout_minutes: int | None = None,
        status: Literal["on", "off"] | None = None,
    ) -> ClusterStatus:
        """Change a model's cluster: capacity, idle timeout, or switch it on/off.

        Args:
            model_id: The Bytez model id.
            capacity: New instance counts.
            timeout_minutes: New idle timeout (1 to 1440 minutes).
            status: ``"on"`` or ``"off"``.

        Returns:
            The cluster's status after the change.

        Raises:
            ValueError: If nothing is to change, or a value is out of range.
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        path = protocol.model_path(model_id)
        body = _cluster_body(capacity, timeout_minutes, status)
        if not body:
            msg = "update_cluster needs capacity, timeout_minutes or status"
            raise ValueError(msg)
        output, _, _ = self._call("PATCH", path, body=body, model_id=model_id)
        if not isinstance(output, Mapping):
            # Tolerate a server that acknowledges without the object: read it back.
            return self.get_cluster(model_id)
        return _parse_cluster(output, model_id, self._redact)

    def delete_cluster(self, model_id: str) -> None:
        """Stop and delete a model's instance cluster.

        Args:
            model_id: The Bytez model id.

        Raises:
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        self._call("DELETE", protocol.model_path(model_id), model_id=model_id)

    def list_clusters(self) -> list[ClusterStatus]:
        """List this account's instance clusters.

        Returns:
            One status per cluster.

        Raises:
            BytezError: The typed error for the failure.
        """
        output, _, _ = self._call("GET", _LIST_CLUSTERS)
        return _parse_clusters(output, self._redact)

    def model(self, model_id: str) -> ModelHandle:
        """A handle bound to one model (load, status, run, stream, stop).

        Args:
            model_id: The Bytez model id.

        Returns:
            A [`ModelHandle`][langchain_bytez.manager.ModelHandle].

        Raises:
            InvalidModelIdError: If the model id is malformed.
        """
        from langchain_bytez.manager import ModelHandle  # noqa: PLC0415 - avoids a cycle

        protocol.validate_model_id(model_id)
        return ModelHandle(self, model_id)


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


class _StreamBase:
    """State shared by ``TextStream`` and ``AsyncTextStream``."""

    def __init__(
        self,
        model_id: str,
        path: str,
        content: bytes,
        timeout: httpx.Timeout,
        on_retry: OnRetry | None,
    ) -> None:
        self.model_id = model_id
        self.meta: ResponseMeta | None = None
        self._path = path
        self._content = content
        self._timeout = timeout
        self._on_retry = on_retry
        self._delivered = _Transcript()
        self._prefetched: str | None = None
        self._status = 0
        self._closed = False
        self._iterated = False

    @property
    def text(self) -> str:
        """All text delivered so far."""
        return self._delivered.text()

    @property
    def closed(self) -> bool:
        """Whether the stream was closed (its connection is released)."""
        return self._closed

    def _begin_iteration(self) -> None:
        if self._iterated:
            msg = "A Bytez stream can only be iterated once"
            raise RuntimeError(msg)
        if self._closed:
            msg = "This Bytez stream is closed"
            raise RuntimeError(msg)
        self._iterated = True

    def _broken(self, exc: BaseException, client: _ClientBase) -> BytezStreamError:
        # Raise the result outside the except block that caught exc (see _caused_by).
        delivered = self.text
        detail = client._redact(str(exc)) or type(exc).__name__
        message = (
            f"The stream broke after {len(delivered)} characters "
            f"({type(exc).__name__}: {detail}); the text is incomplete"
        )
        error = BytezStreamError(
            message, status_code=self._status, model_id=self.model_id, delivered_text=delivered
        )
        return client._caused_by(error, exc)

    def _in_band_error(self, message: str, redact: Callable[[str], str]) -> BytezStreamError:
        text = redact(message)
        return BytezStreamError(
            f"The model failed while streaming: {text}",
            status_code=self._status,
            model_id=self.model_id,
            body=protocol.excerpt(text, 500),
            delivered_text=self.text,
        )

    def _prefetch_json(
        self, body: bytes, response: httpx.Response, redact: Callable[[str], str]
    ) -> None:
        # A JSON answer to a stream request: either an error envelope (raise it, never
        # stream it as text) or a server that did not stream (deliver its text at once).
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
                raise self._in_band_error(decoder.error, redact) from None
            self._prefetched = text
            return
        self._prefetched = _text_of_json_output(output, self.model_id)


class TextStream(_StreamBase):
    """A streamed run: iterate it for text chunks as the model produces them.

    The request is sent on ``__enter__`` (or on first iteration), retried only until the
    response starts; a failed answer raises its typed error there. Iteration yields
    ``str`` chunks (multi-byte characters are never split) and raises
    [`BytezStreamError`][langchain_bytez.errors.BytezStreamError] if the body turns out to be an
    in-band ``Error: ...`` or the connection drops; a stream is never retried after text
    was delivered. Leaving the ``with`` block, breaking out of the loop, or an error
    releases the connection.

    Attributes:
        model_id: The Bytez model id.
        meta: The response metadata, once the response has started.
    """

    def __init__(
        self,
        client: BytezClient,
        model_id: str,
        path: str,
        content: bytes,
        timeout: httpx.Timeout,
        on_retry: OnRetry | None,
    ) -> None:
        """Prepare the stream (use ``BytezClient.stream`` rather than this).

        Args:
            client: The client that sends the request.
            model_id: The Bytez model id (already validated).
            path: The API path of the model.
            content: The encoded request body.
            timeout: The request timeout.
            on_retry: Per-call retry callback.
        """
        super().__init__(model_id, path, content, timeout, on_retry)
        self._client = client
        self._response: httpx.Response | None = None

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

    def _ensure_open(self) -> None:
        if self._response is not None or self._prefetched is not None:
            return
        if self._closed:
            msg = "This Bytez stream is closed"
            raise RuntimeError(msg)
        client = self._client

        def attempt() -> httpx.Response:
            response = client._send(  # the stream is part of the client
                "POST",
                self._path,
                content=self._content,
                params=None,
                timeout=self._timeout,
                stream=True,
                model_id=self.model_id,
            )
            if 200 <= response.status_code < 300:
                return response
            try:
                body = response.read()
            except httpx.HTTPError:
                body = b""  # the status alone still says what happened
            finally:
                response.close()
            raise protocol.error_from_response(
                response.status_code, response.headers, body, self.model_id, redact=client._redact
            )

        response = client._with_retries(attempt, "POST", self._path, self._on_retry)
        self.meta = ResponseMeta.from_headers(response.headers, response.status_code)
        self._status = response.status_code
        if _is_json(response):
            failure: httpx.HTTPError | None = None
            try:
                body = response.read()
            except httpx.HTTPError as exc:
                failure = exc
            finally:
                response.close()
            if failure is not None:
                raise self._broken(failure, client)
            self._prefetch_json(body, response, client._redact)
            return
        self._response = response

    def _iterate(self) -> Iterator[str]:
        self._begin_iteration()
        client = self._client
        try:
            self._ensure_open()
            if self._prefetched is not None:
                if self._prefetched:
                    self._delivered.append(self._prefetched)
                    yield self._prefetched
                return
            response = self._response
            if response is None:  # closed while opening
                return
            decoder = StreamTextDecoder()
            delivered = self._delivered
            chunks = response.iter_bytes()
            failure: BaseException | None = None
            while True:
                try:
                    chunk = next(chunks, None)
                except httpx.StreamClosed:
                    return  # closed by the caller: they asked for the end
                except _STREAMING_EXCEPTIONS as exc:
                    failure = exc
                    break
                if chunk is None:
                    break
                text = decoder.feed(chunk)
                if text:
                    delivered.append(text)
                    yield text
                elif decoder.error is not None:
                    break
            if failure is not None:
                raise self._broken(failure, client)  # outside the except: see _caused_by
            tail = decoder.finish()
            if tail:
                delivered.append(tail)
                yield tail
            if decoder.error is not None:
                raise self._in_band_error(decoder.error, client._redact)
        finally:
            self.close()


# ---------------------------------------------------------------------------------------
# Async client


class AsyncBytezClient(_ClientBase):
    """Asynchronous client for the Bytez API (same methods as ``BytezClient``).

    One pooled ``httpx.AsyncClient`` is created on first use in an event loop; if the
    client is later used from another loop, a fresh pool is opened there (connections
    belong to the loop that opened them). Concurrent calls and streams run in parallel.

    Example:
        ```python
        from langchain_bytez.client import AsyncBytezClient

        async with AsyncBytezClient() as client:
            result = await client.run("openai-community/gpt2", {"text": "Hi"})
            async with client.stream("openai-community/gpt2", {"text": "Hi"}) as s:
                async for text in s:
                    print(text, end="")
        ```
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        default_headers: Mapping[str, str] | None = None,
        provider_key: str | SecretStr | None = None,
        http_client: httpx.AsyncClient | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        """Create a client; nothing is sent until the first call.

        Args:
            api_key: The Bytez API key; defaults to the ``BYTEZ_API_KEY`` environment
                variable.
            base_url: The API root; defaults to ``BYTEZ_BASE_URL``, then
                ``https://api.bytez.com``.
            timeout: Seconds, or an ``httpx.Timeout``, applied to every request (see
                [`BytezClient`][langchain_bytez.client.BytezClient]).
            max_retries: Retries after the first attempt for retryable failures.
            max_retry_wait: Longest single wait between attempts, in seconds.
            default_headers: Extra headers sent with every request.
            provider_key: Key of a closed-source provider, sent as ``provider-key``.
            http_client: An ``httpx.AsyncClient`` to use instead of our own; it is not
                closed by [`aclose`][langchain_bytez.client.AsyncBytezClient.aclose].
            on_retry: Called with tenacity's ``RetryCallState`` before each retry.

        Raises:
            MissingAPIKeyError: If no key was given and ``BYTEZ_API_KEY`` is unset.
            ValueError: If ``base_url`` or a retry setting is invalid.
            TypeError: If ``http_client`` is not an ``httpx.AsyncClient``.
        """
        candidate: object = http_client  # checked at run time: the types are not enforced
        if candidate is not None and not isinstance(candidate, httpx.AsyncClient):
            msg = f"http_client must be an httpx.AsyncClient, got {type(candidate).__name__}"
            raise TypeError(msg)
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            default_headers=default_headers,
            provider_key=provider_key,
            on_retry=on_retry,
            injected=http_client is not None,
        )
        self._injected = http_client
        self._http: httpx.AsyncClient | None = http_client
        self._http_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    # -- lifecycle --------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._injected is not None:
            return self._injected
        loop = asyncio.get_running_loop()
        http = self._http
        if http is None or self._http_loop is None or self._http_loop() is not loop:
            # No await between the check and the assignment: no race within a loop.
            http = httpx.AsyncClient(
                headers=self._headers, timeout=self._timeout, limits=DEFAULT_LIMITS
            )
            self._http = http
            self._http_loop = weakref.ref(loop)
        return http

    async def aclose(self) -> None:
        """Close our pooled connections (an injected ``http_client`` is left open).

        The client stays usable: a new pool is opened on the next call.
        """
        http, self._http = self._http, self._injected
        owner = self._http_loop() if self._http_loop is not None else None
        self._http_loop = None
        if http is None or http is self._injected:
            return
        if owner is asyncio.get_running_loop():
            await http.aclose()
        # A pool from another (likely closed) loop cannot be closed from here; its
        # sockets are released when it is garbage-collected.

    async def __aenter__(self) -> AsyncBytezClient:
        """Return the client itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.aclose()

    # -- plumbing ---------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        params: Mapping[str, str] | None,
        timeout: httpx.Timeout,
        stream: bool,
        model_id: str | None,
    ) -> httpx.Response:
        http = self._client()
        request = http.build_request(
            method,
            self._url(path),
            content=content,
            params=params,
            headers=self._request_headers,
            timeout=timeout,
        )
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        try:
            response = await http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            failure = exc
        else:
            if debug:
                self._log_response(method, path, response.status_code, started)
            return response
        raise self._transport_error(failure, model_id)  # outside the except: see _caused_by

    async def _with_retries(
        self,
        attempt: Callable[[], Awaitable[_T]],
        method: str,
        path: str,
        on_retry: OnRetry | None,
    ) -> _T:
        try:
            return await attempt()
        except BytezError as exc:
            first = exc
        if not self._first_failure_retryable(first):
            raise first.with_traceback(None)  # see BytezClient._with_retries
        retrying = tenacity.AsyncRetrying(
            sleep=_async_sleep, **self._retry_kwargs(method, path, on_retry)
        )
        try:
            result: _T = await retrying(_areplay_first(first, attempt))
        except BytezError as exc:
            last = exc
        else:
            return result
        raise last.with_traceback(None)  # see BytezClient._with_retries

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        model_id: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_retry: OnRetry | None = None,
        retry: bool = True,
    ) -> tuple[Any, dict[str, Any] | None, ResponseMeta]:
        content = None if body is None else protocol.encode_json(body)
        call_timeout = self._call_timeout(timeout)

        async def attempt() -> tuple[Any, dict[str, Any] | None, ResponseMeta]:
            response = await self._send(
                method,
                path,
                content=content,
                params=params,
                timeout=call_timeout,
                stream=False,
                model_id=model_id,
            )
            output, provider = protocol.parse_envelope(response, model_id, redact=self._redact)
            return (
                output,
                provider,
                ResponseMeta.from_headers(response.headers, response.status_code),
            )

        if not retry:
            return await attempt()
        return await self._with_retries(attempt, method, path, on_retry)

    # -- runs -------------------------------------------------------------------------

    async def run(
        self,
        model_id: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | httpx.Timeout | None = None,
        on_retry: OnRetry | None = None,
    ) -> RunResult:
        """Run a model once and return its whole output.

        Args:
            model_id: The Bytez model id, such as ``"openai-community/gpt2"``.
            payload: ``{"text": ...}`` or ``{"messages": ...}``, plus optional ``params``;
                ``None`` values are dropped.
            timeout: Overrides the client's timeout for this call.
            on_retry: Called with tenacity's ``RetryCallState`` before each retry.

        Returns:
            The output, response metadata and provider info.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If the payload has unknown keys.
            BytezError: The typed error for the failure, after any retries.
        """
        path = protocol.model_path(model_id)
        body = protocol.build_run_body(payload, stream=False)
        output, provider, meta = await self._call(
            "POST", path, body=body, model_id=model_id, timeout=timeout, on_retry=on_retry
        )
        return RunResult(model_id=model_id, output=output, meta=meta, provider=provider)

    def stream(
        self,
        model_id: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | httpx.Timeout | None = None,
        on_retry: OnRetry | None = None,
    ) -> AsyncTextStream:
        """Prepare a streamed run; the request is sent when the stream is entered.

        Args:
            model_id: The Bytez model id.
            payload: As for [`run`][langchain_bytez.client.AsyncBytezClient.run].
            timeout: Overrides the client's timeout for this call.
            on_retry: Called with tenacity's ``RetryCallState`` before each retry.

        Returns:
            An [`AsyncTextStream`][langchain_bytez.client.AsyncTextStream]; use
            ``async with client.stream(...) as s: async for t in s: ...``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If the payload has unknown keys.
        """
        path = protocol.model_path(model_id)
        content = protocol.encode_json(protocol.build_run_body(payload, stream=True))
        return AsyncTextStream(self, model_id, path, content, self._call_timeout(timeout), on_retry)

    # -- catalogue --------------------------------------------------------------------

    async def list_models(
        self, task: str | None = None, *, model_id: str | None = None
    ) -> list[ModelInfo]:
        """List catalogue models, optionally only those of one task or one id.

        The filter is applied by the server; if the server answers the filtered request
        with an error, the whole catalogue is fetched and filtered here.

        Args:
            task: Only models of this task (``"chat"``, ``"text-generation"``...).
            model_id: Only the model with this id.

        Returns:
            The matching catalogue entries.

        Raises:
            BytezError: The typed error for the failure.
        """
        params = _catalogue_params(task, model_id)
        try:
            output, _, _ = await self._call("GET", _LIST_MODELS, params=params or None)
        except BytezError as exc:
            if not params or not _should_fall_back(exc):
                raise
            logger.info(
                "Bytez refused the filtered catalogue (HTTP %s); filtering client-side",
                exc.status_code,
            )
            output, _, _ = await self._call("GET", _LIST_MODELS)
        return _parse_models(output, task, model_id)

    async def list_tasks(self) -> list[str]:
        """List the tasks the catalogue knows.

        Returns:
            Task names such as ``"chat"`` and ``"text-generation"``.

        Raises:
            BytezError: The typed error for the failure.
        """
        output, _, _ = await self._call("GET", _LIST_TASKS)
        return _parse_tasks(output)

    async def request_model(self, model_id: str) -> str:
        """Ask Bytez to add a Hugging Face model to its catalogue.

        Args:
            model_id: The Hugging Face model id.

        Returns:
            The server's answer, such as ``"Job queued"``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            BytezError: The typed error for the failure.
        """
        protocol.validate_model_id(model_id)
        output, _, _ = await self._call("POST", _REQUEST_PREFIX + model_id, model_id=model_id)
        return "" if output is None else str(output)

    # -- clusters ---------------------------------------------------------------------

    async def create_cluster(
        self,
        model_id: str,
        capacity: Capacity,
        timeout_minutes: int,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: bool = True,
    ) -> str:
        """Start loading a model's instance cluster.

        Args:
            model_id: The Bytez model id.
            capacity: Instance counts (``Capacity.fixed(n)`` for ``n`` parallel runs).
            timeout_minutes: Idle minutes before the cluster shuts down (1 to 1440).
            timeout: Overrides the client's request timeout for this call.
            retry: ``False`` sends the request once, without the client's retries.

        Returns:
            The server's answer, such as ``"Loading"``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If ``timeout_minutes`` is out of range.
            BytezError: The typed error for the failure.
        """
        path = protocol.model_path(model_id)
        body = _cluster_body(capacity, timeout_minutes)
        output, _, _ = await self._call(
            "PUT", path, body=body, model_id=model_id, timeout=timeout, retry=retry
        )
        return "" if output is None else str(output)

    async def get_cluster(
        self,
        model_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: bool = True,
    ) -> ClusterStatus:
        """Read a model's instance cluster.

        Args:
            model_id: The Bytez model id.
            timeout: Overrides the client's request timeout for this call.
            retry: ``False`` sends the request once, without the client's retries.

        Returns:
            The cluster's status.

        Raises:
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        output, _, _ = await self._call(
            "GET", protocol.model_path(model_id), model_id=model_id, timeout=timeout, retry=retry
        )
        return _parse_cluster(output, model_id, self._redact)

    async def update_cluster(
        self,
        model_id: str,
        *,
        capacity: Capacity | None = None,
        timeout_minutes: int | None = None,
        status: Literal["on", "off"] | None = None,
    ) -> ClusterStatus:
        """Change a model's cluster: capacity, idle timeout, or switch it on/off.

        Args:
            model_id: The Bytez model id.
            capacity: New instance counts.
            timeout_minutes: New idle timeout (1 to 1440 minutes).
            status: ``"on"`` or ``"off"``.

        Returns:
            The cluster's status after the change.

        Raises:
            ValueError: If nothing is to change, or a value is out of range.
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        path = protocol.model_path(model_id)
        body = _cluster_body(capacity, timeout_minutes, status)
        if not body:
            msg = "update_cluster needs capacity, timeout_minutes or status"
            raise ValueError(msg)
        output, _, _ = await self._call("PATCH", path, body=body, model_id=model_id)
        if not isinstance(output, Mapping):
            return await self.get_cluster(model_id)
        return _parse_cluster(output, model_id, self._redact)

    async def delete_cluster(self, model_id: str) -> None:
        """Stop and delete a model's instance cluster.

        Args:
            model_id: The Bytez model id.

        Raises:
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        await self._call("DELETE", protocol.model_path(model_id), model_id=model_id)

    async def list_clusters(self) -> list[ClusterStatus]:
        """List this account's instance clusters.

        Returns:
            One status per cluster.

        Raises:
            BytezError: The typed error for the failure.
        """
        output, _, _ = await self._call("GET", _LIST_CLUSTERS)
        return _parse_clusters(output, self._redact)

    def model(self, model_id: str) -> AsyncModelHandle:
        """A handle bound to one model (load, status, run, stream, stop).

        Args:
            model_id: The Bytez model id.

        Returns:
            An [`AsyncModelHandle`][langchain_bytez.manager.AsyncModelHandle].

        Raises:
            InvalidModelIdError: If the model id is malformed.
        """
        from langchain_bytez.manager import AsyncModelHandle  # noqa: PLC0415 - avoids a cycle

        protocol.validate_model_id(model_id)
        return AsyncModelHandle(self, model_id)


class AsyncTextStream(_StreamBase):
    """An async streamed run: ``async for`` it for text chunks.

    Same rules as [`TextStream`][langchain_bytez.client.TextStream]: the request is sent on
    ``__aenter__`` (or first iteration) and retried only until the response starts; iteration raises
    [`BytezStreamError`][langchain_bytez.errors.BytezStreamError] for an in-band error or a dropped
    connection; leaving the ``async with`` block releases the connection. Without
    ``async with``, breaking out of the loop releases it when the event loop finalises
    the iterator; prefer ``async with``.

    Attributes:
        model_id: The Bytez model id.
        meta: The response metadata, once the response has started.
    """

    def __init__(
        self,
        client: AsyncBytezClient,
        model_id: str,
        path: str,
        content: bytes,
        timeout: httpx.Timeout,
        on_retry: OnRetry | None,
    ) -> None:
        """Prepare the stream (use ``AsyncBytezClient.stream`` rather than this).

        Args:
            client: The client that sends the request.
            model_id: The Bytez model id (already validated).
            path: The API path of the model.
            content: The encoded request body.
            timeout: The request timeout.
            on_retry: Per-call retry callback.
        """
        super().__init__(model_id, path, content, timeout, on_retry)
        self._client = client
        self._response: httpx.Response | None = None

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

    async def _ensure_open(self) -> None:
        if self._response is not None or self._prefetched is not None:
            return
        if self._closed:
            msg = "This Bytez stream is closed"
            raise RuntimeError(msg)
        client = self._client

        async def attempt() -> httpx.Response:
            response = await client._send(  # the stream is part of the client
                "POST",
                self._path,
                content=self._content,
                params=None,
                timeout=self._timeout,
                stream=True,
                model_id=self.model_id,
            )
            if 200 <= response.status_code < 300:
                return response
            try:
                body = await response.aread()
            except httpx.HTTPError:
                body = b""
            finally:
                await response.aclose()
            raise protocol.error_from_response(
                response.status_code, response.headers, body, self.model_id, redact=client._redact
            )

        response = await client._with_retries(attempt, "POST", self._path, self._on_retry)
        self.meta = ResponseMeta.from_headers(response.headers, response.status_code)
        self._status = response.status_code
        if _is_json(response):
            failure: httpx.HTTPError | None = None
            try:
                body = await response.aread()
            except httpx.HTTPError as exc:
                failure = exc
            finally:
                await response.aclose()
            if failure is not None:
                raise self._broken(failure, client)
            self._prefetch_json(body, response, client._redact)
            return
        self._response = response

    async def _iterate(self) -> AsyncIterator[str]:
        self._begin_iteration()
        client = self._client
        chunks: AsyncGenerator[bytes, None] | None = None
        try:
            await self._ensure_open()
            if self._prefetched is not None:
                if self._prefetched:
                    self._delivered.append(self._prefetched)
                    yield self._prefetched
                return
            response = self._response
            if response is None:
                return
            decoder = StreamTextDecoder()
            delivered = self._delivered
            chunks = response.aiter_bytes()  # type: ignore[assignment]
            failure: BaseException | None = None
            while True:
                try:
                    chunk = await anext(chunks, None)  # type: ignore[arg-type]
                except httpx.StreamClosed:
                    return
                except _STREAMING_EXCEPTIONS as exc:
                    failure = exc
                    break
                if chunk is None:
                    break
                text = decoder.feed(chunk)
                if text:
                    delivered.append(text)
                    yield text
                elif decoder.error is not None:
                    break
            if failure is not None:
                raise self._broken(failure, client)  # outside the except: see _caused_by
            tail = decoder.finish()
            if tail:
                delivered.append(tail)
                yield tail
            if decoder.error is not None:
                raise self._in_band_error(decoder.error, client._redact)
        finally:
            if chunks is not None:
                # Finish httpx's own async generator now rather than leaving it to the
                # event loop's finaliser.
                await chunks.aclose()
            await self.aclose()
