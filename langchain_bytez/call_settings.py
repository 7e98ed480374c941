"""Per-call settings of the generating classes: arguments, stops, params, finish reasons.

Pure rules written once for ``BytezLLM`` and ``ChatBytez`` (and re-exported by
[`langchain_bytez.generation`][langchain_bytez.generation], where the mixin that uses them
lives):

* [`CallArguments`][langchain_bytez.call_settings.CallArguments] (the strict check of
  ``invoke(..., **kwargs)``) and [`CallSettings`][langchain_bytez.call_settings.CallSettings]
  (one call resolved);
* [`dedupe_stops`][langchain_bytez.call_settings.dedupe_stops],
  [`finish_reason`][langchain_bytez.call_settings.finish_reason],
  [`cut_output`][langchain_bytez.call_settings.cut_output],
  [`generation_info`][langchain_bytez.call_settings.generation_info]: the stop and
  finish-reason rules and the metadata shape;
* [`wire_params`][langchain_bytez.call_settings.wire_params] (the params as the service
  accepts them) and [`check_request`][langchain_bytez.call_settings.check_request] (refuse
  what the client would refuse, before auto-load sends anything).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from langchain_bytez.protocol import validate_model_id
from langchain_bytez.streaming import cut_at_stop
from langchain_bytez.types import ResponseMeta
from langchain_bytez.wire.endpoints import EncodedPayload

__all__ = [
    "CallArguments",
    "CallSettings",
    "check_request",
    "cut_output",
    "dedupe_stops",
    "finish_reason",
    "generation_info",
    "wire_params",
]


# ---------------------------------------------------------------------- rules


def dedupe_stops(*groups: Sequence[str] | None) -> tuple[str, ...]:
    """Combine stop-sequence lists in order, dropping duplicates and empty strings.

    Args:
        *groups: Stop lists (instance ``stop``, ``params["stop_strings"]``, per call);
            ``None`` entries are skipped.

    Returns:
        The combined stop sequences, first occurrence first.
    """
    return tuple(dict.fromkeys(s for group in groups if group for s in group if s))


def finish_reason(*, stopped: bool, pieces: int | None, budget: int | None) -> str | None:
    """Say why generation ended, as far as it is known.

    Bytez does not say why generation ended. A stop sequence we cut at is certain; a
    stream that delivered as many pieces as the token budget almost surely ran out of
    it; otherwise we do not know and say ``None`` rather than guess.

    Args:
        stopped: Whether the text was cut at a stop sequence.
        pieces: Number of streamed pieces (``None`` for a non-streamed run).
        budget: The ``max_new_tokens`` sent, if any.

    Returns:
        ``"stop"``, ``"length"`` or ``None``.
    """
    if stopped:
        return "stop"
    if budget is not None and pieces is not None and pieces >= budget:
        return "length"
    return None


def generation_info(
    meta: ResponseMeta | None, model_id: str, reason: str | None, **extra: Any
) -> dict[str, Any]:
    """The metadata of one generation: Bytez headers, model name, extras, finish reason.

    Args:
        meta: The response's metadata headers (``None`` if the response never started).
        model_id: The model that ran.
        reason: The finish reason (see ``finish_reason``).
        **extra: Further keys (e.g. ``model_provider``), placed before ``finish_reason``.

    Returns:
        A new dict for ``generation_info`` / ``response_metadata``.
    """
    return {
        **(meta.as_dict() if meta is not None else {}),
        "model_name": model_id,
        **extra,
        "finish_reason": reason,
    }


# ---------------------------------------------------------------------- call settings


_ARGUMENT_NAMES: dict[type[CallArguments], frozenset[str]] = {}


class CallArguments(BaseModel):
    """Per-call keyword arguments LangChain passes through ``invoke(..., **kwargs)``.

    Strict: ``max_new_tokens="10"`` is refused here, before anything is sent. Keys that
    are not fields are kept (``extra="allow"``) and sent as generation params.
    Classes with their own per-call options subclass it and set
    ``BytezGenerationMixin._call_arguments``. A field left ``None`` keeps the
    instance's setting.
    """

    model_config = ConfigDict(
        strict=True, extra="allow", populate_by_name=True, title="Bytez call arguments"
    )
    """Pydantic settings: strict types, unknown keys kept, names or aliases accepted."""

    model: str | None = Field(default=None, alias="model_id", min_length=1)
    """Run another model for this call only (alias ``model_id``)."""

    max_new_tokens: int | None = Field(default=None, alias="max_tokens", ge=1)
    """Maximum number of new tokens for this call (alias ``max_tokens``)."""

    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature for this call."""

    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling probability mass for this call."""

    top_k: int | None = Field(default=None, ge=0)
    """Sample from the ``top_k`` most likely tokens in this call."""

    params: dict[str, Any] | None = Field(default=None, alias="model_kwargs")
    """Extra Hugging Face ``generate()`` kwargs for this call (alias ``model_kwargs``).

    Merged over the instance's ``params``."""

    streaming: bool | None = None
    """Use (or not) the streaming route for ``invoke``/``generate`` in this call."""

    timeout: float | None = Field(default=None, gt=0)
    """Request timeout for this call, in seconds."""

    @classmethod
    def names(cls) -> frozenset[str]:
        """Every accepted keyword: field names and their aliases.

        Returns:
            The names (computed once per class: every call with kwargs asks).
        """
        names = _ARGUMENT_NAMES.get(cls)
        if names is None:
            found = set(cls.model_fields)
            found.update(info.alias for info in cls.model_fields.values() if info.alias)
            names = _ARGUMENT_NAMES[cls] = frozenset(found)
        return names


@dataclass(frozen=True)
class CallSettings:
    """Everything one call needs, resolved once per call (instance + call overrides).

    Attributes:
        model: The model id to run.
        params: The Hugging Face params to send (``None`` values dropped).
        stops: Stop sequences, enforced client-side only (never sent).
        streaming: Whether ``invoke``/``generate`` should use the streaming route.
        timeout: Per-call request timeout, if given.
        max_new_tokens: The token budget sent, if any (for the finish reason).
        arguments: The validated per-call arguments (class-specific options live here).
    """

    model: str
    params: dict[str, Any]
    stops: tuple[str, ...]
    streaming: bool
    timeout: float | None
    max_new_tokens: int | None
    arguments: CallArguments

    def payload(self, **body: Any) -> dict[str, Any]:
        """The run body: ``body`` (``text=...`` or ``messages=...``) plus ``params``.

        Args:
            **body: The input keys of the run body.

        Returns:
            The payload for ``client.run`` / ``client.stream``.
        """
        return {**body, "params": self.params}


def cut_output(text: str, call: CallSettings) -> tuple[str, str | None]:
    """Apply the stop sequences to a whole (non-streamed) output.

    Args:
        text: The generated text.
        call: The call's settings.

    Returns:
        ``(text before the first stop sequence, finish reason)``.
    """
    text, stopped = cut_at_stop(text, call.stops)
    return text, finish_reason(stopped=stopped, pieces=None, budget=None)


# ---------------------------------------------------------------------- params


_INT_PARAMS = ("max_new_tokens", "min_new_tokens", "top_k", "num_return_sequences")
_NUMBER_PARAMS = ("temperature", "top_p", "repetition_penalty")


def _stop_list(name: str, value: Any, *, allow_str: bool = True) -> Sequence[str] | None:
    """Check a stop-sequence list before it is iterated (a string would be split).

    ``params["stop_strings"]`` may be one string (Hugging Face accepts it); LangChain's
    ``stop`` is typed ``list[str]``, and a string there is refused like in the
    constructor rather than silently cut into one-character stops.
    """
    if value is None:
        return None
    if isinstance(value, str) and allow_str:
        return [value]
    if (
        isinstance(value, str)
        or not isinstance(value, (list, tuple))
        or not all(isinstance(item, str) for item in value)
    ):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    return list(value)


def _check_param_types(params: Mapping[str, Any]) -> None:
    """Refuse known generation params of the wrong type before anything is sent.

    First-class arguments are validated by their models; this catches the same names
    arriving through ``params={...}`` or as extra keyword arguments.
    """
    for key in _INT_PARAMS:
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{key} must be an integer, got {value!r}")
    for key in _NUMBER_PARAMS:
        value = params.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ValueError(f"{key} must be a finite number, got {value!r}")


def wire_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params as the service accepts them (``docs/protocol.md``, run body).

    ``temperature=0`` means greedy decoding: Hugging Face models that sample by default
    answer ``temperature: 0`` with 422, so it is sent as ``do_sample: false`` with no
    temperature. ``stop_strings`` is never sent (models behind Bytez's vLLM adapter refuse
    it with 422, pipelines cannot use it): stop sequences are enforced client-side.

    Args:
        params: The merged params, ``None`` values already dropped.

    Returns:
        A new dict to send.
    """
    sent = {key: value for key, value in params.items() if key != "stop_strings"}
    temperature = sent.get("temperature")
    if (
        isinstance(temperature, (int, float))
        and not isinstance(temperature, bool)
        and temperature == 0
    ):
        del sent["temperature"]
        sent["do_sample"] = False
    return sent


# ---------------------------------------------------------------------- runs


def check_request(model_id: str, payload: Mapping[str, Any], *, stream: bool) -> EncodedPayload:
    """Refuse a request the client would refuse anyway, before auto-load sends anything.

    A bad model id, an unknown payload key or a value JSON cannot carry (a lone
    surrogate, NaN) would fail when the run body is encoded: checked here, the model's
    cluster is never touched for a run that cannot be sent. The body encoded for the
    check is the one sent: pass the result to the client in place of ``payload``.

    Args:
        model_id: The model to run.
        payload: The run body (without ``stream``).
        stream: Whether the run is streamed.

    Returns:
        The payload with its encoded body.

    Raises:
        InvalidModelIdError: If the model id breaks the protocol's rule.
        TypeError: If the payload is not a mapping.
        ValueError: If the payload cannot be sent.
    """
    validate_model_id(model_id)
    return EncodedPayload(payload, stream=stream)
