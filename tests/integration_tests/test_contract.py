"""The contract suite: one set of client scenarios against the local server in every mode.

The local server imitates the live Bytez service where it is known and offers a mode for
each plausible answer where it is not (docs/local-server.md, "Fidelity modes"). Every
scenario below runs against a fresh server in each mode that changes what the client
sees: each ``cluster_routes`` mode, with strict and lenient params, with the default auth
form (``Key``). Each scenario checks the answer the user gets AND what reached the
server (its request log): no ``stop_strings``, no ``temperature: 0``, no
cluster-modifying request beyond the one that may create a missing cluster, never a
failed run because of the cluster routes.

``tests/integration_tests/test_wire_fidelity.py`` checks the same rules against tiny raw
servers that answer one way each; this file proves them against the full local server.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from langchain_bytez import BytezEmbeddings, BytezLLM, BytezStreamError, ChatBytez, list_models
from langchain_bytez.lifecycle import settings as lifecycle_settings
from langchain_bytez.server import LocalBytezServer
from langchain_bytez.testing.catalogue import ROWS
from langchain_bytez.testing.control import RecordedRequest
from langchain_bytez.testing.modes import ClusterRoutes

TEXT = "openai-community/gpt2"
CHAT = "Qwen/Qwen2.5-0.5B-Instruct"  # samples by default: temperature 0 matters here
EMBED = "sentence-transformers/all-MiniLM-L6-v2"
CLOSED = "openai/gpt-4o"
# A reply whose stop string "END" is split across two chunks.
REPLY = [" alpha", " beta", " EN", "D gamma", " delta"]
FULL = "".join(REPLY)
CLUSTER_WRITES = ("PUT", "PATCH", "DELETE")
# Budget of an implicit cluster call in this suite (see _short_implicit_calls): short where
# the server never answers, generous where it answers (a loaded 2-core machine can take
# more than 0.15 s for a GET and a PUT, and a late answer would read as a failing route).
IMPLICIT_BUDGET_HANG = 0.15
IMPLICIT_BUDGET = 3.0


@dataclass(frozen=True)
class Mode:
    """One server configuration of the contract."""

    cluster_routes: ClusterRoutes
    strict_params: bool

    @property
    def id(self) -> str:
        return f"{self.cluster_routes.value}-{'strict' if self.strict_params else 'lenient'}"

    @property
    def routes_on(self) -> bool:
        return self.cluster_routes is ClusterRoutes.ON


MODES = [Mode(routes, strict) for routes, strict in itertools.product(ClusterRoutes, (True, False))]


@dataclass
class Setup:
    """A fresh server in one mode and the key that selects a fresh client-side manager."""

    server: LocalBytezServer
    key: str
    mode: Mode

    @property
    def url(self) -> str:
        return self.server.url

    def llm(self, **kwargs: Any) -> BytezLLM:
        kwargs.setdefault("model", TEXT)
        kwargs.setdefault("base_url", self.url)
        return BytezLLM(api_key=self.key, max_retries=0, **kwargs)

    def chat(self, **kwargs: Any) -> ChatBytez:
        kwargs.setdefault("model", CHAT)
        return ChatBytez(api_key=self.key, base_url=self.url, max_retries=0, **kwargs)

    def runs(self) -> list[RecordedRequest]:
        return [r for r in self.server.requests if _is_run(r)]

    def cluster_calls(self, *methods: str) -> list[RecordedRequest]:
        wanted = methods or ("GET", "PUT", "PATCH", "DELETE")
        return [r for r in self.server.requests if _is_cluster_call(r) and r.method in wanted]


def _is_run(request: RecordedRequest) -> bool:
    return request.method == "POST" and request.path.startswith("/models/v2/")


def _is_cluster_call(request: RecordedRequest) -> bool:
    # PUT/GET/PATCH/DELETE /models/v2/{model id} and GET /models/v2/list/clusters; the
    # other list routes (models, tasks) are the catalogue, not the cluster routes.
    if request.method == "POST":
        return False
    if request.path == "/models/v2/list/clusters":
        return True
    return request.path.startswith("/models/v2/") and not request.path.startswith(
        "/models/v2/list/"
    )


@pytest.fixture(autouse=True)
def _short_implicit_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    # IMPLICIT_CALL_TIMEOUT (10 s) bounds each implicit cluster call; in "hang" mode the
    # server never answers, so every first call would cost 10 s and the suite minutes.
    # The client offers no per-object knob for it, hence the module constant is patched.
    # ("Warned once" marks are cleared between tests by tests/conftest.py.)
    monkeypatch.setattr(lifecycle_settings, "IMPLICIT_CALL_TIMEOUT", IMPLICIT_BUDGET)


@pytest.fixture(params=MODES, ids=[mode.id for mode in MODES])
def setup(
    request: pytest.FixtureRequest,
    bytez_server_factory: Callable[..., LocalBytezServer],
    monkeypatch: pytest.MonkeyPatch,
) -> Setup:
    mode: Mode = request.param
    if mode.cluster_routes is ClusterRoutes.HANG:
        monkeypatch.setattr(lifecycle_settings, "IMPLICIT_CALL_TIMEOUT", IMPLICIT_BUDGET_HANG)
    # A key of its own: client-side managers are shared per endpoint and key, and a
    # reused port must not inherit what an earlier test's client remembered.
    key = f"contract-{uuid.uuid4().hex}"
    server = bytez_server_factory(
        api_keys={key},
        cluster_routes=mode.cluster_routes,
        strict_params=mode.strict_params,
        load_delay=0.02,
    )
    return Setup(server=server, key=key, mode=mode)


def auto_load_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if "auto-load" in str(w.message)]


def check_wire(setup: Setup, *, expected_runs: int, auto_loads: bool = True) -> None:
    """What reached the server is what the live service accepts.

    Args:
        setup: The server and mode.
        expected_runs: How many run requests the scenario sent.
        auto_loads: Whether the scenario's client may load the model (``False``: no
            cluster call may be sent at all).
    """
    runs = setup.runs()
    assert len(runs) == expected_runs, [(r.method, r.path, r.status) for r in runs]
    for run in runs:
        assert run.status == 200, (run.path, run.status, run.json)
        params = (run.json or {}).get("params") or {}
        assert "stop_strings" not in params
        assert "stop" not in params
        assert params.get("temperature", 1) != 0
    log = list(enumerate(setup.server.requests))
    for model_id in {run.model_id for run in runs}:
        writes = [
            (i, r)
            for i, r in log
            if _is_cluster_call(r) and r.method in CLUSTER_WRITES and r.model_id == model_id
        ]
        # At most one cluster-modifying request per model: the PUT creating a missing
        # cluster, sent before the model's first run and never again.
        assert len(writes) <= 1, [(r.method, r.path) for _, r in writes]
        assert all(r.method == "PUT" for _, r in writes)
        first_run = next(i for i, r in log if _is_run(r) and r.model_id == model_id)
        assert all(i < first_run for i, _ in writes)
        if auto_loads and setup.mode.routes_on:
            assert len(writes) == 1  # no cluster existed: implicit auto-load created one
    if not auto_loads:
        assert setup.cluster_calls() == []


def check_warnings(setup: Setup, record: list[warnings.WarningMessage]) -> None:
    """Routes on: no warning; any failing mode: exactly one for the model and base URL."""
    expected = 0 if setup.mode.routes_on else 1
    assert len(auto_load_warnings(record)) == expected, auto_load_warnings(record)


# ------------------------------------------------------------------ the scenarios


def scenario_llm_calls(setup: Setup) -> None:
    """BytezLLM invoke, stream, astream and batch; the first call auto-loads implicitly."""
    setup.server.set_reply(REPLY, model_id=TEXT)
    llm = setup.llm()

    async def astream() -> str:
        return "".join([chunk async for chunk in llm.astream("Once")])

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert llm.invoke("Once") == FULL
        assert "".join(llm.stream("Once")) == FULL
        assert asyncio.run(astream()) == FULL
        assert llm.batch(["Once", "Twice"]) == [FULL, FULL]
    check_warnings(setup, record)
    check_wire(setup, expected_runs=5)


def scenario_chat_calls(setup: Setup) -> None:
    """ChatBytez invoke and stream agree on the fake chat model's answer."""
    chat = setup.chat()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        answer = chat.invoke("Hi there", max_tokens=6)
        streamed = "".join(chunk.text for chunk in chat.stream("Hi there", max_tokens=6))
    assert answer.text.startswith('Hello! You said: "Hi there".')
    assert streamed == answer.text
    check_warnings(setup, record)
    check_wire(setup, expected_runs=2)


def scenario_embeddings(setup: Setup) -> None:
    """BytezEmbeddings embed_documents and embed_query: one vector per text, normalised."""
    embeddings = BytezEmbeddings(model=EMBED, api_key=setup.key, base_url=setup.url, max_retries=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        vectors = embeddings.embed_documents(["the cat sat", "stock prices fell"])
        query = embeddings.embed_query("the cat sat")
    assert [len(v) for v in vectors] == [384, 384]
    assert query == pytest.approx(vectors[0])
    assert sum(x * x for x in query) == pytest.approx(1.0)
    check_warnings(setup, record)
    check_wire(setup, expected_runs=3)


def scenario_stop(setup: Setup) -> None:
    """Stop sequences cut exactly at the stop, client-side, in every call form."""
    setup.server.set_reply(REPLY, model_id=TEXT)
    llm = setup.llm(stop=["END"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the auto-load warning is checked elsewhere
        assert llm.invoke("Once") == " alpha beta "
        assert "".join(llm.stream("Once")) == " alpha beta "
        bound = setup.llm().bind(stop=["gamma"])
        assert bound.invoke("Once") == " alpha beta END "
        assert "".join(bound.stream("Once")) == " alpha beta END "
        assert llm.batch(["Once", "Twice"], stop=[" beta"]) == [" alpha", " alpha"]
    check_wire(setup, expected_runs=6)


def scenario_greedy(setup: Setup) -> None:
    """temperature=0 is sent as greedy decoding, on a model that samples by default."""
    llm = setup.llm(temperature=0)
    chat = setup.chat(temperature=0, max_tokens=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert llm.invoke("Once", max_new_tokens=4)
        assert chat.invoke("Hi").text.startswith("Hello!")
        assert "".join(c.text for c in chat.stream("Hi")).startswith("Hello!")
    check_wire(setup, expected_runs=3)
    for run in setup.runs():
        params = run.json["params"]
        assert params["do_sample"] is False
        assert "temperature" not in params


def scenario_stream_error_rule(setup: Setup) -> None:
    """Model text starting with "Error: " is text; the container's last "Error:" item fails."""
    looks_like_error = ["The log says ", "Error: ", "file not found", ", so check the path."]
    setup.server.set_reply(looks_like_error, model_id=TEXT)
    llm = setup.llm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert llm.invoke("Read the log.") == "".join(looks_like_error)
        assert "".join(llm.stream("Read the log.")) == "".join(looks_like_error)
        setup.server.set_reply(["Hello", " world", " again"], model_id=TEXT)
        setup.server.inject("error_mid_stream", after_tokens=2, message="CUDA out of memory")
        received: list[str] = []
        with pytest.raises(BytezStreamError, match="CUDA out of memory") as failure:
            received.extend(llm.stream("Hi"))
    assert "".join(received) == failure.value.delivered_text == "Hello world"
    check_wire(setup, expected_runs=3)


def scenario_implicit_auto_load(setup: Setup) -> None:
    """A default object's first call is the only one that touches the cluster routes."""
    first, second = setup.llm(), setup.llm(concurrency=3, instance_timeout=900)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for model in (first, second, first, second):
            assert model.invoke("Once", max_new_tokens=3)
    check_warnings(setup, record)
    check_wire(setup, expected_runs=4)
    log = setup.server.requests
    first_run = next(i for i, r in enumerate(log) if _is_run(r))
    # Every implicit cluster call came before the first run; later runs sent none.
    assert not any(_is_cluster_call(r) for r in log[first_run:])
    # Routes on: the implicit PUT made the cluster; otherwise the first run started the
    # model serverless. Either way it is on, with the settings of the first object.
    cluster = setup.server.cluster(TEXT)
    assert cluster is not None
    assert cluster["status"] == "on"
    assert cluster["capacity"]["desired"] == 1


def scenario_alternating_concurrency(setup: Setup) -> None:
    """Two objects with different concurrency, 6 alternating calls: <= 1 cluster write."""
    one, four = setup.llm(concurrency=1), setup.llm(concurrency=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(6):
            assert (one if i % 2 else four).invoke("Once", max_new_tokens=2)
    check_wire(setup, expected_runs=6)


def scenario_closed_source(setup: Setup) -> None:
    """A closed-source provider model never gets a cluster call."""
    chat = ChatBytez(model=CLOSED, api_key=setup.key, base_url=setup.url, max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no auto-load was attempted, so no warning
        answer = chat.invoke("Hi")
    assert 'You said: "Hi"' in answer.text
    check_wire(setup, expected_runs=1, auto_loads=False)


def scenario_models_v2_base_url(setup: Setup) -> None:
    """base_url ending in /models/v2 (as the SDKs write it) works like the API root."""
    setup.server.set_reply(REPLY, model_id=TEXT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for suffix in ("", "/models/v2", "/models/v2/"):
            assert setup.llm(base_url=setup.url + suffix).invoke("Once") == FULL
        assert "".join(setup.llm(base_url=setup.url + "/models/v2").stream("Once")) == FULL
    assert {r.path for r in setup.runs()} == {f"/models/v2/{TEXT}"}
    check_wire(setup, expected_runs=4)


def scenario_prices(setup: Setup) -> None:
    """The catalogue's and the answers' string prices ("0.0000833 / sec") read as numbers."""
    row = next(r for r in ROWS if r.model_id == TEXT)
    assert isinstance(row.meter_price, str)
    catalogue = list_models(api_key=setup.key, base_url=setup.url)
    info = next(m for m in catalogue if m.model_id == TEXT)
    assert info.meter_price == pytest.approx(row.price)
    assert info.meter_price_unit == "sec"
    assert info.meter == row.meter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = setup.llm().generate(["Once"])
    generation_info = result.generations[0][0].generation_info or {}
    assert generation_info["inference_meter_price"] == pytest.approx(row.price)
    assert generation_info["inference_meter_price_unit"] == "sec"
    check_wire(setup, expected_runs=1)


def scenario_official_sdk(setup: Setup) -> None:
    """Bytez's own SDK: text, chat, a stream and embeddings, in the body form it sends."""
    # Only this scenario needs the SDK (a test dependency); the others run without it.
    bytez = pytest.importorskip("bytez")
    sdk = bytez.Bytez(setup.key)
    sdk._client.host = f"{setup.url}/models/v2/"  # the SDK's base URL (no constructor knob)
    text = sdk.model(TEXT).run("Once upon a time", {"max_new_tokens": 4})
    assert text.error is None
    assert text.output.startswith("Once upon a time")
    chat = sdk.model(CHAT).run([{"role": "user", "content": "Hi"}], {"max_new_tokens": 4})
    assert chat.error is None
    assert 'You said: "Hi"' in chat.output["content"]
    streamed = "".join(sdk.model(TEXT).run("Once", {"max_new_tokens": 4}, stream=True))
    assert len(streamed.split()) == 4
    embedded = sdk.model(EMBED).run("the cat sat")
    assert embedded.error is None
    assert len(embedded.output) == 384
    # The SDK never calls a cluster route, in any mode.
    check_wire(setup, expected_runs=4, auto_loads=False)


SCENARIOS: dict[str, Callable[[Setup], None]] = {
    "llm_calls": scenario_llm_calls,
    "chat_calls": scenario_chat_calls,
    "embeddings": scenario_embeddings,
    "stop": scenario_stop,
    "greedy": scenario_greedy,
    "stream_error_rule": scenario_stream_error_rule,
    "implicit_auto_load": scenario_implicit_auto_load,
    "alternating_concurrency": scenario_alternating_concurrency,
    "closed_source": scenario_closed_source,
    "models_v2_base_url": scenario_models_v2_base_url,
    "prices": scenario_prices,
    "official_sdk": scenario_official_sdk,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_contract(setup: Setup, name: str) -> None:
    SCENARIOS[name](setup)


# ------------------------------------------------------------------ routes on only


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
def test_a_pre_existing_cluster_is_left_as_it_is(
    bytez_server_factory: Callable[..., LocalBytezServer], strict: bool
) -> None:
    """A 4-instance / 60-minute cluster made elsewhere survives default objects unchanged."""
    key = f"contract-{uuid.uuid4().hex}"
    server = bytez_server_factory(
        api_keys={key}, cluster_routes="on", strict_params=strict, load_delay=0.0
    )
    # Another process (here: a plain HTTP client) made the cluster before this one runs.
    created = httpx.put(
        f"{server.url}/models/v2/{TEXT}",
        json={"capacity": {"min": 4, "desired": 4, "max": 4}, "timeout": 60},
        headers={"Authorization": f"Key {key}"},
    )
    assert created.status_code < 300, created.text
    before = server.cluster(TEXT)
    assert before is not None
    setup = Setup(server=server, key=key, mode=Mode(ClusterRoutes.ON, strict))
    objects = [
        setup.llm(),
        setup.llm(concurrency=1, instance_timeout=300),
        setup.llm(concurrency=2, instance_timeout=120),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing failed, nothing to warn about
        for i in range(6):
            assert objects[i % 3].invoke("Once", max_new_tokens=2)
    after = server.cluster(TEXT)
    assert after is not None
    assert after["capacity"] == before["capacity"] == {"min": 4, "desired": 4, "max": 4}
    assert after["timeout"] == before["timeout"] == 60
    assert [r.method for r in server.requests if r.method in CLUSTER_WRITES] == ["PUT"]
