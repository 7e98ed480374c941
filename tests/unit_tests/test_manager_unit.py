"""Unit tests of langchain_bytez.manager: real clients over the shared fake of the Bytez API."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import httpx
import pytest

from langchain_bytez import progress as progress_mod
from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.errors import (
    BytezModelLoadError,
    BytezNotFoundError,
    InvalidModelIdError,
)
from langchain_bytez.lifecycle._sync import drive as drive_mod
from langchain_bytez.lifecycle.flight import Flight
from langchain_bytez.manager import (
    AsyncModelHandle,
    ConsoleProgressReporter,
    LoadProgress,
    ModelHandle,
    ModelManager,
    alangchain_progress_dispatcher,
    langchain_progress_dispatcher,
    timeout_to_minutes,
)
from langchain_bytez.types import Capacity, ClusterState, ClusterStatus
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez

MODEL = "openai-community/gpt2"


# --------------------------------------------------------------------------- fakes
# Real clients over the shared fake of the Bytez API (tests/unit_tests/fake_bytez.py):
# the lifecycle is tested through the clients' wire mapping, as it runs.


def new_backend(
    *, polls_to_run: int = 2, put_delay: float = 0.0, run_delay: float = 0.0
) -> FakeBytez:
    """A fake whose clusters run after two reads and whose runs answer ``"ok"``."""
    fake = FakeBytez()
    fake.polls_to_run = polls_to_run
    fake.put_delay = put_delay
    fake.delay = run_delay
    fake.output = "ok"
    return fake


class Client(BytezClient):
    """A real sync client answered by ``backend`` (no retries: the fake is exact)."""

    def __init__(self, backend: FakeBytez) -> None:
        http = httpx.Client(transport=httpx.MockTransport(backend.sync))
        super().__init__(backend.api_key, base_url=URL, http_client=http, max_retries=0)
        self.backend = backend


class AsyncClient(AsyncBytezClient):
    """A real async client answered by ``backend``."""

    def __init__(self, backend: FakeBytez) -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(backend.async_))
        super().__init__(backend.api_key, base_url=URL, http_client=http, max_retries=0)
        self.backend = backend


def fresh_manager(**kwargs: Any) -> ModelManager:
    kwargs.setdefault("poll_initial", 0.005)
    kwargs.setdefault("poll_max", 0.02)
    return ModelManager(**kwargs)


@pytest.fixture
def backend() -> FakeBytez:
    return new_backend()


@pytest.fixture
def client(backend: FakeBytez) -> Client:
    return Client(backend)


@pytest.fixture
def aclient(backend: FakeBytez) -> AsyncClient:
    return AsyncClient(backend)


@pytest.fixture
def mgr() -> ModelManager:
    return fresh_manager()


def handle(client: Any, mgr: ModelManager, model_id: str = MODEL) -> ModelHandle:
    return ModelHandle(client, model_id, manager=mgr)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(1, 1), (0.5, 1), (60, 1), (61, 2), (90, 2), (300, 5), (86400, 1440), (86399.5, 1440)],
)
def test_timeout_rounds_up_to_minutes(seconds: float, minutes: int) -> None:
    assert timeout_to_minutes(seconds) == minutes


@pytest.mark.parametrize(
    "bad",
    [
        0,
        -1,
        86401,
        100000,
        pytest.param(10**400, id="huge-int"),
        float("nan"),
        float("inf"),
        True,
        False,
        "60",
        None,
    ],
)
def test_timeout_rejects_bad_values(bad: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        timeout_to_minutes(bad)


@pytest.mark.parametrize("bad", [0, -2, True, False, 1.5, "2"])
def test_concurrency_rejects_bad_values(client: Client, mgr: ModelManager, bad: Any) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        handle(client, mgr).load(bad, progress=False)
    with pytest.raises(ValueError, match="concurrency"):
        mgr.ensure_loaded(client, MODEL, concurrency=bad)  # type: ignore[arg-type]
    assert client.backend.calls == []


@pytest.mark.parametrize(
    "bad",
    [
        {"min": 1, "max": 2},
        {"min": 1, "desired": 2, "max": 2, "extra": 1},
        {"min": 2, "desired": 1, "max": 3},
        {"min": 1, "desired": 3, "max": 2},
        {"min": True, "desired": 1, "max": 1},
        {"min": 1, "desired": 1, "max": 0},
        {"min": 1, "desired": "1", "max": 1},
        [1, 1, 1],
        3,
    ],
)
def test_capacity_rejects_bad_values(client: Client, mgr: ModelManager, bad: Any) -> None:
    with pytest.raises(ValueError, match="capacity"):
        handle(client, mgr).load(capacity=bad, progress=False)
    assert client.backend.calls == []


@pytest.mark.parametrize("bad", [0, -1, float("nan"), True, "9"])
def test_deadline_rejects_bad_values(client: Client, mgr: ModelManager, bad: Any) -> None:
    with pytest.raises(ValueError, match="deadline"):
        handle(client, mgr).load(deadline=bad, progress=False)


def test_huge_integer_deadline_is_accepted_not_an_overflow(
    client: Client, mgr: ModelManager
) -> None:
    # float(10**400) overflows; a huge deadline simply means "no deadline".
    status = handle(client, mgr).load(deadline=10**400, progress=False)
    assert status is not None
    assert status.state is ClusterState.RUNNING


def test_progress_rejects_non_callables(client: Client, mgr: ModelManager) -> None:
    with pytest.raises(ValueError, match="progress"):
        handle(client, mgr).load(progress="yes")  # type: ignore[arg-type]


def test_invalid_model_id_is_refused_before_any_request(client: Client, mgr: ModelManager) -> None:
    with pytest.raises(InvalidModelIdError):
        ModelHandle(client, "../etc/passwd", manager=mgr)  # type: ignore[arg-type]
    with pytest.raises(InvalidModelIdError):
        mgr.ensure_loaded(client, "a b")  # type: ignore[arg-type]
    assert client.backend.calls == []


# --------------------------------------------------------------------------- load


def test_load_creates_cluster_and_reports_progress(client: Client, mgr: ModelManager) -> None:
    events: list[LoadProgress] = []
    status = handle(client, mgr).load(2, 90, progress=events.append)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert client.backend.count("PUT") == 1
    cluster = client.backend.clusters[MODEL]
    assert cluster["capacity"] == {"min": 2, "desired": 2, "max": 2}
    assert cluster["timeout"] == 2  # 90 s rounds up to 2 minutes
    assert [e.state for e in events] == [ClusterState.DEPLOYING, ClusterState.RUNNING]
    assert [e.done for e in events] == [False, True]
    assert events[0].raw_status == "Loading"
    assert events[-1].raw_status == "on"
    assert all(e.model_id == MODEL for e in events)
    assert events[0].elapsed <= events[-1].elapsed
    assert MODEL in events[-1].message
    assert "running" in events[-1].message


def test_load_with_autoscaling_capacity(client: Client, mgr: ModelManager) -> None:
    handle(client, mgr).load(capacity={"min": 0, "desired": 1, "max": 4}, progress=False)
    assert client.backend.clusters[MODEL]["capacity"] == {"min": 0, "desired": 1, "max": 4}
    handle(client, mgr).load(capacity=Capacity(min=1, desired=2, max=3), progress=False)
    assert client.backend.clusters[MODEL]["capacity"] == {"min": 1, "desired": 2, "max": 3}
    assert client.backend.count("PATCH") == 1


def test_load_of_running_model_costs_one_get(client: Client, mgr: ModelManager) -> None:
    handle(client, mgr).load(progress=False)
    before = len(client.backend.calls)
    events: list[LoadProgress] = []
    status = handle(client, fresh_manager()).load(progress=events.append)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert client.backend.calls[before:] == [("GET", MODEL)]
    assert len(events) == 1
    assert events[0].done


def test_load_updates_cluster_when_settings_differ(client: Client, mgr: ModelManager) -> None:
    handle(client, mgr).load(1, 300, progress=False)
    handle(client, mgr).load(3, 600, progress=False)
    assert client.backend.count("PUT") == 1
    assert client.backend.count("PATCH") == 1
    cluster = client.backend.clusters[MODEL]
    assert cluster["capacity"] == {"min": 3, "desired": 3, "max": 3}
    assert cluster["timeout"] == 10


def test_load_without_sizes_keeps_an_existing_clusters_settings(
    client: Client, mgr: ModelManager
) -> None:
    handle(client, mgr).load(4, 3600, progress=False)
    handle(client, fresh_manager()).load(progress=False)  # no sizes: nothing to change
    assert client.backend.count("PATCH") == 0
    cluster = client.backend.clusters[MODEL]
    assert cluster["capacity"] == {"min": 4, "desired": 4, "max": 4}
    assert cluster["timeout"] == 60
    # Only what is given changes: a new capacity keeps the timeout, and back.
    handle(client, fresh_manager()).load(2, progress=False)
    assert cluster["capacity"] == {"min": 2, "desired": 2, "max": 2}
    assert cluster["timeout"] == 60
    handle(client, fresh_manager()).load(timeout=600, progress=False)
    assert cluster["capacity"] == {"min": 2, "desired": 2, "max": 2}
    assert cluster["timeout"] == 10
    assert client.backend.count("PATCH") == 2


def test_load_without_sizes_turns_an_off_cluster_on_keeping_its_settings(
    client: Client, mgr: ModelManager
) -> None:
    handle(client, mgr).load(3, 1200, progress=False)
    client.backend.clusters[MODEL]["status"] = "off"
    status = handle(client, fresh_manager()).load(progress=False)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    patches = [body for method, _, body in client.backend.cluster_bodies if method == "PATCH"]
    assert patches == [{"status": "on"}]  # neither capacity nor timeout sent
    assert client.backend.clusters[MODEL]["capacity"]["desired"] == 3


# --------------------------------------------------------------------------- implicit


def test_implicit_auto_load_creates_only_when_no_cluster_exists(
    client: Client, mgr: ModelManager
) -> None:
    status = mgr.ensure_available(client, MODEL, concurrency=2, timeout=600)  # type: ignore[arg-type]
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert client.backend.count("PUT") == 1
    assert client.backend.clusters[MODEL]["capacity"]["desired"] == 2
    # Other settings later (another object, another process): used as it is.
    other = fresh_manager()
    assert other.ensure_available(client, MODEL, concurrency=5, timeout=60) is not None  # type: ignore[arg-type]
    assert client.backend.count("PUT") == 1
    assert client.backend.count("PATCH") == 0
    assert client.backend.count("DELETE") == 0
    assert client.backend.clusters[MODEL]["capacity"]["desired"] == 2


@pytest.mark.parametrize("state", ["off", "failed"])
def test_implicit_auto_load_leaves_an_off_or_failed_cluster_alone(
    client: Client, mgr: ModelManager, state: str
) -> None:
    handle(client, mgr).load(2, progress=False)
    client.backend.clusters[MODEL]["status"] = state
    calls = len(client.backend.calls)
    assert fresh_manager().ensure_available(client, MODEL) is None  # type: ignore[arg-type]
    assert client.backend.calls[calls:] == [("GET", MODEL)]


def test_implicit_auto_load_failure_falls_back_once_and_is_not_retried_each_call(
    client: Client, mgr: ModelManager
) -> None:
    client.backend.fail_next[MODEL] = "boot failed"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert mgr.ensure_available(client, MODEL) is None  # type: ignore[arg-type]
        assert mgr.ensure_available(client, MODEL) is None  # type: ignore[arg-type]
    messages = [str(w.message) for w in record if "auto-load of" in str(w.message)]
    assert len(messages) == 1
    assert "boot failed" in messages[0]
    assert client.backend.count("PUT") == 1  # the second call made no cluster call
    assert client.backend.count("DELETE") == 0


def test_implicit_auto_load_never_calls_closed_source_models(
    client: Client, mgr: ModelManager
) -> None:
    for model in ("openai/gpt-4o", "anthropic/claude-3-haiku", "google/gemini-1.5-flash"):
        assert mgr.ensure_available(client, model) is None  # type: ignore[arg-type]
    assert client.backend.calls == []
    mgr.ensure_available(client, "google/gemma-2-2b-it")  # type: ignore[arg-type]
    assert client.backend.calls[0] == ("GET", "google/gemma-2-2b-it")


def test_implicit_followers_share_the_implicit_flight(mgr: ModelManager) -> None:
    backend = new_backend(put_delay=0.05)
    client = Client(backend)
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda c: mgr.ensure_available(client, MODEL, concurrency=c),  # type: ignore[arg-type]
                [1, 2, 3, 4],
            )
        )
    assert all(r is not None and r.state is ClusterState.RUNNING for r in results)
    assert backend.count("PUT") == 1
    assert backend.count("PATCH") == 0


def test_load_turns_a_stopped_cluster_back_on(client: Client, mgr: ModelManager) -> None:
    handle(client, mgr).load(progress=False)
    client.backend.clusters[MODEL]["status"] = "off"
    status = handle(client, mgr).load(progress=False)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert client.backend.count("PATCH") == 1


def test_put_conflict_reads_and_updates(client: Client, mgr: ModelManager) -> None:
    # GET says no cluster, but by the time of our PUT someone else created one.
    backend = client.backend
    first = [True]

    def racing_get(method: str, model_id: str) -> httpx.Response | None:
        if method != "GET" or not first[0]:
            return None
        first[0] = False
        capacity = Capacity.fixed(1).model_dump()
        backend.add_cluster(model_id, "loading", capacity=capacity, timeout=5)
        return httpx.Response(404, json={"error": "Cluster not found", "output": None})

    backend.cluster_hook = racing_get
    status = handle(client, mgr).load(2, 300, progress=False)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert backend.count("PUT") == 1  # ours, answered 409 (theirs was made behind the fake)
    assert backend.count("PATCH") == 1  # capacity differed: 1 -> 2
    assert backend.clusters[MODEL]["capacity"]["desired"] == 2


def test_failed_load_raises_with_reason_and_last_status(client: Client, mgr: ModelManager) -> None:
    client.backend.fail_next[MODEL] = "Instance failed to boot: out of memory"
    events: list[LoadProgress] = []
    with pytest.raises(BytezModelLoadError) as info:
        handle(client, mgr).load(progress=events.append)
    message = str(info.value)
    assert "out of memory" in message
    assert "failed" in message
    assert isinstance(info.value.last_status, ClusterStatus)
    assert info.value.last_status.state is ClusterState.FAILED
    assert info.value.model_id == MODEL
    assert events[-1].done
    assert events[-1].state is ClusterState.FAILED


def test_load_after_failure_replaces_the_failed_cluster(client: Client, mgr: ModelManager) -> None:
    client.backend.fail_next[MODEL] = "boom"
    with pytest.raises(BytezModelLoadError):
        handle(client, mgr).load(progress=False)
    status = handle(client, mgr).load(progress=False)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert client.backend.count("DELETE") == 1
    assert client.backend.count("PUT") == 2


def test_deadline_raises_with_last_status(client: Client, mgr: ModelManager) -> None:
    client.backend.polls_to_run = 10**9
    started = time.monotonic()
    with pytest.raises(BytezModelLoadError) as info:
        handle(client, mgr).load(progress=False, deadline=0.15)
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert "deadline" in message
    assert "deploying" in message
    assert "'loading'" in message
    assert info.value.last_status.state is ClusterState.DEPLOYING


def test_polling_backs_off_exponentially(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.backend.polls_to_run = 9
    sleeps: list[float] = []
    monkeypatch.setattr(drive_mod.time, "sleep", sleeps.append)
    ModelHandle(client, MODEL, manager=ModelManager()).load(progress=False)
    assert sleeps[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])
    assert max(sleeps) == pytest.approx(5.0)
    assert all(b >= a for a, b in itertools.pairwise(sleeps))


def test_unknown_model_raises_not_found(client: Client, mgr: ModelManager) -> None:
    client.backend.unknown.add(MODEL)
    with pytest.raises(BytezNotFoundError, match="catalog"):
        handle(client, mgr).load(progress=False)
    assert not mgr.serverless


def test_start_does_not_wait(client: Client, mgr: ModelManager) -> None:
    status = handle(client, mgr).start(1, 60)
    assert status is not None
    assert status.state is ClusterState.DEPLOYING
    assert client.backend.count("GET") == 1  # the initial read only; no polling


# --------------------------------------------------------------------------- status/stop


def test_status_and_stop(client: Client, mgr: ModelManager) -> None:
    h = handle(client, mgr)
    assert h.status().state is ClusterState.STOPPED  # no cluster: 404 -> stopped
    h.load(progress=False)
    assert h.status().state is ClusterState.RUNNING
    h.stop()
    h.stop()  # idempotent
    assert h.status().state is ClusterState.STOPPED
    assert client.backend.count("DELETE") == 2


def test_stop_forgets_the_cached_running_state(client: Client, mgr: ModelManager) -> None:
    mgr.ensure_loaded(client, MODEL)
    handle(client, mgr).stop()
    puts = client.backend.count("PUT")
    mgr.ensure_loaded(client, MODEL)
    assert client.backend.count("PUT") == puts + 1


# --------------------------------------------------------------------------- serverless


def test_serverless_fallback_warns_once(client: Client, mgr: ModelManager) -> None:
    client.backend.routes_gone = True
    events: list[LoadProgress] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert handle(client, mgr).load(progress=events.append) is None
        assert handle(client, mgr).load(progress=False) is None
        assert mgr.ensure_loaded(client, MODEL) is None
        status = handle(client, mgr).status()
        handle(client, mgr).stop()
    assert mgr.serverless
    ours = [w for w in caught if "serverless" in str(w.message)]
    assert len(ours) == 1
    assert issubclass(ours[0].category, UserWarning)
    assert "test-key" not in str(ours[0].message)
    assert status.raw_status == "serverless"
    assert events[-1].done
    assert events[-1].raw_status == "serverless"
    # Decided once: later loads send nothing at all.
    assert client.backend.calls == [("GET", MODEL), ("PUT", MODEL)]
    # Runs keep working.
    assert handle(client, mgr).run("hi").output == "ok"


def test_get_405_means_serverless(client: Client, mgr: ModelManager) -> None:
    client.backend.get_405 = True
    with pytest.warns(UserWarning, match="serverless"):
        assert handle(client, mgr).load(progress=False) is None
    assert client.backend.count("PUT") == 0


def test_missing_cluster_is_not_mistaken_for_missing_routes(
    client: Client, mgr: ModelManager
) -> None:
    # GET answers 404 "Cluster not found": the PUT decides, and it works.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = handle(client, mgr).load(progress=False)
    assert status is not None
    assert not mgr.serverless


# --------------------------------------------------------------------------- run / stream


def test_run_and_stream_payloads(client: Client, mgr: ModelManager) -> None:
    h = handle(client, mgr)
    messages = [{"role": "user", "content": "Hi"}]
    assert h.run("Once", {"max_new_tokens": 3}).output == "ok"
    h.run(messages)
    stream = h.stream("Tell", None)
    assert len(client.backend.requests) == 2  # a stream is sent when entered
    with stream as chunks:
        assert "".join(chunks) == " hello world"
    assert client.backend.requests == [
        {"text": "Once", "params": {"max_new_tokens": 3}},
        {"messages": messages},
        {"text": "Tell", "stream": True},
    ]
    with pytest.raises(TypeError):
        h.run(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        h.run(["not a dict"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        h.run("x", params=[1])  # type: ignore[arg-type]


async def test_async_handle_lifecycle(aclient: AsyncClient, mgr: ModelManager) -> None:
    h = AsyncModelHandle(aclient, MODEL, manager=mgr)
    received: list[LoadProgress] = []

    async def on_event(event: LoadProgress) -> None:
        received.append(event)

    assert (await h.status()).state is ClusterState.STOPPED
    status = await h.load(2, 120, progress=on_event)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert received[-1].done
    assert (await h.run([{"role": "user", "content": "Hi"}])).output == "ok"
    async with h.stream("x") as stream:
        assert "".join([text async for text in stream]) == " hello world"
    assert aclient.backend.requests[-1] == {"text": "x", "stream": True}
    await h.stop()
    await h.stop()
    assert (await h.status()).state is ClusterState.STOPPED
    assert repr(h) == f"AsyncModelHandle(model_id={MODEL!r})"


# --------------------------------------------------------------------------- manager


def test_for_client_shares_per_cache_key(backend: FakeBytez) -> None:
    a, b = Client(backend), AsyncClient(backend)
    other = Client(new_backend())
    assert ModelManager.for_client(a) is ModelManager.for_client(b)  # type: ignore[arg-type]
    assert ModelManager.for_client(a) is not ModelManager.for_client(other)  # type: ignore[arg-type]
    assert ModelHandle(a, MODEL).manager is ModelManager.for_client(a)  # type: ignore[arg-type]


def test_for_client_is_thread_safe() -> None:
    backend = new_backend()
    with ThreadPoolExecutor(16) as pool:
        managers = list(pool.map(lambda _: ModelManager.for_client(Client(backend)), range(64)))
    assert len({id(m) for m in managers}) == 1


def test_ensure_loaded_caches_running(client: Client, mgr: ModelManager) -> None:
    assert mgr.ensure_loaded(client, MODEL) is not None
    calls = len(client.backend.calls)
    for _ in range(5):
        mgr.ensure_loaded(client, MODEL)
    assert len(client.backend.calls) == calls  # no request while cached
    mgr.forget(MODEL)
    mgr.ensure_loaded(client, MODEL)
    assert client.backend.calls[calls:] == [("GET", MODEL)]


def test_cache_expires(client: Client) -> None:
    mgr = fresh_manager(running_ttl=0.05)
    mgr.ensure_loaded(client, MODEL)
    calls = len(client.backend.calls)
    time.sleep(0.08)
    mgr.ensure_loaded(client, MODEL)
    assert client.backend.calls[calls:] == [("GET", MODEL)]


def test_cache_is_per_settings(client: Client, mgr: ModelManager) -> None:
    mgr.ensure_loaded(client, MODEL, concurrency=1)
    mgr.ensure_loaded(client, MODEL, concurrency=2)
    assert client.backend.count("PATCH") == 1


def test_first_call_on_running_model_costs_one_get(client: Client) -> None:
    handle(client, fresh_manager()).load(progress=False)
    calls = len(client.backend.calls)
    mgr = fresh_manager()
    mgr.ensure_loaded(client, MODEL)
    mgr.ensure_loaded(client, MODEL)
    assert client.backend.calls[calls:] == [("GET", MODEL)]


def test_threads_single_flight(mgr: ModelManager) -> None:
    backend = new_backend(put_delay=0.05, polls_to_run=3)
    client = Client(backend)
    seen: list[LoadProgress] = []
    barrier = threading.Barrier(50)

    def call(_: int) -> ClusterStatus | None:
        barrier.wait()
        return mgr.ensure_loaded(client, MODEL, progress=seen.append)

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(call, range(50)))
    assert backend.count("PUT") == 1
    assert all(r is not None and r.state is ClusterState.RUNNING for r in results)
    # Every caller with a callback saw the end of the shared load.
    assert sum(1 for e in seen if e.done) == 50


async def test_tasks_single_flight(mgr: ModelManager) -> None:
    backend = new_backend(put_delay=0.05, polls_to_run=3)
    client = AsyncClient(backend)
    done_events: list[LoadProgress] = []

    async def on_event(event: LoadProgress) -> None:
        if event.done:
            done_events.append(event)

    results = await asyncio.gather(
        *(mgr.aensure_loaded(client, MODEL, progress=on_event) for _ in range(100))
    )
    assert backend.count("PUT") == 1
    assert all(r is not None and r.state is ClusterState.RUNNING for r in results)
    assert len(done_events) == 100


def test_single_flight_across_threads_and_event_loops(mgr: ModelManager) -> None:
    backend = new_backend(put_delay=0.05, polls_to_run=3)
    sync_client, async_client = Client(backend), AsyncClient(backend)
    barrier = threading.Barrier(6)

    def in_loop() -> None:
        barrier.wait()

        async def main() -> None:
            await asyncio.gather(*(mgr.aensure_loaded(async_client, MODEL) for _ in range(10)))

        asyncio.run(main())

    def in_thread() -> None:
        barrier.wait()
        mgr.ensure_loaded(sync_client, MODEL)

    threads = [threading.Thread(target=in_loop) for _ in range(3)]
    threads += [threading.Thread(target=in_thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert backend.count("PUT") == 1


def test_leader_failure_reaches_followers_and_next_call_retries(mgr: ModelManager) -> None:
    backend = new_backend(put_delay=0.05)
    backend.fail_next[MODEL] = "bad weights"
    client = Client(backend)
    barrier = threading.Barrier(8)

    def call(_: int) -> str:
        barrier.wait()
        try:
            mgr.ensure_loaded(client, MODEL)
        except BytezModelLoadError as exc:
            return str(exc)
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(call, range(8)))
    assert all("bad weights" in o for o in outcomes)
    assert backend.count("PUT") == 1
    assert mgr.ensure_loaded(client, MODEL) is not None  # a new flight, a new load


async def test_cancelled_leader_hands_over(mgr: ModelManager) -> None:
    backend = new_backend(put_delay=0.1)
    client = AsyncClient(backend)
    leader = asyncio.create_task(mgr.aensure_loaded(client, MODEL))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(mgr.aensure_loaded(client, MODEL))
    await asyncio.sleep(0.01)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    status = await asyncio.wait_for(follower, 5)
    assert status is not None
    assert status.state is ClusterState.RUNNING


async def test_cancelled_follower_does_not_cancel_the_load(mgr: ModelManager) -> None:
    backend = new_backend(put_delay=0.05)
    client = AsyncClient(backend)
    leader = asyncio.create_task(mgr.aensure_loaded(client, MODEL))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(mgr.aensure_loaded(client, MODEL))
    await asyncio.sleep(0.01)
    follower.cancel()
    status = await asyncio.wait_for(leader, 5)
    assert status is not None
    assert status.state is ClusterState.RUNNING


def _wait_for_first_get(backend: FakeBytez) -> None:
    # A load's first request is its GET, sent once it has registered its flight.
    deadline = time.monotonic() + 5
    while not backend.count("GET"):
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_concurrent_load_with_other_settings_still_applies_them(mgr: ModelManager) -> None:
    # A load for concurrency=2 arriving while one for concurrency=1 is in flight must
    # not take that load's result as its own: the cluster must end up with 2.
    backend = new_backend(put_delay=0.1, polls_to_run=2)
    client = Client(backend)
    first = threading.Thread(target=mgr.ensure_loaded, args=(client, MODEL))
    first.start()
    _wait_for_first_get(backend)  # the first load is in flight (its PUT takes 0.1 s)
    status = handle(client, mgr).load(2, progress=False)
    first.join(5)
    assert status is not None
    assert status.capacity == Capacity.fixed(2)
    assert backend.clusters[MODEL]["capacity"] == {"min": 2, "desired": 2, "max": 2}
    assert backend.count("PUT") == 1
    assert backend.count("PATCH") == 1


async def test_async_concurrent_load_with_other_settings_still_applies_them(
    mgr: ModelManager,
) -> None:
    backend = new_backend(put_delay=0.1, polls_to_run=2)
    client = AsyncClient(backend)
    first = asyncio.create_task(mgr.aensure_loaded(client, MODEL))
    while not backend.count("GET"):
        await asyncio.sleep(0.001)
    second = await mgr.aensure_loaded(client, MODEL, concurrency=3, timeout=600)
    await first
    assert second is not None
    assert second.capacity == Capacity.fixed(3)
    assert second.idle_timeout_minutes == 10
    assert backend.count("PUT") == 1
    assert backend.count("PATCH") == 1


def test_cancelled_async_follower_stops_listening(
    mgr: ModelManager, caplog: pytest.LogCaptureFixture
) -> None:
    # A follower cancelled inside an asyncio.run whose loop is then closed must not stay
    # subscribed: forwarding the leader's later events to a closed loop would fail and
    # log a "progress callback failed" warning for each of them.
    backend = new_backend(polls_to_run=8)
    client = Client(backend)
    leader = threading.Thread(
        target=mgr.ensure_loaded, args=(client, MODEL), kwargs={"progress": lambda _e: None}
    )
    leader.start()
    _wait_for_first_get(backend)

    async def follow() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                mgr.aensure_loaded(AsyncClient(backend), MODEL, progress=lambda _e: None),
                0.01,
            )

    with caplog.at_level("WARNING", logger="langchain_bytez"):
        asyncio.run(follow())
        leader.join(5)
    assert not leader.is_alive(), "the leader's load never finished"
    assert backend.clusters[MODEL]["status"] == "on"
    assert not [r for r in caplog.records if "progress callback failed" in r.getMessage()]


def test_late_subscriber_gets_the_replay_before_any_newer_event() -> None:
    # The latest event is replayed under the flight's lock: a broadcast racing with the
    # subscription cannot reach the new subscriber before the replay (a console line
    # replayed after the final "done" would stay on screen).
    flight = Flight((1, 1, 1, 5), printer=False)
    old, new = _events()[0], _events()[-1]
    flight.broadcast(old)
    seen: list[LoadProgress] = []
    racer = threading.Thread(target=flight.broadcast, args=(new,))

    def callback(event: LoadProgress) -> None:
        if not seen:
            racer.start()
            racer.join(0.05)  # blocked on the lock while the replay runs
        seen.append(event)

    assert flight.subscribe(callback, printer=False)
    racer.join(5)
    assert seen == [old, new]


# --------------------------------------------------------------------------- limits


def test_limit_caps_threads(mgr: ModelManager) -> None:
    backend = new_backend(run_delay=0.02)
    client = Client(backend)

    def work(_: int) -> None:
        with mgr.limit(MODEL, 3):
            client.run(MODEL, {"text": "x"})

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(work, range(40)))
    assert backend.peak_in_flight == 3
    assert len(backend.requests) == 40


async def test_alimit_caps_tasks(mgr: ModelManager) -> None:
    backend = new_backend(run_delay=0.01)
    client = AsyncClient(backend)

    async def work() -> None:
        async with mgr.alimit(MODEL, 2):
            await client.run(MODEL, {"text": "x"})

    await asyncio.gather(*(work() for _ in range(20)))
    assert backend.peak_in_flight == 2


async def test_alimit_is_fifo(mgr: ModelManager) -> None:
    order: list[int] = []
    gate = asyncio.Event()

    async def work(i: int) -> None:
        async with mgr.alimit(MODEL, 1):
            if i == 0:
                await gate.wait()
            order.append(i)

    tasks = [asyncio.create_task(work(i)) for i in range(10)]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == list(range(10))


async def test_alimit_does_not_serialise_when_concurrency_is_high(mgr: ModelManager) -> None:
    async def work() -> None:
        async with mgr.alimit(MODEL, 50):
            await asyncio.sleep(0.1)

    started = time.monotonic()
    await asyncio.gather(*(work() for _ in range(50)))
    assert time.monotonic() - started < 0.5


def test_limit_shared_by_threads_and_loops(mgr: ModelManager) -> None:
    backend = new_backend(run_delay=0.01)
    sync_client, async_client = Client(backend), AsyncClient(backend)

    def loop_worker() -> None:
        async def main() -> None:
            async def one() -> None:
                async with mgr.alimit(MODEL, 2):
                    await async_client.run(MODEL, {"text": "a"})

            await asyncio.gather(*(one() for _ in range(10)))

        asyncio.run(main())

    def thread_worker() -> None:
        for _ in range(5):
            with mgr.limit(MODEL, 2):
                sync_client.run(MODEL, {"text": "s"})

    threads = [threading.Thread(target=loop_worker) for _ in range(3)]
    threads += [threading.Thread(target=thread_worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(backend.requests) == 45
    assert backend.peak_in_flight <= 2


async def test_cancelled_waiter_does_not_leak_a_slot(mgr: ModelManager) -> None:
    release = asyncio.Event()

    async def holder() -> None:
        async with mgr.alimit(MODEL, 1):
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    waiter.cancel()
    release.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter = mgr._limiter(MODEL, 1)
    assert limiter.in_use == 0
    async with mgr.alimit(MODEL, 1):
        assert limiter.in_use == 1


def test_limit_releases_on_error(mgr: ModelManager) -> None:
    with pytest.raises(RuntimeError), mgr.limit(MODEL, 1):
        raise RuntimeError
    with mgr.limit(MODEL, 1):
        pass


def test_limit_rejects_bad_concurrency(mgr: ModelManager) -> None:
    with pytest.raises(ValueError, match="concurrency"), mgr.limit(MODEL, 0):
        pass
    with pytest.raises(ValueError, match="concurrency"), mgr.limit(MODEL, True):  # noqa: FBT003
        pass
    # Also once a limiter of that size exists (True == 1.0 == 1, but they are refused).
    with mgr.limit(MODEL, 1):
        pass
    for bad in (True, 1.0):
        with pytest.raises(ValueError, match="concurrency"), mgr.limit(MODEL, bad):  # type: ignore[arg-type]
            pass


# --------------------------------------------------------------------------- sessions


def test_session_loads_and_stops(client: Client, mgr: ModelManager) -> None:
    with mgr.session(MODEL, client=client, progress=False) as h:  # type: ignore[arg-type]
        assert isinstance(h, ModelHandle)
        assert h.status().state is ClusterState.RUNNING
    assert MODEL not in client.backend.clusters


def test_session_stops_on_error(client: Client, mgr: ModelManager) -> None:
    with (
        pytest.raises(KeyError),
        mgr.session(MODEL, client=client, progress=False),  # type: ignore[arg-type]
    ):
        raise KeyError("boom")
    assert MODEL not in client.backend.clusters
    assert client.backend.count("DELETE") == 1


def test_session_stops_when_load_fails(client: Client, mgr: ModelManager) -> None:
    client.backend.polls_to_run = 10**9
    with (
        pytest.raises(BytezModelLoadError),
        mgr.session(MODEL, client=client, progress=False, deadline=0.05),  # type: ignore[arg-type]
    ):
        pytest.fail("the body must not run")
    assert MODEL not in client.backend.clusters


async def test_asession(aclient: AsyncClient, mgr: ModelManager) -> None:
    seen: list[ClusterState] = []

    async def body() -> None:
        async with mgr.asession(MODEL, client=aclient, progress=False) as h:  # type: ignore[arg-type]
            assert isinstance(h, AsyncModelHandle)
            seen.append((await h.status()).state)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await body()
    assert seen == [ClusterState.RUNNING]
    assert MODEL not in aclient.backend.clusters


def test_manager_shortcuts(client: Client, aclient: AsyncClient, mgr: ModelManager) -> None:
    status = mgr.load(MODEL, client=client, progress=False)  # type: ignore[arg-type]
    assert status is not None
    assert mgr.status(MODEL, client=client).state is ClusterState.RUNNING  # type: ignore[arg-type]
    mgr.stop(MODEL, client=client)  # type: ignore[arg-type]
    assert mgr.status(MODEL, client=client).state is ClusterState.STOPPED  # type: ignore[arg-type]

    async def main() -> None:
        assert await mgr.aload(MODEL, client=aclient, progress=False) is not None  # type: ignore[arg-type]
        assert (await mgr.astatus(MODEL, client=aclient)).state is ClusterState.RUNNING  # type: ignore[arg-type]
        await mgr.astop(MODEL, client=aclient)  # type: ignore[arg-type]

    asyncio.run(main())
    assert MODEL not in client.backend.clusters


# --------------------------------------------------------------------------- reporters


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _events() -> list[LoadProgress]:
    return [
        LoadProgress(MODEL, ClusterState.DEPLOYING, "loading", 0.0, f"{MODEL}: deploying long"),
        LoadProgress(MODEL, ClusterState.DEPLOYING, "booting", 0.5, f"{MODEL}: booting"),
        LoadProgress(MODEL, ClusterState.RUNNING, "on", 1.0, f"{MODEL}: running", done=True),
    ]


def test_console_reporter_plain_lines() -> None:
    stream = _Stream(tty=False)
    reporter = ConsoleProgressReporter(stream)
    for event in _events():
        reporter(event)
    lines = stream.getvalue().splitlines()
    assert lines == [
        f"[bytez] {MODEL}: deploying long",
        f"[bytez] {MODEL}: booting",
        f"[bytez] {MODEL}: running",
    ]
    assert "\r" not in stream.getvalue()


def test_console_reporter_tty_updates_one_line_and_clears_it() -> None:
    stream = _Stream(tty=True)
    reporter = ConsoleProgressReporter(stream)
    for event in _events():
        reporter(event)
    out = stream.getvalue()
    assert "\n" not in out
    assert out.count("\r") >= 3
    assert "deploying long" in out
    # The line ends blanked: the last write is spaces between carriage returns.
    assert out.endswith("\r")
    assert out.rsplit("\r", 2)[-2].strip() == ""


def test_default_reporter_writes_to_stderr(
    client: Client, mgr: ModelManager, capsys: pytest.CaptureFixture[str]
) -> None:
    handle(client, mgr).load()
    err = capsys.readouterr().err
    assert f"[bytez] {MODEL}: deploying" in err
    assert f"[bytez] {MODEL}: running" in err


def test_progress_false_is_silent(
    client: Client, mgr: ModelManager, capsys: pytest.CaptureFixture[str]
) -> None:
    handle(client, mgr).load(progress=False)
    handle(client, mgr).stop()
    handle(client, mgr).load(progress=None)
    assert capsys.readouterr().err == ""


def test_failing_callback_does_not_break_the_load(client: Client, mgr: ModelManager) -> None:
    def broken(event: LoadProgress) -> None:
        raise RuntimeError("reporter bug")

    status = handle(client, mgr).load(progress=broken)
    assert status is not None


def test_load_progress_as_dict() -> None:
    event = _events()[-1]
    assert event.as_dict() == {
        "model_id": MODEL,
        "state": "running",
        "raw_status": "on",
        "elapsed": 1.0,
        "message": f"{MODEL}: running",
        "done": True,
    }
    with pytest.raises(AttributeError):
        event.done = False  # type: ignore[misc]


# --------------------------------------------------------------------------- LangChain events


def test_dispatcher_sends_custom_events_to_handlers() -> None:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.callbacks.manager import CallbackManagerForLLMRun

    received: list[tuple[str, Any, Any]] = []

    class Handler(BaseCallbackHandler):
        def on_custom_event(self, name: str, data: Any, *, run_id: Any, **kwargs: Any) -> None:
            received.append((name, data, run_id))

    run_id = uuid4()
    run_manager = CallbackManagerForLLMRun(
        run_id=run_id, handlers=[Handler()], inheritable_handlers=[]
    )
    also: list[LoadProgress] = []
    dispatch = langchain_progress_dispatcher(run_manager, also.append)
    for event in _events():
        dispatch(event)
    assert [r[0] for r in received] == ["bytez_model_loading"] * 3
    assert received[-1][1]["state"] == "running"
    assert received[-1][1]["done"] is True
    assert all(r[2] == run_id for r in received)
    assert len(also) == 3


def test_dispatchers_build_no_callback_manager_until_an_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every auto-loaded run builds a dispatcher; a model known to run emits nothing, so
    # the callback managers must not be built up front (per-call cost on the hot path).
    from langchain_core.callbacks.manager import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )

    built: list[str] = []
    for name in ("CallbackManager", "AsyncCallbackManager"):
        real = getattr(progress_mod, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            built.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(progress_mod, name, counting)
    sync_rm = CallbackManagerForLLMRun(run_id=uuid4(), handlers=[], inheritable_handlers=[])
    async_rm = AsyncCallbackManagerForLLMRun(run_id=uuid4(), handlers=[], inheritable_handlers=[])
    dispatch = langchain_progress_dispatcher(sync_rm)
    langchain_progress_dispatcher(async_rm)
    alangchain_progress_dispatcher(async_rm)
    assert built == []
    dispatch(_events()[0])
    dispatch(_events()[1])
    assert built == ["CallbackManager"]


async def test_async_dispatchers_send_custom_events() -> None:
    from langchain_core.callbacks import AsyncCallbackHandler
    from langchain_core.callbacks.manager import AsyncCallbackManagerForLLMRun

    received: list[str] = []

    class Handler(AsyncCallbackHandler):
        async def on_custom_event(
            self, name: str, data: Any, *, run_id: Any, **kwargs: Any
        ) -> None:
            received.append(data["state"])

    run_manager = AsyncCallbackManagerForLLMRun(
        run_id=uuid4(), handlers=[Handler()], inheritable_handlers=[]
    )
    adispatch = alangchain_progress_dispatcher(run_manager)
    for event in _events():
        await adispatch(event)
    assert received == ["deploying", "deploying", "running"]
    # The sync factory also accepts an async run manager (schedules on the loop).
    received.clear()
    dispatch = langchain_progress_dispatcher(run_manager)
    for event in _events():
        dispatch(event)
    await asyncio.sleep(0.01)
    assert received == ["deploying", "deploying", "running"]


async def test_astream_events_shows_loading_events_with_fake_client(backend: FakeBytez) -> None:
    from langchain_core.callbacks.manager import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models.llms import LLM

    mgr = fresh_manager()
    sync_client, async_client = Client(backend), AsyncClient(backend)

    class TinyLLM(LLM):
        @property
        def _llm_type(self) -> str:
            return "tiny-bytez"

        def _call(
            self,
            prompt: str,
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> str:
            assert run_manager is not None
            progress = langchain_progress_dispatcher(run_manager)
            mgr.ensure_loaded(sync_client, MODEL, progress=progress)  # type: ignore[arg-type]
            return str(sync_client.run(MODEL, {"text": prompt}).output)

        async def _acall(
            self,
            prompt: str,
            stop: list[str] | None = None,
            run_manager: AsyncCallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> str:
            assert run_manager is not None
            progress = alangchain_progress_dispatcher(run_manager)
            await mgr.aensure_loaded(async_client, MODEL, progress=progress)  # type: ignore[arg-type]
            return str((await async_client.run(MODEL, {"text": prompt})).output)

    events = [e async for e in TinyLLM().astream_events("hi", version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [e["name"] for e in custom] == ["bytez_model_loading"] * 2
    assert [e["data"]["state"] for e in custom] == ["deploying", "running"]
    assert custom[-1]["data"]["done"] is True


def test_handle_repr_has_no_secrets(client: Client, mgr: ModelManager) -> None:
    assert repr(handle(client, mgr)) == f"ModelHandle(model_id={MODEL!r})"
    assert "fake" not in repr(mgr)


async def test_sync_call_inside_the_loop_does_not_deadlock_on_an_async_leader(
    mgr: ModelManager,
) -> None:
    backend = new_backend(put_delay=0.05)
    leader = asyncio.create_task(mgr.aensure_loaded(AsyncClient(backend), MODEL))
    await asyncio.sleep(0.01)
    # A sync call made on the loop thread (e.g. llm.invoke inside async code).
    status = mgr.ensure_loaded(Client(backend), MODEL)
    assert status is not None
    assert status.state is ClusterState.RUNNING
    assert await asyncio.wait_for(leader, 5) is not None


# --------------------------------------------------------------------------- real clients


def test_handle_lifecycle_with_a_real_client_over_the_shared_fake() -> None:
    # The drivers against the real client and its wire mapping: PUT, polls, DELETE.
    fake = FakeBytez()
    fake.polls_to_run = 2
    http, _ = fake.clients()
    with http, BytezClient(api_key=FAKE_KEY, base_url=URL, http_client=http) as real:
        handle = ModelHandle(real, MODEL, manager=fresh_manager())
        assert handle.status().state is ClusterState.STOPPED
        status = handle.load(concurrency=2, timeout=90, progress=False)
        assert status is not None
        assert status.state is ClusterState.RUNNING
        cluster_calls = [call for call in fake.log if call[1] == f"/models/v2/{MODEL}"]
        assert [method for method, _ in cluster_calls] == ["GET", "GET", "PUT", "GET", "GET"]
        handle.stop()
        assert fake.log[-1] == ("DELETE", f"/models/v2/{MODEL}")
        assert MODEL not in fake.clusters
        handle.stop()  # idempotent: the 404 of a missing cluster is fine


async def test_async_handle_turns_a_stopped_cluster_on_over_the_shared_fake() -> None:
    fake = FakeBytez()
    fake.add_cluster(MODEL, "off")
    _, ahttp = fake.clients()
    async with ahttp, AsyncBytezClient(api_key=FAKE_KEY, base_url=URL, http_client=ahttp) as real:
        handle = AsyncModelHandle(real, MODEL, manager=fresh_manager())
        status = await handle.load(progress=False)
        assert status is not None
        assert status.state is ClusterState.RUNNING
        assert ("PATCH", f"/models/v2/{MODEL}") in fake.log
        assert not any(method == "PUT" for method, _ in fake.log)


def test_implicit_budgets_set_on_the_manager_module_reach_the_lifecycle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Documented as tunable at langchain_bytez.manager; the drivers read lifecycle.settings.
    import langchain_bytez.manager as facade
    from langchain_bytez.lifecycle import drivers, settings

    monkeypatch.setattr(facade, "IMPLICIT_CALL_TIMEOUT", 0.5)
    assert settings.IMPLICIT_CALL_TIMEOUT == 0.5
    assert drivers.PlanRun(MODEL, implicit=True).call_options() == {"timeout": 0.5, "retry": False}
    monkeypatch.setattr(facade, "IMPLICIT_RETRY_AFTER", 7.0)
    assert settings.IMPLICIT_RETRY_AFTER == 7.0
    monkeypatch.undo()
    assert settings.IMPLICIT_CALL_TIMEOUT == 10.0
    assert settings.IMPLICIT_RETRY_AFTER == 300.0
