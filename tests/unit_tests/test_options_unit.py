"""Keyword-only options typed once (``**options: Unpack[...]``) are checked like parameters.

A misspelt option must fail as it did when each one was a named parameter: a
``TypeError`` naming the function and the word, before anything is sent.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from langchain_bytez import loaders
from langchain_bytez.client import AsyncBytezClient, BytezClient, RunOptions
from langchain_bytez.manager import ModelHandle, ModelManager
from langchain_bytez.types import check_options
from tests.unit_tests.fake_bytez import URL, FakeBytez

MODEL = "openai-community/gpt2"


@pytest.fixture
def fake() -> FakeBytez:
    return FakeBytez()


@pytest.fixture
def client(fake: FakeBytez) -> BytezClient:
    http = httpx.Client(transport=httpx.MockTransport(fake.sync))
    return BytezClient(fake.api_key, base_url=URL, http_client=http, max_retries=0)


def test_check_options_names_the_function_and_the_word() -> None:
    check_options("run", {"timeout": 1.0, "on_retry": None}, RunOptions)
    with pytest.raises(TypeError, match=r"^run\(\) got an unexpected keyword argument 'timout'$"):
        check_options("run", {"timout": 1.0}, RunOptions)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.run(MODEL, {"text": "x"}, timout=1), "run"),
        (lambda c: c.stream(MODEL, {"text": "x"}, on_rety=None), "stream"),
        (lambda c: c.get_cluster(MODEL, retries=False), "get_cluster"),
        (lambda c: c.update_cluster(MODEL, capcity=None, status="on"), "update_cluster"),
    ],
)
def test_client_methods_refuse_unknown_options(
    client: BytezClient, fake: FakeBytez, call: Any, name: str
) -> None:
    with pytest.raises(TypeError, match=rf"{name}\(\) got an unexpected keyword argument"):
        call(client)
    assert fake.log == []  # nothing was sent


async def test_async_client_methods_refuse_unknown_options(fake: FakeBytez) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.async_))
    async with AsyncBytezClient(fake.api_key, base_url=URL, http_client=http) as client:
        with pytest.raises(TypeError, match="stream"):
            client.stream(MODEL, {"text": "x"}, timout=1)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="update_cluster"):
            await client.update_cluster(MODEL, stauts="on")  # type: ignore[call-arg]
    assert fake.log == []


def test_lifecycle_methods_refuse_unknown_options(client: BytezClient, fake: FakeBytez) -> None:
    manager = ModelManager()
    with pytest.raises(TypeError, match=r"load\(\) got an unexpected keyword argument 'capcity'"):
        ModelHandle(client, MODEL, manager=manager).load(capcity=None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="load"):
        manager.load(MODEL, client=client, dedline=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="ensure_loaded"):
        manager.ensure_loaded(client, MODEL, progres=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="ensure_available"):
        manager.ensure_available(client, MODEL, capacity=None)  # type: ignore[call-arg]
    assert fake.log == []


async def test_async_lifecycle_methods_refuse_unknown_options(fake: FakeBytez) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.async_))
    async with AsyncBytezClient(fake.api_key, base_url=URL, http_client=http) as client:
        manager = ModelManager()
        with pytest.raises(TypeError, match="aensure_loaded"):
            await manager.aensure_loaded(client, MODEL, progres=False)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="ensure_available"):
            await manager.aensure_available(client, MODEL, dedline=1)  # type: ignore[call-arg]
    assert fake.log == []


def test_loader_functions_refuse_unknown_options(client: BytezClient, fake: FakeBytez) -> None:
    with pytest.raises(
        TypeError, match=r"list_models\(\) got an unexpected keyword argument 'serch'"
    ):
        loaders.list_models(client=client, serch="gpt")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="list_tasks"):
        loaders.list_tasks(client=client, max_ram=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="list_instances"):
        loaders.list_instances(clinet=client)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="request_model"):
        loaders.request_model("org/x", apikey="k")  # type: ignore[call-arg]
    assert fake.log == []


async def test_async_loader_functions_refuse_unknown_options(fake: FakeBytez) -> None:
    with pytest.raises(TypeError, match="alist_models"):
        await loaders.alist_models(max_param=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="alist_tasks"):
        await loaders.alist_tasks(bas_url=URL)  # type: ignore[call-arg]
