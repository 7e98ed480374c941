"""One parser per task for the ``output`` of a Bytez answer: pure, no I/O.

The service has answered in several vintages (``docs/protocol.md``, outputs): a bare
string, a chat message ``{"role", "content"}`` whose content is a string or a list of
blocks, Hugging Face pipeline lists such as ``[{"generated_text": ...}]``, and for
embeddings flat, nested, per-token or keyed vectors. Every reader of an output (the
clients, ``BytezLLM``, ``ChatBytez``, ``BytezEmbeddings``) goes through these functions,
so the accepted shapes are the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_bytez.errors import BytezAPIError

__all__ = [
    "TEXT_KEYS",
    "chat_content",
    "content_text",
    "embedding_vector",
    "text_of_output",
]

TEXT_KEYS = ("generated_text", "summary_text", "translation_text", "text")
"""Keys under which pipeline-style outputs carry their text, in order of preference."""

_EMBEDDING_KEYS = ("embedding", "embeddings")


def _unexpected(message: str, model_id: str | None) -> BytezAPIError:
    return BytezAPIError(message, model_id=model_id, retryable=False)


def content_text(content: Any) -> str | None:
    """The text of a chat message's ``content``: a string, or its text blocks joined.

    Args:
        content: A string, or a list of blocks (``{"type": "text", "text": ...}`` or
            plain strings); blocks of other types (images...) carry no text.

    Returns:
        The text, or ``None`` when ``content`` is neither a string nor a block list.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, (str, Mapping)) for b in content):
        return "".join(
            b if isinstance(b, str) else b["text"]
            for b in content
            if isinstance(b, str) or (b.get("type") == "text" and isinstance(b.get("text"), str))
        )
    return None


def text_of_output(
    output: Any, model_id: str | None = None, *, expected: str = "a text output", hint: str = ""
) -> str:
    """The text of a text-producing ``output``, whatever its vintage.

    Accepted, in this order: a string; a chat message whose ``content`` is a string or
    a list of text blocks; a mapping with one of
    [`TEXT_KEYS`][langchain_bytez.wire.outputs.TEXT_KEYS]; a non-empty list of those
    (the first item is the answer, like a Hugging Face pipeline's first sequence with
    ``num_return_sequences``).

    Args:
        output: The envelope's ``output``.
        model_id: The model, for the error message.
        expected: What the caller expected, for the error message (``"a text stream"``).
        hint: Appended to the error message (``"is this a text-generation model?"``).

    Returns:
        The text.

    Raises:
        BytezAPIError: If the output has none of these shapes (not retryable).
    """
    whole = output
    if isinstance(output, list) and output:
        output = output[0]
    if isinstance(output, str):
        return output
    if isinstance(output, Mapping):
        text = content_text(output.get("content"))
        if text is not None:
            return text
        for key in TEXT_KEYS:
            value = output.get(key)
            if isinstance(value, str):
                return value
    message = f"Expected {expected}, got a JSON {type(whole).__name__} output"
    raise _unexpected(f"{message}; {hint}" if hint else message, model_id)


def chat_content(output: Any) -> Any:
    """The assistant's ``content`` from a chat ``output``, whatever its vintage.

    Current API: ``{"role": "assistant", "content": str | [blocks]}``. Older pipelines:
    ``[{"generated_text": [..., {"role": "assistant", ...}]}]`` (the whole conversation,
    reply last) or ``[{"generated_text": str}]``; a bare string is the reply itself.

    Args:
        output: The envelope's ``output``.

    Returns:
        The content as the service sent it (a string, a block list, or whatever else
        was there: the caller types it, since only it knows which blocks it accepts).
    """
    if isinstance(output, list) and output and isinstance(output[0], Mapping):
        output = output[0]
    if isinstance(output, Mapping) and "generated_text" in output:
        generated = output["generated_text"]
        output = generated[-1] if isinstance(generated, list) and generated else generated
    if isinstance(output, Mapping):
        return output.get("content")
    return output


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_FLOAT_ONLY = frozenset({float})
_NUMBER_TYPES = frozenset({int, float})


def _numbers(values: Sequence[Any]) -> list[float] | None:
    """``values`` as floats if every item is a number (a bool is not), else ``None``.

    The item types are gathered in one C-level pass (a decoded vector holds floats, and
    sometimes ints); other types (subclasses) get the item-by-item check.
    """
    types = set(map(type, values))
    if types <= _FLOAT_ONLY:
        return list(values)
    if types <= _NUMBER_TYPES or all(_is_number(v) for v in values):
        return list(map(float, values))
    return None


def _vector(values: list[float], model_id: str | None) -> list[float]:
    # A finite sum means every item is finite (NaN and inf propagate); only when it is
    # not (or a sum of huge values overflowed) is each item checked.
    if not values or not (math.isfinite(sum(values)) or all(math.isfinite(v) for v in values)):
        raise _unexpected("The embedding output holds an empty or non-finite vector", model_id)
    return values


def _mean(rows: Sequence[Any], model_id: str | None) -> list[float]:
    numbers = [_numbers(row) if isinstance(row, list) else None for row in rows]
    vectors = [_vector(row, model_id) for row in numbers if row is not None]
    if not vectors or len(vectors) != len(rows) or len({len(v) for v in vectors}) != 1:
        raise _unexpected(
            "The per-token embedding output is not a list of equal-length vectors", model_id
        )
    count = len(vectors)
    return [sum(column) / count for column in zip(*vectors, strict=True)]


def embedding_vector(output: Any, model_id: str | None = None) -> list[float]:
    """Turn any embedding ``output`` of a one-text request into one flat vector.

    Accepted: ``[v...]``, ``[[v...]]``, per-token ``[[t1], [t2], ...]`` or
    ``[[[t1], [t2], ...]]`` (mean-pooled), and ``{"embedding" | "embeddings": any of
    these}``.

    Args:
        output: The envelope's ``output``.
        model_id: The model, for error messages.

    Returns:
        The vector (per-token output mean-pooled).

    Raises:
        BytezAPIError: If the output has none of the known shapes (not retryable).
    """
    if isinstance(output, Mapping):
        for key in _EMBEDDING_KEYS:
            if key in output:
                return embedding_vector(output[key], model_id)
    if isinstance(output, list) and output:
        if (flat := _numbers(output)) is not None:
            return _vector(flat, model_id)  # [v]
        if len(output) == 1 and isinstance(output[0], list):
            inner = output[0]
            if inner and (flat := _numbers(inner)) is not None:
                return _vector(flat, model_id)  # [[v]]
            if inner and all(isinstance(row, list) for row in inner):
                return _mean(inner, model_id)  # [[[token vectors]]]
        if all(isinstance(row, list) for row in output):
            return _mean(output, model_id)  # [[token vector], [token vector], ...]
    raise _unexpected(
        f"Unexpected embedding output of type {type(output).__name__}; "
        "is this a feature-extraction or sentence-similarity model?",
        model_id,
    )
