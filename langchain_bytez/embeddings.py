"""``BytezEmbeddings``: Bytez ``feature-extraction`` / ``sentence-similarity`` models.

Bytez embeds one text per request, so a batch is sent as concurrent requests (bounded by
``max_concurrency`` and by the model's ``concurrency`` cap in the shared manager) and the
vectors are returned in input order. Identical texts in one batch are sent once.

The API returns one of several shapes (``docs/protocol.md``); all are
normalised to one flat ``list[float]``:

* a flat vector ``[v0, v1, ...]``;
* a nested vector ``[[v0, v1, ...]]``;
* one vector per token, ``[[[...], [...], ...]]`` or ``[[...], [...], ...]``: mean-pooled
  (DECIDED in the protocol);
* a mapping holding one of those under ``embedding``/``embeddings`` (defensive).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.load import Serializable
from langchain_core.runnables.config import ContextThreadPoolExecutor
from pydantic import Field

from langchain_bytez.base import BytezModelMixin, gather_or_cancel
from langchain_bytez.generation import arun_model, run_model
from langchain_bytez.wire.outputs import embedding_vector

__all__ = ["BytezEmbeddings", "normalize_embedding_output"]


def normalize_embedding_output(output: Any, model_id: str = "") -> list[float]:
    """Turn any embedding ``output`` of a one-text request into one flat vector.

    Args:
        output: The envelope's ``output``.
        model_id: The model (for error messages).

    Returns:
        The vector (per-token output mean-pooled).

    Raises:
        BytezAPIError: If the output has none of the known shapes.
    """
    return embedding_vector(output, model_id)


def _l2_normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    # A zero vector has no direction: it is returned as is rather than divided by 0.
    return vector if norm == 0.0 else [v / norm for v in vector]


class BytezEmbeddings(BytezModelMixin, Embeddings, Serializable):
    """Bytez embedding models (``feature-extraction`` and ``sentence-similarity`` tasks).

    Setup:
        Install ``langchain-bytez`` and set ``BYTEZ_API_KEY`` as shown for
        [`BytezLLM`][langchain_bytez.BytezLLM].

    Key init args — embedding params:
        model: str
            Bytez model id, e.g. ``"sentence-transformers/all-MiniLM-L6-v2"``.
        normalize: bool
            L2-normalise every vector (default ``False``: vectors as the model gives).
        max_concurrency: int
            Requests in flight at once for one batch (default 8).

    Key init args — client params:
        ``api_key``, ``base_url``, ``timeout`` and ``max_retries``, as for
        [`BytezLLM`][langchain_bytez.BytezLLM]; ``concurrency``: instances to load,
        and the cap on this process's in-flight runs.

    See the full list of init args and their descriptions in the params section.

    Instantiate:
        ```python
        from langchain_bytez import BytezEmbeddings

        embeddings = BytezEmbeddings(
            model="sentence-transformers/all-MiniLM-L6-v2",
            normalize=True,
            concurrency=4,  # instances: the real parallelism of a batch
        )
        ```

    Embed single text:
        ```python
        vector = embeddings.embed_query("The meaning of life is 42")
        print(vector[:3])
        ```
        ```txt
        [-0.024, 0.113, 0.051]
        ```

    Embed multiple texts:
        ```python
        vectors = embeddings.embed_documents(["Document 1...", "Document 2..."])
        print(len(vectors), len(vectors[0]))
        ```
        ```txt
        2 384
        ```

    Async:
        ```python
        vector = await embeddings.aembed_query("The meaning of life is 42")
        vectors = await embeddings.aembed_documents(["Document 1...", "Document 2..."])
        ```

    Input rules:
        An empty list returns ``[]`` without a request. An empty string raises
        ``ValueError`` before anything is sent (the API refuses it with a 400).
        Per-token outputs (e.g. ``bert-base-uncased``) are mean-pooled.
    """

    normalize: bool = False
    """L2-normalise every vector (so dot product equals cosine similarity).

    Off by default: vectors are returned as the model produced them (after mean
    pooling of per-token output)."""

    max_concurrency: int = Field(default=8, ge=1)
    """Most requests in flight at once while embedding one batch.

    Bytez embeds one text per request. The model's ``concurrency`` (instances loaded,
    default 1) caps this process's in-flight runs as well, so the effective
    parallelism is ``min(max_concurrency, concurrency)``."""

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            # A string is a sequence of strings: it would be embedded letter by letter.
            raise TypeError("texts must be a list of strings; use embed_query for one text")
        checked: list[str] = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is a {type(text).__name__}, not a string")
            if not text:
                # The API answers 400 for it; failing here names the culprit and spends
                # no request (and no other text of the batch is sent).
                raise ValueError(f"texts[{index}] is an empty string, which cannot be embedded")
            checked.append(text)
        return checked

    def _width(self, unique: Sequence[str]) -> int:
        """Requests in flight for a batch, sync and async alike."""
        return min(len(unique), self.max_concurrency, self.concurrency)

    def _finish(self, output: Any, model_id: str) -> list[float]:
        vector = normalize_embedding_output(output, model_id)
        return _l2_normalized(vector) if self.normalize else vector

    def _embed_one(self, text: str) -> list[float]:
        result = run_model(self, self.model, {"text": text})
        return self._finish(result.output, result.model_id)

    async def _aembed_one(self, text: str, gate: asyncio.Semaphore) -> list[float]:
        async with gate:
            result = await arun_model(self, self.model, {"text": text})
        return self._finish(result.output, result.model_id)

    # ------------------------------------------------------------------ Embeddings API

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts concurrently; vectors in input order.

        Args:
            texts: The texts (non-empty strings).

        Returns:
            One vector per text.

        Raises:
            ValueError: If a text is empty (nothing is sent).
            TypeError: If ``texts`` is one string, or an item is not a string.
        """
        checked = self._check(texts)
        unique = list(dict.fromkeys(checked))  # identical texts are embedded once
        if not unique:
            return []
        workers = self._width(unique)
        if workers == 1:
            vectors = [self._embed_one(text) for text in unique]
        else:
            pool = ContextThreadPoolExecutor(max_workers=workers)
            try:
                vectors = list(pool.map(self._embed_one, unique))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # don't start the rest
                raise
            pool.shutdown(wait=True)
        by_text = dict(zip(unique, vectors, strict=True))
        return [list(by_text[text]) for text in checked]

    def embed_query(self, text: str) -> list[float]:
        """Embed one text.

        Args:
            text: The text (non-empty).

        Returns:
            Its vector.
        """
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async version of ``embed_documents`` (the same requests in flight)."""
        checked = self._check(texts)
        unique = list(dict.fromkeys(checked))
        if not unique:
            return []
        gate = asyncio.Semaphore(self._width(unique))
        vectors = await gather_or_cancel([self._aembed_one(text, gate) for text in unique])
        by_text = dict(zip(unique, vectors, strict=True))
        return [list(by_text[text]) for text in checked]

    async def aembed_query(self, text: str) -> list[float]:
        """Async version of ``embed_query``."""
        return (await self.aembed_documents([text]))[0]
