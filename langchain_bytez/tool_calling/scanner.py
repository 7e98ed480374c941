"""The parser: reads tool calls in every format open models emit, whole or streamed.

[`ToolCallScanner`][langchain_bytez.tool_calling.ToolCallScanner] is fed text
as it arrives and holds back only what could still be the start of a call;
[`extract_json`][langchain_bytez.tool_calling.extract_json] reads a JSON answer.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_bytez.tool_calling._markers import (
    _ANYWHERE,
    _CALL_CLOSE,
    _CALL_OPEN,
    _FENCE,
    _FUNCTION_CLOSE,
    _FUNCTION_OPEN,
    _GRANITE,
    _JSON_FENCE_LANGS,
    _LOOKS_LIKE_CALL,
    _MISTRAL,
    _PYTHON_TAG,
    _THINK_CLOSE,
    _THINK_OPEN,
)

__all__ = ["RawCall", "ToolCallScanner", "events_text", "extract_json"]


@dataclass(frozen=True)
class RawCall:
    """One call attempt found in the text, before validation.

    Attributes:
        raw: The text of the attempt as the model wrote it (markers included).
        name: The tool name, if it could be read.
        arguments: The arguments, if they could be read.
        error: Why the attempt could not be read (``None`` when it could).
    """

    raw: str
    name: str | None = None
    arguments: Any = None
    error: str | None = None


def _call_shape(value: Any) -> tuple[str, Any] | None:
    """``(name, arguments)`` if ``value`` has the shape of one call, else ``None``."""
    if not isinstance(value, Mapping):
        return None
    function = value.get("function")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        value = function  # OpenAI {"type": "function", "function": {...}}
    name = value.get("name")
    if not isinstance(name, str):
        return None
    for key in ("arguments", "parameters", "args", "input"):
        if key in value:
            return name, value[key]
    return None


def _calls_in(value: Any, known: Callable[[str], bool]) -> list[tuple[str, Any]] | None:
    """Every call in a decoded JSON value (object, list, ``{"tool_calls": [...]}``)."""
    if isinstance(value, Mapping) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    calls = []
    for item in items:
        shape = _call_shape(item)
        if shape is None and isinstance(item, Mapping) and set(item) == {"name"}:
            # A bare {"name": "tool"} is a call without arguments, if the tool exists.
            name = item["name"]
            shape = (name, {}) if isinstance(name, str) and known(name) else None
        if shape is None:
            return None
        calls.append(shape)
    return calls


def _python_literal(text: str) -> Any:
    """A Python dict/list literal (Hermes 2 Pro writes ``{'name': ..., 'arguments': ...}``)."""
    if len(text) > 100_000 or not text.startswith(("{", "[")):
        return None  # literal_eval of huge input is slow; anything else is not a call
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _json_values(text: str) -> list[Any] | None:
    """One or more JSON values separated by whitespace (or ``;``/``,``), else ``None``.

    A body that is not JSON but a Python dict/list literal is read as one value.
    """
    decoder = json.JSONDecoder()
    values = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            literal = _python_literal(text) if pos == 0 else None
            return [literal] if literal is not None else None
        values.append(value)
        pos = end
        while pos < len(text) and (text[pos].isspace() or text[pos] in ";,"):
            pos += 1
    return values or None


def _read_calls(raw: str, body: str, known: Callable[[str], bool], what: str) -> list[RawCall]:
    """Read the calls of a marked block whose body is JSON."""
    values = _json_values(body)
    if values is None:
        return [RawCall(raw=raw, error=f"{what} does not hold valid JSON")]
    calls: list[RawCall] = []
    for value in values:
        found = _calls_in(value, known)
        if found is None:
            return [
                RawCall(
                    raw=raw,
                    error=f"{what} does not hold objects with 'name' and 'arguments'",
                )
            ]
        calls += [RawCall(raw=raw, name=name, arguments=args) for name, args in found]
    return calls


def _read_mistral(raw: str, body: str, known: Callable[[str], bool]) -> list[RawCall]:
    """``[TOOL_CALLS]`` followed by a JSON list, or ``name[ARGS]{...}`` (newer tokenizers)."""
    stripped = body.strip()
    if stripped.startswith(("[", "{")):
        return _read_calls(raw, stripped, known, "[TOOL_CALLS]")
    calls: list[RawCall] = []
    for part in stripped.split(_MISTRAL):
        if not part.strip():
            continue
        name, sep, args = part.partition("[ARGS]")
        name = name.split("[CALL_ID]")[0].strip()
        values = _json_values(args) if sep else None
        if not name or values is None or len(values) != 1:
            return [RawCall(raw=raw, error="[TOOL_CALLS] is not followed by name[ARGS]{...}")]
        calls.append(RawCall(raw=raw, name=name, arguments=values[0]))
    return calls or [RawCall(raw=raw, error="[TOOL_CALLS] is followed by no call")]


def _read_function_tag(raw: str, body: str) -> list[RawCall]:
    """``<function=name>{json}</function>`` (Llama 3.x custom tool format)."""
    name, sep, args = body.partition(">")
    values = _json_values(args.removesuffix(_FUNCTION_CLOSE)) if sep else None
    if not sep or not name.strip():
        return [RawCall(raw=raw, error="<function=...> has no tool name")]
    if values is None or len(values) != 1:
        return [RawCall(raw=raw, error="<function=...> does not hold one JSON object")]
    return [RawCall(raw=raw, name=name.strip(), arguments=values[0])]


@dataclass
class _Balance:
    """Where a bracket-balance scan stopped, to resume it when more text arrives."""

    index: int
    depth: int = 0
    in_string: bool = False
    escaped: bool = False


_PYTHONIC_HEAD = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*")
# After the name: "()" or "(key=" opens a call; these are the prefixes that still could.
_PYTHONIC_OPEN = re.compile(r"\(\s*(?:\)|[A-Za-z_]\w*\s*=)")
_PYTHONIC_OPEN_PREFIX = re.compile(r"(?:\(\s*(?:[A-Za-z_]\w*\s*)?)?")


def _read_pythonic(source: str) -> list[RawCall] | None:
    """Calls of a ``[name(key=value, ...), ...]`` list; ``None`` if it does not parse.

    Only literal keyword arguments are read (``ast.literal_eval``: nothing is executed).
    """
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(tree.body, ast.List) or not tree.body.elts:
        return None
    calls: list[RawCall] = []
    for node in tree.body.elts:
        if not isinstance(node, ast.Call):
            return None
        name = ast.unparse(node.func)
        if node.args or any(k.arg is None for k in node.keywords):
            calls.append(RawCall(raw=source, name=name, error="only key=value arguments"))
            continue
        try:
            arguments = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError:
            calls.append(RawCall(raw=source, name=name, error="an argument is not a literal"))
            continue
        calls.append(RawCall(raw=source, name=name, arguments=arguments))
    return calls


def _json_end(text: str, start: int, state: _Balance | None = None) -> int | None:
    """End index of the balanced JSON object/array starting at ``start``, if complete.

    With ``state``, the scan resumes where it stopped and records where it stops, so a
    value arriving in many pieces is scanned once overall.
    """
    state = state if state is not None else _Balance(start)
    depth, in_string, escaped = state.depth, state.in_string, state.escaped
    for index in range(state.index, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    state.index, state.depth, state.in_string, state.escaped = (
        len(text),
        depth,
        in_string,
        escaped,
    )
    return None


# ---------------------------------------------------------------------- the scanner


@dataclass
class _Event:
    kind: Literal["text", "call"]
    text: str = ""
    call: RawCall | None = None


@dataclass
class ToolCallScanner:
    """Splits an answer, fed in pieces, into text and call attempts.

    ``feed`` returns what can be decided so far; ``finish`` decides the rest. Text is
    released as soon as it cannot be part of a call. Feeding a whole answer at once and
    feeding it piece by piece give the same events.

    Attributes:
        known: Whether a tool name is bound (a bare ``{"name": ...}`` is a call only then).
        forced_schema: When the choice forces a single tool, that tool's name and
            parameters: a bare JSON object that validates against them is read as a call
            to it (small models often answer the arguments alone).
    """

    known: Callable[[str], bool] = field(default=lambda name: False)
    forced_schema: tuple[str, Mapping[str, Any] | None] | None = None
    _text: str = ""
    _pos: int = 0  # everything before it is decided
    _held_space: str = ""  # whitespace waiting for more text
    _calls_seen: bool = False
    _balances: dict[int, _Balance] = field(default_factory=dict)  # open JSON values
    _pythonic_from: dict[int, int] = field(default_factory=dict)  # where to look for "]"
    _thinking: bool = False  # inside a <think> block

    def feed(self, piece: str) -> list[_Event]:
        """Add text; return the events that are decided now.

        Args:
            piece: The next piece of the answer.

        Returns:
            Text and call events, in order.
        """
        self._text += piece
        return self._advance(final=False)

    def finish(self) -> list[_Event]:
        """Decide the rest of the answer.

        Returns:
            The remaining events; trailing whitespace is dropped if a call was seen.
        """
        events = self._advance(final=True)
        if self._held_space and not self._calls_seen:
            events.append(_Event("text", self._held_space))
        self._held_space = ""
        return events

    @property
    def calls_seen(self) -> bool:
        """Whether a call attempt has been found so far."""
        return self._calls_seen

    # -- internals

    def _json_end(self, start: int) -> int | None:
        """``_json_end`` for the value at ``start``, resuming the previous scan of it."""
        state = self._balances.setdefault(start, _Balance(start))
        end = _json_end(self._text, start, state)
        if end is not None:
            del self._balances[start]
        return end

    def _emit_text(self, text: str, events: list[_Event]) -> None:
        stripped = text.rstrip()
        if stripped:
            events.append(_Event("text", self._held_space + stripped))
            self._held_space = text[len(stripped) :]
        else:
            self._held_space += text

    def _emit_calls(self, calls: list[RawCall], events: list[_Event]) -> None:
        self._calls_seen = True
        events.extend(_Event("call", call=call) for call in calls)

    def _line_start(self, pos: int) -> bool:
        """Whether only spaces or tabs stand between the last line break and ``pos``."""
        text = self._text
        return text[text.rfind("\n", 0, pos) + 1 : pos].strip(" \t") == ""

    def _next_candidate(self, pos: int) -> int | None:
        text = self._text
        best: int | None = None
        for marker in _ANYWHERE:
            index = text.find(marker, pos)
            if index != -1 and (best is None or index < best):
                best = index
        if self._line_start(pos):
            line = pos
        else:
            newline = text.find("\n", pos)
            line = -1 if newline == -1 else newline + 1
        while line != -1 and (best is None or line < best):
            index = line
            while index < len(text) and text[index] in " \t":
                index += 1
            if index < len(text) and (text[index] in "{[" or text.startswith(_FENCE, index)):
                best = index if best is None else min(best, index)
                break
            newline = text.find("\n", line)
            line = -1 if newline == -1 else newline + 1
        return best

    def _hold_partial(self, pos: int, markers: Iterable[str]) -> int:
        """Where a tail that could still become one of ``markers`` starts (else the end)."""
        text = self._text
        hold = len(text)
        for marker in markers:
            for size in range(min(len(marker) - 1, len(text) - pos), 0, -1):
                if text.endswith(marker[:size]):
                    hold = min(hold, len(text) - size)
                    break
        return hold

    def _hold_from(self, pos: int) -> int:
        """Where the undecided tail starts when no candidate is in sight."""
        text = self._text
        hold = self._hold_partial(pos, _ANYWHERE)
        # A line whose first characters could still open a fence.
        begin = max(text.rfind("\n") + 1, pos)
        if self._line_start(begin):
            tail = text[begin:].lstrip(" \t")
            if tail and _FENCE.startswith(tail):
                hold = min(hold, len(text) - len(tail))
        return hold

    def _skip_thinking(self, events: list[_Event], *, final: bool) -> bool:
        """Inside ``<think>``: release its text; ``True`` once ``</think>`` has passed."""
        text = self._text
        close = text.find(_THINK_CLOSE, self._pos)
        if close == -1:
            end = len(text) if final else self._hold_partial(self._pos, (_THINK_CLOSE,))
            if end > self._pos:
                self._emit_text(text[self._pos : end], events)
                self._pos = end
            return False
        end = close + len(_THINK_CLOSE)
        self._emit_text(text[self._pos : end], events)
        self._pos = end
        self._thinking = False
        return True

    def _advance(self, *, final: bool) -> list[_Event]:
        events: list[_Event] = []
        while True:
            if self._thinking and not self._skip_thinking(events, final=final):
                return events
            text = self._text
            start = self._next_candidate(self._pos)
            if start is None:
                end = len(text) if final else self._hold_from(self._pos)
                if end > self._pos:
                    self._emit_text(text[self._pos : end], events)
                    self._pos = end
                return events
            if start > self._pos:
                self._emit_text(text[self._pos : start], events)
                self._pos = start
            if text.startswith(_THINK_OPEN, start):
                # Reasoning is text: calls it drafts while thinking are not calls.
                self._emit_text(_THINK_OPEN, events)
                self._pos = start + len(_THINK_OPEN)
                self._thinking = True
                continue
            outcome = self._take(start, final=final)
            if outcome is None:  # undecided: wait for more text
                return events
            end, calls = outcome
            if calls:
                self._emit_calls(calls, events)
            else:
                self._emit_text(text[start:end], events)
            self._pos = end

    def _take(self, start: int, *, final: bool) -> tuple[int, list[RawCall]] | None:
        """Decide the candidate at ``start``: ``(end, calls)``; no calls means text."""
        text = self._text
        if text.startswith(_CALL_OPEN, start):
            close = text.find(_CALL_CLOSE, start)
            if close == -1 and not final:
                return None
            end = len(text) if close == -1 else close + len(_CALL_CLOSE)
            body = text[start + len(_CALL_OPEN) : close if close != -1 else len(text)]
            return end, _read_calls(text[start:end], body, self.known, "<tool_call>")
        if text.startswith(_FUNCTION_OPEN, start):
            close = text.find(_FUNCTION_CLOSE, start)
            if close == -1 and not final:
                return None
            end = len(text) if close == -1 else close + len(_FUNCTION_CLOSE)
            return end, _read_function_tag(text[start:end], text[start + 10 : end])
        if text.startswith(_MISTRAL, start):
            return self._take_mistral(start, final=final)
        if text.startswith(_GRANITE, start):
            return self._take_granite(start, final=final)
        if text.startswith(_PYTHON_TAG, start):
            closes = [
                (index, index + len(marker))
                for marker in ("<|eom_id|>", "<|eot_id|>")
                if (index := text.find(marker, start)) != -1
            ]
            if not closes and not final:
                return None
            body_end, end = min(closes) if closes else (len(text), len(text))
            body = text[start + len(_PYTHON_TAG) : body_end]
            return end, _read_calls(text[start:end], body, self.known, "<|python_tag|>")
        if text.startswith(_FENCE, start):
            return self._take_fence(start, final=final)
        return self._take_json(start, start, final=final)

    def _take_mistral(self, start: int, *, final: bool) -> tuple[int, list[RawCall]] | None:
        text = self._text
        body_start = start + len(_MISTRAL)
        index = body_start
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text) and not final:
            return None
        if index < len(text) and text[index] in "[{":
            end = self._json_end(index)
            if end is None and not final:
                return None
            end = len(text) if end is None else end
        elif not final:
            return None  # name[ARGS]{...} form: it runs to the end of the answer
        else:
            end = len(text)
        return end, _read_mistral(text[start:end], text[body_start:end], self.known)

    def _take_granite(self, start: int, *, final: bool) -> tuple[int, list[RawCall]] | None:
        """``<|tool_call|>`` followed by a JSON list of calls (IBM Granite 3.x)."""
        text = self._text
        body_start = start + len(_GRANITE)
        index = body_start
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text) and not final:
            return None
        end = self._json_end(index) if index < len(text) and text[index] in "[{" else None
        if end is None and not final:
            return None
        end = len(text) if end is None else end
        return end, _read_calls(text[start:end], text[body_start:end], self.known, _GRANITE)

    def _take_fence(self, start: int, *, final: bool) -> tuple[int, list[RawCall]] | None:
        text = self._text
        newline = text.find("\n", start)
        if newline == -1:
            if not final:
                return None
            return len(text), []
        lang = text[start + len(_FENCE) : newline].strip().lower()
        if lang not in _JSON_FENCE_LANGS:
            return newline + 1, []  # a code block of another language: text
        body = newline + 1
        while body < len(text) and text[body].isspace():
            body += 1
        if body >= len(text) and not final:
            return None
        if body >= len(text) or text[body] not in "{[":
            return newline + 1, []
        close = text.find(_FENCE, body)
        if close == -1 and not final:
            return None
        end = len(text) if close == -1 else close + len(_FENCE)
        inner = text[body : close if close != -1 else len(text)]
        return end, self._judge_json(text[start:end], inner)

    def _take_json(
        self, start: int, raw_start: int, *, final: bool
    ) -> tuple[int, list[RawCall]] | None:
        text = self._text
        if text[start] == "[":
            if (
                not final
                and len(text) - start < len(_MISTRAL)
                and _MISTRAL.startswith(text[start:])
            ):
                return None  # could still become "[TOOL_CALLS]"
            index = start + 1
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                return None if not final else (len(text), [])
            if text[index] != "{":
                return self._take_pythonic(start, final=final)
        end = self._json_end(start)
        if end is None:
            if not final:
                return None
            end = len(text)
        return end, self._judge_json(text[raw_start:end], text[start:end])

    def _take_pythonic(self, start: int, *, final: bool) -> tuple[int, list[RawCall]] | None:
        """``[name(key=value, ...), ...]`` (Llama 3.2 / Llama 4 pythonic calls), else text."""
        text = self._text
        head = _PYTHONIC_HEAD.match(text, start)
        if head is None or (head.end() == len(text) and not final):
            return None if head is not None else (start + 1, [])
        if not _PYTHONIC_OPEN.match(text, head.end()):
            if not final and _PYTHONIC_OPEN_PREFIX.fullmatch(text, head.end()):
                return None  # "[add(" or "[add(a": could still become a call
            return start + 1, []  # "[1, 2]", "[link](...)", "[f(x) is ...]": text
        # The list ends at a "]" after which the text parses; strings may hold "]".
        close = text.find("]", self._pythonic_from.get(start, head.end()))
        while close != -1:
            calls = _read_pythonic(text[start : close + 1])
            if calls is not None:
                self._pythonic_from.pop(start, None)
                return close + 1, calls
            close = text.find("]", close + 1)
        if not final:
            self._pythonic_from[start] = len(text)
            return None
        self._pythonic_from.pop(start, None)
        return len(text), [RawCall(raw=text[start:], error="the Python-style call is incomplete")]

    def _judge_json(self, raw: str, body: str) -> list[RawCall]:
        """Calls in a JSON candidate; ``[]`` when it is ordinary text."""
        try:
            value = json.loads(body)
        except ValueError:
            if _LOOKS_LIKE_CALL.search(body):
                return [RawCall(raw=raw, error="the call is not valid JSON")]
            return []
        found = _calls_in(value, self.known)
        if found is not None:
            return [RawCall(raw=raw, name=name, arguments=args) for name, args in found]
        if self.forced_schema is not None and isinstance(value, dict):
            # Under a forced tool, a bare object is that tool's arguments (valid or not).
            return [RawCall(raw=raw, name=self.forced_schema[0], arguments=value)]
        return []


def extract_json(text: str) -> Any:
    """The JSON value of an answer that should be JSON (fences and chatter tolerated).

    Tries, in order: the whole text; the body of the first ````` ``` ````` fence; the first
    balanced ``{...}``/``[...]`` in the text.

    Args:
        text: The model's answer.

    Returns:
        The decoded value.

    Raises:
        ValueError: No JSON value could be read.
    """
    candidates: list[str] = [text.strip()]
    fence = re.search(r"```[A-Za-z0-9_]*\s*\n(.*?)(?:```|$)", text, re.DOTALL)
    if fence:
        candidates.append(fence.group(1).strip())
    for index, char in enumerate(text):
        if char in "{[":
            end = _json_end(text, index)
            if end is not None:
                candidates.append(text[index:end])
                break
    for candidate in candidates:
        values = _json_values(candidate)
        if values is not None and len(values) == 1:
            return values[0]
    raise ValueError("the answer holds no valid JSON value")


def events_text(events: Iterable[_Event]) -> str:
    """The text of scanner events joined (for tests and callers that need only text).

    Args:
        events: Scanner events.

    Returns:
        Their text.
    """
    return "".join(event.text for event in events if event.kind == "text")
