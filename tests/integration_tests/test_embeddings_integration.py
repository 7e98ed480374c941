"""``BytezEmbeddings`` end to end against the local Bytez-compatible server."""

from __future__ import annotations

import math
from typing import Any

import pytest

from langchain_bytez.embeddings import BytezEmbeddings
from langchain_bytez.server import LocalBytezServer, embed_text

FLAT = "sentence-transformers/all-MiniLM-L6-v2"  # answers [v]
NESTED = "BAAI/bge-small-en-v1.5"  # answers [[v]]
PER_TOKEN = "google-bert/bert-base-uncased"  # answers [[[token vectors]]]


@pytest.fixture
def server(bytez_server: LocalBytezServer) -> LocalBytezServer:
    bytez_server.load_delay = 0.05
    return bytez_server


def make(server: LocalBytezServer, key: str, **kwargs: Any) -> BytezEmbeddings:
    kwargs.setdefault("model", FLAT)
    return BytezEmbeddings(api_key=key, base_url=server.url, **kwargs)


@pytest.mark.parametrize(("model", "dim"), [(FLAT, 384), (NESTED, 384), (PER_TOKEN, 768)])
def test_every_output_shape_gives_the_text_vector(
    server: LocalBytezServer, bytez_api_key: str, model: str, dim: int
) -> None:
    texts = ["the quick brown fox", "jumps over", "the lazy dog"]
    vectors = make(server, bytez_api_key, model=model, concurrency=3).embed_documents(texts)
    assert len(vectors) == len(texts)
    for text, vector in zip(texts, vectors):
        assert len(vector) == dim
        # Per-token output is mean-pooled: the server's token vectors average to it.
        assert vector == pytest.approx(embed_text(text, dim), abs=1e-9)
    bodies = [r.json for r in server.requests if r.model_id == model and r.method == "POST"]
    assert sorted(b["text"] for b in bodies) == sorted(texts)


async def test_async_and_order(server: LocalBytezServer, bytez_api_key: str) -> None:
    server.ttfb = 0.01
    texts = [f"document number {i}" for i in range(10)]
    model = make(server, bytez_api_key, concurrency=4, max_concurrency=3)
    vectors = await model.aembed_documents(texts)
    assert vectors == [pytest.approx(embed_text(t)) for t in texts]
    assert 1 < server.peak_in_flight(FLAT) <= 3
    assert await model.aembed_query("document number 3") == pytest.approx(vectors[3])


def test_sync_concurrency_is_capped_by_instances(
    server: LocalBytezServer, bytez_api_key: str
) -> None:
    server.ttfb = 0.01
    texts = [f"doc {i}" for i in range(10)]
    vectors = make(server, bytez_api_key, concurrency=2).embed_documents(texts)
    assert len(vectors) == 10
    assert server.peak_in_flight(FLAT) == 2


def test_normalisation(server: LocalBytezServer, bytez_api_key: str) -> None:
    vector = make(server, bytez_api_key, model=PER_TOKEN, normalize=True).embed_query("hi there")
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0)


def test_input_rules_send_nothing(server: LocalBytezServer, bytez_api_key: str) -> None:
    model = make(server, bytez_api_key)
    assert model.embed_documents([]) == []
    with pytest.raises(ValueError, match="empty string"):
        model.embed_documents(["fine", ""])
    assert server.count("POST", f"/models/v2/{FLAT}") == 0
