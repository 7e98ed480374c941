"""``chat_stream.text_chunk``: the cheap text chunk equals core's validated one."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from langchain_bytez import chat_stream
from langchain_bytez.chat_stream import text_chunk


def _validated(text: str) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=text))


def test_the_copied_maker_is_in_use() -> None:
    # With this langchain-core and pydantic the check passes: the fast path is taken.
    assert text_chunk is not chat_stream._validated_chunk


@pytest.mark.parametrize("text", ["a", "héllo wörld", " ", "\n\n", "x" * 5000])
def test_text_chunk_equals_the_validated_chunk(text: str) -> None:
    ours, core = text_chunk(text), _validated(text)
    assert ours == core
    assert ours.text == text
    assert ours.model_dump() == core.model_dump()
    assert ours.model_fields_set == core.model_fields_set
    assert ours.message.model_fields_set == core.message.model_fields_set
    assert repr(ours.message) == repr(core.message)
    assert ours.message.content_blocks == core.message.content_blocks
    assert (ours + text_chunk("!")) == (core + _validated("!"))


def test_text_chunks_share_no_mutable_state() -> None:
    first, second = text_chunk("a"), text_chunk("b")
    first.message.additional_kwargs["k"] = 1
    first.message.response_metadata["m"] = 1
    first.message.tool_call_chunks.append({"name": "f", "args": "", "id": "1", "index": 0})
    assert second.message.additional_kwargs == {}
    assert second.message.response_metadata == {}
    assert second.message.tool_call_chunks == []
    assert text_chunk("c") == _validated("c")


def test_text_chunks_accept_assignment_like_core_chunks() -> None:
    chunk = text_chunk("a")
    chunk.message.id = "lc_run-1"
    chunk.message.response_metadata = {"model_provider": "bytez"}
    assert chunk.message.id == "lc_run-1"
    assert chunk.message.response_metadata == {"model_provider": "bytez"}


def test_a_layout_that_differs_falls_back_to_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    real = chat_stream._Layout.make

    def lossy(self: Any, **values: Any) -> Any:
        obj = real(self, **values)
        if "content" in values:
            obj.__dict__.pop("tool_calls")
        return obj

    monkeypatch.setattr(chat_stream._Layout, "make", lossy)
    assert chat_stream._copied_chunk_maker() is chat_stream._validated_chunk
