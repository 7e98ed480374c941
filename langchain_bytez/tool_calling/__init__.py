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

from langchain_bytez.tool_calling.history import call_text, render_history
from langchain_bytez.tool_calling.protocol import (
    ParsedAnswer,
    ToolChoice,
    ToolProtocol,
    format_tools,
    json_answer_prompt,
    normalize_tool_choice,
)
from langchain_bytez.tool_calling.scanner import RawCall, ToolCallScanner, events_text, extract_json
from langchain_bytez.tool_calling.schema import validate_arguments

__all__ = [
    "ParsedAnswer",
    "RawCall",
    "ToolCallScanner",
    "ToolChoice",
    "ToolProtocol",
    "call_text",
    "events_text",
    "extract_json",
    "format_tools",
    "json_answer_prompt",
    "normalize_tool_choice",
    "render_history",
    "validate_arguments",
]
