"""The local server's model catalogue: what ``/list/models`` answers and how each model behaves.

One [`CatalogueRow`][langchain_bytez.testing.catalogue.CatalogueRow] per model. Its
public part (``modelId``, ``task``, ``params``, ``ramRequired``, ``meter``,
``meterPrice``) is exactly what the live ``GET /models/v2/list/models`` returns; the rest
says how the fake behind it behaves (which fake model answers, whether it samples by
default, whether it is a closed-source provider model).

Prices and meters follow the live form: Bytez's OpenAPI file
(``docs/http-reference/openapi.yaml``, ``GET /models/v2/list/models``) documents
``meterPrice`` as a **string** such as ``"0.0006478333 / sec"`` and ``meter`` as a
string (example ``"sm-free"``); its JS SDK's ``Model`` interface lists the meter names
``micro, xs, sm, md, lg, xl, xxl, super`` and the same with ``-lm``. The prices below are
made up but of that form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CATALOGUE",
    "CLOSED_PROVIDERS",
    "ROWS",
    "CatalogueRow",
    "format_price",
    "price_per_second",
]

CLOSED_PROVIDERS = frozenset({"openai", "anthropic", "google-ai", "mistral", "cohere"})
"""Owners whose models run at a closed provider (answers carry ``provider``, no clusters).

``google/...`` is not here: Bytez also serves open Google models (``google/gemma-...``);
closed Gemini models appear under their own ids in the live catalogue."""


def format_price(per_second: float) -> str:
    """Write a price per second the way the live catalogue does (``"0.0006478333 / sec"``).

    Args:
        per_second: USD per second.

    Returns:
        The number with ten decimals, trailing zeros removed, then ``" / sec"``.
    """
    text = f"{per_second:.10f}".rstrip("0").rstrip(".") or "0"
    return f"{text} / sec"


def price_per_second(price: str) -> float:
    """Read back a price written by ``format_price``.

    Args:
        price: For example ``"0.0006478333 / sec"``.

    Returns:
        The number (``0.0006478333``).
    """
    return float(price.split("/", 1)[0].strip())


@dataclass(frozen=True)
class CatalogueRow:
    """One model of the local catalogue.

    Attributes:
        model_id: The model id (``owner/name``).
        task: The Bytez task (``chat``, ``text-generation``...).
        params: Parameters, in billions.
        ram_required: GPU RAM required, in GB.
        meter: The meter name, as the live catalogue writes it (``"sm"``, ``"md-lm"``...).
        price: USD per second of inference.
        fake: The name of the fake model that answers (``None``: the task's default).
            See [`FAKE_MODELS`][langchain_bytez.testing.fake_models.FAKE_MODELS].
        samples_by_default: Whether the model's generation config samples
            (``do_sample=True``): then ``temperature: 0`` without ``do_sample: false``
            is refused by Hugging Face's ``generate()``, as the live container does.
        embedding: For embedding models, the output shape (``"flat"``, ``"nested"``,
            ``"per_token"``) and the vector dimension.
        tool_format: For models that call tools, how this model writes a call (one of
            ``langchain_bytez.testing.fake_tools.TOOL_FORMATS``, the form
            its chat template teaches); ``None`` for other models. The server's
            ``tool_format`` knob overrides it for every tool-calling row.
    """

    model_id: str
    task: str
    params: float
    ram_required: float
    meter: str
    price: float
    fake: str | None = None
    samples_by_default: bool = False
    embedding: tuple[str, int] | None = None
    tool_format: str | None = None

    @property
    def closed_source(self) -> bool:
        """Whether a closed provider serves it (no cluster, ``provider`` in answers)."""
        return self.model_id.split("/", 1)[0] in CLOSED_PROVIDERS

    @property
    def meter_price(self) -> str:
        """The price in the live string form, e.g. ``"0.0000833 / sec"``."""
        return format_price(self.price)

    def public(self) -> dict[str, Any]:
        """The entry as ``GET /list/models`` returns it.

        Returns:
            ``{modelId, task, params, ramRequired, meter, meterPrice}``.
        """
        return {
            "modelId": self.model_id,
            "task": self.task,
            "params": self.params,
            "ramRequired": self.ram_required,
            "meter": self.meter,
            "meterPrice": self.meter_price,
        }


ROWS: tuple[CatalogueRow, ...] = (
    # Used by docs/migration.md (the model id of Bytez's own 0.0.x examples).
    CatalogueRow(
        "microsoft/Phi-3-mini-4k-instruct",
        "chat",
        3.82,
        15.3,
        "md-lm",
        0.000167,
        samples_by_default=True,
    ),
    CatalogueRow("openai-community/gpt2", "text-generation", 0.124, 0.5, "xs", 0.0000833),
    CatalogueRow("gpt2", "text-generation", 0.124, 0.5, "xs", 0.0000833),
    CatalogueRow("microsoft/phi-2", "text-generation", 2.78, 11.1, "md", 0.000167),
    CatalogueRow(
        "Qwen/Qwen2.5-0.5B-Instruct",
        "chat",
        0.494,
        2.0,
        "sm-lm",
        0.0000833,
        samples_by_default=True,
    ),
    CatalogueRow(
        "meta-llama/Llama-3.2-1B-Instruct",
        "chat",
        1.24,
        5.0,
        "sm-lm",
        0.0000833,
        samples_by_default=True,
    ),
    CatalogueRow("google/gemma-2-2b-it", "chat", 2.61, 10.5, "md-lm", 0.000167),
    CatalogueRow("facebook/bart-large-cnn", "summarization", 0.406, 1.6, "sm", 0.0000833),
    CatalogueRow("Helsinki-NLP/opus-mt-en-fr", "translation", 0.075, 0.3, "micro", 0.0000417),
    CatalogueRow("google/flan-t5-base", "text2text-generation", 0.248, 1.0, "sm", 0.0000833),
    CatalogueRow(
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-similarity",
        0.0227,
        0.1,
        "micro",
        0.0000417,
        embedding=("flat", 384),
    ),
    CatalogueRow(
        "BAAI/bge-small-en-v1.5",
        "feature-extraction",
        0.0334,
        0.13,
        "micro",
        0.0000417,
        embedding=("nested", 384),
    ),
    CatalogueRow(
        "google-bert/bert-base-uncased",
        "feature-extraction",
        0.110,
        0.44,
        "micro",
        0.0000417,
        embedding=("per_token", 768),
    ),
    CatalogueRow(
        "google/vit-base-patch16-224", "image-classification", 0.0866, 0.35, "micro", 0.0000417
    ),
    CatalogueRow("Qwen/Qwen2-VL-2B-Instruct", "image-text-to-text", 2.21, 8.8, "md", 0.000167),
    CatalogueRow("Qwen/Qwen2-Audio-7B-Instruct", "audio-text-to-text", 8.4, 33.6, "lg", 0.000333),
    CatalogueRow(
        "llava-hf/LLaVA-NeXT-Video-7B-hf", "video-text-to-text", 7.06, 28.3, "lg", 0.000333
    ),
    # Closed-source models: the provider runs them; Bytez bills provider price + 2 %.
    CatalogueRow("openai/gpt-4o", "chat", 0.0, 0.0, "super-lm", 0.0006478333, fake="provider-chat"),
    CatalogueRow(
        "openai/gpt-4o-mini", "chat", 0.0, 0.0, "super-lm", 0.0000388667, fake="provider-chat"
    ),
    CatalogueRow(
        "anthropic/claude-3-5-haiku-latest",
        "chat",
        0.0,
        0.0,
        "super-lm",
        0.0002222667,
        fake="provider-chat",
    ),
    # Open instruct models trained for tool use, each writing calls in its own form
    # (the fake reads tool schemas from the system text, whatever the client's wording).
    CatalogueRow(
        "Qwen/Qwen2.5-7B-Instruct",
        "chat",
        7.62,
        30.5,
        "lg-lm",
        0.000333,
        fake="tool-chat",
        tool_format="hermes",
    ),
    CatalogueRow(
        "meta-llama/Llama-3.1-8B-Instruct",
        "chat",
        8.03,
        32.1,
        "lg-lm",
        0.000333,
        fake="tool-chat",
        samples_by_default=True,
        tool_format="json",
    ),
    CatalogueRow(
        "mistralai/Mistral-7B-Instruct-v0.3",
        "chat",
        7.25,
        29.0,
        "lg-lm",
        0.000333,
        fake="tool-chat",
        tool_format="mistral",
    ),
    # A base-style instruct model on the text-generation route: writes ReAct text
    # ("Thought/Action/Action Input") when the prompt lays out the classic ReAct format.
    CatalogueRow(
        "tiiuae/falcon-7b-instruct",
        "text-generation",
        6.92,
        27.7,
        "lg",
        0.000333,
        fake="react-text",
    ),
)
"""Every model the local server knows, in ``/list/models`` order.

Adding a model is one row; giving it its own behaviour is one row naming a ``fake`` plus
one function registered in
[`FAKE_MODELS`][langchain_bytez.testing.fake_models.FAKE_MODELS]."""

CATALOGUE: list[dict[str, Any]] = [row.public() for row in ROWS]
"""The catalogue as ``/list/models`` returns it (``meterPrice`` as a string)."""
