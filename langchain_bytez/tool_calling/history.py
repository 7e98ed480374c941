"""History rendering: tool calls and results as text in the roles every template accepts.

See [`render_history`][langchain_bytez.tool_calling.render_history].
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    FunctionMessage,
    HumanMessage,
    ToolMessage,
)

from langchain_bytez.tool_calling._markers import (
    _CALL_CLOSE,
    _CALL_MARKERS,
    _CALL_OPEN,
)

__all__ = ["call_text", "render_history"]


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
