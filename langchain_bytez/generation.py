"""Generation machinery shared by ``BytezLLM`` and ``ChatBytez`` (and runs of ``BytezEmbeddings``).

One home for what every generating class needs, so the classes differ only in what they
send (``text`` or ``messages``) and what they return (strings or messages):

* [`BytezGenerationMixin`][langchain_bytez.generation.BytezGenerationMixin]: the generation
  fields (``max_new_tokens``, ``temperature``, ``top_p``, ``top_k``, ``stop``, ``params``,
  ``streaming``), the per-call argument check, the merge of instance fields, ``params``
  and per-call kwargs into the Hugging Face ``params`` dict
  (``BytezGenerationMixin._call_settings``), and the LangSmith standard params;
* the per-call rules (``CallArguments``, ``CallSettings``, ``dedupe_stops``,
  ``finish_reason``, ``cut_output``, ``generation_info``, ``wire_params``,
  ``check_request``), defined in [`langchain_bytez.call_settings`][langchain_bytez.call_settings]
  and re-exported here;
* [`run_model`][langchain_bytez.generation.run_model] /
  [`arun_model`][langchain_bytez.generation.arun_model]: one non-streamed run inside the model
  session (auto-load, in-flight cap, retries reported to the run manager);
* [`stream_text`][langchain_bytez.generation.stream_text] /
  [`astream_text`][langchain_bytez.generation.astream_text]: the streaming pipeline "decoded text ->
  [`StopCutter`][langchain_bytez.streaming.StopCutter] -> text pieces", ending with a
  [`StreamEnd`][langchain_bytez.generation.StreamEnd] carrying the final metadata;
* [`AsyncRetryReporter`][langchain_bytez.base.AsyncRetryReporter] and
  [`gather_or_cancel`][langchain_bytez.base.gather_or_cancel] for the async paths (defined in
  [`langchain_bytez.base`][langchain_bytez.base], re-exported here).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from pydantic import Field, PrivateAttr, ValidationError

from langchain_bytez.base import AsyncRetryReporter, BytezModelMixin, gather_or_cancel
from langchain_bytez.call_settings import (
    CallArguments,
    CallSettings,
    _check_param_types,
    _stop_list,
    check_request,
    cut_output,
    dedupe_stops,
    finish_reason,
    generation_info,
    wire_params,
)
from langchain_bytez.client import DEFAULT_BASE_URL
from langchain_bytez.errors import BytezStreamError
from langchain_bytez.streaming import StopCutter
from langchain_bytez.types import ResponseMeta, RunResult

__all__ = [
    "GENERATION_FIELDS",
    "AsyncRetryReporter",
    "BytezGenerationMixin",
    "CallArguments",
    "CallSettings",
    "StreamEnd",
    "areport_chunks",
    "arun_model",
    "astream_text",
    "check_request",
    "cut_output",
    "dedupe_stops",
    "finish_reason",
    "gather_or_cancel",
    "generation_info",
    "report_chunks",
    "run_model",
    "stream_text",
    "wire_params",
]

GENERATION_FIELDS = ("max_new_tokens", "temperature", "top_p", "top_k")
"""First-class fields that are sent as Hugging Face ``generate()`` params."""


_MEMO_STOPS = 8  # distinct per-call stop lists kept per configuration


class _Memo:
    """A cache slot private to one object: never copied or pickled, ignored by ``==``."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        # (the fields' values, {call's stop sequences: settings})
        self.entry: tuple[tuple[Any, ...], dict[tuple[Any, ...] | None, CallSettings]] | None
        self.entry = None

    def __eq__(self, other: object) -> bool:
        # Pydantic compares private attributes in ``==``: a filled cache must not make
        # two identically configured models unequal.
        return isinstance(other, _Memo)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[_Memo], tuple[()]]:
        return (_Memo, ())  # copies and pickles start empty


class BytezGenerationMixin(BytezModelMixin):
    """Generation fields and call resolution shared by the generating Bytez classes.

    Combine it with a LangChain base class, mixin first
    (``class ChatBytez(BytezGenerationMixin, BaseChatModel)``).
    """

    params: dict[str, Any] = Field(default_factory=dict, alias="model_kwargs")
    """Hugging Face ``generate()`` kwargs sent as ``params`` (alias ``model_kwargs``).

    For example ``repetition_penalty`` or ``do_sample``. The first-class fields below win
    over the same keys here."""

    max_new_tokens: int | None = Field(default=None, alias="max_tokens", ge=1, strict=True)
    """Maximum number of new tokens to generate (alias ``max_tokens``)."""

    temperature: float | None = Field(default=None, ge=0, strict=True)
    """Sampling temperature; ``None`` leaves the model's default.

    ``0`` means greedy decoding and is sent as ``do_sample: false`` without a
    temperature (models that sample by default refuse ``temperature: 0``)."""

    top_p: float | None = Field(default=None, gt=0, le=1, strict=True)
    """Nucleus sampling: sample from the smallest token set with this probability mass."""

    top_k: int | None = Field(default=None, ge=0, strict=True)
    """Sample from the ``top_k`` most likely tokens."""

    stop: list[str] | None = None
    """Stop sequences, combined with the ones given per call.

    Enforced client-side only, never sent (the service has no portable stop param:
    models behind Bytez's vLLM adapter refuse ``stop_strings`` with 422): the text ends
    before the first stop sequence, and a stream is closed as soon as one appears.
    ``params={"stop_strings": [...]}`` is accepted as another way to give them."""

    streaming: bool = False
    """Use the streaming route for ``invoke``/``generate`` too.

    Tokens then reach ``on_llm_new_token`` callbacks as they arrive."""

    # The per-call argument model; subclasses with extra per-call options extend it.
    _call_arguments: ClassVar[type[CallArguments]] = CallArguments

    # The settings of the last call without keyword arguments (see _call_settings).
    _settings_memo: _Memo = PrivateAttr(default_factory=_Memo)

    def __copy__(self) -> Self:
        """Shallow copy with its own (empty) settings cache.

        Returns:
            The copy.
        """
        copied = super().__copy__()
        copied._settings_memo = _Memo()  # pydantic shares private values in a copy
        return copied

    def _instance_params(self) -> dict[str, Any]:
        """``self.params`` with the first-class generation fields set over it (a new dict)."""
        params = dict(self.params)
        for name in GENERATION_FIELDS:
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params

    @property
    def _default_params(self) -> dict[str, Any]:
        """The params every run sends (before per-call overrides), as on the wire."""
        params = self._instance_params()
        params.pop("stop_strings", None)  # a stop sequence: enforced here, never sent
        return wire_params({key: value for key, value in params.items() if value is not None})

    @property
    def _default_stops(self) -> list[str]:
        """The stop sequences of every run (``stop`` and ``params["stop_strings"]``)."""
        try:
            # One string is one stop sequence (as in _call_settings), not its characters.
            configured = _stop_list("params['stop_strings']", self.params.get("stop_strings"))
        except ValueError:
            configured = None  # tracing must not fail; _call_settings refuses it clearly
        return list(dedupe_stops(self.stop, configured))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # Used for caching, tracing, str()/dict() and invocation params: never the key.
        try:
            # The settings of a call without arguments hold the same params and stops,
            # and are usually known already (every call asks for these).
            settings = self._call_settings(None, {})
            params, stops = dict(settings.params), list(settings.stops)
        except ValueError:  # tracing must not fail: _call_settings refuses it clearly
            params, stops = self._default_params, self._default_stops
        return {
            "model": self.model,
            "base_url": (self.base_url or DEFAULT_BASE_URL).rstrip("/"),
            "params": params,
            # Stops are enforced client-side: part of the identity, not of the params.
            **({"stop": stops} if stops else {}),
        }

    def _generation_ls_params(
        self,
        model_type: Literal["chat", "llm"],
        stop: list[str] | None,
        kwargs: Mapping[str, Any],
    ) -> LangSmithParams:
        """LangSmith standard params, honouring per-call ``model``/``temperature``/...

        Args:
            model_type: ``"chat"`` or ``"llm"``.
            stop: Stop sequences of the call.
            kwargs: The call's keyword arguments.

        Returns:
            The tracing params (never the key).
        """
        model = kwargs.get("model", kwargs.get("model_id"))
        params = LangSmithParams(
            ls_provider="bytez",
            ls_model_name=model if isinstance(model, str) else self.model,
            ls_model_type=model_type,
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
            params["ls_temperature"] = float(temperature)
        max_tokens = kwargs.get("max_new_tokens", kwargs.get("max_tokens", self.max_new_tokens))
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            params["ls_max_tokens"] = max_tokens
        # Tracing must not fail on a malformed stop: _call_settings refuses it clearly.
        valid = isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop)
        stops = dedupe_stops(self.stop, stop if valid else None)
        if stops:
            params["ls_stop"] = list(stops)
        return params

    def _call_settings(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> CallSettings:
        """Merge instance fields and per-call kwargs, validating before any request.

        Precedence, lowest first: ``self.params``, the first-class fields, per-call
        ``params``, other per-call keys, per-call first-class arguments. Stop sequences
        of all sources are combined.

        Args:
            stop: Stop sequences of this call (added to ``self.stop``).
            kwargs: The call's keyword arguments.

        Returns:
            The resolved settings.

        Raises:
            ValueError: A per-call argument has the wrong type or value, looks like a
                misspelt known argument, or is a client setting that cannot vary per call.
        """
        if kwargs or not (
            stop is None or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
        ):
            return self._resolve_call(stop, kwargs)  # checked (and refused) there
        # Most calls pass no keyword arguments: their settings depend on the instance's
        # fields and ``stop`` only, and are kept until one of those fields changes.
        key = self._settings_key()
        # Read from pydantic's private dict: attribute access to a private costs ~5 us.
        memo: _Memo = (self.__pydantic_private__ or {})["_settings_memo"]
        entry = memo.entry
        if entry is None or entry[0] != key:
            entry = memo.entry = (copy.deepcopy(key), {})
        by_stop = entry[1]
        stops = None if stop is None else tuple(stop)
        settings = by_stop.get(stops)
        if settings is None:
            settings = self._resolve_call(stop, kwargs)
            if len(by_stop) >= _MEMO_STOPS:
                by_stop.clear()
            by_stop[stops] = settings
        return settings

    def _settings_key(self) -> tuple[Any, ...]:
        """The fields the settings of a call without keyword arguments depend on."""
        return (
            self.model,
            self.params,
            self.max_new_tokens,
            self.temperature,
            self.top_p,
            self.top_k,
            self.stop,
            self.streaming,
            type(self),
        )

    def _resolve_call(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> CallSettings:
        arguments_model = self._call_arguments
        names = arguments_model.names() if kwargs else frozenset()  # only kwargs need it
        for key in kwargs:
            if key in names:
                continue
            if key in type(self).model_fields or key in {"api_key", "base_url"}:
                raise ValueError(
                    f"{key!r} cannot be changed per call; set it on the "
                    f"{type(self).__name__} instance."
                )
            close = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.85)
            if close:
                raise ValueError(f"Unknown argument {key!r}; did you mean {close[0]!r}?")
        try:
            call = arguments_model.model_validate(dict(kwargs))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}={e['input']!r}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            raise ValueError(f"Invalid argument for this call: {problems}") from None
        extra = dict(call.model_extra or {})
        if extra or call.params:
            try:
                json.dumps([extra, call.params], allow_nan=False)
            except (TypeError, ValueError) as error:
                raise ValueError(f"Per-call params must be JSON values: {error}") from None

        params = self._instance_params()
        params.update(call.params or {})
        params.update(extra)
        for name in GENERATION_FIELDS:
            value = getattr(call, name)
            if value is not None:
                params[name] = value
        stops = dedupe_stops(
            self.stop,
            _stop_list("params['stop_strings']", params.pop("stop_strings", None)),
            _stop_list("stop", stop, allow_str=False),
        )
        params = {key: value for key, value in params.items() if value is not None}
        _check_param_types(params)
        params = wire_params(params)
        if self.params:
            # The instance's own params are checked here too: refused before auto-load
            # spends a cold start, not when the run body is encoded after it.
            try:
                json.dumps(params, allow_nan=False)
            except (TypeError, ValueError) as error:
                raise ValueError(f"params must be JSON values: {error}") from None
        budget = params.get("max_new_tokens")
        return CallSettings(
            model=call.model or self.model,
            params=params,
            stops=stops,
            streaming=self.streaming if call.streaming is None else call.streaming,
            timeout=call.timeout,
            max_new_tokens=budget if isinstance(budget, int) else None,
            arguments=call,
        )


def run_model(
    owner: BytezModelMixin,
    model_id: str,
    payload: Mapping[str, Any],
    *,
    timeout: float | None = None,
    run_manager: CallbackManagerForLLMRun | None = None,
) -> RunResult:
    """Run a model once (not streamed) inside its session: auto-load and in-flight cap.

    Args:
        owner: The Bytez object whose client and model settings are used.
        model_id: The model to run.
        payload: The run body (without ``stream``).
        timeout: Per-call timeout.
        run_manager: The run's callback manager (retries and load progress go there).

    Returns:
        The run's result.
    """
    payload = check_request(model_id, payload, stream=False)
    client = owner._sync_client()
    on_retry = run_manager.on_retry if run_manager else None
    with owner._model_session(client, model_id, run_manager):
        return client.run(model_id, payload, timeout=timeout, on_retry=on_retry)


async def arun_model(
    owner: BytezModelMixin,
    model_id: str,
    payload: Mapping[str, Any],
    *,
    timeout: float | None = None,
    run_manager: AsyncCallbackManagerForLLMRun | None = None,
) -> RunResult:
    """Async version of [`run_model`][langchain_bytez.generation.run_model]."""
    payload = check_request(model_id, payload, stream=False)
    client = owner._async_client()
    async with (
        AsyncRetryReporter(run_manager) as on_retry,
        owner._amodel_session(client, model_id, run_manager),
    ):
        return await client.run(model_id, payload, timeout=timeout, on_retry=on_retry)


@dataclass(frozen=True)
class StreamEnd:
    """The last item of ``stream_text``: the stream's metadata.

    Attributes:
        info: [`generation_info`][langchain_bytez.generation.generation_info] of the stream
            (headers, model name, finish reason).
        stopped: Whether a stop sequence ended the text.
    """

    info: dict[str, Any]
    stopped: bool


def stream_text(
    owner: BytezModelMixin,
    call: CallSettings,
    payload: Mapping[str, Any],
    run_manager: CallbackManagerForLLMRun | None = None,
    *,
    lead_text: str = "",
    **info: Any,
) -> Generator[str | StreamEnd, None, None]:
    """Stream a run as text pieces with the stop sequences enforced, then a StreamEnd.

    The model session (auto-load, in-flight slot) is held while the consumer reads;
    closing the generator early closes the response and frees the slot. Nothing after
    a stop sequence is yielded, and the response is closed as soon as one appears.

    Args:
        owner: The Bytez object whose client and model settings are used.
        call: The call's settings (model, stops, timeout, budget).
        payload: The run body (without ``stream``).
        run_manager: The run's callback manager (retries and load progress go there).
        lead_text: Text yielded first, once the response has started (``BytezLLM``'s
            ``return_full_text`` prompt).
        **info: Extra keys for the final metadata (e.g. ``model_provider``).

    Yields:
        Non-empty text pieces, then one [`StreamEnd`][langchain_bytez.generation.StreamEnd].

    Raises:
        BytezStreamError: If the stream ended without any text.
    """
    payload = check_request(call.model, payload, stream=True)
    client = owner._sync_client()
    on_retry = run_manager.on_retry if run_manager else None
    cut = _StreamCut(call)
    with (
        owner._model_session(client, call.model, run_manager),
        client.stream(call.model, payload, timeout=call.timeout, on_retry=on_retry) as stream,
    ):
        if lead_text:
            yield lead_text
        for piece in stream:
            if text := cut.feed(piece):
                yield text
            if cut.stopped:
                break  # leaving the block closes the response: nothing more is read
        if tail := cut.flush():
            yield tail
        meta = stream.meta
    yield cut.end(meta, info)


async def astream_text(
    owner: BytezModelMixin,
    call: CallSettings,
    payload: Mapping[str, Any],
    run_manager: AsyncCallbackManagerForLLMRun | None = None,
    *,
    lead_text: str = "",
    **info: Any,
) -> AsyncGenerator[str | StreamEnd, None]:
    """Async version of [`stream_text`][langchain_bytez.generation.stream_text].

    ``aclose()`` it when stopping early.
    """
    payload = check_request(call.model, payload, stream=True)
    client = owner._async_client()
    cut = _StreamCut(call)
    async with (
        AsyncRetryReporter(run_manager) as on_retry,
        owner._amodel_session(client, call.model, run_manager),
        client.stream(call.model, payload, timeout=call.timeout, on_retry=on_retry) as stream,
    ):
        if lead_text:
            yield lead_text
        async for piece in stream:
            if text := cut.feed(piece):
                yield text
            if cut.stopped:
                break
        if tail := cut.flush():
            yield tail
        meta = stream.meta
    yield cut.end(meta, info)


_ChunkT = TypeVar("_ChunkT", GenerationChunk, ChatGenerationChunk)


def report_chunks(
    items: Generator[str | StreamEnd, None, None],
    to_chunk: Callable[[str | StreamEnd], _ChunkT],
    token_manager: CallbackManagerForLLMRun | None,
) -> Iterator[_ChunkT]:
    """Turn ``stream_text`` items into LangChain chunks, reporting each token first.

    The closing chunk (no text, the metadata) is yielded without a token callback.

    Args:
        items: The ``stream_text`` generator.
        to_chunk: Builds the class's chunk from a text piece or the closing ``StreamEnd``.
        token_manager: Where ``on_llm_new_token`` goes, or ``None`` when the caller (for
            example ``BaseChatModel.stream``) reports tokens itself.

    Yields:
        The chunks, each after its callback (LangChain's contract).
    """
    try:
        for item in items:
            chunk = to_chunk(item)
            # The closing chunk carries metadata, not a token (12 tokens are 12 calls).
            if token_manager is not None and not isinstance(item, StreamEnd):
                token_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
    finally:
        # Close the stream now, not at GC: a raising callback's traceback would otherwise
        # keep the open response and the model's in-flight slot alive.
        items.close()


async def areport_chunks(
    items: AsyncGenerator[str | StreamEnd, None],
    to_chunk: Callable[[str | StreamEnd], _ChunkT],
    token_manager: AsyncCallbackManagerForLLMRun | None,
) -> AsyncGenerator[_ChunkT, None]:
    """Async version of [`report_chunks`][langchain_bytez.generation.report_chunks]."""
    try:
        async for item in items:
            chunk = to_chunk(item)
            if token_manager is not None and not isinstance(item, StreamEnd):
                await token_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
    finally:
        # Release the response and the concurrency slot when the consumer stops early.
        await items.aclose()


class _StreamCut:
    """One stream's stop-sequence cutting and the counts its closing metadata needs."""

    def __init__(self, call: CallSettings) -> None:
        self._call = call
        self._cutter = StopCutter(call.stops)
        self._received = False
        self._pieces = 0

    @property
    def stopped(self) -> bool:
        """Whether a stop sequence was seen: nothing more is to be read."""
        return self._cutter.stopped

    def feed(self, piece: str) -> str:
        """The text of ``piece`` that can be delivered now (empty pieces do not count)."""
        if not piece:
            return ""
        self._received = True
        self._pieces += 1
        return self._cutter.feed(piece)

    def flush(self) -> str:
        """The held-back tail, once the stream is over."""
        return self._cutter.flush()

    def end(self, meta: ResponseMeta | None, info: Mapping[str, Any]) -> StreamEnd:
        """The closing item: the metadata with the finish reason.

        Raises:
            BytezStreamError: If the stream ended without any text.
        """
        stopped = self._cutter.stopped
        if not self._received and not stopped:
            # An empty 200 body is a broken answer, not an empty generation: say so rather
            # than return "" as if the model had chosen to say nothing.
            raise BytezStreamError(
                "The stream ended without any text", model_id=self._call.model, status_code=200
            )
        reason = finish_reason(
            stopped=stopped, pieces=self._pieces, budget=self._call.max_new_tokens
        )
        return StreamEnd(
            info=generation_info(meta, self._call.model, reason, **info), stopped=stopped
        )
