"""``BytezLLM``: Bytez text-generation models as a LangChain ``LLM``.

The generation fields, per-call argument check, stop and finish-reason rules, runs and
the streaming pipeline live in [`langchain_bytez.generation`][langchain_bytez.generation]
(shared with ``ChatBytez``); this module adds what is specific to plain text generation:
the ``text`` body, removal of the echoed prompt and ``return_full_text``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.runnables.config import ContextThreadPoolExecutor
from pydantic import ConfigDict

from langchain_bytez.base import gather_or_cancel, store_signatures
from langchain_bytez.chat_stream import callback_configuration
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
from langchain_bytez.types import RunResult
from langchain_bytez.wire.outputs import text_of_output

__all__ = ["BytezLLM"]


class _LLMCallArguments(CallArguments):
    """Per-call arguments of ``BytezLLM``: the shared ones plus ``return_full_text``."""

    model_config = ConfigDict(title="BytezLLM call arguments")

    return_full_text: bool | None = None


def _output_text(output: Any, model_id: str) -> str:
    """The generated text of a text-generation ``output``, whatever its vintage."""
    return text_of_output(
        output,
        model_id,
        expected="a text-generation output",
        hint="is this a text-generation model?",
    )


def _strip_echo(full: str, prompt: str) -> str:
    """The continuation: ``full`` without the prompt the API echoes in front of it.

    The prompt is removed only when it is really there, so a server (or a model) that
    does not echo it loses no text. An exact echo is expected; an echo whose leading or
    trailing whitespace was normalised away (``" Hi "`` echoed as ``"Hi"``) is removed
    too, rather than returned to the caller as if the model had written it.
    """
    if full.startswith(prompt):
        return full[len(prompt) :]
    core = prompt.strip()
    if core:
        body = full.lstrip()
        if body.startswith(core):
            return body[len(core) :]
    return full


def _chunk(item: str | StreamEnd) -> GenerationChunk:
    """A stream item as a chunk: text, or the empty closing chunk with the metadata."""
    if isinstance(item, StreamEnd):
        return GenerationChunk(text="", generation_info=item.info)
    return GenerationChunk(text=item)


class BytezLLM(BytezGenerationMixin, LLM):
    """Bytez text-generation models (any Hugging Face ``text-generation`` model on Bytez).

    Setup:
        Install ``langchain-bytez`` from a clone of its repository (it supersedes Bytez's
        own 0.0.x package of the same name on PyPI, which the first line removes) and set
        the environment variable ``BYTEZ_API_KEY``.

        ```bash
        pip uninstall --yes langchain-bytez && pip install .
        export BYTEZ_API_KEY="your-api-key"
        ```

    Key init args — generation params:
        model: str
            Bytez model id, e.g. ``"openai-community/gpt2"`` (alias ``model_id``).
        max_new_tokens: int | None
            Maximum number of tokens to generate (alias ``max_tokens``).
        temperature: float | None
            Sampling temperature.
        top_p: float | None
            Nucleus sampling probability mass.
        top_k: int | None
            Sample from the k most likely tokens.
        stop: list[str] | None
            Stop sequences, enforced client-side (never sent to the service).
        params: dict
            Any other Hugging Face ``generate()`` kwargs (alias ``model_kwargs``).
        return_full_text: bool
            Return the prompt followed by the continuation (default: continuation only).

    Key init args — client params:
        api_key: SecretStr | None
            Bytez API key; read from ``BYTEZ_API_KEY`` if not passed.
        base_url: str | None
            API root; read from ``BYTEZ_BASE_URL``; default ``https://api.bytez.com``.
        timeout: float | None
            Request timeout in seconds (default: sized for cold starts).
        max_retries: int
            Retries on 429 / 5xx / connection errors (default 2).
        auto_load: bool
            Load the model once before the first run (default ``True``).
        concurrency: int
            Instances to load and in-flight runs allowed from this process.
        instance_timeout: int
            Idle seconds before Bytez shuts the instances down.

    See the full list of init args and their descriptions in the params section.

    Instantiate:
        ```python
        from langchain_bytez import BytezLLM

        llm = BytezLLM(
            model="openai-community/gpt2",
            max_new_tokens=40,
            temperature=0.7,
            # api_key="...",
            # concurrency=4,
            # other params...
        )
        ```

    Invoke:
        ```python
        llm.invoke("Once upon a time")
        ```
        ```txt
        ", there was a little girl who lived in a village near the forest."
        ```

    Stream:
        ```python
        for chunk in llm.stream("Once upon a time"):
            print(chunk, end="|")
        ```
        ```txt
        ,| there| was| a| little| girl|...
        ```

    Async:
        ```python
        await llm.ainvoke("Once upon a time")

        # stream:
        # async for chunk in llm.astream("Once upon a time"):
        #     print(chunk, end="")
        ```

    Batch:
        ```python
        llm.batch(["Once upon a time", "The meaning of life is"])
        # or: await llm.abatch([...]); llm.generate([...]) also runs prompts concurrently
        ```

    Response metadata:
        ```python
        result = llm.generate(["Once upon a time"])
        result.generations[0][0].generation_info
        ```
        ```txt
        {"status_code": 200, "inference_time": 0.41, "inference_cost": 0.0002,
         "inference_meter": "sm-gpu", ..., "model_name": "openai-community/gpt2",
         "finish_reason": None}
        ```
        ``finish_reason`` is ``"stop"`` when a stop sequence ended the text, ``"length"``
        when a stream used the whole ``max_new_tokens`` budget, ``None`` otherwise (the
        API does not say why generation ended).
    """

    return_full_text: bool = False
    """Return the prompt followed by the continuation.

    Bytez returns prompt + continuation; by default the prompt is removed, only when the
    output starts with it (exactly, or with its surrounding whitespace trimmed): a server
    that does not echo it loses nothing. With ``True``, the text is this call's prompt
    followed by the continuation, and streams start with the prompt as their first
    chunk."""

    _call_arguments: ClassVar[type[CallArguments]] = _LLMCallArguments

    # ------------------------------------------------------------------ LangChain hooks

    @property
    def _llm_type(self) -> str:
        return "bytez"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**super()._identifying_params, "return_full_text": self.return_full_text}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._generation_ls_params("llm", stop, kwargs)

    # ------------------------------------------------------------------ result shaping

    def _full_text(self, call: CallSettings) -> bool:
        """Whether this call returns the prompt followed by the continuation."""
        arguments = call.arguments
        override = arguments.return_full_text if isinstance(arguments, _LLMCallArguments) else None
        return self.return_full_text if override is None else override

    def _finish(self, prompt: str, result: RunResult, call: CallSettings) -> Generation:
        continuation = _strip_echo(_output_text(result.output, result.model_id), prompt)
        continuation, reason = cut_output(continuation, call)
        text = prompt + continuation if self._full_text(call) else continuation
        info = generation_info(result.meta, result.model_id, reason)
        return Generation(text=text, generation_info=info)

    # ------------------------------------------------------------------ sync

    def _run_one(
        self,
        prompt: str,
        call: CallSettings,
        run_manager: CallbackManagerForLLMRun | None,
        *,
        emit_tokens: bool = True,
    ) -> Generation:
        if call.streaming:
            chunks = self._stream_with_callbacks(
                prompt, call, run_manager if emit_tokens else None, run_manager
            )
            return _aggregate(chunks)
        payload = call.payload(text=prompt)
        result = run_model(self, call.model, payload, timeout=call.timeout, run_manager=run_manager)
        return self._finish(prompt, result, call)

    def _stream_with_callbacks(
        self,
        prompt: str,
        call: CallSettings,
        token_manager: CallbackManagerForLLMRun | None,
        run_manager: CallbackManagerForLLMRun | None,
    ) -> Iterator[GenerationChunk]:
        # The model session (and its in-flight slot) is held while the consumer reads;
        # nothing runs until the first chunk is read.
        lead_text = prompt if self._full_text(call) else ""
        items = stream_text(self, call, call.payload(text=prompt), run_manager, lead_text=lead_text)
        return report_chunks(items, _chunk, token_manager)

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        """Run the model on one prompt.

        Args:
            prompt: The prompt.
            stop: Stop sequences for this call (added to ``self.stop``).
            run_manager: The run's callback manager.
            **kwargs: Per-call overrides (``max_new_tokens``, ``temperature``, ``params``,
                ...); other keys are sent as generation params.

        Returns:
            The generated text.
        """
        return self._run_one(prompt, self._call_settings(stop, kwargs), run_manager).text

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Run the prompts concurrently (up to ``concurrency`` at once), results in order.

        With ``streaming=True`` and several prompts, only the first prompt's tokens go
        to ``on_llm_new_token``: LangChain gives ``_generate`` one run manager for all
        prompts, and interleaved tokens of several prompts would be meaningless there.
        The other arguments are those of ``_call``.

        Returns:
            One generation per prompt, with metadata in ``generation_info``.
        """
        call = self._call_settings(stop, kwargs)  # validated once, before anything is sent
        if len(prompts) <= 1:
            generations = [self._run_one(p, call, run_manager) for p in prompts]
        else:
            workers = min(len(prompts), self.concurrency)
            pool = ContextThreadPoolExecutor(max_workers=workers)
            try:
                futures = [
                    pool.submit(self._run_one, p, call, run_manager, emit_tokens=i == 0)
                    for i, p in enumerate(prompts)
                ]
                generations = [future.result() for future in futures]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # don't start the rest
                raise
            pool.shutdown(wait=True)
        return LLMResult(
            generations=[[generation] for generation in generations],
            llm_output={"model_name": call.model},
        )

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        """Stream the continuation piece by piece; the arguments are those of ``_call``.

        Yields:
            One chunk per decoded piece, then an empty chunk carrying the metadata.
        """
        call = self._call_settings(stop, kwargs)
        yield from self._stream_with_callbacks(prompt, call, run_manager, run_manager)

    # ------------------------------------------------------------------ async

    async def _arun_one(
        self,
        prompt: str,
        call: CallSettings,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        *,
        emit_tokens: bool = True,
    ) -> Generation:
        if call.streaming:
            chunks = self._astream_with_callbacks(
                prompt, call, run_manager if emit_tokens else None, run_manager
            )
            return await _aaggregate(chunks)
        payload = call.payload(text=prompt)
        result = await arun_model(
            self, call.model, payload, timeout=call.timeout, run_manager=run_manager
        )
        return self._finish(prompt, result, call)

    def _astream_with_callbacks(
        self,
        prompt: str,
        call: CallSettings,
        token_manager: AsyncCallbackManagerForLLMRun | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> AsyncGenerator[GenerationChunk, None]:
        # Nothing runs until the first chunk is read; closing the chunks closes the stream.
        lead_text = prompt if self._full_text(call) else ""
        items = astream_text(
            self, call, call.payload(text=prompt), run_manager, lead_text=lead_text
        )
        return areport_chunks(items, _chunk, token_manager)

    async def _acall(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        """Async version of ``_call``."""
        generation = await self._arun_one(prompt, self._call_settings(stop, kwargs), run_manager)
        return generation.text

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Async version of ``_generate``: all prompts at once, capped by the manager."""
        call = self._call_settings(stop, kwargs)
        generations = await gather_or_cancel(
            [
                self._arun_one(p, call, run_manager, emit_tokens=i == 0)
                for i, p in enumerate(prompts)
            ]
        )
        return LLMResult(
            generations=[[generation] for generation in generations],
            llm_output={"model_name": call.model},
        )

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        """Async version of ``_stream``."""
        call = self._call_settings(stop, kwargs)
        chunks = self._astream_with_callbacks(prompt, call, run_manager, run_manager)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    # ------------------------------------------------------------------ streams

    def stream(
        self,
        input: LanguageModelInput,  # noqa: A002 - langchain-core's name
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        """Stream the continuation as text pieces (``BaseLLM.stream``, in linear time).

        The same run as langchain-core's ``BaseLLM.stream`` (callbacks, tracing,
        ``run_id``, the final ``on_llm_end`` result), but the chunks are joined once at
        the end instead of summed one by one, which copies the whole text per chunk
        (a 1 MB answer: quadratic CPU and memory).

        Args:
            input: The prompt.
            config: The run config.
            stop: Stop sequences for this call.
            **kwargs: Per-call arguments, as for ``invoke``.

        Yields:
            The text pieces.
        """
        start = _StreamStart.of(self, input, config, stop, kwargs)
        manager = CallbackManager.configure(*start.configure, **start.configure_kwargs)
        (run_manager,) = manager.on_llm_start(*start.start, **start.start_kwargs)
        total = _Aggregate()
        try:
            for chunk in self._stream(start.prompt, stop=stop, run_manager=run_manager, **kwargs):
                yield chunk.text
                total.add(chunk)
        except BaseException as error:
            run_manager.on_llm_error(error, response=total.llm_result())
            raise
        if not total.count:
            empty = ValueError("No generation chunks were returned")
            run_manager.on_llm_error(empty, response=LLMResult(generations=[]))
            raise empty
        run_manager.on_llm_end(total.llm_result())

    async def astream(
        self,
        input: LanguageModelInput,  # noqa: A002 - langchain-core's name
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """Async version of ``stream`` (``BaseLLM.astream``, in linear time)."""
        start = _StreamStart.of(self, input, config, stop, kwargs)
        manager = AsyncCallbackManager.configure(*start.configure, **start.configure_kwargs)
        (run_manager,) = await manager.on_llm_start(*start.start, **start.start_kwargs)
        total = _Aggregate()
        try:
            async for chunk in self._astream(
                start.prompt, stop=stop, run_manager=run_manager, **kwargs
            ):
                yield chunk.text
                total.add(chunk)
        except BaseException as error:
            await run_manager.on_llm_error(error, response=total.llm_result())
            raise
        if not total.count:
            empty = ValueError("No generation chunks were returned")
            await run_manager.on_llm_error(empty, response=LLMResult(generations=[]))
            raise empty
        await run_manager.on_llm_end(total.llm_result())

    # ------------------------------------------------------------------ batches

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Run several prompts concurrently; results in input order.

        With ``return_exceptions=True`` each prompt is its own run (one
        ``on_llm_start``/``on_llm_end`` or ``on_llm_error`` each, as in LangChain's
        generic ``Runnable.batch``): a failing prompt gives its exception in its place and
        the other answers are kept. ``BaseLLM.batch`` would run the prompts as one
        ``generate`` and put its first error in every place. Without it, the first
        failure is raised (``BaseLLM.batch``).

        Args:
            inputs: The prompts.
            config: One config for all or one per prompt (``max_concurrency`` honoured).
            return_exceptions: Return each prompt's exception instead of raising.
            **kwargs: Per-call arguments, as for ``invoke``.

        Returns:
            One text (or, with ``return_exceptions``, exception) per prompt.
        """
        if return_exceptions:
            return Runnable.batch(self, inputs, config, return_exceptions=True, **kwargs)
        return super().batch(inputs, config, **kwargs)

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Async version of ``batch``: a failing prompt never cancels the others."""
        if return_exceptions:
            return await Runnable.abatch(self, inputs, config, return_exceptions=True, **kwargs)
        return await super().abatch(inputs, config, **kwargs)


# LangChain inspects these on every call; keep their signatures ready.
store_signatures(BytezLLM, "_generate", "_agenerate")


# ---------------------------------------------------------------------- helpers


class _Aggregate:
    """The sum of a stream's chunks, built in linear time and compact memory.

    ``chunk + chunk`` copies the whole text each time (quadratic: 43 s of CPU for a
    1 MB answer); a list of all the pieces costs ~60 bytes per piece (11 MB for the
    180,000 pieces of 1 MB, and ``io.StringIO`` keeps them as such too). Pieces are
    joined in blocks of ``_BLOCK`` instead, and the blocks once at the end; the
    metadata is merged as the sum merges it, so the result equals the chunks' sum
    (``BaseLLM.stream``'s ``generation += chunk``).
    """

    _BLOCK = 1024

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._pieces: list[str] = []
        self.count = 0
        self.info: dict[str, Any] | None = None

    def add(self, chunk: GenerationChunk) -> None:
        info = chunk.generation_info
        if not self.count:
            self.info = info  # the sum starts with the first chunk as it is
        elif info:
            merged = GenerationChunk(text="", generation_info=self.info) + GenerationChunk(
                text="", generation_info=info
            )
            self.info = merged.generation_info
        elif not self.info:
            self.info = None  # the sum turns an empty dict into None
        self._pieces.append(chunk.text)
        self.count += 1
        if len(self._pieces) >= self._BLOCK:
            self._blocks.append("".join(self._pieces))
            self._pieces.clear()

    def text(self) -> str:
        """The text of the chunks added so far."""
        return "".join(self._blocks) + "".join(self._pieces)

    def chunk(self) -> GenerationChunk:
        """The sum of the chunks added (at least one)."""
        return GenerationChunk(text=self.text(), generation_info=self.info)

    def llm_result(self) -> LLMResult:
        """The result ``BaseLLM.stream`` reports: the sum, or nothing before a chunk."""
        return LLMResult(generations=[[self.chunk()]] if self.count else [])

    def result(self) -> Generation:
        return Generation(text=self.text(), generation_info=self.info)


@dataclass(frozen=True)
class _StreamStart:
    """How ``BaseLLM.stream``/``astream`` open their run (the same for both).

    Attributes:
        prompt: The prompt as a string.
        configure: Positional arguments of ``CallbackManager.configure``.
        configure_kwargs: Its keyword arguments.
        start: Positional arguments of ``on_llm_start``.
        start_kwargs: Its keyword arguments.
    """

    prompt: str
    configure: tuple[Any, ...]
    configure_kwargs: dict[str, Any]
    start: tuple[Any, ...]
    start_kwargs: dict[str, Any]

    @classmethod
    def of(
        cls,
        llm: BytezLLM,
        input: LanguageModelInput,  # noqa: A002 - langchain-core's name
        config: RunnableConfig | None,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> _StreamStart:
        """What ``BaseLLM.stream`` computes before ``_stream`` (langchain-core 1.6-1.8)."""
        prompt = llm._convert_input(input).to_string()
        config = ensure_config(config)
        params = llm._dict_for_compat()
        params["stop"] = stop
        params = {**params, **kwargs}
        configure, configure_kwargs = callback_configuration(llm, config, stop, kwargs, params)
        return cls(
            prompt=prompt,
            configure=configure,
            configure_kwargs=configure_kwargs,
            start=(llm._serialized, [prompt]),
            start_kwargs={
                "invocation_params": params,
                "options": {"stop": stop},
                "name": config.get("run_name"),
                "run_id": config.pop("run_id", None),
                "batch_size": 1,
            },
        )


def _aggregate(chunks: Iterator[GenerationChunk]) -> Generation:
    total = _Aggregate()
    for chunk in chunks:
        total.add(chunk)
    return total.result()


async def _aaggregate(chunks: AsyncIterator[GenerationChunk]) -> Generation:
    total = _Aggregate()
    async for chunk in chunks:
        total.add(chunk)
    return total.result()
