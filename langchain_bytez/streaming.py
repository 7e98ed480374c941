"""Pure streaming pieces shared by the sync and async paths: no I/O here.

* [`StreamTextDecoder`][langchain_bytez.streaming.StreamTextDecoder] turns raw body bytes into text
  as they arrive: UTF-8 is decoded incrementally (a character split across chunks comes out whole),
  and the protocol's in-band ``Error: <message>`` failure (the body's last item) is told apart from
  model text that merely contains ``Error: ``, delaying only chunks that begin with it.
* [`StopCutter`][langchain_bytez.streaming.StopCutter] enforces stop sequences on a stream with a
  rolling buffer: it holds back only the tail that could still become a stop sequence, so nothing
  after a stop sequence is ever emitted. [`cut_at_stop`][langchain_bytez.streaming.cut_at_stop] is
  its non-streaming reference.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence

__all__ = ["ERROR_PREFIX", "MAX_ERROR_SEGMENT", "StopCutter", "StreamTextDecoder", "cut_at_stop"]

ERROR_PREFIX = "Error: "
"""How the protocol's in-band stream failure begins: ``Error: <message>`` in the body."""

MAX_ERROR_SEGMENT = 4096
"""Longest held ``Error: ...`` segment, in characters; a longer one is model text.

An in-band error is one short item (the container's exception message); holding more
than this back would delay real text for nothing."""


class StreamTextDecoder:
    """Decode a Bytez text stream incrementally and detect in-band errors.

    Feed raw body chunks with [`feed`][langchain_bytez.streaming.StreamTextDecoder.feed]; it returns
    the text that is safe to deliver now. Call
    [`finish`][langchain_bytez.streaming.StreamTextDecoder.finish] at the end of the body. Both
    raise nothing themselves: when the body turns out to end in an ``Error: <message>``
    failure, [`error`][langchain_bytez.streaming.StreamTextDecoder.error] holds the message.

    The rule (``docs/protocol.md``, streaming): the model container writes a failure as
    the stream's **last** item, ``Error: <message>``, and ends the body. Model text may
    contain ``Error: `` too, even at a chunk boundary. So:

    * a chunk that begins with ``Error: `` (at the start of the body or after other
      text) is a *candidate*: it is held back, not delivered;
    * if the body ends while the candidate is the last text, it is the error;
    * if any further text arrives, the candidate was model text: it is delivered
      unchanged, before that text, which is judged on its own;
    * a candidate longer than [`MAX_ERROR_SEGMENT`][langchain_bytez.streaming.MAX_ERROR_SEGMENT]
      characters is model text and is delivered at once.

    A chunk that is only a beginning of ``Error: `` (``"Err"``) is held until the next
    chunk decides, and a chunk that ends inside a multi-byte character does not end the
    candidate, so an error item split there is still recognised. An error item that the
    network splits elsewhere reaches the caller as text (the candidate is released by
    its own second half): the rule never turns model text into an error.
    """

    __slots__ = ("_decoder", "_held", "_holds_candidate", "error")

    def __init__(self) -> None:
        """Create a decoder for one stream."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self._holds_candidate = False
        self.error: str | None = None
        """The in-band error message, or ``None`` while the stream has not failed.

        Set by ``finish`` when the body ended in an ``Error: ...`` item (the message
        without the ``Error: `` prefix)."""

    @property
    def held(self) -> str:
        """Text held back while it may still be an in-band error (not yet delivered)."""
        return self._held

    def feed(self, data: bytes) -> str:
        """Take one raw chunk; return the text that can be delivered now.

        Args:
            data: Raw bytes from the response body.

        Returns:
            Text to deliver (may be empty).
        """
        if self.error is not None:
            return ""
        text = self._decoder.decode(data)
        if not text:
            return ""
        # A chunk cut inside a multi-byte character continues in the next chunk: the
        # boundary is the network's, not the server's.
        continues = bool(self._decoder.getstate()[0])
        out = self._release(text)
        if self._holds_candidate and continues:
            self._holds_candidate = False  # re-judged as one piece with the rest
        return out

    def finish(self) -> str:
        """Signal the end of the body; return the remaining text to deliver.

        After this, ``error`` is set if the stream ended in an in-band error.

        Returns:
            The last text to deliver (may be empty).
        """
        if self.error is not None:
            return ""
        tail = self._decoder.decode(b"", final=True)
        out = self._release(tail) if tail else ""
        held, self._held = self._held, ""
        if held.startswith(ERROR_PREFIX):
            self.error = held[len(ERROR_PREFIX) :].strip() or "stream failed"
            return out
        return out + held  # a lone near-miss ("Err") at the very end is text

    def _release(self, text: str) -> str:
        held = self._held
        if held:
            if self._holds_candidate:
                # More text after a complete candidate: it was model text.
                self._held, self._holds_candidate = "", False
                return held + self._release(text)
            combined = held + text
            if not _may_be_error(combined):
                # The held near-miss ("Err") or split candidate was text after all; the
                # new chunk is judged on its own, so an error item beginning it still
                # counts.
                self._held = ""
                return held + self._release(text)
            text, self._held = combined, ""
        if text.startswith(ERROR_PREFIX):
            if len(text) > MAX_ERROR_SEGMENT:
                return text  # past the bound: model text
            self._held, self._holds_candidate = text, True
            return ""
        if len(text) < len(ERROR_PREFIX) and ERROR_PREFIX.startswith(text):
            self._held = text  # could still become "Error: " with the next chunk
            return ""
        return text


def _may_be_error(text: str) -> bool:
    # Starts with "Error: ", or is still a beginning of it.
    if len(text) < len(ERROR_PREFIX):
        return ERROR_PREFIX.startswith(text)
    return text.startswith(ERROR_PREFIX)


def cut_at_stop(text: str, stops: Iterable[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest occurrence of any stop sequence.

    Args:
        text: The full generated text.
        stops: Stop sequences (empty strings are ignored).

    Returns:
        ``(text_before_stop, stopped)``.
    """
    earliest = -1
    for stop in stops:
        if not stop:
            continue
        index = text.find(stop)
        if index != -1 and (earliest == -1 or index < earliest):
            earliest = index
    if earliest == -1:
        return text, False
    return text[:earliest], True


class StopCutter:
    """Enforce stop sequences on streamed text, chunk by chunk.

    ``feed`` returns only text that can no longer be part of a stop sequence; the tail that
    is a proper prefix of some stop sequence is held until the next chunk decides it. Once a
    stop sequence is seen, [`stopped`][langchain_bytez.streaming.StopCutter.stopped] is true
    and nothing more is returned. Joined output equals ``cut_at_stop(full_text, stops)[0]``
    for any split.
    """

    __slots__ = ("_buffer", "_max_hold", "_stops", "stopped")

    def __init__(self, stops: Sequence[str] | None) -> None:
        """Create a cutter.

        Args:
            stops: Stop sequences; ``None`` or empty disables cutting.
        """
        self._stops = tuple(dict.fromkeys(s for s in (stops or ()) if s))
        self._max_hold = max((len(s) for s in self._stops), default=1) - 1
        self._buffer = ""
        self.stopped = False
        """Whether a stop sequence has been seen (nothing more is emitted after it)."""

    @property
    def active(self) -> bool:
        """Whether any stop sequence is configured."""
        return bool(self._stops)

    def feed(self, text: str) -> str:
        """Take the next piece of text; return what is safe to emit.

        Args:
            text: The next decoded text chunk.

        Returns:
            Text to emit now (may be empty).
        """
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buffer = self._buffer + text
        before, stopped = cut_at_stop(buffer, self._stops)
        # Earliest position where a stop sequence could still begin but is not complete.
        pending = len(buffer) - self._held_tail_length(buffer)
        if stopped and len(before) <= pending:
            self.stopped = True
            self._buffer = ""
            return before
        # Either no stop yet, or a longer stop sequence that would begin earlier than the
        # one found may still complete (stops "\n" and "X\nX" on "X\n"): wait for it.
        self._buffer = buffer[pending:]
        return buffer[:pending]

    def flush(self) -> str:
        """End of stream: release the held tail, cut at a stop sequence if it holds one.

        Returns:
            The held text, or ``""`` once stopped.
        """
        if self.stopped:
            return ""
        tail, self._buffer = self._buffer, ""
        # The held tail may hold a complete stop sequence that was waiting on a longer one.
        before, self.stopped = cut_at_stop(tail, self._stops)
        return before

    def _held_tail_length(self, buffer: str) -> int:
        # Longest suffix of the buffer that is a proper prefix of some stop sequence.
        for length in range(min(self._max_hold, len(buffer)), 0, -1):
            suffix = buffer[-length:]
            if any(stop.startswith(suffix) for stop in self._stops):
                return length
        return 0
