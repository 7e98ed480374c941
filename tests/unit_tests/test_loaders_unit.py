"""Unit tests of langchain_bytez.loaders against small in-memory fake clients."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document

from langchain_bytez import loaders
from langchain_bytez.errors import BytezAuthenticationError, BytezInvalidRequestError
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


class FakeClient:
    def __init__(self, *, clusters_error: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closed = False
        self.clusters_error = clusters_error

    def list_models(self, task: str | None = None) -> list[ModelInfo]:
        self.calls.append(("list_models", task))
        return [ModelInfo.model_validate(m) for m in CATALOGUE if task in (None, m["task"])]

    def list_tasks(self) -> list[str]:
        self.calls.append(("list_tasks", None))
        return ["text-generation", "summarization"]

    def list_clusters(self) -> list[ClusterStatus]:
        self.calls.append(("list_clusters", None))
        if self.clusters_error is not None:
            raise self.clusters_error
        return [ClusterStatus.from_api(c) for c in CLUSTERS]

    def request_model(self, model_id: str) -> str:
        self.calls.append(("request_model", model_id))
        return "Job queued"


class AsyncFakeClient:
    def __init__(self, *, clusters_error: Exception | None = None) -> None:
        self.sync = FakeClient(clusters_error=clusters_error)

    async def list_models(self, task: str | None = None) -> list[ModelInfo]:
        return self.sync.list_models(task)

    async def list_tasks(self) -> list[str]:
        return self.sync.list_tasks()

    async def list_clusters(self) -> list[ClusterStatus]:
        return self.sync.list_clusters()

    async def request_model(self, model_id: str) -> str:
        return self.sync.request_model(model_id)


def ids(models: list[ModelInfo]) -> list[str]:
    return [m.model_id for m in models]


def test_list_models_filters() -> None:
    client: Any = FakeClient()
    assert len(list_models(client=client)) == 4
    assert ids(list_models("summarization", client=client)) == ["facebook/bart-large-cnn"]
    assert client.calls[-1] == ("list_models", "summarization")  # the server filters the task
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
def test_list_models_rejects_bad_filters(kwargs: dict[str, Any]) -> None:
    client: Any = FakeClient()
    with pytest.raises(ValueError):
        list_models(client=client, **kwargs)
    with pytest.raises(ValueError):
        BytezCatalogLoader(client=client, **kwargs)
    assert client.calls == []


def test_other_functions() -> None:
    client: Any = FakeClient()
    assert list_tasks(client=client) == ["text-generation", "summarization"]
    assert request_model("org/new-model", client=client) == "Job queued"
    instances = list_instances(client=client)
    assert [i.state for i in instances] == [ClusterState.RUNNING, ClusterState.DEPLOYING]
    assert all(isinstance(i, ClusterStatus) for i in instances)


def test_list_instances_is_empty_when_routes_are_gone() -> None:
    client: Any = FakeClient(clusters_error=BytezInvalidRequestError("nope", status_code=405))
    assert list_instances(client=client) == []


def test_list_instances_raises_other_errors() -> None:
    client: Any = FakeClient(clusters_error=BytezAuthenticationError("bad key", status_code=401))
    with pytest.raises(BytezAuthenticationError):
        list_instances(client=client)


async def test_async_functions() -> None:
    client: Any = AsyncFakeClient()
    assert ids(await alist_models("summarization", client=client)) == ["facebook/bart-large-cnn"]
    assert ids(await alist_models(client=client, search="PHI")) == ["microsoft/phi-2"]
    assert await alist_tasks(client=client) == ["text-generation", "summarization"]
    assert await arequest_model("org/x", client=client) == "Job queued"
    assert len(await alist_instances(client=client)) == 2
    gone: Any = AsyncFakeClient(clusters_error=BytezInvalidRequestError("x", status_code=405))
    assert await alist_instances(client=gone) == []


def test_builds_and_closes_a_client_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[FakeClient, dict[str, Any]]] = []

    class Managed(FakeClient):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__()
            made.append((self, kwargs))

        def __enter__(self) -> Managed:
            return self

        def __exit__(self, *exc: object) -> None:
            self.closed = True

    monkeypatch.setattr(loaders, "BytezClient", Managed)
    assert list_tasks(api_key="k", base_url="http://127.0.0.1:1") == [
        "text-generation",
        "summarization",
    ]
    assert made[0][1] == {"api_key": "k", "base_url": "http://127.0.0.1:1"}
    assert made[0][0].closed


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


def test_catalog_loader() -> None:
    client: Any = FakeClient()
    docs = BytezCatalogLoader("text-generation", client=client, max_ram=2).load()
    assert [d.metadata["model_id"] for d in docs] == ["openai-community/gpt2"]
    assert len(BytezCatalogLoader(client=client).load()) == 4


async def test_catalog_loader_async() -> None:
    client: Any = AsyncFakeClient()
    docs = [d async for d in BytezCatalogLoader(async_client=client, search="bart").alazy_load()]
    assert [d.metadata["task"] for d in docs] == ["summarization"]
    # A sync client alone is used off the loop.
    sync: Any = FakeClient()
    docs = await BytezCatalogLoader(client=sync, search="bart").aload()
    assert len(docs) == 1
    assert sync.calls == [("list_models", None)]


def test_instance_loader() -> None:
    client: Any = FakeClient()
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


async def test_instance_loader_async() -> None:
    client: Any = AsyncFakeClient()
    loader = BytezInstanceLoader(async_client=client, states=[ClusterState.DEPLOYING])
    docs = [d async for d in loader.alazy_load()]
    assert [d.metadata["model_id"] for d in docs] == ["microsoft/phi-2"]
