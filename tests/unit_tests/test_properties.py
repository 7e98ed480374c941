"""End-to-end property of the streaming pipeline, through ``generation.stream_text``.

``test_streaming_properties.py`` checks the UTF-8 decoder and the stop cutter each on
its own. Here they are checked *composed*, as a user gets them: raw body bytes split at
arbitrary byte offsets (a character or a stop sequence may be cut anywhere, even inside
a multi-byte character) go through the real client (``TextStream`` over an httpx mock
transport), the decoder, the stop cutter and ``stream_text``, sync and async. The joined
output must be exactly the non-streaming reference ``cut_at_stop(text, stops)``, nothing
may be emitted past a stop sequence, and the final metadata must say whether one ended it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from langchain_bytez.errors import BytezStreamError
from langchain_bytez.generation import StreamEnd, astream_text, stream_text
from langchain_bytez.llms import BytezLLM
from langchain_bytez.streaming import ERROR_PREFIX, cut_at_stop

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Multi-byte characters in both the text and the stops, so that a stop sequence can be
# split inside one of its characters by the byte-level chunking.
_ALPHABET = st.sampled_from(list("ab \nXé北🎉"))
texts = st.text(alphabet=_ALPHABET, max_size=40)
stop_lists = st.lists(st.text(alphabet=_ALPHABET, min_size=1, max_size=3), max_size=3)


@st.composite
def byte_chunks(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if len(data) <= 1:
        return [data] if data else []
    cuts = sorted(draw(st.lists(st.integers(1, len(data) - 1), unique=True, max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


class _Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


CURRENT: list[list[bytes]] = [[]]


def _handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/plain; charset=utf-8"}, stream=_Chunks(CURRENT[0])
    )


SYNC_HTTP = httpx.Client(transport=httpx.MockTransport(_handler))


def _llm(http_async: httpx.AsyncClient | None = None) -> BytezLLM:
    return BytezLLM(
        model="openai-community/gpt2",
        api_key="test-key",
        base_url="http://127.0.0.1:9",  # never reached: the mock transport answers
        http_client=SYNC_HTTP,
        http_async_client=http_async,
        auto_load=False,
    )


def _expected(text: str, stops: list[str]) -> tuple[str, bool]:
    return cut_at_stop(text, stops)


def _check(items: list[str | StreamEnd], text: str, stops: list[str]) -> None:
    expected, stopped = _expected(text, stops)
    *pieces, end = items
    assert isinstance(end, StreamEnd)
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == expected  # type: ignore[arg-type]
    assert end.stopped is stopped
    assert end.info["finish_reason"] == ("stop" if stopped else None)


def _clean(text: str) -> str:
    # An in-band "Error: " line is an error by protocol, not text: tested elsewhere.
    return text.replace(ERROR_PREFIX, "Error:_")


@PROPS
@given(st.data(), texts, stop_lists)
@example(None, "ab北🎉X\nb", ["北🎉", "\nb"])
# The body ends on a held complete stop ("\n" waiting on the longer "X\nX").
@example(None, "abX\n", ["\n", "X\nX"])
def test_stream_text_equals_the_reference_for_any_byte_split(
    data: st.DataObject | None, text: str, stops: list[str]
) -> None:
    text = _clean(text)
    raw = text.encode()
    CURRENT[0] = [bytes([b]) for b in raw] if data is None else data.draw(byte_chunks(raw))
    llm = _llm()
    call = llm._call_settings(stops, {})
    if not text:
        with pytest.raises(BytezStreamError):  # an empty 200 body is a broken answer
            list(stream_text(llm, call, call.payload(text="p")))
        return
    _check(list(stream_text(llm, call, call.payload(text="p"))), text, stops)


@PROPS
@given(st.data(), texts.filter(bool), stop_lists)
def test_astream_text_equals_the_reference_for_any_byte_split(
    data: st.DataObject, text: str, stops: list[str]
) -> None:
    text = _clean(text)
    CURRENT[0] = data.draw(byte_chunks(text.encode()))

    async def run() -> list[str | StreamEnd]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(_handler)) as http:
            llm = _llm(http)
            call = llm._call_settings(stops, {})
            return [item async for item in astream_text(llm, call, call.payload(text="p"))]

    _check(asyncio.run(run()), text, stops)
