"""Unit tests of langchain_bytez.loaders against small in-memory fake clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.documents import Document

from langchain_bytez import loaders
from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.errors import BytezAuthenticationError
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
    model_document,
    request_model,
)
from langchain_bytez.types import ClusterState, ClusterStatus, ModelInfo
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez

CATALOGUE = [
    {
        "modelId": "openai-community/gpt2",
        "task": "text-generation",
        "params": 0.124,
        "ramRequired": 1,
        "meter": "sm",
        "meterPrice": 0.0000347,
    },
    {
        "modelId": "microsoft/phi-2",
        "task": "text-generation",
        "params": 2.78,
        "ramRequired": 11.1,
        "meter": "md",
        "meterPrice": 0.000167,
    },
    {"modelId": "facebook/bart-large-cnn", "task": "summarization", "params": 0.406},
    {"modelId": "mystery/unsized", "task": "text-generation"},
]
CLUSTERS = [
    {
        "modelId": "openai-community/gpt2",
        "status": "on",
        "capacity": {"min": 1, "desired": 2, "max": 2},
        "timeout": 5,
        "instances": 2,
        "inferences": 7,
        "created": "2026-01-01T00:00:00Z",
    },
    {
        "modelId": "microsoft/phi-2",
        "status": "loading",
        "capacity": {"min": 1, "desired": 1, "max": 1},
    },
]


@pytest.fixture
def fake() -> FakeBytez:
    fake = FakeBytez()
    fake.catalogue = CATALOGUE
    fake.tasks = ["text-generation", "summarization"]
    for cluster in CLUSTERS:
        extra = {k: v for k, v in cluster.items() if k not in {"modelId", "status"}}
        fake.add_cluster(cluster["modelId"], cluster["status"], **extra)
    return fake


@pytest.fixture
def client(fake: FakeBytez) -> Iterator[BytezClient]:
    http, _ = fake.clients()
    with http, BytezClient(api_key=FAKE_KEY, base_url=URL, http_client=http) as made:
        yield made


@pytest.fixture
async def aclient(fake: FakeBytez) -> AsyncIterator[AsyncBytezClient]:
    _, ahttp = fake.clients()
    async with ahttp, AsyncBytezClient(api_key=FAKE_KEY, base_url=URL, http_client=ahttp) as made:
        yield made


def ids(models: list[ModelInfo]) -> list[str]:
    return [m.model_id for m in models]


def test_list_models_filters(client: BytezClient, fake: FakeBytez) -> None:
    assert len(list_models(client=client)) == 4
    assert ids(list_models("summarization", client=client)) == ["facebook/bart-large-cnn"]
    # the server filters the task
    assert fake.log[-1] == ("GET", "/models/v2/list/models?task=summarization")
    assert ids(list_models(client=client, max_params=1)) == [
        "openai-community/gpt2",
        "facebook/bart-large-cnn",
    ]
    # Unknown RAM can't promise to fit: left out when a limit is set.
    assert ids(list_models(client=client, max_ram=12)) == [
        "openai-community/gpt2",
        "microsoft/phi-2",
    ]
    assert ids(list_models(client=client, search="GPT")) == ["openai-community/gpt2"]
    assert ids(list_models("text-generation", client=client, search="PHI", max_params=3)) == [
        "microsoft/phi-2"
    ]
    assert list_models(client=client, search="nothing-like-this") == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_params": -1},
        {"max_ram": True},
        {"max_params": "3"},
        {"max_ram": float("nan")},
        {"search": 3},
    ],
)
def test_list_models_rejects_bad_filters(
    client: BytezClient, fake: FakeBytez, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        list_models(client=client, **kwargs)
    with pytest.raises(ValueError):
        BytezCatalogLoader(client=client, **kwargs)
    assert fake.log == []


def test_other_functions(client: BytezClient) -> None:
    assert list_tasks(client=client) == ["text-generation", "summarization"]
    assert request_model("org/new-model", client=client) == "Job queued"
    instances = list_instances(client=client)
    assert [i.state for i in instances] == [ClusterState.RUNNING, ClusterState.DEPLOYING]
    assert all(isinstance(i, ClusterStatus) for i in instances)


def test_list_instances_is_empty_when_routes_are_gone(client: BytezClient, fake: FakeBytez) -> None:
    fake.failures["list/clusters"] = (405, "Cannot GET /models/v2/list/clusters")
    assert list_instances(client=client) == []


def test_list_instances_raises_other_errors(client: BytezClient, fake: FakeBytez) -> None:
    fake.failures["list/clusters"] = (401, "bad key")
    with pytest.raises(BytezAuthenticationError):
        list_instances(client=client)


async def test_async_functions(aclient: AsyncBytezClient, fake: FakeBytez) -> None:
    client = aclient
    assert ids(await alist_models("summarization", client=client)) == ["facebook/bart-large-cnn"]
    assert ids(await alist_models(client=client, search="PHI")) == ["microsoft/phi-2"]
    assert await alist_tasks(client=client) == ["text-generation", "summarization"]
    assert await arequest_model("org/x", client=client) == "Job queued"
    assert len(await alist_instances(client=client)) == 2
    fake.failures["list/clusters"] = (405, "x")
    assert await alist_instances(client=client) == []


def test_builds_and_closes_a_client_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch, fake: FakeBytez
) -> None:
    made: list[tuple[Managed, dict[str, Any]]] = []
    http, _ = fake.clients()

    class Managed(BytezClient):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(http_client=http, **kwargs)
            self.closed = False
            made.append((self, kwargs))

        def close(self) -> None:
            self.closed = True
            super().close()

    monkeypatch.setattr(loaders, "BytezClient", Managed)
    assert list_tasks(api_key="k", base_url="http://127.0.0.1:1") == [
        "text-generation",
        "summarization",
    ]
    assert made[0][1] == {"api_key": "k", "base_url": "http://127.0.0.1:1"}
    assert made[0][0].closed
    http.close()


def test_model_document_text_and_metadata() -> None:
    doc = model_document(ModelInfo.model_validate(CATALOGUE[0]))
    assert isinstance(doc, Document)
    assert doc.page_content == (
        "openai-community/gpt2 — text-generation model, 0.124B parameters, "
        "needs 1 GB RAM, billed on meter sm at $0.0000347/s"
    )
    assert doc.metadata == {
        "source": "bytez-catalog",
        "model_id": "openai-community/gpt2",
        "task": "text-generation",
        "params": 0.124,
        "ram_required": 1.0,
        "meter": "sm",
        "meter_price": 0.0000347,
        "meter_price_unit": None,
    }
    # The catalogue writes prices as "<number> / <unit>": both are kept.
    priced = model_document(
        ModelInfo.model_validate({**CATALOGUE[0], "meterPrice": "0.0006478333 / sec"})
    )
    assert priced.metadata["meter_price"] == 0.0006478333
    assert priced.metadata["meter_price_unit"] == "sec"
    assert priced.page_content.endswith("billed on meter sm at $0.0006478333/s")
    sparse = model_document(ModelInfo.model_validate({"modelId": "a/b"}))
    assert sparse.page_content == "a/b — model (task unknown)"
    assert sparse.metadata["params"] is None


def test_catalog_loader(client: BytezClient) -> None:
    docs = BytezCatalogLoader("text-generation", client=client, max_ram=2).load()
    assert [d.metadata["model_id"] for d in docs] == ["openai-community/gpt2"]
    assert len(BytezCatalogLoader(client=client).load()) == 4


async def test_catalog_loader_async(
    aclient: AsyncBytezClient, client: BytezClient, fake: FakeBytez
) -> None:
    docs = [d async for d in BytezCatalogLoader(async_client=aclient, search="bart").alazy_load()]
    assert [d.metadata["task"] for d in docs] == ["summarization"]
    # A sync client alone is used off the loop.
    fake.log.clear()
    docs = await BytezCatalogLoader(client=client, search="bart").aload()
    assert len(docs) == 1
    assert fake.log == [("GET", "/models/v2/list/models")]


def test_instance_loader(client: BytezClient) -> None:
    docs = BytezInstanceLoader(client=client).load()
    assert len(docs) == 2
    first = docs[0]
    assert first.page_content.startswith("openai-community/gpt2 — running (on), 2 instance(s)")
    assert "capacity min 1 / desired 2 / max 2" in first.page_content
    assert first.metadata["state"] == "running"
    assert first.metadata["raw_status"] == "on"
    assert first.metadata["capacity"] == {"min": 1, "desired": 2, "max": 2}
    assert first.metadata["idle_timeout_minutes"] == 5
    assert first.metadata["inferences"] == 7
    assert first.metadata["created"].startswith("2026-01-01")
    running = BytezInstanceLoader(client=client, states=["running"]).load()
    assert [d.metadata["model_id"] for d in running] == ["openai-community/gpt2"]
    with pytest.raises(ValueError):
        BytezInstanceLoader(client=client, states=["sleeping"])
    # One state alone is that state, not its characters ('r' is not a state).
    for one in ("running", ClusterState.RUNNING):
        loader = BytezInstanceLoader(client=client, states=one)
        assert loader.states == frozenset({ClusterState.RUNNING})


async def test_instance_loader_async(aclient: AsyncBytezClient) -> None:
    client = aclient
    loader = BytezInstanceLoader(async_client=client, states=[ClusterState.DEPLOYING])
    docs = [d async for d in loader.alazy_load()]
    assert [d.metadata["model_id"] for d in docs] == ["microsoft/phi-2"]
