"""Markers and patterns the history rendering and the parser share."""

from __future__ import annotations

import re

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
