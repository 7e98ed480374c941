"""Pure wire pieces shared by the sync and async clients: no I/O here.

Everything that turns Python values into Bytez requests, and Bytez answers into values
or typed errors, lives here so that [`BytezClient`][langchain_bytez.client.BytezClient] and
[`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient] differ only in how they do I/O.
The contract, with the source of each point, is ``docs/protocol.md``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from langchain_bytez._version import __version__
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezError,
    BytezInvalidRequestError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezRateLimitError,
    InvalidModelIdError,
)

if TYPE_CHECKING:
    import tenacity

__all__ = [
    "API_PREFIX",
    "CLOSED_SOURCE_PROVIDERS",
    "MAX_MODEL_ID_LENGTH",
    "MODEL_ID_RULE",
    "RESERVED_NAMESPACES",
    "RETRYABLE_STATUSES",
    "RUN_BODY_KEYS",
    "USER_AGENT",
    "ResponseLike",
    "RetryPolicy",
    "build_headers",
    "build_run_body",
    "encode_json",
    "error_from_response",
    "excerpt",
    "is_closed_source",
    "is_loopback_host",
    "model_path",
    "parse_envelope",
    "retry_after_seconds",
    "validate_model_id",
]

API_PREFIX = "/models/v2"
"""Path prefix of the model routes (``/models/v2/{model_id}``, ``/models/v2/list/models``...)."""

USER_AGENT = f"langchain-bytez/{__version__}"
"""``User-Agent`` header sent with every request: ``langchain-bytez/<version>``."""

RUN_BODY_KEYS = frozenset({"text", "messages", "params"})
"""Top-level keys of a run body the server accepts.

Besides these, ``stream`` is set by the client itself. The server rejects unknown keys
with 400; refusing them here gives a clearer message and saves a round trip."""

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt: rate limit and gateway/capacity trouble."""

MAX_MODEL_ID_LENGTH = 256
"""Longest model id accepted, in characters."""

# DECIDED pattern of the protocol. re.ASCII because \w would otherwise accept unicode
# letters (lookalikes such as Cyrillic "\u0430"); fullmatch because "$" also matches before
# a trailing newline.
_MODEL_ID_RE = re.compile(r"[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?", re.ASCII)
MODEL_ID_RULE = (
    "a model id is 'name' or 'org/name' made of ASCII letters, digits, '_', '.' and '-', "
    f"starting with a letter or digit, at most {MAX_MODEL_ID_LENGTH} characters, "
    "with no '.' or '..' segment"
)
"""The model-id rule in words, quoted in the error raised for an invalid id."""

RESERVED_NAMESPACES = frozenset({"list", "request"})
"""First path segments that are API routes, not organisations.

``list/models`` or ``request/x`` would otherwise silently hit the catalogue or the request route.
(``openai/...`` is a real namespace; its compatibility route has more segments.)"""


CLOSED_SOURCE_PROVIDERS: Mapping[str, tuple[str, ...]] = {
    "openai": (),
    "anthropic": (),
    "cohere": (),
    "mistral": (),
    "google": ("gemini",),
}
"""Namespaces Bytez routes to a closed-source provider (``docs/protocol.md``, sources).

Maps the namespace to the model-name prefixes that are closed; an empty tuple means
every model of the namespace. ``google/`` also holds open models on Hugging Face
(``google/gemma-...``, ``google/flan-t5-...``): only ``gemini`` ones are closed.
Hugging Face's ``mistralai/`` and ``openai-community/`` are open and not listed.
Source: the closed-source OpenAPI file of Bytez's docs repo (routes ``/models/v2/openai``,
``/google``, ``/cohere``, ``/anthropic``, ``/mistral``)."""

# Open-weight models published under a closed provider's namespace on Hugging Face:
# they are served like any open model.
_OPEN_UNDER_CLOSED = {"openai": ("whisper-", "clip-", "gpt-oss-", "shap-e", "diffusers-")}


def is_closed_source(model_id: str) -> bool:
    """Whether a model id belongs to a closed-source provider (no instance clusters).

    Args:
        model_id: A Bytez model id such as ``"openai/gpt-4o"``.

    Returns:
        True for ids of a closed provider
        ([`CLOSED_SOURCE_PROVIDERS`][langchain_bytez.protocol.CLOSED_SOURCE_PROVIDERS]),
        unless it is a known open-weight model published there.
    """
    namespace, _, name = model_id.partition("/")
    if not name:
        return False
    namespace, name = namespace.lower(), name.lower()
    prefixes = CLOSED_SOURCE_PROVIDERS.get(namespace)
    if prefixes is None:
        return False
    if any(name.startswith(p) for p in _OPEN_UNDER_CLOSED.get(namespace, ())):
        return False
    return not prefixes or any(name.startswith(p) for p in prefixes)


class ResponseLike(Protocol):
    """What ``parse_envelope`` needs from an HTTP response (``httpx.Response`` fits)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive response headers."""
        ...

    @property
    def content(self) -> bytes:
        """The whole response body."""
        ...


# ---------------------------------------------------------------------------------------
# Model ids and paths


def validate_model_id(model_id: Any) -> str:
    """Check a model id against the protocol's rule before it is put in a URL path.

    Args:
        model_id: The Bytez model id, such as ``"openai-community/gpt2"``.

    Returns:
        The same id, unchanged (ids are sent unencoded).

    Raises:
        InvalidModelIdError: If the id breaks the rule; nothing is sent.
    """
    if not isinstance(model_id, str):
        msg = f"Invalid model id {model_id!r}: expected a string; {MODEL_ID_RULE}."
        raise InvalidModelIdError(msg)
    return _validate_model_id_str(model_id)


@lru_cache(maxsize=2048)
def _validate_model_id_str(model_id: str) -> str:
    # Cached: the same few ids are validated on every request of a hot loop.
    problem: str | None = None
    if not model_id:
        problem = "it is empty"
    elif len(model_id) > MAX_MODEL_ID_LENGTH:
        problem = f"it is {len(model_id)} characters long"
    elif not model_id.isascii():
        problem = "it contains non-ASCII characters"
    elif _MODEL_ID_RE.fullmatch(model_id) is None:
        problem = "it contains characters or separators that are not allowed"
    else:
        segments = model_id.split("/")
        if any(segment.strip(".") == "" for segment in segments):
            problem = "it has a '.' or '..' segment"
        elif len(segments) == 2 and segments[0] in RESERVED_NAMESPACES:
            problem = f"'{segments[0]}/' is an API route, not an organisation"
    if problem is not None:
        msg = f"Invalid model id {model_id!r}: {problem}; {MODEL_ID_RULE}."
        raise InvalidModelIdError(msg, model_id=None)
    return model_id


def model_path(model_id: str) -> str:
    """Return the API path of a model (``/models/v2/{modelId}``), validating the id.

    Args:
        model_id: The Bytez model id.

    Returns:
        The path, with the id unencoded.

    Raises:
        InvalidModelIdError: If the id breaks the rule.
    """
    return f"{API_PREFIX}/{validate_model_id(model_id)}"


def is_loopback_host(host: str) -> bool:
    """Whether a URL host is this machine (``localhost``, 127.0.0.0/8 or ``::1``).

    Only the exact name ``localhost`` counts: ``evil.localhost`` and
    ``127.0.0.1.evil.com`` are ordinary names that DNS may send anywhere.

    Args:
        host: The host part of a URL (IPv6 with or without brackets).

    Returns:
        True for loopback hosts.
    """
    host = host.strip().removeprefix("[").removesuffix("]").lower().removesuffix(".")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # ::ffff:127.0.0.1
    return address.is_loopback


# ---------------------------------------------------------------------------------------
# Requests


def build_headers(
    api_key: str,
    *,
    provider_key: str | None = None,
    default_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the headers sent with every request of one client.

    Args:
        api_key: The Bytez API key (sent as ``Authorization: Key <key>``).
        provider_key: A closed-source provider's key, sent as ``provider-key``.
        default_headers: Extra headers; they may replace ``User-Agent`` but not the
            credentials.

    Returns:
        A new header dict.

    Raises:
        BytezAuthenticationError: If a key contains characters a header cannot carry
            (the message does not repeat the key).
        ValueError: If ``default_headers`` tries to set the credentials.
    """
    _check_header_value(api_key, "API key")
    headers = {"User-Agent": USER_AGENT}
    for name, value in (default_headers or {}).items():
        lowered = name.lower()
        if lowered in {"authorization", "provider-key"}:
            msg = (
                f"default_headers may not set {name!r}: pass the key as "
                "api_key / provider_key instead."
            )
            raise ValueError(msg)
        if lowered == "user-agent":
            # Header names are case-insensitive: "user-agent" replaces ours rather than
            # sending a second User-Agent line.
            headers.pop("User-Agent", None)
        headers[name] = value
    headers["Authorization"] = f"Key {api_key}"
    if provider_key:
        _check_header_value(provider_key, "provider key")
        headers["provider-key"] = provider_key
    return headers


def _check_header_value(value: str, what: str) -> None:
    # httpx/h11 would reject these too, but their error messages quote the header
    # value, which would put the key in a traceback.
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or not value.isascii():
        msg = f"The {what} is empty or contains control or non-ASCII characters."
        raise BytezAuthenticationError(msg)


def build_run_body(
    payload: Mapping[str, Any],
    stream: bool,
    *,
    extra_keys: Collection[str] = (),
) -> dict[str, Any]:
    """Build the JSON body of a run request.

    Keys whose value is ``None`` are dropped, at the top level and inside ``params``.
    ``"stream": true`` is added for streams; for plain runs it is omitted (the server's
    default is false).

    Args:
        payload: ``{"text": ...}`` or ``{"messages": ...}``, plus optional ``params``.
        stream: Whether to ask for a streamed answer.
        extra_keys: Top-level keys to accept besides ``text``, ``messages`` and
            ``params`` (an explicit opt-in for API additions this version predates).

    Returns:
        A new dict ready for JSON encoding.

    Raises:
        TypeError: If ``payload`` or its ``params`` is not a mapping.
        ValueError: If ``payload`` has an unknown top-level key or sets ``stream``.
    """
    candidate: object = payload  # checked at run time: callers are not type-checked
    if not isinstance(candidate, Mapping):
        msg = f"payload must be a mapping such as {{'text': ...}}, got {type(candidate).__name__}"
        raise TypeError(msg)
    body: dict[str, Any] = {}
    for key, value in payload.items():
        if value is None:
            continue
        if key not in RUN_BODY_KEYS and key not in extra_keys:
            if key == "stream":
                msg = "payload must not set 'stream': call stream() for a streamed answer"
            else:
                allowed = ", ".join(sorted(RUN_BODY_KEYS))
                msg = (
                    f"payload has an unknown top-level key {key!r} (allowed: {allowed}); "
                    "model settings go inside 'params'"
                )
            raise ValueError(msg)
        if key == "params":
            if not isinstance(value, Mapping):
                msg = f"payload 'params' must be a mapping, got {type(value).__name__}"
                raise TypeError(msg)
            value = {k: v for k, v in value.items() if v is not None}  # noqa: PLW2901
        body[key] = value
    if stream:
        body["stream"] = True
    return body


# What json.dumps(ensure_ascii=False, allow_nan=False, separators=(",", ":")) builds on
# every call, built once.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_json(body: Any) -> bytes:
    """Encode a request body compactly as UTF-8 JSON.

    Args:
        body: A JSON-serialisable value.

    Returns:
        The encoded bytes.

    Raises:
        ValueError: If the value holds NaN/infinity or something JSON cannot encode.
    """
    try:
        return _JSON_ENCODER.encode(body).encode("utf-8")
    except (TypeError, ValueError) as exc:
        msg = f"The request body cannot be encoded as JSON: {exc}"
        raise ValueError(msg) from exc


# ---------------------------------------------------------------------------------------
# Responses

_WHITESPACE = re.compile(r"\s+")


def excerpt(text: str, limit: int = 200) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters for a message.

    Args:
        text: Any text (a response body, usually).
        limit: Most characters kept.

    Returns:
        The excerpt, ending in ``...`` when it was cut.
    """
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _decode_body(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _load_json(body: bytes) -> tuple[bool, Any]:
    if not body.strip():
        return True, None
    try:
        return True, json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return False, None


def _error_text(value: Any) -> str | None:
    """The human message inside an envelope's ``error`` (a string, or an object)."""
    if value is None or value is False or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("message", "error", "detail"):
            inner = value.get(key)
            if isinstance(inner, str) and inner:
                return inner
    return json.dumps(value, default=str)[:500]


def parse_envelope(
    response: ResponseLike,
    model_id: str | None = None,
    *,
    redact: Callable[[str], str] | None = None,
) -> tuple[Any, dict[str, Any] | None]:
    """Read a Bytez answer: return ``(output, provider)`` or raise the typed error.

    A non-2xx status is an error (see
    [`error_from_response`][langchain_bytez.protocol.error_from_response]); so is a 2xx whose
    envelope carries a non-null ``error``, and a 2xx body that is not JSON. A JSON body
    that is not an envelope (no ``error``/``output`` keys) is returned whole as output.

    Args:
        response: The HTTP response, body already read.
        model_id: The model the request was for, for error messages.
        redact: Applied to every message and excerpt (the client removes its key).

    Returns:
        The envelope's ``output`` and its ``provider`` object (or ``None``).

    Raises:
        BytezError: The typed error the answer amounts to.
    """
    status = response.status_code
    if not 200 <= status < 300:
        raise error_from_response(
            status, response.headers, response.content, model_id, redact=redact
        )
    body = response.content
    ok, data = _load_json(body)
    if not ok:
        raise _non_json_error(status, response.headers, body, model_id, redact, retryable=False)
    if not isinstance(data, dict) or ("output" not in data and "error" not in data):
        return data, None
    error = _error_text(data.get("error"))
    if error is not None:
        text = redact(error) if redact else error
        raise BytezAPIError(
            text, status_code=status, model_id=model_id, retryable=False, body=excerpt(text, 500)
        )
    provider = data.get("provider")
    return data.get("output"), provider if isinstance(provider, dict) else None


def _non_json_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    model_id: str | None,
    redact: Callable[[str], str] | None,
    *,
    retryable: bool | None,
) -> BytezAPIError:
    content_type = headers.get("content-type") or "no content type"
    content_type = content_type.split(";", 1)[0].strip()
    text = _decode_body(body)
    if redact:
        text = redact(text)
    looks_json = "json" in content_type or text.lstrip()[:1] in {"{", "["}
    kind = "malformed JSON" if looks_json else "a non-JSON response"
    message = f"Bytez returned {kind} (HTTP {status}, {content_type}): {excerpt(text)}"
    return BytezAPIError(
        message, status_code=status, model_id=model_id, retryable=retryable, body=excerpt(text, 500)
    )


def _stack_tail(stack: str, lines: int = 12, limit: int = 1500) -> str:
    # The end of a Python traceback names the failure; keep that part.
    tail = "\n".join(stack.rstrip().splitlines()[-lines:])
    return tail if len(tail) <= limit else "..." + tail[-limit:]


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    model_id: str | None = None,
    *,
    redact: Callable[[str], str] | None = None,
) -> BytezError:
    """Turn a failed answer into the matching typed error (returned, not raised).

    Status mapping: 401 authentication, 402 payment required (the body's ``message``),
    404 not found, 429 rate limit (with ``retry_after``), 5xx API error (retryable for
    500/502/503/504), any other status invalid request (400, 422, other 4xx) or API
    error (1xx/3xx). Non-JSON bodies (an HTML page from a gateway) give a clear message
    with a short excerpt instead of a JSON crash.

    Args:
        status: The HTTP status.
        headers: The response headers (case-insensitive mapping).
        body: The raw response body.
        model_id: The model the request was for.
        redact: Applied to every message and excerpt.

    Returns:
        The error to raise.
    """
    text = _decode_body(body)
    if redact:
        text = redact(text)
    ok, data = _load_json(body)
    message: str | None = None
    detail: str | None = None
    if ok and isinstance(data, Mapping):
        if status == 402:
            message = _error_text(data.get("message")) or _error_text(data.get("error"))
        else:
            message = _error_text(data.get("error")) or _error_text(data.get("message"))
        stack = data.get("stack_trace")
        if isinstance(stack, str) and stack.strip():
            detail = _stack_tail(stack)
    elif ok and isinstance(data, str) and data:
        message = data
    if message is not None and redact:
        message = redact(message)
    if detail is not None and redact:
        detail = redact(detail)
    if message is None:
        if ok and not body.strip():
            message = f"Bytez answered HTTP {status} with an empty body"
        elif ok:
            message = f"Bytez answered HTTP {status}: {excerpt(text)}"
        else:
            content_type = (headers.get("content-type") or "no content type").split(";")[0]
            message = (
                f"Bytez returned a non-JSON response (HTTP {status}, "
                f"{content_type.strip()}): {excerpt(text)}"
            )
    body_excerpt = detail if detail is not None else (excerpt(text, 500) or None)
    common: dict[str, Any] = {"status_code": status, "model_id": model_id, "body": body_excerpt}
    if status == 401:
        return BytezAuthenticationError(message, **common)
    if status == 402:
        return BytezPaymentRequiredError(message, **common)
    if status == 404:
        return BytezNotFoundError(message, **common)
    if status == 429:
        return BytezRateLimitError(message, retry_after=retry_after_seconds(headers), **common)
    if status >= 500:
        return BytezAPIError(
            message,
            retryable=status in RETRYABLE_STATUSES,
            # ratelimit-reset rides on every answer; only an explicit Retry-After
            # speaks about a 5xx.
            retry_after=retry_after_seconds(headers, use_ratelimit_reset=False),
            **common,
        )
    if 400 <= status < 500:
        return BytezInvalidRequestError(message, **common)
    return BytezAPIError(f"Unexpected HTTP {status}: {message}", retryable=False, **common)


# Epoch timestamps in ratelimit-reset (some gateways send them) are told apart from
# "seconds until reset" by size: no window lasts 30 years.
_EPOCH_THRESHOLD = 1e9


def retry_after_seconds(
    headers: Mapping[str, str], *, use_ratelimit_reset: bool = True
) -> float | None:
    """Seconds the server asks us to wait, from ``Retry-After`` or ``ratelimit-reset``.

    ``Retry-After`` may be seconds or an HTTP date. ``ratelimit-reset`` is seconds until
    the window resets (DECIDED); an epoch timestamp is tolerated.

    Args:
        headers: The response headers (case-insensitive mapping).
        use_ratelimit_reset: Whether to fall back to ``ratelimit-reset``.

    Returns:
        A non-negative number of seconds, or ``None`` when the server did not say.
    """
    raw = headers.get("retry-after")
    if raw is not None:
        value = _seconds_or_date(raw)
        if value is not None:
            return value
    if use_ratelimit_reset:
        raw = headers.get("ratelimit-reset")
        if raw is not None:
            return _seconds_or_date(raw)
    return None


def _seconds_or_date(raw: str) -> float | None:
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if not math.isfinite(value) or value < 0:
        return None
    if value > _EPOCH_THRESHOLD:
        value -= datetime.now(UTC).timestamp()
    return max(0.0, value)


# ---------------------------------------------------------------------------------------
# Retries


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before retrying; the same for sync and async clients.

    Only errors whose ``is_retryable`` is true are retried (429, 500/502/503/504,
    connection failures and timeouts before any answer). The wait is the server's
    ``retry_after`` when it gave one, else exponential backoff with jitter; either way
    at most ``max_wait``.

    Attributes:
        max_retries: Retries after the first attempt (attempts = ``max_retries + 1``).
        max_wait: Cap on any single wait, in seconds.
        initial_backoff: First backoff, in seconds.
        backoff_multiplier: Growth factor per attempt.
        max_backoff: Cap on the backoff before jitter, in seconds.
        jitter: Up to this fraction of the backoff is added at random, so that
            many clients do not retry in lockstep.
    """

    max_retries: int = 2
    max_wait: float = 60.0
    initial_backoff: float = 0.5
    backoff_multiplier: float = 2.0
    max_backoff: float = 8.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        """Validate the numbers.

        Raises:
            ValueError: If a count or duration is negative (or not a number).
        """
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            msg = f"max_retries must be a non-negative integer, got {self.max_retries!r}"
            raise ValueError(msg)
        for name in ("max_wait", "initial_backoff", "backoff_multiplier", "max_backoff", "jitter"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
                msg = f"{name} must be a non-negative number, got {value!r}"
                raise ValueError(msg)

    @property
    def attempts(self) -> int:
        """Total attempts, the first included."""
        return self.max_retries + 1

    @staticmethod
    def should_retry(error: BaseException) -> bool:
        """Whether an error is worth another attempt.

        Args:
            error: The exception the attempt raised.

        Returns:
            True only for [`BytezError`][langchain_bytez.errors.BytezError] instances
            marked retryable.
        """
        return isinstance(error, BytezError) and bool(error.is_retryable)

    def backoff(self, attempt_number: int) -> float:
        """The backoff after attempt ``attempt_number`` (1-based), jitter included.

        Args:
            attempt_number: The attempt that just failed.

        Returns:
            Seconds to wait, capped at ``max_wait``.
        """
        base = self.initial_backoff * self.backoff_multiplier ** max(0, attempt_number - 1)
        base = min(base, self.max_backoff)
        if self.jitter:
            base += random.uniform(0.0, base * self.jitter)  # noqa: S311 - not crypto
        return min(base, self.max_wait)

    def wait_after(self, error: BaseException | None, attempt_number: int) -> float:
        """Seconds to wait after ``error`` ended attempt ``attempt_number``.

        Args:
            error: The exception of the failed attempt.
            attempt_number: The attempt that just failed (1-based).

        Returns:
            The server's ``retry_after`` when present, else
            [`backoff`][langchain_bytez.protocol.RetryPolicy.backoff]; at most ``max_wait``.
        """
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after >= 0:
            return min(float(retry_after), self.max_wait)
        return self.backoff(attempt_number)

    def wait(self, retry_state: tenacity.RetryCallState) -> float:
        """Tenacity ``wait=`` hook: ``wait_after`` for the state's failed attempt.

        Args:
            retry_state: Tenacity's state after a failed attempt.

        Returns:
            Seconds to sleep.
        """
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        return self.wait_after(error, retry_state.attempt_number)

    def retry(self, retry_state: tenacity.RetryCallState) -> bool:
        """Tenacity ``retry=`` hook: retry failed attempts whose error is retryable.

        Args:
            retry_state: Tenacity's state after an attempt.

        Returns:
            Whether to retry.
        """
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        return error is not None and self.should_retry(error)
