"""Property tests of the streaming pieces: any text, any split, the same result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from langchain_bytez import BytezLLM
from langchain_bytez.errors import BytezStreamError
from langchain_bytez.streaming import (
    ERROR_PREFIX,
    MAX_ERROR_SEGMENT,
    StopCutter,
    StreamTextDecoder,
    cut_at_stop,
)

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters of 1 to 4 UTF-8 bytes, newlines, and the letters of the error prefix so that
# near-misses ("Err", "Error:x") come up often.
_ALPHABET = st.one_of(
    st.sampled_from(list("Error: \nabcé€北🎉")),
    st.characters(codec="utf-8"),
)
texts = st.text(alphabet=_ALPHABET, max_size=60)


def cut_points(data_len: int) -> st.SearchStrategy[list[int]]:
    if data_len <= 1:
        return st.just([])
    return st.lists(st.integers(1, data_len - 1), unique=True, max_size=data_len).map(sorted)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@st.composite
def byte_splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    return split_at(data, draw(cut_points(len(data))))


def decode_all(chunks: list[bytes]) -> tuple[str, str | None]:
    decoder = StreamTextDecoder()
    pieces = [decoder.feed(chunk) for chunk in chunks]
    pieces.append(decoder.finish())
    return "".join(pieces), decoder.error


# ----------------------------------------------------------------------------- decoder


@PROPS
@given(st.data(), texts)
@example(None, "北京 🎉 crème")
def test_decoder_output_joined_equals_text_for_any_split(data: st.DataObject, text: str) -> None:
    if data is None:  # the @example row: split every byte
        chunks = [bytes([b]) for b in text.encode()]
    else:
        # Texts without an in-band error line come out unchanged, whatever the split.
        if ERROR_PREFIX in text:
            text = text.replace(ERROR_PREFIX, "Error:_")
        chunks = data.draw(byte_splits(text.encode()))
    joined, error = decode_all(chunks)
    assert error is None
    assert joined == text


@PROPS
@given(st.data(), st.binary(max_size=60))
def test_decoder_matches_one_shot_decode_of_any_bytes(data: st.DataObject, raw: bytes) -> None:
    expected = raw.decode("utf-8", errors="replace")
    if ERROR_PREFIX in expected:
        return  # in-band error rules apply; covered by the tests below
    chunks = data.draw(byte_splits(raw))
    joined, error = decode_all(chunks)
    assert error is None
    assert joined == expected


def split_texts(texts_: list[str]) -> list[bytes]:
    return [t.encode() for t in texts_]


@PROPS
@given(
    st.lists(st.text(alphabet=_ALPHABET, max_size=12), max_size=6),
    st.text(alphabet=_ALPHABET, max_size=40),
)
@example(["Hello", " world"], "CUDA out of memory")
@example([], "at start")
@example(["ok Err"], "x")
def test_error_item_as_the_last_chunk_is_the_error_after_any_text(
    before: list[str], message: str
) -> None:
    # The container writes its failure as the stream's last item: whatever text came
    # before (also text that contains or begins with "Error: "), the delivered text is
    # exactly that text and the error is the message.
    joined, error = decode_all([*split_texts(before), (ERROR_PREFIX + message).encode()])
    assert joined == "".join(before)
    assert error == (message.strip() or "stream failed")


@PROPS
@given(
    st.lists(st.text(alphabet=_ALPHABET, max_size=12), max_size=6),
    st.text(alphabet=_ALPHABET, min_size=0, max_size=20),
    st.lists(st.text(alphabet=_ALPHABET, min_size=1, max_size=12), min_size=1, max_size=4),
)
@example(["The log says "], "", ["file not found", ", so check the path."])
def test_error_like_chunk_followed_by_more_text_is_model_text(
    before: list[str], message: str, after: list[str]
) -> None:
    # "Error: ..." at a chunk boundary followed by any further text is model text,
    # delivered unchanged; only the very last item can be the error, so the last chunk
    # here never begins with the prefix.
    if after[-1].startswith(ERROR_PREFIX[:1]):
        after[-1] = "_" + after[-1]
    chunks = [*before, ERROR_PREFIX + message, *after]
    joined, error = decode_all(split_texts(chunks))
    assert error is None
    assert joined == "".join(chunks)


@PROPS
@given(st.data(), st.text(alphabet=_ALPHABET, max_size=60))
def test_delivered_text_plus_error_item_is_the_whole_body_for_any_split(
    data: st.DataObject, text: str
) -> None:
    # Nothing is lost or invented: either all of the body is delivered, or the body is
    # the delivered text followed by one "Error: <message>" item within the bound.
    chunks = data.draw(byte_splits(text.encode()))
    joined, error = decode_all(chunks)
    if error is None:
        assert joined == text
    else:
        rest = text[len(joined) :]
        assert text.startswith(joined)
        assert rest.startswith(ERROR_PREFIX)
        assert len(rest) <= MAX_ERROR_SEGMENT
        assert error == (rest[len(ERROR_PREFIX) :].strip() or "stream failed")
        # The error item is exactly the last chunk (the only place it can be).
        last = chunks[-1].decode("utf-8", errors="replace")
        assert rest.endswith(last) or last == ""


@PROPS
@given(st.text(alphabet=_ALPHABET, max_size=30), st.integers(1, 2))
def test_error_item_cut_inside_a_character_is_still_the_error(message: str, cut: int) -> None:
    # A chunk boundary inside a multi-byte character is the network's, not the server's.
    body = (ERROR_PREFIX + "北" + message).encode()
    at = len(ERROR_PREFIX) + cut  # inside the 3 bytes of "北"
    joined, error = decode_all([b"ok", body[:at], body[at:]])
    assert joined == "ok"
    assert error == ("北" + message).strip()


def test_the_two_acceptance_streams() -> None:
    chunks = ["The log says ", "Error: ", "file not found", ", so check the path."]
    assert decode_all(split_texts(chunks)) == ("".join(chunks), None)
    assert decode_all(split_texts(["Hello", " world", "Error: CUDA out of memory"])) == (
        "Hello world",
        "CUDA out of memory",
    )


def test_last_error_item_with_newlines_is_an_error() -> None:
    joined, error = decode_all([b"x", b"Error: Traceback\n  File x\nValueError: boom"])
    assert joined == "x"
    assert error == "Traceback\n  File x\nValueError: boom"


def test_error_like_text_past_the_bound_is_model_text_at_once() -> None:
    decoder = StreamTextDecoder()
    big = "Error: " + "x" * MAX_ERROR_SEGMENT
    assert decoder.feed(big.encode()) == big  # not held: past the bound
    assert decoder.finish() == ""
    assert decoder.error is None


def test_candidate_is_held_until_the_next_chunk_decides() -> None:
    decoder = StreamTextDecoder()
    assert decoder.feed(b"a ") == "a "
    assert decoder.feed(b"Error: x") == ""
    assert decoder.held == "Error: x"
    assert decoder.feed(b" and more") == "Error: x and more"
    assert decoder.finish() == ""
    assert decoder.error is None


def test_prefix_of_error_is_released_when_the_next_chunk_decides() -> None:
    decoder = StreamTextDecoder()
    assert decoder.feed(b"Err") == ""
    assert decoder.feed(b"and") == "Errand"
    assert decoder.feed(b" E") == " E"
    assert decoder.feed(b"E") == ""
    assert decoder.feed(b"nd") == "End"
    assert decoder.finish() == ""
    assert decoder.error is None


def test_held_prefix_then_error_chunk() -> None:
    # A held near-miss must not hide an error line that begins the next chunk.
    decoder = StreamTextDecoder()
    assert decoder.feed(b"ok ") == "ok "
    assert decoder.feed(b"Err") == ""
    assert decoder.feed(b"Error: boom") == "Err"
    assert decoder.finish() == ""
    assert decoder.error == "boom"


def test_error_prefix_split_across_chunks_is_still_the_error() -> None:
    assert decode_all([b"ok ", b"Err", b"or: boom"]) == ("ok ", "boom")


def test_short_body_that_is_a_prefix_of_error_is_text() -> None:
    assert decode_all([b"Err", b"or"]) == ("Error", None)
    assert decode_all([b"Error:"]) == ("Error:", None)


# ----------------------------------------------------------------------------- stops

stop_alphabet = st.sampled_from(list("ab\nXé北"))
stop_texts = st.text(alphabet=stop_alphabet, max_size=40)
stop_lists = st.lists(st.text(alphabet=stop_alphabet, max_size=4), max_size=4)


@st.composite
def str_splits(draw: st.DrawFn, text: str) -> list[str]:
    cuts = draw(cut_points(len(text)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


@PROPS
@given(st.data(), stop_texts, stop_lists)
@example(None, "abXab\nb", ["X", "b\n", ""])
# The stream ends while the cutter holds a complete short stop ("\n") because a longer
# one ("X\nX") could still have begun earlier: flush must cut it, not release it.
@example(None, "abX\n", ["\n", "X\nX"])
@example(None, "X\n", ["X\nX", "\n"])
def test_stop_cutter_joined_equals_cut_at_stop_for_any_split(
    data: st.DataObject | None, text: str, stops: list[str]
) -> None:
    chunks = list(text) if data is None else data.draw(str_splits(text))
    expected, stopped = cut_at_stop(text, stops)
    cutter = StopCutter(stops)
    emitted: list[str] = []
    for chunk in chunks:
        piece = cutter.feed(chunk)
        emitted.append(piece)
        # Nothing emitted so far may contain or run into a stop sequence, and nothing is
        # ever emitted that the final answer does not begin with (no text is taken back).
        so_far = "".join(emitted)
        assert cut_at_stop(so_far, stops) == (so_far, False) or cutter.stopped
        assert expected.startswith(so_far), (so_far, expected)
    emitted.append(cutter.flush())
    assert "".join(emitted) == expected
    assert cutter.stopped is stopped
    assert cutter.active is any(stops)


@PROPS
@given(stop_texts, stop_lists)
def test_cut_at_stop_is_earliest_cut(text: str, stops: list[str]) -> None:
    cut, stopped = cut_at_stop(text, stops)
    assert text.startswith(cut)
    real = [s for s in stops if s]
    assert stopped is any(s in text for s in real)
    if stopped:
        assert any(text[len(cut) :].startswith(s) for s in real)
    # No stop sequence occurs before the cut.
    assert not any(s in cut for s in real)


def test_stop_cutter_without_stops_passes_through() -> None:
    cutter = StopCutter(None)
    assert not cutter.active
    assert cutter.feed("abc") == "abc"
    assert cutter.flush() == ""


def test_flush_cuts_a_complete_stop_held_for_a_longer_one() -> None:
    # "X\n" is held: it could still become "X\nX", which would begin earlier than "\n".
    cutter = StopCutter(["\n", "X\nX"])
    assert cutter.feed("abX\n") == "ab"
    assert not cutter.stopped
    assert cutter.flush() == "X"  # the stream ended: "\n" is the stop after all
    assert cutter.stopped
    assert cutter.feed("more") == ""
    assert cutter.flush() == ""


def test_stop_cutter_holds_only_possible_stop_prefixes() -> None:
    cutter = StopCutter(["\nUser:"])
    assert cutter.feed("Hello\nUs") == "Hello"
    assert cutter.feed("ually fine") == "\nUsually fine"
    assert cutter.feed("\nUser: hi") == ""
    assert cutter.stopped
    assert cutter.feed("more") == ""
    assert cutter.flush() == ""


# ----------------------------------------------------------------------------- end to end

_E2E = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
chunk_lists = st.lists(
    st.one_of(
        st.text(alphabet=_ALPHABET, min_size=1, max_size=8),
        st.builds(lambda t: ERROR_PREFIX + t, st.text(alphabet=_ALPHABET, max_size=8)),
    ),
    min_size=1,
    max_size=6,
)


class _Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def _outcome(run: Callable[[], str]) -> tuple[str, str | None, str | None]:
    """(text, error message, delivered_text) of one way of reading the stream."""
    try:
        return run(), None, None
    except BytezStreamError as error:
        return "", error.message, error.delivered_text


@_E2E
@given(chunk_lists)
@example(["The log says ", "Error: ", "file not found", ", so check the path."])
@example(["Hello", " world", "Error: CUDA out of memory"])
def test_invoke_stream_and_astream_agree_on_the_same_bytes(chunks: list[str]) -> None:
    raw = [c.encode() for c in chunks]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Chunks(raw), headers={"content-type": "text/plain"})

    llm = BytezLLM(
        model="org/model",
        api_key="property-key",
        base_url="http://127.0.0.1:1",
        auto_load=False,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )

    async def astream() -> str:
        return "".join([piece async for piece in llm.astream("x")])

    streamed = _outcome(lambda: "".join(llm.stream("x")))
    invoked = _outcome(lambda: llm.invoke("x", streaming=True))
    async_streamed = _outcome(lambda: asyncio.run(astream()))
    assert streamed == invoked == async_streamed
    # And what they agree on is the decoder's rule: the last chunk alone may be the error.
    text, error = decode_all(raw)
    if error is None:
        assert streamed == (text, None, None)
    else:
        assert streamed[1] is not None
        assert error in streamed[1]
        assert streamed[2] == text
