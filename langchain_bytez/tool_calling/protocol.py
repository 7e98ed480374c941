"""The protocol: bound tools and choice, the system prompt, and reading answers.

[`ToolProtocol`][langchain_bytez.tool_calling.ToolProtocol] renders the tool
prompt and reads answers into valid and invalid calls;
[`json_answer_prompt`][langchain_bytez.tool_calling.json_answer_prompt] asks
for a JSON answer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import (
    InvalidToolCall,
    ToolCall,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_bytez.tool_calling.history import _call_block, call_text
from langchain_bytez.tool_calling.scanner import RawCall, ToolCallScanner
from langchain_bytez.tool_calling.schema import validate_arguments

__all__ = [
    "ParsedAnswer",
    "ToolChoice",
    "ToolProtocol",
    "format_tools",
    "json_answer_prompt",
    "normalize_tool_choice",
]

ToolChoice = str
"""A normalised tool choice: ``"auto"``, ``"required"``, ``"none"`` or a tool name."""


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
