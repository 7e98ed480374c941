"""Pure streaming pieces shared by the sync and async paths: no I/O here.

* [`StreamTextDecoder`][langchain_bytez.streaming.StreamTextDecoder] turns raw body bytes into text
  as they arrive: UTF-8 is decoded incrementally (a character split across chunks comes out whole),
  and the protocol's in-band ``Error: <message>`` failure is recognised without delaying ordinary
  text.
* [`StopCutter`][langchain_bytez.streaming.StopCutter] enforces stop sequences on a stream with a
  rolling buffer: it holds back only the tail that could still become a stop sequence, so nothing
  after a stop sequence is ever emitted. [`cut_at_stop`][langchain_bytez.streaming.cut_at_stop] is
  its non-streaming reference.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence

__all__ = ["ERROR_PREFIX", "StopCutter", "StreamTextDecoder", "cut_at_stop"]

ERROR_PREFIX = "Error: "
"""How the protocol's in-band stream failure begins: ``Error: <message>`` in the body."""
# An in-band error is one short line; a held "Error: ..." text longer than this, or one
# that goes on to a new line, is ordinary model output and is released.
_MAX_ERROR_LINE = 4096


class StreamTextDecoder:
    """Decode a Bytez text stream incrementally and detect in-band errors.

    Feed raw body chunks with [`feed`][langchain_bytez.streaming.StreamTextDecoder.feed]; it returns
    the text that is safe to deliver now. Call
    [`finish`][langchain_bytez.streaming.StreamTextDecoder.finish] at the end of the body. Both
    raise nothing themselves: when the body turns out to be an ``Error: <message>`` failure,
    [`error`][langchain_bytez.streaming.StreamTextDecoder.error] holds the message and no further
    text is released.

    Rules (``../shared/bytez-protocol.md``, streaming):

    * A body that *begins* with ``Error: `` is an error (DECIDED), whatever follows (a
      server traceback may span lines); the message is collected until the body ends
      or reaches 4 KiB. While the text seen so far is still a prefix of ``Error: `` it
      is held back; anything else is released at once, so ordinary first tokens are
      not delayed.
    * After text was delivered, a chunk that begins with ``Error: `` is held; if the body
      ends while it is still one line, it is the error; if a newline follows or it grows
      past 4 KiB, it was model output and is released. A chunk that is only a beginning
      of ``Error: `` (``"Err"``) is held until the next chunk decides, so an error line
      split across chunks is still recognised.
    """

    __slots__ = ("_decoder", "_delivered_any", "_held", "error")

    def __init__(self) -> None:
        """Create a decoder for one stream."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self._delivered_any = False
        self.error: str | None = None
        """The in-band error message, or ``None`` while the stream has not failed.

        Set once the body is known to be an ``Error: ...`` failure (the message without
        the ``Error: `` prefix)."""

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
        return self._release(text, final=False)

    def finish(self) -> str:
        """Signal the end of the body; return the remaining text to deliver.

        After this, ``error`` is set if the stream ended in an in-band error.

        Returns:
            The last text to deliver (may be empty).
        """
        if self.error is not None:
            return ""
        text = self._decoder.decode(b"", final=True)
        return self._release(text, final=True)

    def _release(self, text: str, *, final: bool) -> str:
        if self._held:
            held, self._held = self._held, ""
            combined = held + text
            if not self._may_be_error(combined):
                # The held near-miss ("Err") was text after all; the new chunk is judged
                # on its own, so an error line that begins it is still recognised.
                return self._deliver(held) + self._release(text, final=final)
            text = combined
        if text.startswith(ERROR_PREFIX):
            if self._delivered_any:
                return self._hold_error_candidate(text, final=final)
            return self._hold_leading_error(text, final=final)
        if len(text) < len(ERROR_PREFIX) and ERROR_PREFIX.startswith(text):
            # Could still become "Error: " with the next chunk: decide then.
            if final:
                return self._deliver(text)
            self._held = text
            return ""
        # An error line may also start inside a chunk after a newline-less boundary;
        # only chunk-initial "Error: " is treated as in-band (see class docstring).
        return self._deliver(text)

    @staticmethod
    def _may_be_error(text: str) -> bool:
        # Starts with "Error: ", or is still a beginning of it.
        if len(text) < len(ERROR_PREFIX):
            return ERROR_PREFIX.startswith(text)
        return text.startswith(ERROR_PREFIX)

    def _hold_leading_error(self, text: str, *, final: bool) -> str:
        # The body began with "Error: ": it is an error whatever follows (DECIDED).
        if final or len(text) > _MAX_ERROR_LINE:
            message = text[len(ERROR_PREFIX) : len(ERROR_PREFIX) + _MAX_ERROR_LINE]
            self.error = message.strip() or "stream failed"
            return ""
        self._held = text
        return ""

    def _hold_error_candidate(self, text: str, *, final: bool) -> str:
        if "\n" in text or len(text) > _MAX_ERROR_LINE:
            return self._deliver(text)
        if final:
            self.error = text[len(ERROR_PREFIX) :].strip() or "stream failed"
            return ""
        self._held = text
        return ""

    def _deliver(self, text: str) -> str:
        if text:
            self._delivered_any = True
        return text


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
