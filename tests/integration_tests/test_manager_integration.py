"""The model manager and handles against the local Bytez-compatible server."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.errors import BytezModelLoadError, BytezNotFoundError
from langchain_bytez.loaders import list_instances
from langchain_bytez.manager import (
    LoadProgress,
    ModelHandle,
    ModelManager,
    alangchain_progress_dispatcher,
)
from langchain_bytez.server import LocalBytezServer
from langchain_bytez.types import ClusterState

MODEL = "openai-community/gpt2"
PATH = f"/models/v2/{MODEL}"


def fresh_manager(**kwargs: Any) -> ModelManager:
    # The session server keeps its URL across tests, so the shared per-endpoint manager
    # would carry state between them; each test gets its own.
    kwargs.setdefault("poll_initial", 0.02)
    kwargs.setdefault("poll_max", 0.05)
    return ModelManager(**kwargs)


@pytest.fixture(autouse=True)
def _cluster_routes_on(bytez_server: LocalBytezServer) -> None:
    """Explicit model management needs cluster routes: the live service mode that has them.

    The local server answers cluster routes with 404 by default (as Bytez's current docs
    describe the live service); this module's subject is the manager driving clusters, so
    it runs against the mode where the routes exist. Servers made with
    ``bytez_server_factory`` pass ``cluster_routes`` themselves.
    """
    bytez_server.cluster_routes = "on"


@pytest.fixture
def make_client(bytez_api_key: str) -> Iterator[Callable[..., BytezClient]]:
    clients: list[BytezClient] = []

    def make(server: LocalBytezServer, **kwargs: Any) -> BytezClient:
        client = BytezClient(api_key=bytez_api_key, base_url=server.url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(bytez_server: LocalBytezServer, make_client: Callable[..., BytezClient]) -> BytezClient:
    return make_client(bytez_server)


def test_load_reports_progress_and_returns_when_running(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    events: list[LoadProgress] = []
    handle = ModelHandle(client, MODEL, manager=fresh_manager())
    status = handle.load(2, 120, progress=events.append)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert status.capacity is not None
    assert status.capacity.desired == 2
    assert status.idle_timeout_minutes == 2
    assert bytez_server.cluster(MODEL)["status"] == "on"  # type: ignore[index]
    states = [e.state for e in events]
    assert states[0] is ClusterState.DEPLOYING
    assert states[-1] is ClusterState.RUNNING
    assert events[-1].done
    assert not any(e.done for e in events[:-1])
    assert events[-1].elapsed >= bytez_server.load_delay * 0.9
    assert bytez_server.count("PUT", PATH) == 1


def test_default_reporter_prints_plain_lines(
    bytez_server: LocalBytezServer, client: BytezClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ModelHandle(client, MODEL, manager=fresh_manager()).load()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"[bytez] {MODEL}: deploying")
    assert lines[-1].startswith(f"[bytez] {MODEL}: running")
    assert "\r" not in "".join(lines)


def test_status_stop_and_list_instances(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    handle = client.model(MODEL)
    assert isinstance(handle, ModelHandle)
    handle = ModelHandle(client, MODEL, manager=fresh_manager())
    assert handle.status().state is ClusterState.STOPPED
    assert list_instances(client=client) == []
    handle.load(progress=False)
    assert handle.status().state is ClusterState.RUNNING
    (instance,) = list_instances(client=client)
    assert instance.model_id == MODEL
    assert instance.state is ClusterState.RUNNING
    assert handle.run("Once upon a time", {"max_new_tokens": 3}).output
    with handle.stream("Once upon a time", {"max_new_tokens": 3}) as stream:
        assert "".join(stream)
    handle.stop()
    handle.stop()  # idempotent: the second DELETE answers 404
    assert handle.status().state is ClusterState.STOPPED
    assert list_instances(client=client) == []
    assert bytez_server.count("DELETE", PATH) == 2


def test_load_updates_a_cluster_whose_settings_differ(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    manager = fresh_manager()
    ModelHandle(client, MODEL, manager=manager).load(1, 60, progress=False)
    status = ModelHandle(client, MODEL, manager=manager).load(2, 600, progress=False)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert bytez_server.count("PATCH", PATH) == 1
    assert bytez_server.count("PUT", PATH) == 1
    assert bytez_server.cluster(MODEL)["capacity"]["desired"] == 2  # type: ignore[index]
    assert bytez_server.cluster(MODEL)["timeout"] == 10  # type: ignore[index]


def test_idle_shutdown(
    bytez_server_factory: Callable[..., LocalBytezServer],
    make_client: Callable[..., BytezClient],
) -> None:
    server = bytez_server_factory(idle_seconds_per_minute=0.1, load_delay=0.05, cluster_routes="on")
    client = make_client(server)
    handle = ModelHandle(client, MODEL, manager=fresh_manager(poll_initial=0.01, poll_max=0.01))
    status = handle.load(timeout=60, progress=False)  # 60 s -> 1 minute -> 0.1 s here
    assert status is not None
    assert status.idle_timeout_minutes == 1
    deadline = time.monotonic() + 3
    while handle.status().state is not ClusterState.STOPPED:
        assert time.monotonic() < deadline, "the idle cluster never shut down"
        time.sleep(0.05)
    assert server.cluster(MODEL) is None


def test_failing_load_raises_with_the_servers_reason(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    bytez_server.fail_next_load(MODEL, "Instance failed to boot: out of memory")
    with pytest.raises(BytezModelLoadError) as info:
        ModelHandle(client, MODEL, manager=fresh_manager()).load(progress=False)
    assert "Instance failed to boot: out of memory" in str(info.value)
    assert "failed" in str(info.value)
    assert info.value.last_status.state is ClusterState.FAILED
    # A new load replaces the failed cluster.
    status = ModelHandle(client, MODEL, manager=fresh_manager()).load(progress=False)
    assert status is not None
    assert status.state is ClusterState.RUNNING


def test_deadline(bytez_server: LocalBytezServer, client: BytezClient) -> None:
    bytez_server.load_delay = 30.0
    started = time.monotonic()
    with pytest.raises(BytezModelLoadError) as info:
        ModelHandle(client, MODEL, manager=fresh_manager()).load(progress=False, deadline=0.3)
    assert time.monotonic() - started < 3
    message = str(info.value)
    assert "0.3 s" in message
    assert "deploying ('loading')" in message


def test_unknown_model_is_not_serverless(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    manager = fresh_manager()
    with pytest.raises(BytezNotFoundError):
        ModelHandle(client, "nobody/no-such-model", manager=manager).load(progress=False)
    assert not manager.serverless


def test_serverless_fallback_warns_once(
    bytez_server_factory: Callable[..., LocalBytezServer],
    make_client: Callable[..., BytezClient],
) -> None:
    server = bytez_server_factory(cluster_routes=False, load_delay=0.05)
    client = make_client(server)
    manager = fresh_manager()
    handle = ModelHandle(client, MODEL, manager=manager)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert handle.load(progress=False) is None
        assert handle.load(progress=False) is None
        assert manager.ensure_loaded(client, MODEL) is None
        status = handle.status()
        handle.stop()
    ours = [w for w in caught if "serverless" in str(w.message)]
    assert len(ours) == 1
    assert ours[0].category is UserWarning
    assert status.state is ClusterState.STOPPED
    assert status.raw_status == "serverless"
    assert server.count("PUT", PATH) == 1  # decided once, by the PUT
    # The first run starts the model (held open through the cold start).
    assert handle.run("Hello", {"max_new_tokens": 2}).output
    assert list_instances(client=client) == []


def test_threads_single_flight(bytez_server: LocalBytezServer, client: BytezClient) -> None:
    manager = fresh_manager()
    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(lambda _: manager.ensure_loaded(client, MODEL), range(100)))
    assert bytez_server.count("PUT", PATH) == 1
    assert all(r is not None and r.state is ClusterState.RUNNING for r in results)
    # Cached: more calls send nothing.
    before = len(bytez_server.requests)
    manager.ensure_loaded(client, MODEL)
    assert len(bytez_server.requests) == before


async def test_tasks_single_flight(bytez_server: LocalBytezServer, bytez_api_key: str) -> None:
    manager = fresh_manager()
    async with AsyncBytezClient(api_key=bytez_api_key, base_url=bytez_server.url) as client:
        results = await asyncio.gather(*(manager.aensure_loaded(client, MODEL) for _ in range(100)))
    assert bytez_server.count("PUT", PATH) == 1
    assert all(r is not None and r.state is ClusterState.RUNNING for r in results)


def test_first_call_on_running_model_costs_one_get(
    bytez_server: LocalBytezServer, client: BytezClient
) -> None:
    ModelHandle(client, MODEL, manager=fresh_manager()).load(progress=False)
    before = len(bytez_server.requests)
    manager = fresh_manager()
    manager.ensure_loaded(client, MODEL)
    manager.ensure_loaded(client, MODEL)
    new = bytez_server.requests[before:]
    assert [(r.method, r.path) for r in new] == [("GET", PATH)]


def test_limit_keeps_runs_within_capacity(
    bytez_server_factory: Callable[..., LocalBytezServer],
    make_client: Callable[..., BytezClient],
) -> None:
    server = bytez_server_factory(
        concurrency_limit=2, ttfb=0.02, load_delay=0.05, cluster_routes="on"
    )
    client = make_client(server, max_retries=0)  # a 429 would surface, not be retried
    manager = fresh_manager()
    manager.ensure_loaded(client, MODEL, concurrency=2)

    def one(i: int) -> Any:
        with manager.limit(MODEL, 2):
            return client.run(MODEL, {"text": f"run {i}", "params": {"max_new_tokens": 2}})

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert len(results) == 20
    assert server.peak_in_flight(MODEL) == 2
    assert not any(r.status == 429 for r in server.requests)


async def test_alimit_keeps_runs_within_capacity(
    bytez_server_factory: Callable[..., LocalBytezServer], bytez_api_key: str
) -> None:
    server = bytez_server_factory(
        concurrency_limit=2, ttfb=0.02, load_delay=0.05, cluster_routes="on"
    )
    manager = fresh_manager()
    async with AsyncBytezClient(api_key=bytez_api_key, base_url=server.url, max_retries=0) as c:
        await manager.aensure_loaded(c, MODEL, concurrency=2)

        async def one(i: int) -> Any:
            async with manager.alimit(MODEL, 2):
                return await c.run(MODEL, {"text": f"run {i}", "params": {"max_new_tokens": 2}})

        results = await asyncio.gather(*(one(i) for i in range(20)))
    assert len(results) == 20
    assert server.peak_in_flight(MODEL) == 2
    assert not any(r.status == 429 for r in server.requests)


def test_session(bytez_server: LocalBytezServer, client: BytezClient) -> None:
    manager = fresh_manager()
    outputs: list[Any] = []

    def body() -> None:
        with manager.session(MODEL, client=client, progress=False) as handle:
            assert bytez_server.cluster(MODEL)["status"] == "on"  # type: ignore[index]
            outputs.append(handle.run("Hi", {"max_new_tokens": 2}).output)
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        body()
    assert outputs
    assert bytez_server.cluster(MODEL) is None


async def test_asession(bytez_server: LocalBytezServer, bytez_api_key: str) -> None:
    manager = fresh_manager()
    async with AsyncBytezClient(api_key=bytez_api_key, base_url=bytez_server.url) as client:
        async with manager.asession(MODEL, client=client, progress=False) as handle:
            assert (await handle.status()).state is ClusterState.RUNNING
    assert bytez_server.cluster(MODEL) is None


async def test_astream_events_show_loading_with_a_tiny_llm(
    bytez_server: LocalBytezServer, bytez_api_key: str
) -> None:
    from langchain_core.callbacks.manager import AsyncCallbackManagerForLLMRun
    from langchain_core.language_models.llms import LLM

    manager = fresh_manager()

    class TinyLLM(LLM):
        @property
        def _llm_type(self) -> str:
            return "tiny-bytez"

        def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
            raise NotImplementedError

        async def _acall(
            self,
            prompt: str,
            stop: list[str] | None = None,
            run_manager: AsyncCallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> str:
            assert run_manager is not None
            async with AsyncBytezClient(api_key=bytez_api_key, base_url=bytez_server.url) as c:
                await manager.aensure_loaded(
                    c, MODEL, progress=alangchain_progress_dispatcher(run_manager)
                )
                result = await c.run(MODEL, {"text": prompt, "params": {"max_new_tokens": 3}})
            return str(result.output)

    events = [e async for e in TinyLLM().astream_events("Hello", version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert custom
    assert {e["name"] for e in custom} == {"bytez_model_loading"}
    assert custom[0]["data"]["state"] == "deploying"
    assert custom[-1]["data"]["state"] == "running"
    assert custom[-1]["data"]["done"] is True
    end = next(e for e in events if e["event"] == "on_llm_end")
    assert custom[-1]["run_id"] == end["run_id"]


async def test_astream_events_show_loading_with_bytez_llm(
    bytez_server: LocalBytezServer, bytez_api_key: str
) -> None:
    llms = pytest.importorskip("langchain_bytez.llms")
    llm = llms.BytezLLM(
        model="microsoft/phi-2",  # not used by other tests: its first call must load it
        api_key=bytez_api_key,
        base_url=bytez_server.url,
        max_new_tokens=3,
    )
    events = [e async for e in llm.astream_events("Hello", version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert custom, [e["event"] for e in events]
    assert {e["name"] for e in custom} == {"bytez_model_loading"}
    assert custom[-1]["data"]["state"] == "running"
    assert custom[-1]["data"]["done"] is True
