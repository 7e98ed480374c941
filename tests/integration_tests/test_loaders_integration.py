"""Catalogue / instance utilities and document loaders against the local server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.loaders import (
    BytezCatalogLoader,
    BytezInstanceLoader,
    alist_instances,
    alist_models,
    alist_tasks,
    arequest_model,
    list_instances,
    list_models,
    list_tasks,
    request_model,
)
from langchain_bytez.manager import ModelHandle, ModelManager
from langchain_bytez.server import CATALOGUE, LocalBytezServer, embed_text
from langchain_bytez.types import ClusterState, ClusterStatus, ModelInfo

MODEL = "openai-community/gpt2"


class HashedEmbeddings(Embeddings):
    """The local server's deterministic char-3-gram embedding: similar text, near vectors."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed_text(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed_text(text)


@pytest.fixture
def client(bytez_server: LocalBytezServer, bytez_api_key: str) -> Iterator[BytezClient]:
    with BytezClient(api_key=bytez_api_key, base_url=bytez_server.url) as c:
        yield c


def test_list_models_and_filters(bytez_server: LocalBytezServer, client: BytezClient) -> None:
    models = list_models(client=client)
    assert all(isinstance(m, ModelInfo) for m in models)
    assert {m.model_id for m in models} == {e["modelId"] for e in CATALOGUE}
    summarizers = list_models("summarization", client=client)
    assert summarizers
    assert {m.task for m in summarizers} == {"summarization"}
    assert bytez_server.requests[-1].query.get("task") == "summarization"
    small = list_models(client=client, max_params=0.2)
    assert small
    assert all(m.params is not None and m.params <= 0.2 for m in small)
    light = list_models(client=client, max_ram=1.0)
    assert all(m.ram_required is not None and m.ram_required <= 1.0 for m in light)
    assert [m.model_id for m in list_models(client=client, search="BART-large")] == [
        "facebook/bart-large-cnn"
    ]


def test_functions_build_their_own_client(
    bytez_server: LocalBytezServer, bytez_api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = list_tasks(api_key=bytez_api_key, base_url=bytez_server.url)
    assert "summarization" in tasks
    assert "text-generation" in tasks
    monkeypatch.setenv("BYTEZ_API_KEY", bytez_api_key)
    monkeypatch.setenv("BYTEZ_BASE_URL", bytez_server.url)
    assert len(list_models(search="gpt2")) == 2
    assert request_model("someone/new-model") == "Job queued"
    assert list_instances() == []


def test_list_instances_reflects_clusters(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    bytez_server.cluster_routes = "on"  # instances exist only where cluster routes do
    ModelHandle(client, MODEL, manager=ModelManager(poll_max=0.05)).load(2, progress=False)
    (instance,) = list_instances(client=client)
    assert isinstance(instance, ClusterStatus)
    assert instance.model_id == MODEL
    assert instance.state is ClusterState.RUNNING
    docs = BytezInstanceLoader(client=client).load()
    assert len(docs) == 1
    assert docs[0].metadata["model_id"] == MODEL
    assert docs[0].metadata["state"] == "running"
    assert docs[0].metadata["capacity"] == {"min": 2, "desired": 2, "max": 2}
    assert "running (on)" in docs[0].page_content
    assert BytezInstanceLoader(client=client, states=["deploying"]).load() == []


async def test_async_functions_and_loaders(
    bytez_server: LocalBytezServer, bytez_api_key: str
) -> None:
    bytez_server.cluster_routes = "on"  # instances exist only where cluster routes do
    kwargs = {"api_key": bytez_api_key, "base_url": bytez_server.url}
    models = await alist_models("chat", **kwargs)  # type: ignore[arg-type]
    assert models
    assert {m.task for m in models} == {"chat"}
    assert "chat" in await alist_tasks(**kwargs)  # type: ignore[arg-type]
    assert await arequest_model("someone/else", **kwargs) == "Job queued"  # type: ignore[arg-type]
    assert await alist_instances(**kwargs) == []  # type: ignore[arg-type]

    docs = [d async for d in BytezCatalogLoader("chat", **kwargs).alazy_load()]  # type: ignore[arg-type]
    assert [d.metadata["model_id"] for d in docs] == [m.model_id for m in models]

    async with AsyncBytezClient(**kwargs) as aclient:  # type: ignore[arg-type]
        await ModelManager(poll_max=0.05).aload(MODEL, client=aclient, progress=False)
        docs = [d async for d in BytezInstanceLoader(async_client=aclient).alazy_load()]
    assert [d.metadata["state"] for d in docs] == ["running"]
    # Only async HTTP was used: every request came through the async client.
    assert bytez_server.count("GET", "/models/v2/list/clusters") == 2


def test_catalogue_documents_in_a_vector_store(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    docs = BytezCatalogLoader(client=client).load()
    assert len(docs) == len(CATALOGUE)
    assert all(isinstance(d, Document) for d in docs)
    gpt2 = next(d for d in docs if d.metadata["model_id"] == MODEL)
    assert gpt2.page_content.startswith(f"{MODEL} — text-generation model, 0.124B parameters")
    assert "billed on meter xs at $0.0000833/s" in gpt2.page_content
    assert set(gpt2.metadata) >= {
        "model_id",
        "task",
        "params",
        "ram_required",
        "meter",
        "meter_price",
    }

    store = InMemoryVectorStore.from_documents(docs, HashedEmbeddings())
    (best,) = store.similarity_search("summarization model", k=1)
    assert best.metadata["task"] == "summarization"
    assert best.metadata["model_id"] == "facebook/bart-large-cnn"
