"""Argument validation against a tool's JSON schema (pure functions).

See [`validate_arguments`][langchain_bytez.tool_calling.validate_arguments] for
the rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_bytez.tool_calling._markers import (
    _INT_TEXT,
    _NUMBER_TEXT,
)

__all__ = ["validate_arguments"]


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
