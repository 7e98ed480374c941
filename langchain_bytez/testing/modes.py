"""The fidelity modes of the local server: where the live service is unknown, each choice.

Every mode is a constructor knob of
[`LocalBytezServer`][langchain_bytez.testing.server.LocalBytezServer], a CLI flag, and
(where it makes sense) a plain attribute tests may change while the server runs.
"""

from __future__ import annotations

import enum

from langchain_bytez.testing.fake_tools import TOOL_FORMATS

__all__ = [
    "AuthForm",
    "ClusterRoutes",
    "coerce_auth_forms",
    "coerce_cluster_routes",
    "coerce_tool_format",
]


class ClusterRoutes(str, enum.Enum):
    """How the cluster routes (``PUT/GET/PATCH/DELETE /models/v2/{id}``, ``/list/clusters``) answer.

    The official SDKs stopped calling these routes in Sep 2025 (bytez 3.x, bytez.js 3.x)
    and Bytez's current docs and OpenAPI file do not list them, so what the live service
    answers today is unknown. Each plausible answer is a mode.

    The default is [`NOT_FOUND`][langchain_bytez.testing.modes.ClusterRoutes.NOT_FOUND]:
    the routes are not part of the service as documented, and a service answers an
    undocumented route with a plain 404. Tests of explicit model management pick
    [`ON`][langchain_bytez.testing.modes.ClusterRoutes.ON].
    """

    ON = "on"
    """The routes work (clusters are created, resized, read and deleted)."""

    NOT_FOUND = "not_found"
    """Every cluster route answers ``404 {"error": "Not Found"}``."""

    NOT_FOUND_CATALOGUE = "not_found_catalogue"
    """Every cluster route answers 404 with the catalogue text
    (``"Model does not exist or has yet to be added to the Bytez catalog"``)."""

    METHOD_NOT_ALLOWED = "method_not_allowed"
    """Every cluster route answers ``405 Method Not Allowed``."""

    GONE = "gone"
    """Reads and deletes answer 404, writes (PUT/PATCH) 405: a router that only kept
    ``POST /models/v2/{id}`` (what ``cluster_routes=False`` meant before the modes)."""

    SERVER_ERROR = "server_error"
    """Every cluster route answers ``500 Internal Server Error``."""

    HANG = "hang"
    """Every cluster route never answers: the request is held until the client gives up
    (closes the connection) or the server stops or resets."""


class AuthForm(str, enum.Enum):
    """A form of the ``Authorization`` header the server may accept."""

    KEY = "key"
    """``Authorization: Key <k>``: what every official SDK sends (bytez 3.0.1's
    ``Client`` builds ``f"Key {api_key}"``). The default, and the only default form."""

    BEARER = "bearer"
    """``Authorization: Bearer <k>``: the OpenAI-compatible routes' form."""

    RAW = "raw"
    """``Authorization: <k>``: the bare key, as the curl samples of Bytez's docs show; a
    2026 report says the live service refuses it, so it is off by default."""


def coerce_cluster_routes(value: ClusterRoutes | str | bool) -> ClusterRoutes:
    """Turn a knob value into a mode (``True`` = on, ``False`` = the legacy gone shape).

    Args:
        value: A mode, its string value, or a bool (the knob's older form).

    Returns:
        The mode.

    Raises:
        ValueError: If the value names no mode.
    """
    if value is True:
        return ClusterRoutes.ON
    if value is False:
        return ClusterRoutes.GONE
    return ClusterRoutes(value)


def coerce_auth_forms(value: object) -> frozenset[AuthForm]:
    """Turn a knob value (one form or several, as members or strings) into a set of forms.

    Args:
        value: ``"key"``, ``AuthForm.BEARER``, ``["key", "raw"]``...

    Returns:
        The forms.

    Raises:
        ValueError: If a value names no form or none is given.
    """
    items = [value] if isinstance(value, (str, AuthForm)) else list(value)  # type: ignore[call-overload]
    forms = frozenset(AuthForm(item) for item in items)
    if not forms:
        msg = "at least one auth form must be accepted"
        raise ValueError(msg)
    return forms


def coerce_tool_format(value: object) -> str | None:
    """Check a ``tool_format`` knob value: one of ``TOOL_FORMATS``, or ``None``.

    ``None`` lets each tool-calling model write calls in its own form (its catalogue
    row's ``tool_format``); a format makes every tool-calling model write that one.

    Args:
        value: ``None``, ``"hermes"``, ``"json"``, ``"json_list"``, ``"fenced"``,
            ``"mistral"`` or ``"prose"``.

    Returns:
        The format, or ``None``.

    Raises:
        ValueError: If the value names no format.
    """
    if value is None:
        return None
    if value not in TOOL_FORMATS:
        msg = f"unknown tool_format {value!r}; use one of {', '.join(TOOL_FORMATS)} or None"
        raise ValueError(msg)
    return str(value)
