"""Tools and structured output for ``ChatBytez``: answer modes, tool-call chunks, parsers.

The glue between [`ChatBytez`][langchain_bytez.chat_models.ChatBytez] and the prompt
protocol of [`tool_calling`][langchain_bytez.tool_calling]: how one call asks for its answer
(plain text, tool calls or JSON), how a streamed answer becomes ``tool_call_chunks``, and
the parser behind ``with_structured_output``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers import BaseGenerationOutputParser
from langchain_core.outputs import ChatGenerationChunk, Generation
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ValidationError
from pydantic import v1 as pydantic_v1

from langchain_bytez.generation import (
    StreamEnd,
)
from langchain_bytez.tool_calling import (
    RawCall,
    ToolProtocol,
    extract_json,
    json_answer_prompt,
    validate_arguments,
)

# ---------------------------------------------------------------------- answer modes

__all__ = [
    "AnswerMode",
    "StructuredParser",
    "ToolCallStream",
    "answer_mode",
    "schema_name",
    "with_system_text",
]

_TOOL_KWARGS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")
_REFUSED_KWARGS = {
    "functions": "legacy OpenAI 'functions' are not supported: use bind_tools(...)",
    "function_call": "legacy OpenAI 'function_call' is not supported: use bind_tools(...)",
}


@dataclass(frozen=True)
class AnswerMode:
    """How one call asks and reads its answer: plain text, tool protocol or JSON."""

    tools: ToolProtocol | None = None
    json_schema: Mapping[str, Any] | None = None
    json_answer: bool = False
    rest: dict[str, Any] = field(default_factory=dict)
    """The call's other keyword arguments (generation settings)."""

    @property
    def reads_calls(self) -> bool:
        """Whether the answer is read for tool calls (tools bound and not turned off)."""
        return self.tools is not None and self.tools.active

    def system_text(self) -> str:
        """The instructions this mode adds to the system message (may be empty)."""
        parts = []
        if self.tools is not None and self.tools.active:
            parts.append(self.tools.system_prompt())
        if self.json_answer:
            parts.append(json_answer_prompt(self.json_schema))
        return "\n\n".join(parts)


def _json_format(response_format: Any) -> tuple[bool, Mapping[str, Any] | None]:
    """Read an OpenAI-style ``response_format``: ``(JSON answer?, schema)``."""
    if response_format is None:
        return False, None
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind == "text":
            return False, None
        if kind == "json_object":
            return True, None
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            if isinstance(schema, Mapping):
                return True, schema
    raise ValueError(
        f"Unsupported response_format {response_format!r}: use {{'type': 'json_object'}} "
        "or {'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}"
    )


def answer_mode(kwargs: Mapping[str, Any]) -> AnswerMode:
    """Split the tool and JSON options off the call's kwargs (never sent as params)."""
    if not kwargs:
        return AnswerMode()  # the common call: plain text, nothing to split
    for key, why in _REFUSED_KWARGS.items():
        if key in kwargs:
            raise ValueError(why)
    rest = {k: v for k, v in kwargs.items() if k not in _TOOL_KWARGS}
    tools = kwargs.get("tools")
    protocol = None
    if tools is not None:
        if not isinstance(tools, Sequence) or isinstance(tools, (str, bytes)):
            raise ValueError(f"tools must be a list, got {type(tools).__name__}")
        parallel = kwargs.get("parallel_tool_calls")
        protocol = ToolProtocol.build(list(tools), kwargs.get("tool_choice"), parallel=parallel)
    elif kwargs.get("tool_choice") not in (None, "auto", "none"):
        raise ValueError("tool_choice requires a tool call, but no tools are bound")
    json_answer, schema = _json_format(kwargs.get("response_format"))
    return AnswerMode(tools=protocol, json_schema=schema, json_answer=json_answer, rest=rest)


def with_system_text(messages: Sequence[BaseMessage], text: str) -> list[BaseMessage]:
    """Add ``text`` to the system prompt (after the caller's own system message)."""
    if not text:
        return list(messages)
    addition = SystemMessage(text)
    if messages and isinstance(messages[0], SystemMessage):
        # Merged into one system message by convert_messages (blank line between).
        return [messages[0], addition, *messages[1:]]
    return [addition, *messages]


class ToolCallStream:
    """Turns streamed text into chunks: text as it is decided, each call once complete."""

    def __init__(self, protocol: ToolProtocol) -> None:
        """Start reading one streamed answer.

        Args:
            protocol: The bound tools' prompt protocol.
        """
        self._protocol = protocol
        self._scanner = protocol.scanner()
        self._text: list[str] = []
        self._index = 0
        self._valid = 0
        self._invalid = 0

    def _chunks(self, events: list[Any]) -> list[ChatGenerationChunk]:
        chunks = []
        for event in events:
            if event.call is None:
                chunks.append(ChatGenerationChunk(message=AIMessageChunk(content=event.text)))
            else:
                chunks.append(self._call_chunk(event.call))
        return chunks

    def _call_chunk(self, call: RawCall | dict[str, Any]) -> ChatGenerationChunk:
        checked: Mapping[str, Any] = (
            self._protocol.check(call) if isinstance(call, RawCall) else call
        )
        args: str | None
        if checked.get("type") == "invalid_tool_call":
            self._invalid += 1
            args = checked.get("args")
        else:
            self._valid += 1
            args = json.dumps(checked["args"], ensure_ascii=False)
        piece = tool_call_chunk(
            name=checked.get("name"), args=args, id=checked.get("id"), index=self._index
        )
        self._index += 1
        return ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[piece]))

    def feed(self, item: str | StreamEnd) -> list[ChatGenerationChunk]:
        """Take the next streamed text (or the end) and return the chunks it decides.

        Args:
            item: A text piece, or the ``StreamEnd`` marker.

        Returns:
            Zero or more chunks: text, then each tool call once complete.
        """
        if not isinstance(item, StreamEnd):
            self._text.append(item)
            return self._chunks(self._scanner.feed(item))
        chunks = self._chunks(self._scanner.finish())
        if not self._valid and not self._invalid:
            missing = self._protocol.missing_call("".join(self._text))
            if missing is not None:
                chunks.append(self._call_chunk(dict(missing)))
        info = dict(item.info)
        if self._valid and not item.stopped:
            info["finish_reason"] = "tool_calls"
        last = AIMessageChunk(content="", response_metadata=info, chunk_position="last")
        chunks.append(ChatGenerationChunk(message=last))
        return chunks


# ---------------------------------------------------------------------- structured output


def schema_name(schema: Any) -> str:
    """The name a schema (pydantic class, TypedDict, JSON schema, tool) is bound under."""
    return str(convert_to_openai_tool(schema)["function"]["name"])


class StructuredParser(BaseGenerationOutputParser[Any]):
    """Reads a structured answer (a tool call or a JSON text) and validates it."""

    source: Literal["tool", "json"]
    """Where the answer is: the call of ``tool_name``, or the JSON text of the reply."""
    tool_name: str | None = None
    """The tool whose call holds the answer (``source="tool"``)."""
    model_class: Any = None
    """A pydantic class to build, or ``None`` for a dict."""
    json_schema: dict[str, Any] | None = None
    """The JSON schema a dict answer is checked against (``None``: any JSON)."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """Parse the model message into the schema's type.

        Args:
            result: The generations (the first one is read).
            partial: Unused: the answer is parsed whole.

        Returns:
            A pydantic instance or a dict.

        Raises:
            OutputParserException: No answer, unreadable JSON or failed validation; the
                exception's ``llm_output`` holds the model's text.
        """
        generation = result[0]
        message = getattr(generation, "message", None)
        raw = message.text if isinstance(message, BaseMessage) else generation.text
        if self.source == "tool":
            value, raw = self._from_tool(message, raw)
        else:
            try:
                value = extract_json(raw)
            except ValueError as error:
                raise OutputParserException(
                    f"The answer is not JSON: {error}", llm_output=raw
                ) from None
        return self._validated(value, raw)

    def _from_tool(self, message: Any, raw: str) -> tuple[Any, str]:
        calls = message.tool_calls if isinstance(message, AIMessage) else []
        for call in calls:
            if call["name"] == self.tool_name:
                return call["args"], raw or json.dumps(call["args"])
        invalid = message.invalid_tool_calls if isinstance(message, AIMessage) else []
        if invalid:
            first = invalid[0]
            text = first.get("args") or raw
            raise OutputParserException(
                f"The model's {self.tool_name!r} call is invalid: {first.get('error')}",
                llm_output=text,
            )
        raise OutputParserException(
            f"The model answered without calling {self.tool_name!r}", llm_output=raw
        )

    def _validated(self, value: Any, raw: str) -> Any:
        if self.model_class is not None:
            try:
                if issubclass(self.model_class, pydantic_v1.BaseModel):
                    # langchain-core still accepts pydantic.v1 models as schemas.
                    return self.model_class.parse_obj(value)
                return self.model_class.model_validate(value)
            except (ValidationError, pydantic_v1.ValidationError) as error:
                raise OutputParserException(
                    f"The answer does not match {self.model_class.__name__}: {error}",
                    llm_output=raw,
                ) from None
        if self.json_schema is not None:
            checked, errors = validate_arguments(value, self.json_schema)
            if errors:
                raise OutputParserException(
                    f"The answer does not match the schema: {'; '.join(errors)}",
                    llm_output=raw,
                )
            return checked
        return value
