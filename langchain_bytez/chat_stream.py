"""``ChatBytez.stream``/``astream``: langchain-core's run, with compact chunk bookkeeping.

``BaseChatModel.stream`` keeps every chunk it yields in a list until the stream ends, to
sum them for ``on_llm_end``: about 1.8 KB per chunk, so a 1 MB answer (180,000 pieces)
costs +330 MB and four times the CPU of the client. ``ChatBytez`` runs the same code
(langchain-core 1.6 to 1.8: callbacks, tracing, ``run_id``, rate limiter, message ids,
``output_version="v1"`` blocks, the closing chunk) with one change: the chunks are
merged with core's own ``merge_chat_generation_chunks`` in blocks of
[`ChunkBlocks.BLOCK`][langchain_bytez.chat_stream.ChunkBlocks] as they come (the sum is
associative), so only a block's chunks are kept. What is the same for ``stream`` and
``astream`` lives here; ``chat_models.py`` holds the two loops. ``BytezLLM``'s own
linear ``stream`` shares
[`callback_configuration`][langchain_bytez.chat_stream.callback_configuration].

Core's ``stream`` and its streamed ``invoke`` (``_generate_with_cache``) call ``_stream``
without the run manager (they report the tokens themselves), so the client's retries and
the load progress would reach no callback. ``ChatBytez.stream`` hands its run manager to
the chunk loop for those alone; for core's streamed ``invoke``,
[`retry_manager`][langchain_bytez.chat_stream.retry_manager] finds the run manager
noted in ``STREAMED_RUN`` for the very ``messages`` list core passes on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from langchain_core.language_models._utils import (
    _filter_invocation_params_for_tracing,
    _normalize_messages,
    _update_message_content_to_blocks,
)
from langchain_core.language_models.chat_models import (
    _format_for_tracing,
    _format_ls_structured_output,
    _gen_info_and_msg_metadata,
    _generate_response_from_error,
)
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from langchain_core.outputs.chat_generation import merge_chat_generation_chunks
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.utils.utils import LC_ID_PREFIX

if TYPE_CHECKING:
    from langchain_core.language_models import (
        BaseChatModel,
        BaseLanguageModel,
        LanguageModelInput,
    )

__all__ = [
    "STREAMED_RUN",
    "ChatStreamRun",
    "ChunkBlocks",
    "callback_configuration",
    "retry_manager",
    "text_chunk",
]

STREAMED_RUN: ContextVar[tuple[list[BaseMessage], Any] | None] = ContextVar(
    "langchain_bytez_chat_run", default=None
)
"""``(messages, run manager)`` of a call whose ``_stream`` core calls without the run
manager; ``ChatBytez._generate_with_cache`` sets it (and resets it) around core's."""


class _Layout:
    """What a freshly validated pydantic object of one class holds, to copy it cheaply."""

    def __init__(self, prototype: Any) -> None:
        self.cls = type(prototype)
        self.values = dict(prototype.__dict__)
        # Mutable defaults ({} / []) get a fresh (empty) container per copy, as pydantic's
        # default factories give.
        self.fresh = [k for k, v in self.values.items() if isinstance(v, (dict, list))]
        self.fields_set = frozenset(prototype.__pydantic_fields_set__)
        self.extra = prototype.__pydantic_extra__
        self.private = prototype.__pydantic_private__

    def make(self, **values: Any) -> Any:
        """A copy of the prototype with ``values`` set (no validation: checked once)."""
        obj = object.__new__(self.cls)
        state = self.values.copy()
        for key in self.fresh:
            state[key] = type(state[key])()
        state.update(values)
        object.__setattr__(obj, "__dict__", state)
        object.__setattr__(obj, "__pydantic_fields_set__", set(self.fields_set))
        extra = None if self.extra is None else dict(self.extra)
        object.__setattr__(obj, "__pydantic_extra__", extra)
        private = None if self.private is None else dict(self.private)
        object.__setattr__(obj, "__pydantic_private__", private)
        return obj


def _validated_chunk(text: str) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=text))


def _copied_chunk_maker() -> Callable[[str], ChatGenerationChunk]:
    """A maker of text chunks equal to ``_validated_chunk``'s, or that function itself.

    Validating an ``AIMessageChunk`` and its ``ChatGenerationChunk`` costs about 15 us,
    most of a streamed piece's CPU; for a text piece the result is always the same but
    for the text, so it is copied from a validated prototype (about 4 us). Checked once
    against the validated objects: on any difference (another pydantic or core), the
    validated construction is used.
    """
    try:
        message = _Layout(AIMessageChunk(content=""))
        generation = _Layout(_validated_chunk(""))

        def make(text: str) -> ChatGenerationChunk:
            chunk = message.make(content=text)
            return cast("ChatGenerationChunk", generation.make(text=text, message=chunk))

        sample, expected = make("x y"), _validated_chunk("x y")
        same = (
            sample == expected
            and sample.model_dump() == expected.model_dump()
            and sample.model_fields_set == expected.model_fields_set
            and sample.message.model_fields_set == expected.message.model_fields_set
            and sample.message.__pydantic_extra__ == expected.message.__pydantic_extra__
            and "content" not in generation.fresh
        )
    except Exception:  # noqa: BLE001 - any surprise: keep core's own construction
        return _validated_chunk
    return make if same else _validated_chunk


text_chunk = _copied_chunk_maker()
"""``ChatGenerationChunk(message=AIMessageChunk(content=text))``, built cheaply."""


def retry_manager(messages: list[BaseMessage]) -> Any:
    """The run manager noted in ``STREAMED_RUN`` for ``messages``, or ``None``.

    Only for retries and load progress: the tokens are reported by core's caller.
    """
    noted = STREAMED_RUN.get()
    return noted[1] if noted is not None and noted[0] is messages else None


class ChunkBlocks:
    """The chunks of a stream, merged in blocks as they come (compact, same sum)."""

    BLOCK = 1024
    """Chunks kept before they are merged into one."""

    def __init__(self) -> None:
        """Start with no chunk."""
        self._blocks: list[ChatGenerationChunk] = []
        self._pending: list[ChatGenerationChunk] = []

    def append(self, chunk: ChatGenerationChunk) -> None:
        """Add the next chunk."""
        self._pending.append(chunk)
        if len(self._pending) >= self.BLOCK:
            merged = merge_chat_generation_chunks(self._pending)
            if merged is not None:
                self._blocks.append(merged)
            self._pending = []

    def merged(self) -> ChatGenerationChunk | None:
        """The sum of every chunk added, as ``merge_chat_generation_chunks`` gives it."""
        return merge_chat_generation_chunks([*self._blocks, *self._pending])

    def error_result(self, error: BaseException) -> LLMResult:
        """What ``BaseChatModel.stream`` reports to ``on_llm_error``."""
        with_error = _generate_response_from_error(error)
        merged = self.merged()
        generations: list[Any] = [[merged], with_error] if merged else [with_error]
        return LLMResult(generations=generations)


def callback_configuration(
    model: BaseLanguageModel[Any],
    config: RunnableConfig,
    stop: list[str] | None,
    kwargs: dict[str, Any],
    params: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of ``CallbackManager.configure`` in core's ``stream`` methods.

    The same for ``BaseLLM`` and ``BaseChatModel`` (langchain-core 1.6 to 1.8).

    Args:
        model: The model streaming.
        config: The run config (``ensure_config``'d).
        stop: The call's stop sequences.
        kwargs: The call's keyword arguments.
        params: The invocation params.

    Returns:
        The positional and keyword arguments.
    """
    inheritable_metadata = {
        **(config.get("metadata") or {}),
        **model._get_ls_params_with_defaults(stop=stop, **kwargs),
    }
    return (
        config.get("callbacks"),
        model.callbacks,
        model.verbose,
        config.get("tags"),
        model.tags,
        inheritable_metadata,
        model.metadata,
    ), {"langsmith_inheritable_metadata": _filter_invocation_params_for_tracing(params)}


@dataclass
class ChatStreamRun:
    """One stream's start (what ``BaseChatModel.stream`` computes) and chunk shaping.

    Attributes:
        messages: The normalised input messages for ``_stream``.
        kwargs: The call's keyword arguments, structured-output keys removed.
        configure: Positional arguments of ``CallbackManager.configure``.
        configure_kwargs: Its keyword arguments.
        start: Positional arguments of ``on_chat_model_start``.
        start_kwargs: Its keyword arguments.
    """

    messages: list[BaseMessage]
    kwargs: dict[str, Any]
    configure: tuple[Any, ...]
    configure_kwargs: dict[str, Any]
    start: tuple[Any, ...]
    start_kwargs: dict[str, Any]
    _run_id: str = ""
    _index: int = -1
    _index_type: str = ""

    @classmethod
    def of(
        cls,
        model: BaseChatModel,
        input: LanguageModelInput,  # noqa: A002 - langchain-core's name
        config: RunnableConfig | None,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> ChatStreamRun:
        """Resolve a call as ``BaseChatModel.stream`` does before its loop."""
        config = ensure_config(config)
        messages = model._convert_input(input).to_messages()
        kwargs = dict(kwargs)
        structured = kwargs.pop("ls_structured_output_format", None) or kwargs.pop(
            "structured_output_format", None
        )
        params = model._get_invocation_params(stop=stop, **kwargs)
        options = {
            "stop": stop,
            **{key: params[key] for key in kwargs if key in params},
            **_format_ls_structured_output(structured),
        }
        configure, configure_kwargs = callback_configuration(model, config, stop, kwargs, params)
        return cls(
            messages=messages,
            kwargs=kwargs,
            configure=configure,
            configure_kwargs=configure_kwargs,
            start=(model._serialized, [_format_for_tracing(messages)]),
            start_kwargs={
                "invocation_params": params,
                "options": options,
                "name": config.get("run_name"),
                "run_id": config.pop("run_id", None),
                "batch_size": 1,
            },
        )

    def begin(self, run_id: Any) -> list[BaseMessage]:
        """The messages for ``_stream``, once the run has its id."""
        self._run_id = f"{LC_ID_PREFIX}-{run_id}"
        return _normalize_messages(self.messages)

    def shape(self, chunk: ChatGenerationChunk, output_version: str | None) -> None:
        """Give a chunk its id, metadata and (``v1``) content blocks, as core does."""
        if chunk.message.id is None:
            chunk.message.id = self._run_id
        chunk.message.response_metadata = _gen_info_and_msg_metadata(chunk)
        if output_version == "v1":
            chunk.message = _update_message_content_to_blocks(chunk.message, "v1")
            for block in cast("list[dict[str, Any]]", chunk.message.content):
                if block["type"] != self._index_type:
                    self._index_type = block["type"]
                    self._index += 1
                if "index" not in block:
                    block["index"] = self._index

    def closing(self, last: ChatGenerationChunk | None) -> AIMessageChunk | None:
        """The empty ``chunk_position="last"`` chunk core adds when the stream has none."""
        if last is None or not isinstance(last.message, AIMessageChunk):
            return None
        if last.message.chunk_position:
            return None
        empty: str | list[str | dict[str, Any]] = (
            "" if isinstance(last.message.content, str) else []
        )
        return AIMessageChunk(content=empty, chunk_position="last", id=self._run_id)
