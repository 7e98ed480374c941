"""Load settings: constants, checks of user-given sizes, and the immutable ``LoadSpec``.

Everything a load needs to know before any request: the capacity, the idle timeout in
Bytez's whole minutes, the deadline. Invalid settings raise ``ValueError`` here, before
anything is sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_bytez.types import Capacity, ClusterStatus

__all__ = [
    "DEFAULT_DEADLINE_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "IMPLICIT_CALL_TIMEOUT",
    "IMPLICIT_RETRY_AFTER",
    "MAX_TIMEOUT_MINUTES",
    "LoadSpec",
    "check_count",
    "run_payload",
    "timeout_to_minutes",
]

MAX_TIMEOUT_MINUTES = 1440
"""Longest idle timeout Bytez accepts, in minutes (24 hours)."""

DEFAULT_TIMEOUT_SECONDS = 300
"""Default idle timeout of a loaded model, in seconds (sent to Bytez as 5 minutes)."""

DEFAULT_DEADLINE_SECONDS = 900.0
"""Default time a load waits for the cluster to run before giving up, in seconds (15 min)."""

IMPLICIT_CALL_TIMEOUT = 10.0
"""Timeout, in seconds, of each cluster call implicit auto-load makes before a run.

Implicit calls (status, create, polls) are sent once, without retries, with this
timeout: a cluster route that hangs or fails costs the run at most this long before the
run is sent anyway."""

IMPLICIT_RETRY_AFTER = 300.0
"""Seconds during which a model whose implicit auto-load failed is run without cluster
calls (the failure is not retried on every call)."""

# A fresh cluster may not be visible to GET for a moment after the PUT on an eventually
# consistent backend; a "stopped" answer within this window is not yet a failure.
STOPPED_GRACE_SECONDS = 2.0
# While nothing changes, still report progress this often so a long cold start does not
# look like a hang.
HEARTBEAT_SECONDS = 10.0


def check_count(name: str, value: object, minimum: int) -> int:
    """Check a count setting (instances, concurrency).

    Args:
        name: The setting's name, for the error message.
        value: The value given.
        minimum: The smallest value allowed.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: If it is not an integer (``bool`` included) or below ``minimum``.
    """
    # bool is an int subclass; True as "1 instance" is almost always a bug upstream.
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an integer, got {type(value).__name__} {value!r}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    if value < minimum:
        msg = f"{name} must be at least {minimum}, got {value}"
        raise ValueError(msg)
    return value


def timeout_to_minutes(timeout: float) -> int:
    """Convert an idle timeout in seconds to Bytez's whole minutes (rounded up).

    Args:
        timeout: Idle seconds before the cluster shuts down; more than 0 and at most
            86400 (1440 minutes, the service's maximum).

    Returns:
        Minutes between 1 and 1440.

    Raises:
        ValueError: If ``timeout`` is not a finite positive number in range.
    """
    _check_seconds("timeout", timeout)
    # Integer seconds are rounded in integers: exact, and no float overflow on huge ones.
    minutes = -(-timeout // 60) if isinstance(timeout, int) else math.ceil(timeout / 60)
    if minutes > MAX_TIMEOUT_MINUTES:
        msg = (
            f"timeout must be at most {MAX_TIMEOUT_MINUTES * 60} seconds "
            f"({MAX_TIMEOUT_MINUTES} minutes), got {timeout!r}"
        )
        raise ValueError(msg)
    return minutes


def _to_capacity(concurrency: int, capacity: Capacity | Mapping[str, int] | None) -> Capacity:
    concurrency = check_count("concurrency", concurrency, 1)
    if capacity is None:
        return Capacity.fixed(concurrency)
    given: object = capacity  # typed callers can't pass anything else; untyped ones can
    values: Mapping[str, object]
    if isinstance(given, Capacity):
        values = given.model_dump()
    elif isinstance(given, Mapping):
        keys = set(given)
        if keys != {"min", "desired", "max"}:
            msg = (
                "capacity must have exactly the keys 'min', 'desired' and 'max', "
                f"got {sorted(map(str, keys))}"
            )
            raise ValueError(msg)
        values = given
    else:
        msg = f"capacity must be a Capacity or a dict, got {type(given).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    low = check_count("capacity['min']", values["min"], 0)
    desired = check_count("capacity['desired']", values["desired"], 0)
    high = check_count("capacity['max']", values["max"], 1)
    if not low <= desired <= high:
        msg = f"capacity must satisfy min <= desired <= max, got {low}/{desired}/{high}"
        raise ValueError(msg)
    return Capacity(min=low, desired=desired, max=high)


def _check_seconds(name: str, value: object) -> None:
    """Refuse anything but a finite, positive number of seconds (``bool`` included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a number of seconds, got {type(value).__name__} {value!r}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        msg = f"{name} must be a positive number of seconds, got {value!r}"
        raise ValueError(msg)


def _check_deadline(deadline: float) -> float:
    _check_seconds("deadline", deadline)
    try:
        return float(deadline)
    except OverflowError:
        return math.inf  # a huge integer: no deadline worth the name


_SPECS: dict[tuple[object, ...], LoadSpec] = {}


@dataclass(frozen=True)
class LoadSpec:
    """What one load asks for: capacity, idle minutes, deadline, and which were chosen."""

    capacity: Capacity
    minutes: int
    deadline: float
    # Whether the caller chose the capacity / the idle timeout. Unchosen ones are only
    # used to create a cluster; an existing cluster keeps its own (issue: load() with no
    # sizes must not reset a cluster to the defaults).
    sets_capacity: bool = True
    sets_timeout: bool = True

    @classmethod
    def build(
        cls,
        concurrency: int | None,
        timeout: float | None,
        capacity: Capacity | Mapping[str, int] | None,
        deadline: float,
    ) -> LoadSpec:
        """Check the user's settings and build the spec (memoised for capacity-less ones).

        Args:
            concurrency: Instances (``None``: 1 for a new cluster, kept on an old one).
            timeout: Idle seconds (``None``: 300 for a new cluster, kept on an old one).
            capacity: Full capacity; overrides ``concurrency``.
            deadline: Seconds a load may wait for the cluster to run.

        Returns:
            The immutable spec.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
        """
        key: tuple[object, ...] | None = None
        if capacity is None:
            # Every auto-loaded run asks for one of a few specs; they are immutable, so
            # each is checked and built once. Types are in the key because True == 1.
            key = (type(concurrency), concurrency, type(timeout), timeout)
            key += (type(deadline), deadline)
            try:
                cached = _SPECS.get(key)
            except TypeError:  # unhashable: the checks below say what is wrong
                cached = key = None
            if cached is not None:
                return cached
        spec = cls(
            capacity=_to_capacity(1 if concurrency is None else concurrency, capacity),
            minutes=timeout_to_minutes(DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout),
            deadline=_check_deadline(deadline),
            sets_capacity=concurrency is not None or capacity is not None,
            sets_timeout=timeout is not None,
        )
        if key is not None and len(_SPECS) < 256:
            _SPECS[key] = spec
        return spec

    @property
    def key(self) -> tuple[int, int, int, int]:
        """``(min, desired, max, minutes)``: loads with equal keys may share a result."""
        cap = self.capacity
        return (cap.min, cap.desired, cap.max, self.minutes)

    def differs_from(self, status: ClusterStatus) -> bool:
        """Whether a cluster's reported settings differ from those chosen here.

        Args:
            status: The cluster's status.

        Returns:
            ``True`` when an update (PATCH) is needed.
        """
        # Only what the caller chose is compared. Unreported values are not treated as
        # different: a PATCH on every call would cost a write per request for nothing.
        cap = status.capacity
        if (
            self.sets_capacity
            and cap is not None
            and (cap.min, cap.desired, cap.max) != self.key[:3]
        ):
            return True
        return (
            self.sets_timeout
            and status.idle_timeout_minutes is not None
            and status.idle_timeout_minutes != self.minutes
        )


def run_payload(
    input: str | Sequence[Mapping[str, Any]],  # noqa: A002 - mirrors Bytez's own SDKs
    params: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Build a model handle's run body: ``text`` or ``messages``, and ``params``.

    Args:
        input: A string or a list of message dicts.
        params: Generation parameters, or ``None``.

    Returns:
        The JSON body.

    Raises:
        TypeError: On any other input or params type.
    """
    body: dict[str, Any]
    value: object = input
    if isinstance(value, str):
        body = {"text": value}
    elif isinstance(value, (list, tuple)) and all(isinstance(m, Mapping) for m in value):
        body = {"messages": [dict(m) for m in value]}
    else:
        msg = (
            "input must be a string (text tasks) or a list of message dicts "
            f"(chat tasks), got {type(value).__name__}"
        )
        raise TypeError(msg)
    extra: object = params
    if extra is not None:
        if not isinstance(extra, Mapping):
            msg = f"params must be a dict, got {type(extra).__name__}"
            raise TypeError(msg)
        body["params"] = dict(extra)
    return body
