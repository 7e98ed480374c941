"""``BytezLLM.stream``/``astream``: linear in the answer's length, and the same run as core.

``BytezLLM`` overrides langchain-core's ``BaseLLM.stream``/``astream`` only to join the
chunks once instead of summing them one by one (quadratic on long answers). These tests
run both, the override and core's own method on the same object, and compare every
callback (names, arguments, results, errors) so that any divergence from core shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import GenerationChunk, LLMResult

from langchain_bytez.errors import BytezStreamError
from langchain_bytez.llms import BytezLLM
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez

MODEL = "org/model"


@pytest.fixture
def fake() -> FakeBytez:
    fake = FakeBytez()
    fake.chunks = [b" one", b" two", b" three"]
    return fake


@pytest.fixture
def llm(fake: FakeBytez) -> Iterator[BytezLLM]:
    http, ahttp = fake.clients()
    yield BytezLLM(
        model=MODEL,
        api_key=FAKE_KEY,
        base_url=URL,
        auto_load=False,
        max_new_tokens=3,  # three pieces: finish_reason "length" in the metadata
        tags=["instance-tag"],
        metadata={"instance": 1},
        http_client=http,
        http_async_client=ahttp,
    )
    http.close()


class Calls(BaseCallbackHandler):
    """Records every LLM callback with its arguments (run ids numbered by appearance)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._ids: dict[UUID, str] = {}

    def _id(self, value: Any) -> Any:
        if isinstance(value, UUID):
            return self._ids.setdefault(value, f"run-{len(self._ids)}")
        return value

    def _record(self, event: str, *args: Any, **kwargs: Any) -> None:
        shown = {key: self._id(value) for key, value in kwargs.items()}
        error = shown.pop("error", None)
        if isinstance(error, BaseException):
            shown["error"] = (type(error).__name__, str(error))
        self.calls.append((event, (args, shown)))

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kw: Any) -> None:
        self._record("start", serialized, prompts, **kw)

    def on_llm_new_token(self, token: str, **kw: Any) -> None:
        self._record("token", token, **kw)

    def on_llm_end(self, response: LLMResult, **kw: Any) -> None:
        self._record("end", response, **kw)

    def on_llm_error(self, error: BaseException, **kw: Any) -> None:
        self._record("error", error=error, **kw)


def _config(calls: Calls, run_id: UUID) -> Any:
    return {
        "callbacks": [calls],
        "tags": ["call-tag"],
        "metadata": {"call": 2},
        "run_name": "named",
        "run_id": run_id,
    }


def _sync_run(llm: BytezLLM, method: Any) -> tuple[list[str], list[tuple[str, Any]], str]:
    calls = Calls()
    pieces: list[str] = []
    outcome = "ok"
    try:
        for piece in method(llm, "Hi", _config(calls, uuid4()), stop=["zzz"], temperature=0.5):
            pieces.append(piece)
    except BytezStreamError as error:
        outcome = str(error)
    return pieces, calls.calls, outcome


async def _async_run(llm: BytezLLM, method: Any) -> tuple[list[str], list[tuple[str, Any]], str]:
    calls = Calls()
    pieces: list[str] = []
    outcome = "ok"
    try:
        async for piece in method(
            llm, "Hi", _config(calls, uuid4()), stop=["zzz"], temperature=0.5
        ):
            pieces.append(piece)
    except BytezStreamError as error:
        outcome = str(error)
    return pieces, calls.calls, outcome


def _end_result(calls: list[tuple[str, Any]]) -> LLMResult:
    (result,) = [args[0] for name, (args, _) in calls if name == "end"]
    assert isinstance(result, LLMResult)
    return result


@pytest.mark.parametrize(
    "chunks",
    [
        [b" one", b" two", b" three"],
        [b" only"],
        [b" one", b" two", b"Error: the model crashed"],  # an in-band error mid-stream
    ],
    ids=["three-pieces", "one-piece", "error-mid-stream"],
)
def test_stream_runs_exactly_as_core_does(
    llm: BytezLLM, fake: FakeBytez, chunks: list[bytes]
) -> None:
    fake.chunks = chunks
    ours = _sync_run(llm, BytezLLM.stream)
    core = _sync_run(llm, BaseLLM.stream)
    assert ours == core
    pieces, calls, outcome = ours
    assert calls[0][0] == "start"
    if outcome == "ok":
        result = _end_result(calls)
        (generation,) = result.generations[0]
        assert isinstance(generation, GenerationChunk)
        assert generation.text == "".join(pieces)
        assert generation.generation_info is not None
        assert generation.generation_info["model_name"] == MODEL
    else:
        assert calls[-1][0] == "error"


@pytest.mark.parametrize(
    "chunks",
    [[b" one", b" two", b" three"], [b" one", b"Error: the model crashed"]],
    ids=["three-pieces", "error-mid-stream"],
)
async def test_astream_runs_exactly_as_core_does(
    llm: BytezLLM, fake: FakeBytez, chunks: list[bytes]
) -> None:
    fake.chunks = chunks
    ours = await _async_run(llm, BytezLLM.astream)
    core = await _async_run(llm, BaseLLM.astream)
    assert ours == core
    assert ours[1][0][0] == "start"


def test_stream_sums_no_chunks_one_by_one(
    llm: BytezLLM, fake: FakeBytez, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Summing chunk by chunk copies the whole text each time (quadratic): the override
    # adds only the metadata, once, whatever the length of the answer.
    fake.chunks = [b" x"] * 2_000
    llm.max_new_tokens = None
    calls = Calls()
    added: list[int] = []
    original = GenerationChunk.__add__

    def counting_add(self: GenerationChunk, other: GenerationChunk) -> GenerationChunk:
        added.append(len(self.text) + len(other.text))
        return original(self, other)

    monkeypatch.setattr(GenerationChunk, "__add__", counting_add)
    text = "".join(llm.stream("Hi", {"callbacks": [calls]}))
    assert text == " x" * 2_000
    assert len(added) <= 1
    assert _end_result(calls.calls).generations[0][0].text == text
    # Core's own method, on the same stream, adds every chunk: the count above would
    # catch a return to it.
    added.clear()
    assert "".join(BaseLLM.stream(llm, "Hi")) == text
    assert len(added) == 2_000


async def test_astream_sums_no_chunks_one_by_one(
    llm: BytezLLM, fake: FakeBytez, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.chunks = [b" x"] * 500
    added: list[int] = []
    original = GenerationChunk.__add__

    def counting_add(self: GenerationChunk, other: GenerationChunk) -> GenerationChunk:
        added.append(1)
        return original(self, other)

    monkeypatch.setattr(GenerationChunk, "__add__", counting_add)
    llm.max_new_tokens = None
    pieces = [piece async for piece in llm.astream("Hi")]
    assert "".join(pieces) == " x" * 500
    assert len(added) <= 1


def test_stream_of_a_1_mb_answer_is_whole(llm: BytezLLM, fake: FakeBytez) -> None:
    fake.chunks = [b"abcdefgh" * 16] * 8_192  # 1 MiB in 128-byte pieces
    llm.max_new_tokens = None
    calls = Calls()
    text = "".join(llm.stream("Hi", {"callbacks": [calls]}))
    assert len(text) == 2**20
    assert _end_result(calls.calls).generations[0][0].text == text


def test_stream_without_chunks_fails_as_core_does(llm: BytezLLM) -> None:
    # A _stream that yields nothing: core raises ValueError after on_llm_error.
    class Empty(BytezLLM):
        def _stream(self, *args: Any, **kwargs: Any) -> Iterator[GenerationChunk]:
            yield from ()

    empty = Empty(model=MODEL, api_key=FAKE_KEY, base_url=URL, auto_load=False)
    results = []
    for method in (BytezLLM.stream, BaseLLM.stream):
        calls = Calls()
        with pytest.raises(ValueError, match="No generation chunks"):
            list(method(empty, "Hi", {"callbacks": [calls]}))
        results.append([name for name, _ in calls.calls])
    assert results[0] == results[1] == ["start", "error"]


# ----------------------------------------------------------------------- ChatBytez


class ChatCalls(Calls):
    """Every chat-model callback as text, run ids (also inside message ids) numbered."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []  # type: ignore[assignment]
        self._texts: dict[str, str] = {}

    def _record(self, event: str, *args: Any, **kwargs: Any) -> None:
        for value in kwargs.values():
            if isinstance(value, UUID):
                self._texts.setdefault(str(value), f"run-{len(self._texts)}")
        error = kwargs.pop("error", None)
        text = repr((event, args, sorted(kwargs.items())))
        if error is not None:
            text += repr((type(error).__name__, str(error)))
        for raw, name in self._texts.items():
            text = text.replace(raw, name)
        self.calls.append(text)  # type: ignore[arg-type]

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self._record("start", serialized, messages, **kw)


@pytest.fixture
def chat(fake: FakeBytez) -> Iterator[Any]:
    from langchain_bytez.chat_models import ChatBytez

    http, ahttp = fake.clients()
    yield ChatBytez(
        model=MODEL,
        api_key=FAKE_KEY,
        base_url=URL,
        auto_load=False,
        max_new_tokens=3,
        tags=["instance-tag"],
        http_client=http,
        http_async_client=ahttp,
    )
    http.close()


def _chat_run(chat: Any, method: Any) -> tuple[list[Any], list[str], str]:
    calls = ChatCalls()
    pieces: list[Any] = []
    outcome = "ok"
    try:
        for chunk in method(chat, "Hi", _config(calls, uuid4()), stop=["zzz"]):
            pieces.append((chunk.content, chunk.response_metadata, chunk.chunk_position))
    except BytezStreamError as error:
        outcome = str(error)
    return pieces, calls.calls, outcome


async def _achat_run(chat: Any, method: Any) -> tuple[list[Any], list[str], str]:
    calls = ChatCalls()
    pieces: list[Any] = []
    outcome = "ok"
    try:
        async for chunk in method(chat, "Hi", _config(calls, uuid4()), stop=["zzz"]):
            pieces.append((chunk.content, chunk.response_metadata, chunk.chunk_position))
    except BytezStreamError as error:
        outcome = str(error)
    return pieces, calls.calls, outcome


CHAT_CASES = [
    [b" one", b" two", b" three"],
    [b" only"],
    [b" one", b" two", b"Error: the model crashed"],
]


@pytest.mark.parametrize("block", [1024, 2])  # one block, and several merged blocks
@pytest.mark.parametrize("chunks", CHAT_CASES, ids=["three", "one", "error"])
@pytest.mark.parametrize("version", ["v0", "v1"])
def test_chat_stream_runs_exactly_as_core_does(
    chat: Any,
    fake: FakeBytez,
    monkeypatch: pytest.MonkeyPatch,
    chunks: list[bytes],
    block: int,
    version: str,
) -> None:
    from langchain_core.language_models import BaseChatModel

    from langchain_bytez.chat_models import ChatBytez
    from langchain_bytez.chat_stream import ChunkBlocks

    monkeypatch.setattr(ChunkBlocks, "BLOCK", block)
    chat.output_version = version
    fake.chunks = chunks
    ours = _chat_run(chat, ChatBytez.stream)
    core = _chat_run(chat, BaseChatModel.stream)
    assert ours == core
    assert ours[1][0].startswith("('start'")
    assert ours[1][-1].startswith("('end'" if ours[2] == "ok" else "('error'")


@pytest.mark.parametrize("block", [1024, 2])
@pytest.mark.parametrize("chunks", CHAT_CASES[::2], ids=["three", "error"])
async def test_chat_astream_runs_exactly_as_core_does(
    chat: Any,
    fake: FakeBytez,
    monkeypatch: pytest.MonkeyPatch,
    chunks: list[bytes],
    block: int,
) -> None:
    from langchain_core.language_models import BaseChatModel

    from langchain_bytez.chat_models import ChatBytez
    from langchain_bytez.chat_stream import ChunkBlocks

    monkeypatch.setattr(ChunkBlocks, "BLOCK", block)
    fake.chunks = chunks
    ours = await _achat_run(chat, ChatBytez.astream)
    core = await _achat_run(chat, BaseChatModel.astream)
    assert ours == core


def test_chat_stream_keeps_a_block_of_chunks_not_all(
    chat: Any, fake: FakeBytez, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_bytez.chat_stream import ChunkBlocks

    fake.chunks = [b" x"] * 2_000
    chat.max_new_tokens = None
    kept: list[int] = []
    original = ChunkBlocks.append

    def counting(self: ChunkBlocks, chunk: Any) -> None:
        original(self, chunk)
        kept.append(len(self._pending) + len(self._blocks))

    monkeypatch.setattr(ChunkBlocks, "append", counting)
    calls = ChatCalls()
    text = "".join(str(c.content) for c in chat.stream("Hi", {"callbacks": [calls]}))
    assert text == " x" * 2_000
    assert max(kept) <= ChunkBlocks.BLOCK + 2  # never the whole stream
    assert "' x' * 2000" not in calls.calls[-1]  # sanity: the end result is the text
    assert (" x" * 2_000) in calls.calls[-1]
