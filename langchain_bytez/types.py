"""Typed values that cross layers: response metadata, run results, catalogue entries, clusters.

Hot-path values (``ResponseMeta``, ``RunResult``) are slotted dataclasses: they are built
once per response and never re-validated. Values parsed from catalogue and cluster
answers are pydantic models, tolerant of missing and extra fields because the live
service has changed shape over the years.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Capacity",
    "ClusterState",
    "ClusterStatus",
    "ModelInfo",
    "ResponseMeta",
    "RunResult",
    "parse_price",
]


# "0.0006478333 / sec", "$0.0006/sec", "0.0006 per second", "0.0006": a number, then an
# optional unit after "/" or "per".
_PRICE_RE = re.compile(
    r"\s*\$?\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:(?:/|per\s)\s*(\S.*?))?\s*",
    re.IGNORECASE,
)


def check_options(function: str, options: Mapping[str, object], known: Any) -> None:
    """Refuse keyword options a typed-dict ``**options`` signature does not name.

    Python refuses an unknown keyword argument on its own; a function that takes
    ``**options: Unpack[SomeOptions]`` must do it itself, with the same message.

    Args:
        function: The public function's name, for the message.
        options: The keyword arguments it was given.
        known: The ``TypedDict`` class of its options.

    Raises:
        TypeError: On the first unknown name, as ``f() got an unexpected keyword
            argument 'x'``.
    """
    names: frozenset[str] = known.__required_keys__ | known.__optional_keys__
    for name in options:
        if name not in names:
            msg = f"{function}() got an unexpected keyword argument {name!r}"
            raise TypeError(msg)


def parse_price(raw: Any) -> tuple[float | None, str | None]:
    """Read a price as the service writes it: ``"0.0006478333 / sec"`` or a plain number.

    Args:
        raw: The ``meterPrice`` catalogue value or ``inference-meter-price`` header: a
            number, or a string holding a number and an optional unit after ``/``.

    Returns:
        ``(USD amount, unit)``; the unit is ``None`` when none was written, and both are
        ``None`` for a value that is not a price (never an exception).
    """
    if raw is None or isinstance(raw, bool):
        return None, None
    if isinstance(raw, (int, float)):
        return (float(raw), None) if math.isfinite(raw) else (None, None)
    if not isinstance(raw, str):
        return None, None
    match = _PRICE_RE.fullmatch(raw)
    if match is None:
        return None, None
    amount = float(match.group(1))
    if not math.isfinite(amount):
        return None, None
    return amount, match.group(2) or None


# The seven metadata headers: the rate-limit trio, then the meter's four.
_META_HEADERS = tuple(f"ratelimit-{n}" for n in ("limit", "remaining", "reset")) + tuple(
    f"inference-{n}" for n in ("meter", "meter-price", "time", "cost")
)
_META_BYTES = {name.encode("ascii"): name for name in _META_HEADERS}


def _meta_values(headers: Mapping[str, str]) -> dict[str, str]:
    """The metadata headers ``headers`` holds, by lower-case name.

    An ``httpx.Headers`` is read in one pass over its raw pairs, decoding only the
    values kept (seven ``get`` calls would each scan and decode every header). A
    repeated header reads as its values joined with ``", "``, as ``get`` returns it.
    """
    if not isinstance(headers, httpx.Headers):
        return {name: value for name in _META_HEADERS if (value := headers.get(name)) is not None}
    found: dict[str, str] = {}
    encoding = ""
    for raw_name, raw_value in headers.raw:
        name = _META_BYTES.get(raw_name.lower())
        if name is None:
            continue
        encoding = encoding or headers.encoding
        value = raw_value.decode(encoding)
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _as_float(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _as_int(raw: str | None) -> int | None:
    value = _as_float(raw)
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """The metadata headers Bytez sends with every answer; any may be ``None``.

    Attributes:
        status_code: HTTP status of the response.
        ratelimit_limit: ``ratelimit-limit``: requests allowed in the window.
        ratelimit_remaining: ``ratelimit-remaining``: requests left in the window.
        ratelimit_reset: ``ratelimit-reset``: seconds until the window resets.
        inference_meter: ``inference-meter``: the billing meter (e.g. ``sm-gpu``).
        inference_meter_price: ``inference-meter-price``: the meter's price in USD per
            ``inference_meter_price_unit`` (the header may read ``"0.0006 / sec"``).
        inference_meter_price_unit: The unit the price header names (``"sec"``), if any.
        inference_time: ``inference-time``: seconds of inference billed.
        inference_cost: ``inference-cost``: USD billed for this request.
    """

    status_code: int | None = None
    ratelimit_limit: int | None = None
    ratelimit_remaining: int | None = None
    ratelimit_reset: float | None = None
    inference_meter: str | None = None
    inference_meter_price: float | None = None
    inference_time: float | None = None
    inference_cost: float | None = None
    inference_meter_price_unit: str | None = None

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], status_code: int | None = None
    ) -> ResponseMeta:
        """Read the seven headers defensively: malformed or missing values become ``None``.

        Args:
            headers: Response headers (case-insensitive mapping such as ``httpx.Headers``).
            status_code: The response's HTTP status.

        Returns:
            The parsed metadata.
        """
        found = _meta_values(headers)
        if not found:
            return cls(status_code=status_code)
        get = found.get
        price, unit = parse_price(get("inference-meter-price"))
        return cls(
            status_code=status_code,
            ratelimit_limit=_as_int(get("ratelimit-limit")),
            ratelimit_remaining=_as_int(get("ratelimit-remaining")),
            ratelimit_reset=_as_float(get("ratelimit-reset")),
            inference_meter=get("inference-meter"),
            inference_meter_price=price,
            inference_time=_as_float(get("inference-time")),
            inference_cost=_as_float(get("inference-cost")),
            inference_meter_price_unit=unit,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the fields that are set, for ``generation_info`` / ``response_metadata``.

        Returns:
            A new dict holding only the non-``None`` fields.
        """
        return {
            name: value for name in self.__slots__ if (value := getattr(self, name)) is not None
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one non-streamed model run.

    Attributes:
        model_id: The Bytez model id that ran.
        output: The envelope's ``output``, exactly as the server sent it.
        meta: The response metadata headers.
        provider: The ``provider`` object closed-source models add, if any.
    """

    model_id: str
    output: Any
    meta: ResponseMeta = field(default_factory=ResponseMeta)
    provider: dict[str, Any] | None = None


class ClusterState(str, enum.Enum):
    """The normalised state of a model's instance cluster."""

    DEPLOYING = "deploying"
    """Instances are being created or booted (also any status string not yet known)."""

    RUNNING = "running"
    """The cluster is up and serving requests."""

    STOPPED = "stopped"
    """No cluster is running: never created, stopped, stopping or shut down when idle."""

    FAILED = "failed"
    """The cluster failed to start or crashed; ``ClusterStatus.reason`` may say why."""

    @classmethod
    def from_raw(cls, raw: str | None) -> ClusterState:
        """Map any status string the service has used onto the four states.

        Args:
            raw: The server's status string (``"loading"``, ``"on"``, ``"RUNNING"``...).

        Returns:
            The normalised state; unknown strings count as deploying (still changing).
        """
        if raw is None:
            return cls.STOPPED
        return _RAW_STATES.get(raw.strip().lower(), cls.DEPLOYING)


_RAW_STATES: dict[str, ClusterState] = {
    "loading": ClusterState.DEPLOYING,
    "booting instance": ClusterState.DEPLOYING,
    "booting": ClusterState.DEPLOYING,
    "starting": ClusterState.DEPLOYING,
    "instantiating": ClusterState.DEPLOYING,
    "deploying": ClusterState.DEPLOYING,
    "pending": ClusterState.DEPLOYING,
    "on": ClusterState.RUNNING,
    "running": ClusterState.RUNNING,
    "ready": ClusterState.RUNNING,
    "off": ClusterState.STOPPED,
    "stopped": ClusterState.STOPPED,
    "stopping": ClusterState.STOPPED,
    "terminated": ClusterState.STOPPED,
    "failed": ClusterState.FAILED,
    "error": ClusterState.FAILED,
}


class Capacity(BaseModel):
    """Instance counts of a cluster: Bytez autoscales between ``min`` and ``max``.

    Attributes:
        min: Fewest instances kept running.
        desired: Instances to run now (each serves one request at a time).
        max: Most instances the cluster may scale to.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    """Pydantic settings: immutable; unknown keys from the server are ignored."""

    min: int = Field(default=1, ge=0)
    desired: int = Field(default=1, ge=0)
    max: int = Field(default=1, ge=1)

    @classmethod
    def fixed(cls, concurrency: int) -> Capacity:
        """Capacity with ``min == desired == max == concurrency``.

        Args:
            concurrency: Number of instances (parallel inferences), at least 1.

        Returns:
            The capacity.

        Raises:
            ValueError: If ``concurrency`` is not a positive integer.
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            msg = f"concurrency must be a positive integer, got {concurrency!r}"
            raise ValueError(msg)
        return cls(min=concurrency, desired=concurrency, max=concurrency)


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)):
        # Epoch seconds or milliseconds: both have been seen.
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


class ClusterStatus(BaseModel):
    """A model's instance cluster as the service reports it.

    Attributes:
        model_id: The Bytez model id.
        state: Normalised state (deploying / running / stopped / failed).
        raw_status: The server's own status string.
        capacity: Instance counts.
        instances: Instances currently up (a count, or ``None`` if not reported).
        inferences: Requests served by the cluster so far.
        created: When the cluster was created.
        modified: When it last changed.
        last_inference: When it last served a request.
        idle_timeout_minutes: Idle minutes before it shuts itself down.
        reason: The failure reason, when ``state`` is failed and the server said.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    """Pydantic settings: immutable, unknown keys ignored, names or aliases accepted.

    The aliases are the server's camelCase keys (``modelId``...)."""

    model_id: str = Field(alias="modelId")
    state: ClusterState = ClusterState.STOPPED
    raw_status: str | None = None
    capacity: Capacity | None = None
    instances: int | None = None
    inferences: int | None = None
    created: datetime | None = None
    modified: datetime | None = None
    last_inference: datetime | None = Field(default=None, alias="lastInference")
    idle_timeout_minutes: int | None = Field(default=None, alias="timeout")
    reason: str | None = None

    @field_validator("created", "modified", "last_inference", mode="before")
    @classmethod
    def _tolerant_time(cls, value: Any) -> datetime | None:
        return _parse_time(value)

    @field_validator("instances", mode="before")
    @classmethod
    def _count_instances(cls, value: Any) -> int | None:
        # Some API versions send a list of instance objects, others a count.
        if isinstance(value, list):
            return len(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        return None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], model_id: str | None = None) -> ClusterStatus:
        """Build from a cluster object of the API, whatever its vintage.

        Args:
            data: The cluster object (``output`` of the cluster routes).
            model_id: Fallback id when the object does not carry one.

        Returns:
            The parsed status.
        """
        raw = data.get("status")
        raw_str = None if raw is None else str(raw)
        values = dict(data)
        if not isinstance(values.get("modelId"), str) or not values["modelId"]:
            # Missing, null or not a string: fall back rather than fail validation.
            values["modelId"] = model_id or data.get("model_id") or ""
        values["state"] = ClusterState.from_raw(raw_str)
        values["raw_status"] = raw_str
        reason = data.get("reason") or data.get("error")
        values["reason"] = None if reason is None else str(reason)
        if not isinstance(values.get("capacity"), Mapping):
            values.pop("capacity", None)
        return cls.model_validate(values)

    @classmethod
    def stopped(cls, model_id: str) -> ClusterStatus:
        """The status of a model that has no cluster.

        Args:
            model_id: The Bytez model id.

        Returns:
            A status in the stopped state.
        """
        return cls.model_validate({"modelId": model_id, "state": ClusterState.STOPPED})


class ModelInfo(BaseModel):
    """One entry of the Bytez model catalogue.

    Attributes:
        model_id: The Bytez / Hugging Face model id (``org/name``).
        task: The task the model serves (``text-generation``, ``chat``...).
        params: Parameter count in billions, when known.
        ram_required: RAM needed in GB, when known.
        meter: The billing meter (instance size), when known.
        meter_price: The meter's price in USD per ``meter_price_unit``, when known (the
            catalogue writes ``"0.0006478333 / sec"``; a plain number is read too).
        meter_price_unit: The unit of ``meter_price`` as written (``"sec"``), if any.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    """Pydantic settings: immutable, unknown keys ignored, names or aliases accepted.

    The aliases are the server's camelCase keys (``modelId``...)."""

    model_id: str = Field(alias="modelId")
    task: str | None = None
    params: float | None = None
    ram_required: float | None = Field(default=None, alias="ramRequired")
    meter: str | None = None
    meter_price: float | None = Field(default=None, alias="meterPrice")
    meter_price_unit: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_price(cls, data: Any) -> Any:
        # "0.0006478333 / sec" carries two values: the amount and its unit.
        if isinstance(data, Mapping):
            raw = data.get("meterPrice", data.get("meter_price"))
            if raw is not None and "meter_price_unit" not in data:
                amount, unit = parse_price(raw)
                data = {
                    **{k: v for k, v in data.items() if k not in {"meterPrice", "meter_price"}},
                    "meterPrice": amount,
                    "meter_price_unit": unit,
                }
        return data

    @field_validator("params", "ram_required", "meter_price", mode="before")
    @classmethod
    def _tolerant_number(cls, value: Any) -> float | None:
        if value is None or isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None
