"""Checks of a run request's body, as the live service and its model containers make them.

The body may use the native keys (``text``, ``messages``) or the official SDKs' form
(``input``: a string for text tasks, a message list for chat, a URL or base64 for media;
plus ``url``, ``base64`` and ``json``). Params are checked against the fixed list the
containers accept (strict mode) or accepted and ignored (lenient mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from langchain_bytez.testing.catalogue import CatalogueRow

__all__ = [
    "ACCEPTED_PARAMS",
    "CHAT_TASKS",
    "EMBEDDING_TASKS",
    "HTTPError",
    "RunInput",
    "envelope_error",
    "invalid_params",
    "read_run_body",
]

MAX_NEW_TOKENS = 1_000_000
"""Generation runs on the event loop: budgets above this are refused (a 1 MB streamed
answer, the benchmark's scale case, needs about 130,000)."""

CHAT_TASKS = frozenset({"chat", "image-text-to-text", "audio-text-to-text", "video-text-to-text"})
EMBEDDING_TASKS = frozenset({"feature-extraction", "sentence-similarity"})
MEDIA_INPUT_TASKS = frozenset({"image-classification"})
"""Tasks whose input is a medium: ``url``, ``base64`` or ``input`` (a URL or a data URI)."""

ALLOWED_TOP_LEVEL = frozenset(
    {"text", "messages", "input", "url", "base64", "json", "params", "stream"}
)
"""Top-level keys of a run body: the native ones plus the official SDKs' ``input``,
``url``, ``base64`` and ``json``. Anything else is refused (400)."""

ACCEPTED_PARAMS = frozenset(
    {
        "max_length",
        "max_new_tokens",
        "min_length",
        "min_new_tokens",
        "early_stopping",
        "max_time",
        "do_sample",
        "num_beams",
        "num_beam_groups",
        "penalty_alpha",
        "use_cache",
        "temperature",
        "top_k",
        "top_p",
        "typical_p",
        "epsilon_cutoff",
        "eta_cutoff",
        "diversity_penalty",
        "repetition_penalty",
        "encoder_repetition_penalty",
        "length_penalty",
        "no_repeat_ngram_size",
        "bad_words_ids",
        "force_words_ids",
        "renormalize_logits",
        "constraints",
        "forced_bos_token_id",
        "forced_eos_token_id",
        "remove_invalid_values",
        "exponential_decay_length_penalty",
        "suppress_tokens",
        "begin_suppress_tokens",
        "forced_decoder_ids",
        "num_return_sequences",
        "output_attentions",
        "output_hidden_states",
        "output_scores",
        "return_dict_in_generate",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "encoder_no_repeat_ngram_size",
        "decoder_start_token_id",
        "generation_kwargs",
    }
)
"""The params strict mode accepts: the generation options the official ``bytez`` 3.0.1
SDK declares (``bytez/interface.py``, ``InferenceOptions``). ``stop_strings`` is not among
them: Bytez's vLLM adapter answers it with 422 and HF pipelines cannot use it."""

_INT_PARAMS = ("max_new_tokens", "min_new_tokens", "top_k", "num_return_sequences")
_FLOAT_PARAMS = ("temperature", "top_p", "repetition_penalty")
_ROLES = frozenset({"system", "user", "assistant"})
_MEDIA = frozenset({"image", "audio", "video"})

STACK_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/server.py", line 112, in run_model\n'
    "    output = pipe(inputs, **params)\n"
    '  File "/usr/local/lib/python3.10/site-packages/transformers/pipelines/base.py", '
    "line 1198, in __call__\n"
    "    return self.run_single(inputs, preprocess_params, forward_params, "
    "postprocess_params)\n"
    '  File "/usr/local/lib/python3.10/site-packages/transformers/generation/utils.py", '
    "line 1549, in generate\n"
    "    generation_config.validate()\n"
    "{kind}: {message}\n"
)
# Hugging Face's own words when a sampling model gets temperature 0.
_ZERO_TEMPERATURE = (
    "`temperature` (=0.0) has to be a strictly positive float, otherwise your next token "
    "scores will be invalid. If you're looking for greedy decoding strategies, set "
    "`do_sample=False`."
)


class HTTPError(Exception):
    """An answer other than success, raised by a check and sent by the router.

    Attributes:
        status: The HTTP status.
        payload: The JSON body.
    """

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        """Keep the status and the body.

        Args:
            status: The HTTP status.
            payload: The JSON body.
        """
        super().__init__(status)
        self.status = status
        self.payload = payload


def envelope_error(status: int, message: str) -> HTTPError:
    """An error in the envelope form ``{"error": message, "output": null}``.

    Args:
        status: The HTTP status.
        message: The error text.

    Returns:
        The error to raise.
    """
    return HTTPError(status, {"error": message, "output": None})


def invalid_params(message: str, kind: str = "ValueError") -> HTTPError:
    """A 422 as a model container answers a failing run: message plus stack trace.

    Args:
        message: The error text.
        kind: The Python exception name shown in the trace.

    Returns:
        The error to raise.
    """
    return HTTPError(
        422, {"error": message, "stack_trace": STACK_TRACE.format(kind=kind, message=message)}
    )


@dataclass
class RunInput:
    """A validated run body.

    Attributes:
        text: The text input of a text task.
        messages: The conversation of a chat task.
        params: The params the model honours (unknown ones dropped in lenient mode).
        stream: Whether to stream.
    """

    text: str | None
    messages: list[dict[str, Any]] | None
    params: dict[str, Any]
    stream: bool


def check_params(params: Any, row: CatalogueRow, *, strict: bool) -> dict[str, Any]:
    """Check ``params`` as the model's container would.

    Args:
        params: The ``params`` value of the body.
        row: The model.
        strict: Refuse unknown params (422) and ``temperature: 0`` on sampling models;
            otherwise unknown params are dropped.

    Returns:
        The params the fake honours.

    Raises:
        HTTPError: 400 if not an object, 422 for a bad value or (strict) an unknown key.
    """
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise envelope_error(400, "`params` must be an object")
    if row.closed_source:
        # Forwarded to the provider as they are (docs: closed-source-params.mdx); the
        # fake provider honours only the budget.
        return {k: v for k, v in params.items() if k == "max_new_tokens"}
    unknown = sorted(set(params) - ACCEPTED_PARAMS)
    if unknown and strict:
        raise invalid_params(f"{unknown[0]} is not supported for this model on Bytez")
    params = {k: v for k, v in params.items() if k in ACCEPTED_PARAMS}
    for name in _INT_PARAMS:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid_params(
                f"`{name}` must be a non-negative integer, got {value!r}",
                "ValueError" if isinstance(value, int) else "TypeError",
            )
    max_new = params.get("max_new_tokens")
    if max_new is not None and max_new > MAX_NEW_TOKENS:
        raise invalid_params(f"`max_new_tokens` must be at most {MAX_NEW_TOKENS}, got {max_new}")
    for name in _FLOAT_PARAMS:
        value = params.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise invalid_params(f"`{name}` must be a number, got {value!r}", "TypeError")
    do_sample = params.get("do_sample")
    if do_sample is not None and not isinstance(do_sample, bool):
        raise invalid_params(f"`do_sample` must be a boolean, got {do_sample!r}", "TypeError")
    samples = do_sample if do_sample is not None else row.samples_by_default
    if strict and samples and params.get("temperature") == 0:
        raise invalid_params(_ZERO_TEMPERATURE)
    checked: dict[str, Any] = params
    return checked


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """Check a conversation: roles, string or block content, media blocks.

    Args:
        messages: The ``messages`` (or ``input``) value.

    Returns:
        The messages.

    Raises:
        HTTPError: 400 naming the first bad part.
    """
    if not isinstance(messages, list) or not messages:
        raise envelope_error(400, "`messages` must be a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise envelope_error(400, f"messages[{i}] must be an object")
        role = message.get("role")
        if role not in _ROLES:
            raise envelope_error(
                400, f"messages[{i}].role must be one of system, user, assistant; got {role!r}"
            )
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise envelope_error(400, f"messages[{i}].name must be a string")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise envelope_error(
                400, f"messages[{i}].content must be a string or a list of content blocks"
            )
        for j, block in enumerate(content):
            _check_block(block, f"messages[{i}].content[{j}]")
    return messages


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise envelope_error(400, f"{where} must be an object")
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise envelope_error(400, f"{where}.text must be a string")
    elif kind in _MEDIA:
        if not isinstance(block.get("url"), str) and not isinstance(block.get("base64"), str):
            raise envelope_error(400, f"{where} of type {kind!r} needs a string `url` or `base64`")
    else:
        raise envelope_error(
            400, f"{where}.type must be one of text, image, audio, video; got {kind!r}"
        )


def _media_input(body: dict[str, Any], present: set[str], task: str) -> str:
    given = sorted(present & {"url", "base64", "input"})
    if {"text", "messages"} & present or len(given) != 1:
        raise envelope_error(400, f"Task {task} takes one of `url`, `base64` or `input`")
    value = body[given[0]]
    if not isinstance(value, str) or not value:
        raise envelope_error(400, f"`{given[0]}` must be a non-empty string")
    if given[0] == "base64" and not value.startswith("data:"):
        raise envelope_error(400, "`base64` must be a data URI (data:<mime>;base64,...)")
    return value


def read_run_body(body: dict[str, Any], row: CatalogueRow, *, strict: bool) -> RunInput:
    """Validate a run body for ``row``'s task.

    Args:
        body: The parsed JSON object.
        row: The model.
        strict: Strict params mode (see ``check_params``).

    Returns:
        The input, params and stream flag.

    Raises:
        HTTPError: 400 for a bad body, 422 for bad params.
    """
    present = {k for k, v in body.items() if v is not None}  # the SDKs drop nulls; so do we
    unknown = sorted(set(body) - ALLOWED_TOP_LEVEL)
    if unknown:
        raise envelope_error(400, f"Unknown field(s): {', '.join(unknown)}")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise envelope_error(400, "`stream` must be a boolean")
    as_json = body.get("json")
    if as_json is not None and not isinstance(as_json, bool):
        raise envelope_error(400, "`json` must be a boolean")
    for key in ("url", "base64"):
        if key in present and not isinstance(body[key], str):
            raise envelope_error(400, f"`{key}` must be a string")
    inputs = sorted(present & {"text", "messages", "input"})
    if len(inputs) > 1:
        raise envelope_error(400, f"Give one input, not {' and '.join(inputs)}")
    params = check_params(body.get("params"), row, strict=strict)
    task = row.task
    if task in MEDIA_INPUT_TASKS:
        return RunInput(_media_input(body, present, task), None, params, stream is True)
    if task in CHAT_TASKS:
        given = body.get("messages", body.get("input"))
        if given is None:
            raise envelope_error(400, f"Task {task} expects `messages` (a list of messages)")
        if isinstance(given, str):
            raise envelope_error(400, f"Task {task} expects a list of messages, not a string")
        return RunInput(None, check_messages(given), params, stream is True)
    if "messages" in present:
        raise envelope_error(400, f"Task {task} expects `text` (a string), not `messages`")
    text = body.get("text", body.get("input"))
    if text is None and ({"url", "base64"} & present):
        raise envelope_error(400, f"Task {task} takes text, not a media `url` or `base64`")
    if not isinstance(text, str):
        raise envelope_error(400, "`text` is required and must be a string")
    if task in EMBEDDING_TASKS:
        if not text:
            raise envelope_error(400, "text must be a non-empty string")
        if stream:
            raise envelope_error(400, f"Streaming is not supported for task {task}")
    return RunInput(text, None, params, stream is True)
