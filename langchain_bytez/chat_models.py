"""``ChatBytez``: Bytez chat and ``*-text-to-text`` models as a LangChain chat model.

Input: LangChain messages are converted by
[`convert_messages`][langchain_bytez.chat_messages.convert_messages] (rules in
[`chat_messages`][langchain_bytez.chat_messages]); tools and structured output are glued
in by [`chat_tools`][langchain_bytez.chat_tools].


Output: a text answer becomes a string ``content``; an answer holding non-text blocks
(e.g. an image next to the text) keeps them: ``content`` is then a list of LangChain
content blocks (``message.text`` still gives the text). With tools bound the answer is
read by [`ToolProtocol`][langchain_bytez.tool_calling.ToolProtocol].
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, ClassVar, Literal, cast

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel

from langchain_bytez.base import store_signatures
from langchain_bytez.chat_messages import content_of as _content
from langchain_bytez.chat_messages import convert_messages
from langchain_bytez.chat_messages import output_answer as _output_answer
from langchain_bytez.chat_stream import (
    STREAMED_RUN,
    ChatStreamRun,
    ChunkBlocks,
    retry_manager,
    text_chunk,
)
from langchain_bytez.chat_tools import (
    AnswerMode,
    StructuredParser,
    ToolCallStream,
    schema_name,
)
from langchain_bytez.chat_tools import answer_mode as _answer_mode
from langchain_bytez.chat_tools import with_system_text as _with_system_text
from langchain_bytez.generation import (
    BytezGenerationMixin,
    CallArguments,
    CallSettings,
    StreamEnd,
    areport_chunks,
    arun_model,
    astream_text,
    cut_output,
    generation_info,
    report_chunks,
    run_model,
    stream_text,
)
from langchain_bytez.tool_calling import (
    ToolProtocol,
)

__all__ = ["ChatBytez", "convert_messages"]

_PROVIDER = "bytez"


# ---------------------------------------------------------------------- the model


def _closing(chunk: ChatGenerationChunk) -> bool:
    """Whether ``chunk`` is a stream's closing chunk: metadata, no token to report."""
    message = chunk.message
    return isinstance(message, AIMessageChunk) and message.chunk_position == "last"


class _ChatCallArguments(CallArguments):
    """Per-call arguments of ``ChatBytez``: the shared ones plus LangChain's ``stream``."""

    stream: bool | None = None
    """LangChain's explicit ``stream=True`` flag: already acted on by ``BaseChatModel``
    (it routes the call to ``_stream``); never sent as a generation param."""


class ChatBytez(BytezGenerationMixin, BaseChatModel):
    """Bytez chat models: ``chat`` and ``image-``/``audio-``/``video-text-to-text`` tasks.

    Setup:
        Install ``langchain-bytez`` and set ``BYTEZ_API_KEY`` as shown for
        [`BytezLLM`][langchain_bytez.BytezLLM].

    Key init args — completion params:
        model: str
            Bytez model id, e.g. ``"Qwen/Qwen2.5-0.5B-Instruct"`` (alias ``model_id``).
        max_tokens: int | None
            Maximum number of tokens to generate (sent as ``max_new_tokens``).
        temperature: float | None
            Sampling temperature.
        top_p: float | None
            Nucleus sampling probability mass.
        top_k: int | None
            Sample from the k most likely tokens.
        stop: list[str] | None
            Stop sequences: enforced client-side (never sent: models behind
            Bytez's vLLM adapter refuse ``stop_strings``).
        params: dict
            Any other Hugging Face ``generate()`` kwargs (alias ``model_kwargs``).

    Key init args — client params:
        ``api_key``, ``base_url``, ``timeout``, ``max_retries``, ``auto_load``,
        ``concurrency`` and ``instance_timeout``, as for
        [`BytezLLM`][langchain_bytez.BytezLLM].

    See the full list of init args and their descriptions in the params section.

    Instantiate:
        ```python
        from langchain_bytez import ChatBytez

        model = ChatBytez(
            model="Qwen/Qwen2.5-0.5B-Instruct",
            max_tokens=256,
            temperature=0.2,
            # api_key="...",
            # concurrency=4,
            # other params...
        )
        ```

    Invoke:
        ```python
        messages = [
            ("system", "You are a helpful translator. Translate the user sentence to French."),
            ("human", "I love programming."),
        ]
        model.invoke(messages)
        ```
        ```python
        AIMessage(
            content="J'adore la programmation.",
            response_metadata={"status_code": 200, "inference_time": 0.52, ...,
                               "model_name": "Qwen/Qwen2.5-0.5B-Instruct",
                               "model_provider": "bytez", "finish_reason": None},
        )
        ```

    Stream:
        ```python
        for chunk in model.stream(messages):
            print(chunk.text, end="|")
        ```
        ```txt
        J|'adore| la| programmation|.|
        ```
        The last chunk is empty, has ``chunk_position="last"`` and carries the
        response metadata.

    Async:
        ```python
        await model.ainvoke(messages)

        # stream:
        # async for chunk in model.astream(messages):
        #     ...

        # batch:
        # await model.abatch([messages])
        ```

    Image input:
        Use an ``image-text-to-text`` model; images go by URL or base64 (LangChain
        standard blocks or OpenAI ``image_url`` blocks):

        ```python
        from langchain_core.messages import HumanMessage

        vision = ChatBytez(model="Qwen/Qwen2-VL-2B-Instruct")
        message = HumanMessage(
            content=[
                {"type": "text", "text": "Describe the weather in this image"},
                {"type": "image", "url": "https://example.com/weather.jpg"},
                # or {"type": "image", "base64": b64, "mime_type": "image/png"}
            ]
        )
        vision.invoke([message])
        ```
        Audio and video work the same way with ``audio-``/``video-text-to-text``
        models. Files/PDFs cannot be sent (the API has no such block): ``ValueError``.

    Tool calling:
        The Bytez chat route has no ``tools`` field, so tool calling is prompt-based and
        works with any instruct model (best with models trained for it: Qwen2.5/Qwen3,
        Llama 3.1+, Mistral/Mixtral instruct, Hermes). The tool schemas go into the
        system prompt; the answer is parsed into ``tool_calls`` whatever format the model
        uses (``<tool_call>`` blocks, bare JSON, ``[TOOL_CALLS]``, fenced JSON, ...).

        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location'''

            location: str = Field(..., description="The city, e.g. Paris")


        model_with_tools = model.bind_tools([GetWeather])
        ai_msg = model_with_tools.invoke("What is the weather like in Paris?")
        ai_msg.tool_calls
        ```
        ```python
        [{"name": "GetWeather", "args": {"location": "Paris"},
          "id": "call_5f1c...", "type": "tool_call"}]
        ```
        ``tool_choice``: ``"auto"`` (default), ``"any"``/``"required"``, a tool name,
        or ``"none"``. Arguments are validated against the schema (a quoted number
        such as ``"2"`` becomes ``2`` where an integer is expected); a call that does
        not parse or validate is in ``invalid_tool_calls`` with the model's text and
        the reason, as is a missing call under ``"required"`` or a tool name.
        ``AIMessage`` tool calls and ``ToolMessage`` results in the history are
        rendered as text (roles system/user/assistant only), so agents such as
        ``langchain.agents.create_agent`` run several steps. Streaming yields text as
        it comes and each call as a ``tool_call_chunks`` chunk once complete. See
        [`langchain_bytez.tool_calling`][langchain_bytez.tool_calling].

    Structured output:
        ```python
        from typing import Optional

        from pydantic import BaseModel, Field


        class Joke(BaseModel):
            '''Joke to tell user.'''

            setup: str = Field(description="The setup of the joke")
            punchline: str = Field(description="The punchline to the joke")
            rating: Optional[int] = Field(description="How funny the joke is, from 1 to 10")


        structured_model = model.with_structured_output(Joke)
        structured_model.invoke("Tell me a joke about cats")
        ```
        ```python
        Joke(setup="Why was the cat sitting on the computer?",
             punchline="To keep an eye on the mouse!", rating=7)
        ```
        ``method="function_calling"`` (default) goes through the tool protocol;
        ``"json_schema"`` and ``"json_mode"`` ask for a JSON answer and parse it. A
        failed validation raises ``OutputParserException`` carrying the model's text;
        ``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}`` instead.

    Message conversion:
        Consecutive messages of one role are merged (blank line between texts);
        ``name`` is sent per message; tool calls and tool results are rendered as
        text. See [`convert_messages`][langchain_bytez.chat_models.convert_messages].

    Response metadata:
        ```python
        model.invoke(messages).response_metadata
        ```
        ```txt
        {"status_code": 200, "ratelimit_remaining": 99, "inference_meter": "sm-gpu",
         "inference_time": 0.52, "inference_cost": 4.3e-05,
         "model_name": "Qwen/Qwen2.5-0.5B-Instruct", "model_provider": "bytez",
         "finish_reason": None}
        ```
        ``finish_reason`` is ``"stop"`` when a stop sequence ended the text, ``"length"``
        when a stream used the whole ``max_tokens`` budget, ``None`` otherwise (the API
        does not say why generation ended).

    Token usage:
        Bytez reports no token counts (it bills inference time: see
        ``inference_time``/``inference_cost``), so ``usage_metadata`` is ``None``.

    Non-text answers:
        An answer holding other blocks than text (e.g. an image) keeps them:
        ``content`` is then a list of LangChain content blocks and ``message.text``
        is its text.
    """

    _call_arguments: ClassVar[type[CallArguments]] = _ChatCallArguments

    # ------------------------------------------------------------------ LangChain hooks

    @property
    def _llm_type(self) -> str:
        return "bytez-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._generation_ls_params("chat", stop, kwargs)

    # ------------------------------------------------------------------ shaping

    @staticmethod
    def _result(
        output: Any, model_id: str, call: CallSettings, meta: Any, mode: AnswerMode
    ) -> ChatResult:
        answer = _output_answer(output, model_id)
        text, reason = cut_output(answer.text, call)
        info = generation_info(meta, model_id, reason, model_provider=_PROVIDER)
        if mode.reads_calls and mode.tools is not None:
            parsed = mode.tools.parse(text)
            if parsed.tool_calls and reason is None:
                info["finish_reason"] = "tool_calls"
            message = AIMessage(
                content=_content(parsed.content, answer),
                response_metadata=info,
                tool_calls=parsed.tool_calls,
                invalid_tool_calls=parsed.invalid_tool_calls,
            )
        else:
            message = AIMessage(content=_content(text, answer), response_metadata=info)
        return ChatResult(
            generations=[ChatGeneration(message=message)], llm_output={"model_name": model_id}
        )

    @staticmethod
    def _chunk(item: str | StreamEnd) -> ChatGenerationChunk:
        if isinstance(item, StreamEnd):
            # The closing chunk: no text, the metadata, and the end-of-stream marker.
            message = AIMessageChunk(content="", response_metadata=item.info, chunk_position="last")
            return ChatGenerationChunk(message=message)
        return text_chunk(item)

    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> tuple[CallSettings, AnswerMode, dict[str, Any]]:
        """Resolve one call: settings, answer mode and the run body (checked before I/O)."""
        mode = _answer_mode(kwargs)
        call = self._call_settings(stop, mode.rest)
        conversation = _with_system_text(messages, mode.system_text())
        return call, mode, call.payload(messages=convert_messages(conversation))

    def _streams(self, call: CallSettings, kwargs: Mapping[str, Any]) -> bool:
        """Whether ``_generate`` should take the streaming route for this call.

        ``BaseChatModel`` routes ``stream=True`` and a ``streaming=True`` field to
        ``_stream`` itself; ``_generate`` streams for what it does not know (the per-call
        ``streaming=True`` argument, a subclass defaulting ``streaming`` to ``True``),
        and never against LangChain's opt-outs ``stream=False`` and
        ``disable_streaming=True``.
        """
        if self.disable_streaming is True or ("stream" in kwargs and not kwargs["stream"]):
            return False
        return call.streaming

    # ------------------------------------------------------------------ sync

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Run the model on one conversation.

        Args:
            messages: The conversation.
            stop: Stop sequences for this call (added to ``self.stop``).
            run_manager: The run's callback manager.
            **kwargs: Per-call overrides (``model``, ``max_tokens``, ``temperature``,
                ``params``, ...); other keys are sent as generation params.

        Returns:
            One generation with the reply and its metadata.
        """
        call, mode, payload = self._prepare(messages, stop, kwargs)
        if self._streams(call, kwargs):
            return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        result = run_model(self, call.model, payload, timeout=call.timeout, run_manager=run_manager)
        return self._result(result.output, result.model_id, call, result.meta, mode)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream the reply piece by piece; the arguments are those of ``_generate``.

        Yields:
            One chunk per decoded piece, then an empty ``chunk_position="last"`` chunk
            carrying the response metadata.
        """
        # Core's streamed invoke passes no run manager (it reports the tokens itself):
        # the retries still go to the one it noted for these messages.
        retries = run_manager or retry_manager(messages)
        yield from self._chunks(messages, stop, retries, run_manager, kwargs)

    def _chunks(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        token_manager: CallbackManagerForLLMRun | None,
        kwargs: Mapping[str, Any],
    ) -> Iterator[ChatGenerationChunk]:
        """``_stream`` with retries/load progress (``run_manager``) and tokens apart."""
        call, mode, payload = self._prepare(messages, stop, kwargs)
        items = stream_text(self, call, payload, run_manager, model_provider=_PROVIDER)
        if not mode.reads_calls or mode.tools is None:
            yield from report_chunks(items, self._chunk, token_manager)
            return
        reader = ToolCallStream(mode.tools)
        try:
            for item in items:
                for chunk in reader.feed(item):
                    if token_manager is not None and not _closing(chunk):
                        token_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        finally:
            items.close()  # frees the response and the in-flight slot on early exit

    def _generate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Core's method, with the run manager noted for the ``_stream`` it may call."""
        noted = STREAMED_RUN.set((messages, run_manager))
        try:
            return super()._generate_with_cache(messages, stop, run_manager, **kwargs)
        finally:
            STREAMED_RUN.reset(noted)

    # ------------------------------------------------------------------ async

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async version of ``_generate``."""
        call, mode, payload = self._prepare(messages, stop, kwargs)
        if self._streams(call, kwargs):
            return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))
        result = await arun_model(
            self, call.model, payload, timeout=call.timeout, run_manager=run_manager
        )
        return self._result(result.output, result.model_id, call, result.meta, mode)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Async version of ``_stream``."""
        retries = run_manager or retry_manager(messages)
        chunks = self._achunks(messages, stop, retries, run_manager, kwargs)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    async def _achunks(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        token_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: Mapping[str, Any],
    ) -> AsyncGenerator[ChatGenerationChunk, None]:
        """Async version of ``_chunks``."""
        call, mode, payload = self._prepare(messages, stop, kwargs)
        items = astream_text(self, call, payload, run_manager, model_provider=_PROVIDER)
        if not mode.reads_calls or mode.tools is None:
            chunks = areport_chunks(items, self._chunk, token_manager)
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()
            return
        reader = ToolCallStream(mode.tools)
        try:
            async for item in items:
                for chunk in reader.feed(item):
                    if token_manager is not None and not _closing(chunk):
                        await token_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        finally:
            await items.aclose()

    async def _agenerate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async version of ``_generate_with_cache``."""
        noted = STREAMED_RUN.set((messages, run_manager))
        try:
            return await super()._agenerate_with_cache(messages, stop, run_manager, **kwargs)
        finally:
            STREAMED_RUN.reset(noted)

    # ------------------------------------------------------------------ public streams

    def stream(
        self,
        input: LanguageModelInput,  # noqa: A002 - langchain-core's name
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream the reply: ``BaseChatModel.stream``, keeping a block of chunks, not all.

        See [`chat_stream`][langchain_bytez.chat_stream].

        Args:
            input: The conversation (or a string).
            config: The run config.
            stop: Stop sequences for this call.
            **kwargs: Per-call arguments, as for ``invoke``.

        Yields:
            The message chunks.
        """
        if not self._should_stream(async_api=False, **{**kwargs, "stream": True}):
            yield cast("AIMessageChunk", self.invoke(input, config=config, stop=stop, **kwargs))
            return
        run = ChatStreamRun.of(self, input, config, stop, kwargs)
        manager = CallbackManager.configure(*run.configure, **run.configure_kwargs)
        (run_manager,) = manager.on_chat_model_start(*run.start, **run.start_kwargs)
        if self.rate_limiter:
            self.rate_limiter.acquire(blocking=True)
        blocks = ChunkBlocks()
        try:
            last = None
            # The run manager hears the retries and load progress; the tokens are ours.
            messages = run.begin(run_manager.run_id)
            for last in self._chunks(messages, stop, run_manager, None, run.kwargs):
                run.shape(last, self.output_version)
                run_manager.on_llm_new_token(last.message.content, chunk=last)
                blocks.append(last)
                yield cast("AIMessageChunk", last.message)
            if (closing := run.closing(last)) is not None:
                run_manager.on_llm_new_token("", chunk=ChatGenerationChunk(message=closing))
                yield closing
        except BaseException as error:
            run_manager.on_llm_error(error, response=blocks.error_result(error))
            raise
        generation = blocks.merged()
        if not generation:
            empty = ValueError("No generation chunks were returned")
            run_manager.on_llm_error(empty, response=LLMResult(generations=[]))
            raise empty
        run_manager.on_llm_end(LLMResult(generations=[[generation]]))

    async def astream(
        self,
        input: LanguageModelInput,  # noqa: A002 - langchain-core's name
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async version of ``stream`` (``BaseChatModel.astream``)."""
        if not self._should_stream(async_api=True, **{**kwargs, "stream": True}):
            reply = await self.ainvoke(input, config=config, stop=stop, **kwargs)
            yield cast("AIMessageChunk", reply)
            return
        run = ChatStreamRun.of(self, input, config, stop, kwargs)
        manager = AsyncCallbackManager.configure(*run.configure, **run.configure_kwargs)
        (run_manager,) = await manager.on_chat_model_start(*run.start, **run.start_kwargs)
        if self.rate_limiter:
            await self.rate_limiter.aacquire(blocking=True)
        blocks = ChunkBlocks()
        try:
            last = None
            chunks = self._achunks(
                run.begin(run_manager.run_id), stop, run_manager, None, run.kwargs
            )
            async for last in chunks:
                run.shape(last, self.output_version)
                await run_manager.on_llm_new_token(last.message.content, chunk=last)
                blocks.append(last)
                yield cast("AIMessageChunk", last.message)
            if (closing := run.closing(last)) is not None:
                await run_manager.on_llm_new_token("", chunk=ChatGenerationChunk(message=closing))
                yield closing
        except BaseException as error:
            await run_manager.on_llm_error(error, response=blocks.error_result(error))
            raise
        generation = blocks.merged()
        if not generation:
            empty = ValueError("No generation chunks were returned")
            await run_manager.on_llm_error(empty, response=LLMResult(generations=[]))
            raise empty
        await run_manager.on_llm_end(LLMResult(generations=[[generation]]))

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: the model may answer with ``tool_calls`` (prompt-based protocol).

        The tool schemas and the answer format go into the system prompt of each call;
        the answer is read into ``tool_calls`` / ``invalid_tool_calls`` (see
        [`langchain_bytez.tool_calling`][langchain_bytez.tool_calling]). Nothing about
        tools is sent as a generation param.

        Args:
            tools: LangChain tools, pydantic models, TypedDicts, functions, JSON schemas
                or OpenAI tool/function dicts.
            tool_choice: ``"auto"`` (default), ``"any"``/``"required"``/``True`` (call at
                least one tool), a tool name or ``{"type": "function", "function":
                {"name": ...}}`` (call that tool), ``"none"``/``False`` (answer in text).
            strict: Accepted for compatibility with other chat models; arguments are
                always validated against the tool schemas.
            parallel_tool_calls: ``False`` asks for at most one call per answer.
            **kwargs: Further per-call arguments (as for ``invoke``).

        Returns:
            A runnable that calls this model with the tools.

        Raises:
            ValueError: A tool cannot be converted to a schema, or ``tool_choice`` names
                an unknown tool or has an unknown form.
        """
        del strict  # validation is always on: see the docstring
        protocol = ToolProtocol.build(tools, tool_choice, parallel=parallel_tool_calls)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=list(protocol.tools), tool_choice=protocol.choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable whose answers are parsed and validated against ``schema``.

        Args:
            schema: A pydantic class (answers are instances of it), a TypedDict or a
                JSON schema / OpenAI function dict (answers are dicts). Optional only
                with ``method="json_mode"`` (any JSON object is then returned).
            method: ``"function_calling"`` (the schema is a tool the model must call:
                the tool-calling protocol), ``"json_schema"`` (the model is asked for a
                JSON answer following the schema) or ``"json_mode"`` (a JSON answer;
                the schema, if given, is included and used for validation).
            include_raw: Return ``{"raw": AIMessage, "parsed": ..., "parsing_error":
                ...}`` instead of raising on a parsing failure.
            strict: Accepted for compatibility; answers are always validated.
            **kwargs: Not supported: any key raises ``ValueError``.

        Returns:
            The runnable.

        Raises:
            ValueError: Unknown ``method`` or keyword, or a missing/unconvertible schema.
            OutputParserException: (when invoked, without ``include_raw``) the answer is
                missing, not JSON or invalid; ``llm_output`` holds the model's text.
        """
        del strict
        if kwargs:
            raise ValueError(f"Unsupported arguments: {', '.join(sorted(kwargs))}")
        model_class = schema if isinstance(schema, type) and is_basemodel_subclass(schema) else None
        if schema is None and method != "json_mode":
            raise ValueError(f"method={method!r} needs a schema")
        if method == "function_calling":
            assert schema is not None  # noqa: S101 - checked above
            name = schema_name(schema)
            llm = self.bind_tools(
                [schema],
                tool_choice=name,
                ls_structured_output_format={
                    "kwargs": {"method": method},
                    "schema": convert_to_openai_tool(schema),
                },
            )
            parser = StructuredParser(
                source="tool",
                tool_name=name,
                model_class=model_class,
                json_schema=None if model_class else convert_to_json_schema(schema),
            )
        elif method in ("json_schema", "json_mode"):
            json_schema = convert_to_json_schema(schema) if schema is not None else None
            response_format: dict[str, Any] = (
                {"type": "json_object"}
                if json_schema is None
                else {
                    "type": "json_schema",
                    "json_schema": {"name": json_schema.get("title"), "schema": json_schema},
                }
            )
            llm = self.bind(
                response_format=response_format,
                ls_structured_output_format={
                    "kwargs": {"method": method},
                    "schema": json_schema,
                },
            )
            parser = StructuredParser(
                source="json",
                model_class=model_class,
                json_schema=None if model_class else json_schema,
            )
        else:
            raise ValueError(
                f"Unknown method {method!r}: use 'function_calling', 'json_schema' or 'json_mode'"
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        failed = RunnablePassthrough.assign(parsed=lambda _: None)
        with_fallback = parsed.with_fallbacks([failed], exception_key="parsing_error")
        return cast(Runnable[LanguageModelInput, Any], RunnableMap(raw=llm) | with_fallback)


# LangChain inspects these on every call; keep their signatures ready.
store_signatures(ChatBytez, "_generate", "_agenerate")
