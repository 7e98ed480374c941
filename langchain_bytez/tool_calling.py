"""Prompt-based tool calling for any instruct model (pure functions, no I/O).

The Bytez chat route takes ``messages`` only: it has no ``tools`` field, no ``tool`` role
and no JSON mode. Tool calling is therefore built here, on the client, in three parts:

1. **The prompt protocol**
   ([`ToolProtocol.system_prompt`][langchain_bytez.tool_calling.ToolProtocol.system_prompt]):
   the tool schemas (OpenAI tool format, one JSON object per line inside ``<tools>``) and
   the answer format (``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, the
   Hermes/Qwen convention most open instruct models are trained on) go into the system
   prompt, with the ``tool_choice`` rule: ``"auto"`` (call a tool or answer in text),
   ``"required"`` (``"any"`` is the same: call at least one tool), a tool name (call
   that tool) or ``"none"`` (no tool prompt at all: the model answers in text, and the
   answer is not parsed for calls).
2. **The history rendering**
   ([`render_history`][langchain_bytez.tool_calling.render_history]): an ``AIMessage``
   with ``tool_calls`` becomes assistant text holding one ``<tool_call>`` block per call,
   and each ``ToolMessage`` (or ``FunctionMessage``) becomes a user message holding a
   ``<tool_response>`` block (``{"name", "id", "content"}``). Only the roles ``system``,
   ``user`` and ``assistant`` are used, so every chat template accepts the conversation
   and a multi-step agent keeps working.
3. **The parser** ([`ToolCallScanner`][langchain_bytez.tool_calling.ToolCallScanner] and
   [`ToolProtocol.parse`][langchain_bytez.tool_calling.ToolProtocol.parse]): whatever the
   prompt asked for, it reads what open models actually emit: Hermes/Qwen
   ``<tool_call>...</tool_call>`` blocks (one or several; several objects or a list
   inside one block too), a bare JSON object with ``name`` and ``arguments`` (or
   ``parameters``, Llama 3.x style), a JSON list of them, fenced ````` ```json `````
   blocks, Mistral's ``[TOOL_CALLS]`` prefix (a JSON list, or ``name[ARGS]{...}``),
   Llama's ``<|python_tag|>`` and ``<function=name>{...}</function>``, Granite's
   ``<|tool_call|>[...]``, Python-literal dicts (``{'name': ...}``, as Hermes 2 Pro
   writes them) and pythonic calls at the start of a line (``[add(a=2, b=3)]``, Llama
   3.2/4), with text before or after the call. Text outside the calls becomes
   the message content; a ``<think>...</think>`` block (Qwen3, DeepSeek-R1) is reasoning
   and stays text, so calls drafted while thinking are not taken as calls.

Arguments are validated against the tool's JSON schema
([`validate_arguments`][langchain_bytez.tool_calling.validate_arguments]): required keys,
basic types, ``enum``/``const``, nested objects and arrays, ``anyOf``/``oneOf``, and
``additionalProperties: false``. The only coercion is a string holding exactly one number
(``"2"``, ``"-3.5"``) where the schema says ``integer``/``number`` (and an integral float
such as ``2.0`` where it says ``integer``): small models quote numbers often, and nothing
else can be meant. Nothing else is coerced (``"true"`` stays a string, and fails a
``boolean``). A call that does not parse, names an unknown tool or fails validation
becomes an ``invalid_tool_calls`` entry with the model's text and the reason; an answer
without any call under ``tool_choice="required"`` or a tool name becomes one too. Nothing
raises and nothing is dropped.

Streaming: [`ToolCallScanner`][langchain_bytez.tool_calling.ToolCallScanner] is fed the
text as it arrives and holds back only what could still be the start of a call (a partial
marker such as ``"<tool_"``, a JSON value or fence opened at the start of a line, and
trailing whitespace, which is kept only if more text follows). Parsing a whole answer is
the same scanner fed once, so a stream and ``invoke`` agree by construction.
"""

from __future__ import annotations

import ast
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = [
    "ParsedAnswer",
    "RawCall",
    "ToolCallScanner",
    "ToolProtocol",
    "call_text",
    "extract_json",
    "format_tools",
    "json_answer_prompt",
    "normalize_tool_choice",
    "render_history",
    "validate_arguments",
]

ToolChoice = str
"""A normalised tool choice: ``"auto"``, ``"required"``, ``"none"`` or a tool name."""

_CALL_OPEN = "<tool_call>"
_CALL_CLOSE = "</tool_call>"
_MISTRAL = "[TOOL_CALLS]"
_GRANITE = "<|tool_call|>"
_PYTHON_TAG = "<|python_tag|>"
_FUNCTION_OPEN = "<function="
_FUNCTION_CLOSE = "</function>"
_FENCE = "```"
# Markers recognised anywhere in the text (line-start candidates are found separately).
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"
_CALL_MARKERS = (_CALL_OPEN, _MISTRAL, _GRANITE, _PYTHON_TAG, _FUNCTION_OPEN)
_ANYWHERE = (*_CALL_MARKERS, _THINK_OPEN)
_JSON_FENCE_LANGS = frozenset({"", "json", "jsonc", "json5", "tool_call", "tool_calls"})
_LOOKS_LIKE_CALL = re.compile(r'"(?:name|function)"\s*:')
_INT_TEXT = re.compile(r"[+-]?\d+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


# ---------------------------------------------------------------------- tools and choice


def format_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Convert tools to OpenAI tool dicts, refusing what cannot be converted.

    Args:
        tools: LangChain tools, pydantic models, TypedDicts, functions, JSON schemas or
            OpenAI tool/function dicts.

    Returns:
        One ``{"type": "function", "function": {...}}`` dict per tool.

    Raises:
        ValueError: A tool cannot be converted or has no name. (Two tools may share a
            name, as LangChain's own tests do; the first one's schema validates calls.)
    """
    formatted: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        try:
            converted = convert_to_openai_tool(tool)
        except Exception as error:  # any failure is the same user error
            raise ValueError(
                f"tools[{index}] ({type(tool).__name__}) cannot be converted to a tool "
                f"schema: {error}"
            ) from error
        function = converted.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if converted.get("type") != "function" or not isinstance(name, str) or not name:
            raise ValueError(
                f"tools[{index}] ({type(tool).__name__}) is not a function tool with a name; "
                "Bytez tool calling supports function tools only"
            )
        formatted.append(converted)
    return formatted


def normalize_tool_choice(choice: Any, names: Sequence[str]) -> ToolChoice:
    """Normalise a LangChain/OpenAI/Anthropic-style ``tool_choice``.

    Args:
        choice: ``None``/``"auto"``, ``"any"``/``"required"``/``True``, ``"none"``/
            ``False``, a tool name, or ``{"type": "function", "function": {"name": ...}}``
            / ``{"type": "tool", "name": ...}`` / ``{"name": ...}``.
        names: The bound tools' names.

    Returns:
        ``"auto"``, ``"required"``, ``"none"`` or one of ``names``.

    Raises:
        ValueError: The choice names an unknown tool, forces a call with no tools, or
            has an unknown form.
    """
    if choice is None or choice == "auto":
        return "auto"
    if choice is False or choice == "none":
        return "none"
    if choice is True or choice in ("any", "required"):
        if not names:
            raise ValueError("tool_choice requires a tool call, but no tools are bound")
        return "required"
    name: Any = choice
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        if name is None and choice.get("type") in ("any", "auto", "none", "required"):
            return normalize_tool_choice(choice["type"], names)
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Unsupported tool_choice {choice!r}: use 'auto', 'any'/'required', 'none' "
            "or a tool name"
        )
    if name not in names:
        raise ValueError(
            f"tool_choice names the tool {name!r}, which is not bound; bound tools: "
            f"{', '.join(names) or '(none)'}"
        )
    return name


# ---------------------------------------------------------------------- history rendering


def _call_block(name: Any, arguments: Any) -> str:
    call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{_CALL_OPEN}\n{call}\n{_CALL_CLOSE}"


def call_text(raw: str) -> str:
    """The ``args`` text of an invalid call: the model's text, never a JSON object.

    An ``InvalidToolCall`` keeps what the model wrote. LangChain rebuilds a streamed
    message's calls from ``tool_call_chunks`` and would read any ``args`` that parses as
    a JSON object as a *valid* call, so a bare JSON object is given inside
    ``<tool_call>`` tags (the protocol's own notation); text with a marker or that is
    not an object is kept as it is. Calls that were read but failed validation are
    given as ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``.

    Args:
        raw: The text of the attempt (or the whole answer).

    Returns:
        The text for ``InvalidToolCall.args``.
    """
    if raw.lstrip().startswith("{"):
        return f"{_CALL_OPEN}\n{raw.strip()}\n{_CALL_CLOSE}"
    return raw


def _invalid_call_block(call: Mapping[str, Any]) -> str:
    """An invalid call of the history, shown to the model as it was written."""
    args = call.get("args")
    if isinstance(args, str) and any(marker in args for marker in _CALL_MARKERS):
        return args  # already the model's own text, markers included
    try:
        arguments: Any = json.loads(args) if isinstance(args, str) else {}
    except ValueError:
        arguments = args
    return _call_block(call.get("name"), arguments)


def _openai_calls(message: AIMessage) -> list[str]:
    """``additional_kwargs`` tool/function calls (OpenAI form), when ``tool_calls`` is empty."""
    calls = message.additional_kwargs.get("tool_calls") or []
    legacy = message.additional_kwargs.get("function_call")
    functions = [c.get("function") for c in calls if isinstance(c, Mapping)]
    if isinstance(legacy, Mapping):
        functions.append(legacy)
    blocks = []
    for function in functions:
        if not isinstance(function, Mapping):
            continue
        raw = function.get("arguments")
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            arguments = raw
        blocks.append(_call_block(function.get("name"), arguments))
    return blocks


def _text_and_blocks(content: Any) -> tuple[str, list[Any]]:
    """Split message content into its text and its non-text blocks."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    others: list[Any] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif isinstance(block, Mapping) and block.get("type") in ("tool_use", "tool_call"):
            continue  # provider echo of a tool call: rendered from tool_calls instead
        else:
            others.append(block)
    return "".join(texts), others


def _render_ai(message: AIMessage) -> BaseMessage:
    text, others = _text_and_blocks(message.content)
    blocks = [_call_block(c["name"], c["args"]) for c in message.tool_calls]
    blocks += [
        _invalid_call_block(c)
        for c in message.invalid_tool_calls
        if c.get("args") != text  # a "missing call" entry repeats the text: shown once
    ]
    if not blocks:
        blocks = _openai_calls(message)
    if not blocks:
        return message
    rendered = "\n".join([text.rstrip(), *blocks] if text.strip() else blocks)
    content: Any = rendered if not others else [{"type": "text", "text": rendered}, *others]
    return AIMessage(content=content, name=message.name)


def _render_result(
    message: ToolMessage | FunctionMessage, names: Mapping[str, str]
) -> HumanMessage:
    text, others = _text_and_blocks(message.content)
    name = message.name
    if name is None and isinstance(message, ToolMessage):
        name = names.get(message.tool_call_id)  # ToolNode sets it; hand-made ones may not
    result: dict[str, Any] = {"name": name}
    if isinstance(message, ToolMessage):
        result["id"] = message.tool_call_id
        if message.status == "error":
            result["status"] = "error"
    result["content"] = text
    rendered = f"<tool_response>\n{json.dumps(result, ensure_ascii=False)}\n</tool_response>"
    if not others:
        return HumanMessage(content=rendered)
    # Media returned by a tool (e.g. an image) goes along as blocks of the same turn.
    return HumanMessage(content=[{"type": "text", "text": rendered}, *others])


def render_history(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    r"""Render tool calls and tool results with the roles every chat template accepts.

    ``AIMessage`` tool calls (``tool_calls``, ``invalid_tool_calls``, or OpenAI-style
    ``additional_kwargs``) become ``<tool_call>`` blocks after the message text; each
    ``ToolMessage``/``FunctionMessage`` becomes a user message holding a
    ``<tool_response>`` block with the tool's name, the call id and the result text
    (non-text result blocks follow as content blocks). Other messages are unchanged.

    Args:
        messages: The conversation.

    Returns:
        A new list with only system, human and AI messages (and ``ChatMessage``\\ s as given).
    """
    rendered: list[BaseMessage] = []
    names: dict[str, str] = {}  # call id -> tool name, for results that lack the name
    for message in messages:
        if isinstance(message, AIMessage):
            names.update({c["id"]: c["name"] for c in message.tool_calls if c["id"]})
            rendered.append(_render_ai(message))
        elif isinstance(message, (ToolMessage, FunctionMessage)):
            rendered.append(_render_result(message, names))
        else:
            rendered.append(message)
    return rendered


# ---------------------------------------------------------------------- validation


def _type_matches(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True  # an unknown type keyword is not ours to refuse


def _coerce(value: Any, kinds: Sequence[str]) -> Any:
    """The one coercion allowed: an unambiguous number written as a string (or 2.0)."""
    if isinstance(value, str):
        text = value.strip()
        if "integer" in kinds and _INT_TEXT.fullmatch(text):
            return int(text)
        if "number" in kinds and _NUMBER_TEXT.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return int(number) if _INT_TEXT.fullmatch(text) else number
    if (
        "integer" in kinds
        and isinstance(value, float)
        and math.isfinite(value)
        and value.is_integer()
    ):
        return int(value)
    return value


def _validate(value: Any, schema: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(schema, Mapping):
        return value  # True / {} / unknown: anything goes
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            for option in options:
                attempt: list[str] = []
                result = _validate(value, option, path, attempt)
                if not attempt:
                    value = result
                    break
            else:
                errors.append(f"{path or 'arguments'}: {value!r} matches none of {key}")
                return value
    for option in schema.get("allOf") or []:
        value = _validate(value, option, path, errors)
    kinds_raw = schema.get("type")
    kinds = [kinds_raw] if isinstance(kinds_raw, str) else list(kinds_raw or [])
    if schema.get("nullable") is True:
        kinds.append("null")
    if kinds:
        value = _coerce(value, kinds)
        if not any(_type_matches(value, kind) for kind in kinds):
            expected = " or ".join(kinds)
            errors.append(f"{path or 'arguments'}: expected {expected}, got {value!r}")
            return value
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path or 'arguments'}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path or 'arguments'}: {value!r} is not {schema['const']!r}")
    if isinstance(value, dict):
        value = _validate_object(value, schema, path, errors)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        value = [
            _validate(item, schema["items"], f"{path}[{i}]", errors) for i, item in enumerate(value)
        ]
    return value


def _validate_object(
    value: dict[str, Any], schema: Mapping[str, Any], path: str, errors: list[str]
) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    prefix = f"{path}." if path else ""
    errors.extend(
        f"{prefix}{key}: required argument missing"
        for key in schema.get("required") or []
        if key not in value
    )
    extra = schema.get("additionalProperties", True)
    checked: dict[str, Any] = {}
    for key, item in value.items():
        if key in properties:
            checked[key] = _validate(item, properties[key], f"{prefix}{key}", errors)
        elif extra is False:
            errors.append(f"{prefix}{key}: unexpected argument")
            checked[key] = item
        else:
            checked[key] = _validate(item, extra, f"{prefix}{key}", errors)
    return checked


def validate_arguments(arguments: Any, schema: Mapping[str, Any] | None) -> tuple[Any, list[str]]:
    """Check (and minimally coerce) tool arguments against a JSON schema.

    Supported keywords: ``type`` (one or a list), ``properties``, ``required``,
    ``additionalProperties``, ``items``, ``enum``, ``const``, ``anyOf``, ``oneOf``,
    ``allOf``, ``nullable``; others are ignored (never refused). Coercion: only a string
    holding exactly one number where ``integer``/``number`` is expected, and an integral
    float where ``integer`` is expected.

    Args:
        arguments: The decoded arguments.
        schema: The tool's ``parameters`` schema (``None``: anything goes).

    Returns:
        ``(arguments, errors)``: the coerced arguments and one message per problem.
    """
    errors: list[str] = []
    if schema is None:
        return arguments, errors
    checked = _validate(arguments, {"type": "object", **schema}, "", errors)
    return checked, errors


# ---------------------------------------------------------------------- raw call reading


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


# ---------------------------------------------------------------------- the protocol


@dataclass(frozen=True)
class ParsedAnswer:
    """A model answer read under the tool protocol.

    Attributes:
        content: The text outside the calls.
        tool_calls: Valid calls (ids generated, arguments validated).
        invalid_tool_calls: Attempts that could not be read or validated, with the raw
            text (or the arguments as read) and the reason.
    """

    content: str
    tool_calls: list[ToolCall]
    invalid_tool_calls: list[InvalidToolCall]


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ToolProtocol:
    """The bound tools and choice: renders the prompt and reads the answers.

    Attributes:
        tools: OpenAI tool dicts (see [`format_tools`][langchain_bytez.tool_calling.format_tools]).
        choice: The normalised tool choice.
        parallel: Whether several calls in one answer are invited.
    """

    tools: tuple[dict[str, Any], ...]
    choice: ToolChoice = "auto"
    parallel: bool = True

    @classmethod
    def build(
        cls, tools: Sequence[Any], tool_choice: Any = None, *, parallel: bool | None = None
    ) -> ToolProtocol:
        """Convert the tools and the choice, refusing what cannot be honoured.

        Args:
            tools: Anything [`format_tools`][langchain_bytez.tool_calling.format_tools] takes.
            tool_choice: Anything
                [`normalize_tool_choice`][langchain_bytez.tool_calling.normalize_tool_choice]
                takes.
            parallel: ``False`` asks for at most one call per answer.

        Returns:
            The protocol.

        Raises:
            ValueError: A tool cannot be converted, or the choice cannot be honoured.
        """
        formatted = format_tools(tools)
        names = [tool["function"]["name"] for tool in formatted]
        choice = normalize_tool_choice(tool_choice, names)
        return cls(tuple(formatted), choice, parallel is not False)

    @property
    def names(self) -> list[str]:
        """The bound tools' names."""
        return [tool["function"]["name"] for tool in self.tools]

    @property
    def active(self) -> bool:
        """Whether answers are read for calls (tools bound and choice not ``"none"``)."""
        return bool(self.tools) and self.choice != "none"

    def _schema(self, name: str) -> Mapping[str, Any] | None:
        for tool in self.tools:
            if tool["function"]["name"] == name:
                parameters = tool["function"].get("parameters")
                return parameters if isinstance(parameters, Mapping) else None
        return None

    def _forced(self) -> str | None:
        if self.choice not in ("auto", "none", "required"):
            return self.choice
        if self.choice == "required" and len(self.tools) == 1:
            return str(self.tools[0]["function"]["name"])
        return None

    def system_prompt(self) -> str:
        """The system-prompt section describing the tools and the answer format.

        Returns:
            The text (empty when the protocol is not active).
        """
        if not self.active:
            return ""
        schemas = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in self.tools)
        forced = self._forced()
        if forced is not None:
            rule = f"You must call the function {forced!r} in this answer."
        elif self.choice == "required":
            rule = "You must call at least one of these functions in this answer."
        else:
            rule = (
                "Call a function when it helps answer the user; otherwise answer in "
                "plain text without any <tool_call> block."
            )
        many = (
            "You may call several functions: one <tool_call> block each."
            if self.parallel
            else "Call at most one function per answer."
        )
        return (
            "# Tools\n\n"
            "You can call functions to help answer. Their signatures are JSON schemas "
            "inside <tools></tools>:\n"
            f"<tools>\n{schemas}\n</tools>\n\n"
            "To call a function, answer with a JSON object holding the function name "
            "and its arguments inside <tool_call></tool_call> tags:\n"
            '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
            "</tool_call>\n"
            f"{many} {rule} The result of each call comes back in a "
            "<tool_response></tool_response> block; then use it to answer."
        )

    def scanner(self) -> ToolCallScanner:
        """A fresh scanner for one answer.

        Returns:
            The scanner, knowing the tool names and the forced tool (if any).
        """
        names = set(self.names)
        forced = self._forced()
        return ToolCallScanner(
            known=names.__contains__,
            forced_schema=(forced, self._schema(forced)) if forced is not None else None,
        )

    def check(self, call: RawCall) -> ToolCall | InvalidToolCall:
        """Validate one call attempt.

        Args:
            call: The attempt as read by the scanner.

        Returns:
            A ``ToolCall`` with a generated id, or an ``InvalidToolCall`` (see
            [`call_text`][langchain_bytez.tool_calling.call_text] for its ``args``).
        """
        arguments = call.arguments
        error = call.error
        if error is None and isinstance(arguments, str):  # OpenAI-style JSON string
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                error = "the arguments string is not valid JSON"
        if error is not None:
            return invalid_tool_call(
                name=call.name, args=call_text(call.raw), id=_new_id(), error=error
            )
        if arguments is None:
            arguments = {}
        errors: list[str] = []
        if call.name not in self.names:
            errors.append(f"unknown tool {call.name!r}; available: {', '.join(self.names)}")
        elif self.choice not in ("auto", "required") and call.name != self.choice:
            errors.append(
                f"tool_choice requires {self.choice!r}, but the model called {call.name!r}"
            )
        elif not isinstance(arguments, dict):
            errors.append("the arguments are not an object")
        else:
            arguments, errors = validate_arguments(arguments, self._schema(call.name or ""))
        if errors:
            return invalid_tool_call(
                name=call.name,
                args=_call_block(call.name, arguments),
                id=_new_id(),
                error="; ".join(errors),
            )
        return tool_call(name=call.name or "", args=arguments, id=_new_id())

    def missing_call(self, text: str) -> InvalidToolCall | None:
        """The entry for an answer without any call when the choice required one.

        Args:
            text: The whole answer.

        Returns:
            An ``InvalidToolCall`` carrying the answer, or ``None`` if no call was required.
        """
        if self.choice in ("auto", "none"):
            return None
        forced = self._forced()
        wanted = f"a call of {forced!r}" if forced else "a tool call"
        return invalid_tool_call(
            name=forced,
            args=call_text(text),
            id=_new_id(),
            error=f"tool_choice={self.choice!r} requires {wanted}, but the model answered "
            "with text only",
        )

    def parse(self, text: str) -> ParsedAnswer:
        """Read a whole answer.

        Args:
            text: The model's answer.

        Returns:
            The content and the valid and invalid calls.
        """
        if not self.active:
            return ParsedAnswer(text, [], [])
        scanner = self.scanner()
        events = scanner.feed(text) + scanner.finish()
        content = "".join(e.text for e in events if e.kind == "text")
        valid: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        for event in events:
            if event.call is None:
                continue
            checked = self.check(event.call)
            if checked.get("type") == "invalid_tool_call":
                invalid.append(cast("InvalidToolCall", checked))
            else:
                valid.append(cast("ToolCall", checked))
        if not valid and not invalid:
            missing = self.missing_call(text)
            if missing is not None:
                invalid.append(missing)
        return ParsedAnswer(content, valid, invalid)


# ---------------------------------------------------------------------- JSON answers


def json_answer_prompt(schema: Mapping[str, Any] | None) -> str:
    """The system-prompt section asking for a JSON answer (structured output).

    Args:
        schema: The JSON schema the answer must follow, or ``None`` for any JSON object.

    Returns:
        The text.
    """
    if schema is None:
        return "Answer with one JSON object only: no text before or after it, no code fence."
    return (
        "Answer with one JSON object only, no text before or after it and no code fence. "
        "It must follow this JSON schema:\n"
        f"{json.dumps(schema, ensure_ascii=False)}"
    )


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
