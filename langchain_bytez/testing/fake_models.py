"""The fake models behind the local server: deterministic, readable, cheap.

Each fake is one function ``(FakeRun) -> FakeAnswer`` registered by name in
[`FAKE_MODELS`][langchain_bytez.testing.fake_models.FAKE_MODELS]; a catalogue row picks
one by name (or gets its task's default). Adding a behaviour for one model is one
function here plus one catalogue row.

Text fakes write English sentences drawn from a small built-in text, starting at a place
chosen by a hash of the prompt, so the same prompt always gets the same words and
different prompts get different (but readable) continuations. A token is one word with
its leading space, and ``max_new_tokens`` counts those tokens.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_bytez.testing.catalogue import CatalogueRow
from langchain_bytez.testing.fake_tools import (
    json_model_reply,
    react_model_reply,
    tool_model_reply,
)

__all__ = [
    "FAKE_MODELS",
    "TASK_DEFAULT_FAKE",
    "FakeAnswer",
    "FakeRun",
    "embed_text",
    "fake_model",
    "generate_continuation",
]

# Written for this project. A few words carry multi-byte UTF-8 on purpose (café, naïve,
# Zürich, the em dash) so that streams exercise incremental decoding.
_BUILT_IN_TEXT = (
    "The river ran quietly past the old mill at the edge of town. "
    "Every morning the baker opened her café before the sun was up. "
    "She believed that good bread needs patience more than skill. "
    "A traveller from Zürich stopped by and asked for directions to the library. "
    "The library kept its lamps lit long after the streets were dark. "
    "Inside, a student read about mountains, maps and the weather of distant coasts. "
    "He wrote careful notes in a small paper notebook. "
    "Some ideas seemed naïve at first — later they turned out to be right. "
    "Outside, the wind moved the leaves of the garden in slow circles. "
    "A cat watched the birds from the warm stone wall. "
    "By noon the market was full of voices, fruit and bright colours. "
    "The fishermen came back with stories that grew longer every year. "
    "In the evening the town gathered on the square to listen to music. "
    "Children ran between the tables while their parents talked about the harvest. "
    "Later the clouds cleared and the stars came out over the hills. "
    "The old clock in the tower struck ten and the lights went out one by one. "
    "Tomorrow would bring rain, the farmers said, and the river would rise again. "
    "Nobody minded, because the rain was good for the fields and the gardens. "
    "The baker set her alarm, the student closed his notebook, and the town slept."
)
_WORDS: tuple[str, ...] = tuple(_BUILT_IN_TEXT.split(" "))
_SENTENCE_STARTS: tuple[int, ...] = tuple(
    i for i, word in enumerate(_WORDS) if i == 0 or _WORDS[i - 1].endswith(".")
)
_MAX_EMBED_TOKENS = 512


def _seed_of(*parts: str) -> int:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return int.from_bytes(digest.digest()[:8], "big")


def generate_continuation(prompt: str, max_new_tokens: int, *, seed_text: str = "") -> list[str]:
    """Return the tokens the local server generates after ``prompt``.

    The tokens are consecutive words of a small built-in English text, starting at a
    sentence chosen by a hash of ``prompt`` and ``seed_text`` (wrapping around at the
    end), so the continuation reads as sentences and is deterministic.

    Args:
        prompt: The text being continued.
        max_new_tokens: How many tokens to produce (negative counts as zero).
        seed_text: Extra text mixed into the seed (the server passes the whole
            conversation for chat models).

    Returns:
        ``max_new_tokens`` tokens, each ``" " + word``.
    """
    count = max(0, int(max_new_tokens))
    if count == 0:
        return []
    starts = _SENTENCE_STARTS
    start = starts[_seed_of(seed_text, prompt) % len(starts)]
    size = len(_WORDS)
    return [" " + _WORDS[(start + i) % size] for i in range(count)]


def embed_text(text: str, dim: int = 384) -> list[float]:
    """Embed ``text`` as a hashed, signed character-3-gram vector, L2-normalised.

    Similar texts share many 3-grams and so get a high cosine similarity. The vector of
    an empty text is all zeros.

    Args:
        text: The text to embed.
        dim: The vector dimension.

    Returns:
        A list of ``dim`` floats with unit L2 norm (or all zeros).

    Raises:
        ValueError: If ``dim`` is not positive.
    """
    if dim < 1:
        msg = f"dim must be positive, got {dim}"
        raise ValueError(msg)
    vector = [0.0] * dim
    if not text:
        return vector
    padded = f"  {text.lower()} "
    counts: dict[str, int] = {}
    for i in range(len(padded) - 2):
        gram = padded[i : i + 3]
        counts[gram] = counts.get(gram, 0) + 1
    for gram, n in counts.items():
        h = zlib.crc32(gram.encode("utf-8", "surrogatepass"))
        vector[h % dim] += n if (h >> 31) & 1 else -n
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        return vector
    return [v / norm for v in vector]


def _per_token_vectors(text: str, dim: int) -> list[list[float]]:
    """One vector per token whose mean is exactly ``embed_text(text, dim)``."""
    target = embed_text(text, dim)
    words = text.split()[: _MAX_EMBED_TOKENS - 2]
    tokens = ["[CLS]", *words, "[SEP]"]
    noise = [embed_text(token, dim) for token in tokens]
    n = len(tokens)
    mean_noise = [sum(column) / n for column in zip(*noise, strict=True)]
    return [
        [t + 0.5 * (e - m) for t, e, m in zip(target, row, mean_noise, strict=True)]
        for row in noise
    ]


def words_as_tokens(text: str) -> list[str]:
    """Split ``text`` into word tokens that concatenate back to it exactly.

    Args:
        text: Any text.

    Returns:
        ``["first", " second", ...]`` (empty for an empty text).
    """
    if text == "":
        return []
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])]


@dataclass
class FakeRun:
    """What a fake model is asked to do (already validated by the server).

    Attributes:
        row: The catalogue row of the model.
        text: The text input (text tasks), else ``None``.
        messages: The conversation (chat tasks), else ``None``.
        max_new_tokens: The token budget (the request's, or the server default).
        budget_given: Whether the request set ``max_new_tokens``.
        stream: Whether the answer is streamed.
        reply: Tokens forced by ``LocalBytezServer.set_reply`` (``None``: generate).
        headers: The request headers (lower-case names, secrets removed).
    """

    row: CatalogueRow
    text: str | None
    messages: list[dict[str, Any]] | None
    max_new_tokens: int
    budget_given: bool
    stream: bool
    reply: list[str] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def forced(self) -> list[str] | None:
        """The forced reply cut to the request's budget (when the request set one)."""
        if self.reply is None:
            return None
        return list(self.reply if not self.budget_given else self.reply[: self.max_new_tokens])


@dataclass
class FakeAnswer:
    """A fake model's answer.

    Attributes:
        tokens: The streamed chunks (one per token).
        output: The ``output`` of a non-streamed answer.
        envelope: Extra top-level keys of the JSON answer (``provider`` for closed models).
    """

    tokens: list[str]
    output: Any
    envelope: dict[str, Any] = field(default_factory=dict)


FakeModel = Callable[[FakeRun], FakeAnswer]

FAKE_MODELS: dict[str, FakeModel] = {}
"""The fake models by name; a catalogue row's ``fake`` (or its task) picks one."""

TASK_DEFAULT_FAKE: dict[str, str] = {
    "text-generation": "text-generation",
    "chat": "chat",
    "image-text-to-text": "chat",
    "audio-text-to-text": "chat",
    "video-text-to-text": "chat",
    "summarization": "summarization",
    "translation": "translation",
    "text2text-generation": "text2text-generation",
    "feature-extraction": "embedding",
    "sentence-similarity": "embedding",
    "image-classification": "image-classification",
}
"""The fake used for a task when the catalogue row names none."""


def fake_model(name: str) -> Callable[[FakeModel], FakeModel]:
    """Register a fake model under ``name`` (a decorator).

    Args:
        name: The name catalogue rows use in their ``fake`` field.

    Returns:
        The decorator, which returns the function unchanged.
    """

    def register(function: FakeModel) -> FakeModel:
        FAKE_MODELS[name] = function
        return function

    return register


@fake_model("text-generation")
def _text_generation(run: FakeRun) -> FakeAnswer:
    text = run.text or ""
    tokens = run.forced()
    if tokens is None:
        tokens = generate_continuation(text, run.max_new_tokens)
    # The live text-generation output includes the prompt; its stream does not.
    return FakeAnswer(tokens, text + "".join(tokens))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(
        block["text"]
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    )


_NAME_RE = re.compile(r"(?i:your name is|named|called|call yourself|you are)\s+([A-Z][\w\-]*)")
_MEDIA_PHRASES = {
    "image": "I see an image.",
    "audio": "I hear an audio clip.",
    "video": "I see a video.",
}


def _chat_prefix(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """Return the reply's fixed opening and the last user text."""
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1])
    user_text = _content_text(last_user.get("content"))
    user_name = last_user.get("name")
    parts = [f"Hello, {user_name}!" if user_name else "Hello!"]
    assistant_name: str | None = None
    for message in messages:
        if message.get("role") != "system":
            continue
        if message.get("name"):
            assistant_name = str(message["name"])
            break
        found = _NAME_RE.search(_content_text(message.get("content")))
        if found:
            assistant_name = found.group(1)
            break
    if assistant_name:
        parts.append(f"I am {assistant_name}.")
    content = last_user.get("content")
    if isinstance(content, list):
        seen: list[str] = []
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind in _MEDIA_PHRASES and kind not in seen:
                seen.append(kind)
        parts.extend(_MEDIA_PHRASES[kind] for kind in seen)
    snippet = user_text[:60]
    if snippet:
        parts.append(f'You said: "{snippet}".')
    return " ".join(parts), user_text


def _chat_tokens(run: FakeRun) -> list[str]:
    messages = run.messages or []
    forced = run.forced()
    if forced is not None:
        return forced
    prefix, user_text = _chat_prefix(messages)
    tokens = words_as_tokens(prefix)[: run.max_new_tokens]
    if len(tokens) < run.max_new_tokens:
        seed = json.dumps(messages, sort_keys=True, ensure_ascii=True)
        tokens += generate_continuation(user_text, run.max_new_tokens - len(tokens), seed_text=seed)
    return tokens


def _assistant_message(run: FakeRun, text: str) -> dict[str, Any]:
    # The answer mirrors the form of the last message: blocks in, blocks out.
    last_content = (run.messages or [{}])[-1].get("content")
    content: Any = [{"type": "text", "text": text}] if isinstance(last_content, list) else text
    return {"role": "assistant", "content": content}


@fake_model("chat")
def _chat(run: FakeRun) -> FakeAnswer:
    tokens = _chat_tokens(run)
    return FakeAnswer(tokens, _assistant_message(run, "".join(tokens)))


@fake_model("provider-chat")
def _provider_chat(run: FakeRun) -> FakeAnswer:
    """A closed-source chat model: the answer also carries the provider's raw reply."""
    tokens = _chat_tokens(run)
    text = "".join(tokens)
    provider = {
        "id": f"chatcmpl-local{_seed_of(text) % 10**12:012d}",
        "object": "chat.completion",
        "model": run.row.model_id.split("/", 1)[1],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length" if run.budget_given else "stop",
            }
        ],
        "usage": {"completion_tokens": len(tokens)},
    }
    return FakeAnswer(tokens, _assistant_message(run, text), {"provider": provider})


_FRENCH = {
    "hello": "bonjour",
    "good": "bon",
    "morning": "matin",
    "evening": "soir",
    "the": "le",
    "a": "un",
    "cat": "chat",
    "dog": "chien",
    "is": "est",
    "are": "sont",
    "i": "je",
    "you": "vous",
    "we": "nous",
    "love": "aime",
    "like": "aime",
    "world": "monde",
    "house": "maison",
    "thank": "merci",
    "yes": "oui",
    "no": "non",
    "and": "et",
    "with": "avec",
    "coffee": "café",
    "water": "eau",
    "book": "livre",
    "red": "rouge",
    "blue": "bleu",
    "big": "grand",
    "small": "petit",
    "today": "aujourd'hui",
}


def _translate(text: str) -> str:
    out: list[str] = []
    for word in text.split():
        core = word.strip(".,!?;:")
        tail = word[len(core) :] if word.startswith(core) else ""
        translated = _FRENCH.get(core.lower())
        if translated is None:
            out.append(word)
            continue
        if core[:1].isupper():
            translated = translated[:1].upper() + translated[1:]
        out.append(translated + tail)
    return " ".join(out)


def _summarize(text: str) -> str:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    if not sentences:
        return ""
    words = sentences[0].split()
    if len(sentences) == 1:
        words = words[: max(3, (len(words) + 1) // 2)]
    summary = " ".join(words[:40])
    return summary if summary.endswith((".", "!", "?")) else summary + "."


def _text_answer(run: FakeRun, produce: Callable[[str], str]) -> FakeAnswer:
    tokens = run.forced()
    if tokens is None:
        tokens = words_as_tokens(produce(run.text or ""))
        if run.budget_given:
            tokens = tokens[: run.max_new_tokens]
    return FakeAnswer(tokens, "".join(tokens))


@fake_model("summarization")
def _summarization(run: FakeRun) -> FakeAnswer:
    return _text_answer(run, _summarize)


@fake_model("translation")
def _translation(run: FakeRun) -> FakeAnswer:
    return _text_answer(run, _translate)


@fake_model("text2text-generation")
def _text2text(run: FakeRun) -> FakeAnswer:
    budget = min(run.max_new_tokens, 8)
    return _text_answer(
        run,
        lambda text: "".join(generate_continuation(text, budget, seed_text="text2text")).strip(),
    )


@fake_model("embedding")
def _embedding(run: FakeRun) -> FakeAnswer:
    text = run.text or ""
    shape, dim = run.row.embedding or ("flat", 384)
    if shape == "per_token":
        return FakeAnswer([], [_per_token_vectors(text, dim)])
    vector = embed_text(text, dim)
    return FakeAnswer([], [vector] if shape == "nested" else vector)


_LABELS = ("tabby cat", "golden retriever", "red fox", "sports car", "espresso", "lighthouse")


@fake_model("image-classification")
def _image_classification(run: FakeRun) -> FakeAnswer:
    """Scores labels from a hash of the medium (URL or data URI): same input, same labels."""
    seed = _seed_of(run.text or "")
    weights = [((seed >> (8 * i)) & 0xFF) + 1 for i in range(len(_LABELS))]
    total = sum(weights)
    ranked = sorted(zip(_LABELS, weights, strict=True), key=lambda pair: -pair[1])
    output = [{"label": label, "score": round(w / total, 6)} for label, w in ranked[:5]]
    return FakeAnswer([json.dumps(output)], output)


@fake_model("tool-chat")
def _tool_chat(run: FakeRun) -> FakeAnswer:
    """An instruct model trained for tool use (the chat fake when it has nothing to call).

    It calls a tool when the system text carries tool schemas, answers with a tool
    result once one is in the conversation, answers JSON when the prompt carries a JSON
    schema, and else chats like the ``chat`` fake. Its calls are written in the row's
    ``tool_format`` (the server's ``tool_format`` knob overrides it) and stream word by
    word like any other text, so a call arrives split over several chunks.
    """
    tokens = run.forced()
    if tokens is None:
        messages = run.messages or []
        seed = json.dumps(messages, sort_keys=True, ensure_ascii=True)
        text = tool_model_reply(messages, tool_format=run.row.tool_format or "hermes", seed=seed)
        if text is None:
            text = json_model_reply(messages, seed=seed)
        if text is None:
            tokens = _chat_tokens(run)
        else:
            tokens = words_as_tokens(text)
            if run.budget_given:
                tokens = tokens[: run.max_new_tokens]
    return FakeAnswer(tokens, _assistant_message(run, "".join(tokens)))


@fake_model("react-text")
def _react_text(run: FakeRun) -> FakeAnswer:
    """A text-generation model that follows the classic ReAct prompt format.

    When the prompt lays out tools in the classic ReAct format, it writes
    ``Thought/Action/Action Input`` text (then, like a real model that is not stopped,
    an invented ``Observation`` and more); once an ``Observation`` is in the prompt it
    writes the ``Final Answer``. Without a ReAct prompt it continues text like the
    ``text-generation`` fake. The output includes the prompt, the stream does not.
    """
    text = run.text or ""
    tokens = run.forced()
    if tokens is None:
        reply = react_model_reply(text)
        if reply is None:
            tokens = generate_continuation(text, run.max_new_tokens)
        else:
            tokens = words_as_tokens(reply)
            if run.budget_given:
                tokens = tokens[: run.max_new_tokens]
    return FakeAnswer(tokens, text + "".join(tokens))
