"""LangChain messages to Bytez ``messages``: the conversion rules, in one place.

Decided here and documented in
[`convert_messages`][langchain_bytez.chat_messages.convert_messages]:

* roles: ``SystemMessage`` -> ``system``, ``HumanMessage`` -> ``user``, ``AIMessage``
  -> ``assistant`` (``ChatMessage`` with one of those roles, or ``human``/``ai``/
  ``developer``, is accepted too);
* consecutive messages of one role are merged into one (text joined with a blank line):
  many Hugging Face chat templates raise unless roles alternate, and merging keeps the
  whole text;
* a message ``name`` is sent as the message's ``name`` key (Bytez passes message dicts
  to the model's chat template; templates that know names use it, others ignore it);
  when merged messages carry different names, each part's text is prefixed
  ``"<name>: "`` instead so the attribution survives;
* content: strings stay strings; LangChain standard blocks (v1 and v0), OpenAI
  ``image_url`` and ``input_audio`` blocks become Bytez blocks
  ``{"type": "image"|"audio"|"video", "url": ...}`` or ``{..., "base64":
  "data:<mime>;base64,..."}``; text blocks become ``{"type": "text", "text": ...}``;
* tool calls and tool results (``AIMessage.tool_calls``, ``ToolMessage``,
  ``FunctionMessage``) are rendered as text with the roles every chat template accepts
  (see [`render_history`][langchain_bytez.tool_calling.render_history]): the Bytez
  chat route has no tool role;
* what the API cannot carry (files/PDFs, reasoning and other unknown blocks) raises
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)

from langchain_bytez.errors import BytezAPIError
from langchain_bytez.tool_calling import (
    render_history,
)
from langchain_bytez.wire.outputs import chat_content

__all__ = ["MEDIA_TYPES", "Answer", "content_of", "convert_messages", "output_answer"]

MEDIA_TYPES = ("image", "audio", "video")
"""Bytez content-block types that carry media."""

_ROLE_ALIASES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
}


def _refuse(index: int, message: BaseMessage, why: str) -> ValueError:
    return ValueError(f"messages[{index}] ({type(message).__name__}): {why}")


def _role_of(index: int, message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"  # tool calls were rendered as text by render_history
    if isinstance(message, ChatMessage):
        role = _ROLE_ALIASES.get(message.role.lower())
        if role is None:
            raise _refuse(
                index,
                message,
                f"role {message.role!r} is not one Bytez accepts (system, user, assistant)",
            )
        return role
    raise _refuse(
        index,
        message,
        f"message type {message.type!r} cannot be sent to Bytez, whose messages are "
        "system/user/assistant only",
    )


def _data_url(data: str, mime_type: Any, where: str) -> str:
    if data.startswith("data:"):
        return data  # already a data URL: Bytez's base64 form exactly
    if not isinstance(mime_type, str) or not mime_type:
        raise ValueError(f"{where}: base64 data needs a 'mime_type' (e.g. 'image/png')")
    return f"data:{mime_type};base64,{data}"


def _media_block(
    kind: str, *, url: Any = None, base64: Any = None, mime: Any = None, where: str
) -> dict[str, Any]:
    if isinstance(url, str) and url:
        if url.startswith("data:"):
            return {"type": kind, "base64": url}
        return {"type": kind, "url": url}
    if isinstance(base64, str) and base64:
        return {"type": kind, "base64": _data_url(base64, mime, where)}
    raise ValueError(f"{where}: a {kind} block needs a 'url' or 'base64' data")


def _convert_block(block: Any, where: str) -> dict[str, Any]:
    """One LangChain content block -> one Bytez block (or ValueError)."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if not isinstance(block, Mapping):
        raise TypeError(f"{where} is a {type(block).__name__}, not a content block")
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{where}: a text block needs a string 'text'")
        return {"type": "text", "text": text}
    if kind == "image_url":  # OpenAI Chat Completions form
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return _media_block("image", url=url, where=where)
    if kind == "input_audio":  # OpenAI Chat Completions form
        audio = block.get("input_audio")
        if not isinstance(audio, Mapping):
            raise ValueError(f"{where}: 'input_audio' needs {{'data', 'format'}}")
        fmt = audio.get("format")
        mime = f"audio/{fmt}" if isinstance(fmt, str) and fmt else None
        return _media_block("audio", base64=audio.get("data"), mime=mime, where=where)
    if kind in MEDIA_TYPES:
        source = block.get("source_type")
        if source is not None:  # LangChain v0 multimodal block
            if source == "url":
                return _media_block(kind, url=block.get("url"), where=where)
            if source == "base64":
                return _media_block(
                    kind, base64=block.get("data"), mime=block.get("mime_type"), where=where
                )
            raise ValueError(
                f"{where}: a {kind} block with source_type {source!r} cannot be sent; "
                "Bytez takes media by URL or base64 only"
            )
        if block.get("file_id") and not (block.get("url") or block.get("base64")):
            raise ValueError(
                f"{where}: a {kind} block referencing an uploaded file id cannot be sent; "
                "Bytez takes media by URL or base64 only"
            )
        return _media_block(
            kind,
            url=block.get("url"),
            base64=block.get("base64"),
            mime=block.get("mime_type"),
            where=where,
        )
    raise ValueError(
        f"{where} has block type {kind!r}, which the Bytez API cannot carry "
        "(it accepts text, image, audio and video blocks)"
    )


def _convert_content(index: int, message: BaseMessage) -> str | list[dict[str, Any]]:
    content = message.content
    if isinstance(content, str):
        return content
    prefix = f"messages[{index}] ({type(message).__name__}) content"
    return [_convert_block(block, f"{prefix}[{j}]") for j, block in enumerate(content)]


@dataclass
class _Part:
    """One converted message before consecutive same-role messages are merged."""

    role: str
    content: str | list[dict[str, Any]]
    name: str | None


def _prefixed(part: _Part) -> str | list[dict[str, Any]]:
    """The part's content with ``"<name>: "`` before its text (for mixed-name merges)."""
    if not part.name:
        return part.content
    label = f"{part.name}: "
    if isinstance(part.content, str):
        return label + part.content
    blocks = [dict(block) for block in part.content]
    for block in blocks:
        if block["type"] == "text":
            block["text"] = label + block["text"]
            return blocks
    return [{"type": "text", "text": label.rstrip()}, *blocks]


def _join(contents: Sequence[str | list[dict[str, Any]]]) -> str | list[dict[str, Any]]:
    """Join the contents of merged messages, text separated by a blank line."""
    if all(isinstance(c, str) for c in contents):
        return "\n\n".join(c for c in contents if isinstance(c, str) and c)
    blocks: list[dict[str, Any]] = []
    for content in contents:
        items = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in items:
            if block["type"] == "text" and not block["text"]:
                continue
            if block["type"] == "text" and blocks and blocks[-1]["type"] == "text":
                # Adjacent text of two messages becomes one block, like the string case.
                blocks[-1] = {"type": "text", "text": blocks[-1]["text"] + "\n\n" + block["text"]}
            else:
                blocks.append(dict(block))
    return blocks


def _render(group: list[_Part]) -> dict[str, Any]:
    names = {part.name for part in group}
    if len(names) == 1:
        content = _join([part.content for part in group])
        name = group[0].name
    else:
        content = _join([_prefixed(part) for part in group])
        name = None
    rendered: dict[str, Any] = {"role": group[0].role, "content": content}
    if name:
        rendered["name"] = name
    return rendered


def convert_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert LangChain messages to the Bytez ``messages`` list.

    See the module docstring for the rules (roles, merging of consecutive same-role
    messages, names, content blocks, tool calls and results, refusals).

    Args:
        messages: The conversation.

    Returns:
        The ``messages`` value of a Bytez run body.

    Raises:
        ValueError: A message or content block the Bytez API cannot carry; the message
            names the message index and type.
    """
    if not messages:
        raise ValueError("Cannot send an empty conversation: give at least one message")
    groups: list[list[_Part]] = []
    # Rendering keeps one message per message, so indexes in errors stay the caller's.
    for index, message in enumerate(render_history(messages)):
        part = _Part(
            role=_role_of(index, message),
            content=_convert_content(index, message),
            name=message.name or None,
        )
        if groups and groups[-1][0].role == part.role:
            groups[-1].append(part)
        else:
            groups.append([part])
    return [_render(group) for group in groups]


# ------------------------------------------------------------- answers (output parsing)


@dataclass(frozen=True)
class Answer:
    """A chat answer: its text, and its blocks when it holds more than text."""

    text: str
    blocks: list[dict[str, Any]] | None = None
    """All blocks in their order (text blocks included), only if some are not text."""


def _media_out(block: Mapping[str, Any]) -> dict[str, Any]:
    """A Bytez media block of an answer as a LangChain standard block."""
    out = dict(block)
    for key in ("base64", "url"):
        value = out.get(key)
        if isinstance(value, str) and value.startswith("data:") and ";base64," in value:
            # A data URL: LangChain's standard form is the bare data plus its mime type.
            head, _, data = value.partition(";base64,")
            out.pop(key)
            out["base64"] = data
            out.setdefault("mime_type", head.removeprefix("data:"))
    return out


def _answer_of_content(content: Any, model_id: str) -> Answer:
    if isinstance(content, str):
        return Answer(content)
    if isinstance(content, list):
        texts: list[str] = []
        blocks: list[dict[str, Any]] = []
        others = False
        for block in content:
            if isinstance(block, str):
                texts.append(block)
                blocks.append({"type": "text", "text": block})
            elif isinstance(block, Mapping) and block.get("type") == "text":
                text = str(block.get("text") or "")
                texts.append(text)
                blocks.append({"type": "text", "text": text})
            elif isinstance(block, Mapping) and isinstance(block.get("type"), str):
                others = True  # kept: an image (or other block) is part of the answer
                blocks.append(_media_out(block) if block["type"] in MEDIA_TYPES else dict(block))
            else:
                raise BytezAPIError(
                    f"Unexpected block in the chat output: {block!r}",
                    model_id=model_id,
                    retryable=False,
                )
        return Answer("".join(texts), blocks if others else None)
    raise BytezAPIError(
        f"Unexpected chat output content of type {type(content).__name__}; "
        "is this a chat or *-text-to-text model?",
        model_id=model_id,
        retryable=False,
    )


def output_answer(output: Any, model_id: str) -> Answer:
    """The reply of a chat ``output``, whatever its form.

    Current API: ``{"role": "assistant", "content": str | [blocks]}``. Older
    pipelines: ``[{"generated_text": [..., {"role": "assistant", ...}]}]`` (the whole
    conversation, reply last) or ``[{"generated_text": str}]``; a bare string is taken
    as the reply.
    """
    return _answer_of_content(chat_content(output), model_id)


def content_of(text: str, answer: Answer) -> str | list[str | dict[str, Any]]:
    """The message content: ``text``, plus the answer's non-text blocks if it had any.

    The blocks keep their order when ``text`` is the answer's whole text; when stop
    sequences or tool calls changed the text, it comes first, then the other blocks.
    """
    if answer.blocks is None:
        return text
    if text == answer.text:
        return list(answer.blocks)
    rest: list[str | dict[str, Any]] = [b for b in answer.blocks if b.get("type") != "text"]
    return [{"type": "text", "text": text}, *rest] if text else rest
