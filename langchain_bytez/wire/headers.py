"""Extra headers and secrets, pure (no I/O).

Checking ``default_headers``, spotting credential headers, and matching a secret with
its encoded echoes (URL-encoded, JSON-escaped, base64).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection, Mapping
from urllib.parse import quote, quote_plus

from langchain_bytez.errors import InvalidHeaderError

__all__ = ["check_default_headers", "is_secret_header", "secret_pattern"]


# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
# Header names whose values are credentials (Authorization, X-Api-Key, Cookie...).
_SECRET_HEADER = re.compile(
    r"auth|key|token|secret|cookie|passw|credential|session|signature", re.IGNORECASE
)


def is_secret_header(name: str) -> bool:
    """Whether a header's value is treated as a secret (never shown, redacted from text).

    Args:
        name: The header name.

    Returns:
        True for names such as ``Authorization``, ``X-Api-Key``, ``X-Auth-Token``,
        ``Cookie`` or ``X-Client-Secret``.
    """
    return _SECRET_HEADER.search(name) is not None


def check_default_headers(headers: object) -> dict[str, str]:
    """Check extra headers before anything is sent; say what is wrong with the first bad one.

    httpx and h11 would refuse the same headers only at the first request, with an
    error that reads like a network failure or quotes the value.

    Args:
        headers: The ``default_headers`` a caller passed (a mapping, or ``None``).

    Returns:
        A new ``dict`` of the headers.

    Raises:
        InvalidHeaderError: If it is not a mapping of ``str`` to ``str``, a name is not
            an HTTP token, or a value holds a line break, another control character or
            a non-ASCII character (which httpx cannot encode).
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        got = type(headers).__name__
        msg = f"default_headers must be a mapping of header names to values, got {got}"
        raise InvalidHeaderError(msg)
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            msg = (
                f"default_headers: {name!r} is not a valid header name (letters, digits "
                "and !#$%&'*+-.^_`|~ only, no spaces or colons)."
            )
            raise InvalidHeaderError(msg, header=str(name))
        shown = "the value" if is_secret_header(name) else f"{value!r}"
        if not isinstance(value, str):
            msg = f"default_headers[{name!r}] must be a str, got {type(value).__name__}"
            raise InvalidHeaderError(msg, header=name)
        if any(c in value for c in "\r\n\x00"):
            msg = f"default_headers[{name!r}]: {shown} contains a line break or NUL."
            raise InvalidHeaderError(msg, header=name)
        if not value.isascii() or any(
            (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value
        ):
            msg = (
                f"default_headers[{name!r}]: {shown} has control or non-ASCII characters, "
                "which an HTTP header cannot carry; percent-encode them."
            )
            raise InvalidHeaderError(msg, header=name)
        checked[name] = value
    return checked


def _encoded_forms(secret: str) -> set[str]:
    """The ways a server might echo a secret: raw, URL-, JSON- and base64-encoded."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1].replace("/", "\\/"))
    raw = secret.encode()
    # Base64 of a text containing the secret depends on where the secret starts modulo
    # 3: for each offset keep only the characters that encode the secret's bytes alone.
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        # Characters made of the secret's bits only: from ceil(8 * pad / 6) up to
        # floor(8 * (pad + len) / 6); the ones at the edges mix in neighbouring bytes.
        core = encoded[-(-8 * pad // 6) : 8 * (pad + len(raw)) // 6]
        if len(core) >= 8:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))  # URL-safe alphabet
    return {form for form in forms if form}


def secret_pattern(secrets: Collection[str]) -> re.Pattern[str] | None:
    """One regular expression matching every secret and its encoded echoes.

    Args:
        secrets: The secrets (API key, provider key, credential header values).

    Returns:
        The pattern, or ``None`` when there is nothing to hide.
    """
    forms: set[str] = set()
    for secret in secrets:
        forms |= _encoded_forms(secret)
    if not forms:
        return None
    # Longest first: a secret's URL-encoded form must not be cut at its raw prefix.
    # Case-insensitive: %2f and %2F are the same echo (hiding a key's case variants
    # too costs nothing).
    alternatives = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(re.escape(form) for form in alternatives), re.IGNORECASE)
