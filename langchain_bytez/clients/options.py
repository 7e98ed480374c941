"""The typed options of the clients' public methods, and the checks they go through.

[`RunOptions`][langchain_bytez.clients.options.RunOptions] (``run``, ``stream``),
[`ClusterCallOptions`][langchain_bytez.clients.options.ClusterCallOptions]
(``create_cluster``, ``get_cluster``) and
[`ClusterChanges`][langchain_bytez.clients.options.ClusterChanges] (``update_cluster``)
are the keyword arguments both clients take; the helpers turn them into what the wire
core builds calls from, so the sync and async clients share them. Import them from
[`langchain_bytez.client`][langchain_bytez.client].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeAlias, TypedDict

import httpx

from langchain_bytez.types import Capacity, ClusterStatus, check_options
from langchain_bytez.wire import endpoints
from langchain_bytez.wire.config import ClientCore
from langchain_bytez.wire.endpoints import Plan
from langchain_bytez.wire.retry import OnRetry

__all__ = [
    "ClusterCallOptions",
    "ClusterChanges",
    "RunOptions",
    "TimeoutArg",
    "stream_args",
    "update_plan",
]

TimeoutArg: TypeAlias = float | httpx.Timeout | None
"""A call's timeout: seconds, an ``httpx.Timeout``, or ``None`` for the client's own."""


class RunOptions(TypedDict, total=False):
    """The keyword-only options of ``run`` and ``stream`` (both default to ``None``).

    Attributes:
        timeout: Overrides the client's timeout for this call.
        on_retry: Called with tenacity's ``RetryCallState`` before each retry.
    """

    timeout: TimeoutArg
    on_retry: OnRetry | None


class ClusterCallOptions(TypedDict, total=False):
    """The keyword-only options of ``create_cluster`` and ``get_cluster``.

    Attributes:
        timeout: Overrides the client's request timeout for this call (default ``None``).
        retry: ``False`` sends the request once, without the client's retries (default
            ``True``).
    """

    timeout: TimeoutArg
    retry: bool


class ClusterChanges(TypedDict, total=False):
    """What ``update_cluster`` changes (keyword-only, each ``None`` by default: kept).

    Attributes:
        capacity: New instance counts.
        timeout_minutes: New idle timeout (1 to 1440 minutes).
        status: ``"on"`` or ``"off"``.
    """

    capacity: Capacity | None
    timeout_minutes: int | None
    status: Literal["on", "off"] | None


def stream_args(
    client: ClientCore, model_id: str, payload: Mapping[str, Any], options: RunOptions
) -> tuple[str, bytes, httpx.Timeout, OnRetry | None]:
    """What both clients' streams are built from: path, body, timeout and ``on_retry``."""
    check_options("stream", options, RunOptions)
    path, content = endpoints.stream_body(model_id, payload)
    return path, content, client._call_timeout(options.get("timeout")), options.get("on_retry")


def update_plan(model_id: str, changes: ClusterChanges) -> Plan[ClusterStatus]:
    """The wire core's ``update_cluster`` plan for the given changes."""
    check_options("update_cluster", changes, ClusterChanges)
    capacity, minutes = changes.get("capacity"), changes.get("timeout_minutes")
    return endpoints.update_cluster(model_id, capacity, minutes, changes.get("status"))
