"""The local server's fidelity modes, over real loopback HTTP with plain httpx.

Each mode imitates one thing the live Bytez service does (or might do, where unknown);
the defaults follow the service as documented.
"""

from __future__ import annotations

import ast
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_bytez.server import (
    CATALOGUE,
    ROWS,
    AuthForm,
    CatalogueRow,
    ClusterRoutes,
    FaultKind,
    LocalBytezServer,
    generate_continuation,
)
from langchain_bytez.testing.fake_models import FAKE_MODELS, FakeAnswer, FakeRun

KEY = "test-key"
GPT2 = "openai-community/gpt2"
CHAT = "Qwen/Qwen2.5-0.5B-Instruct"  # samples by default
GREEDY_CHAT = "google/gemma-2-2b-it"
GPT4O = "openai/gpt-4o"
NOT_IN_CATALOGUE = "Model does not exist or has yet to be added to the Bytez catalog"
USER = [{"role": "user", "content": "Hi there"}]


@pytest.fixture
def server(bytez_server: LocalBytezServer) -> LocalBytezServer:
    bytez_server.load_delay = 0.0
    return bytez_server


@pytest.fixture
def client(server: LocalBytezServer):
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Key {KEY}"}, timeout=10
    ) as c:
        yield c


def run(client: httpx.Client, model: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return client.post(f"/models/v2/{model}", json=body, **kw)


# ------------------------------------------------------------------ strict / lenient params


def test_defaults_follow_the_documented_service() -> None:
    server = LocalBytezServer()
    assert server.strict_params is True
    assert server.cluster_routes is ClusterRoutes.NOT_FOUND
    assert server.auth_forms == frozenset({AuthForm.KEY})


@pytest.mark.parametrize("key", ["stop_strings", "stop", "guidance_scale"])
def test_strict_params_refuse_unknown_keys_with_the_live_text(
    client: httpx.Client, key: str
) -> None:
    r = run(client, GPT2, {"text": "x", "params": {"max_new_tokens": 3, key: ["END"]}})
    assert r.status_code == 422
    assert r.json()["error"] == f"{key} is not supported for this model on Bytez"


def test_strict_params_refuse_temperature_zero_on_sampling_models(client: httpx.Client) -> None:
    r = run(client, CHAT, {"messages": USER, "params": {"temperature": 0}})
    assert r.status_code == 422
    assert "do_sample=False" in r.json()["error"]
    assert "stack_trace" in r.json()
    explicit = run(client, GPT2, {"text": "x", "params": {"temperature": 0.0, "do_sample": True}})
    assert explicit.status_code == 422
    # greedy decoding is how temperature 0 is asked for; models that do not sample accept 0
    greedy = run(client, CHAT, {"messages": USER, "params": {"do_sample": False}})
    assert greedy.status_code == 200
    both = run(client, CHAT, {"messages": USER, "params": {"temperature": 0, "do_sample": False}})
    assert both.status_code == 200
    assert run(client, GREEDY_CHAT, {"messages": USER, "params": {"temperature": 0}}).is_success
    assert run(client, GPT2, {"text": "x", "params": {"temperature": 0}}).status_code == 200


def test_lenient_params_accept_unknown_keys_but_never_honour_them(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.strict_params = False
    prompt = "The story goes on"
    tokens = generate_continuation(prompt, 12)
    stop = tokens[3].strip()
    params = {"max_new_tokens": 12, "stop_strings": [stop], "stop": [stop], "made_up": 1}
    r = run(client, GPT2, {"text": prompt, "params": params})
    assert r.status_code == 200
    assert r.json()["output"] == prompt + "".join(tokens)  # nothing was cut
    with client.stream(
        "POST", f"/models/v2/{GPT2}", json={"text": prompt, "params": params, "stream": True}
    ) as s:
        assert b"".join(s.iter_raw()).decode() == "".join(tokens)
    assert run(client, CHAT, {"messages": USER, "params": {"temperature": 0}}).status_code == 200
    server.strict_params = True
    assert run(client, GPT2, {"text": prompt, "params": params}).status_code == 422


# ------------------------------------------------------------------ closed-source models


def test_closed_source_models_are_chat_models_with_a_provider_answer(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    listed = client.get("/models/v2/list/models", params={"modelId": GPT4O}).json()["output"]
    assert [m["task"] for m in listed] == ["chat"]
    assert any(m["modelId"].startswith("anthropic/") for m in CATALOGUE)
    r = run(client, GPT4O, {"messages": USER}, headers={"provider-key": "sk-provider-secret"})
    assert r.status_code == 200
    payload = r.json()
    assert payload["error"] is None
    assert payload["output"]["role"] == "assistant"
    assert payload["provider"]["choices"][0]["message"]["content"] == payload["output"]["content"]
    assert run(client, GPT4O, {"messages": USER}).status_code == 200  # provider-key is optional
    # a provider runs it: no Bytez cluster appears, and the secret is not in the log
    assert server.cluster(GPT4O) is None
    assert all("provider-key" not in r.headers for r in server.requests)
    assert "sk-provider-secret" not in repr(server.requests)


def test_closed_source_models_refuse_cluster_routes_even_when_on(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.cluster_routes = "on"
    for method in ("PUT", "GET", "PATCH", "DELETE"):
        r = client.request(method, f"/models/v2/{GPT4O}", json={} if method != "GET" else None)
        assert r.status_code == 400, method
        assert "provider" in r.json()["error"]
    assert server.cluster(GPT4O) is None


# ------------------------------------------------------------------ cluster route modes

CLUSTER_CALLS = (
    ("PUT", f"/models/v2/{GPT2}", {"capacity": {"min": 1, "desired": 1, "max": 1}}),
    ("GET", f"/models/v2/{GPT2}", None),
    ("PATCH", f"/models/v2/{GPT2}", {"timeout": 10}),
    ("DELETE", f"/models/v2/{GPT2}", None),
    ("GET", "/models/v2/list/clusters", None),
)
EXPECTED = {
    ClusterRoutes.NOT_FOUND: [(404, "Not Found")] * 5,
    ClusterRoutes.NOT_FOUND_CATALOGUE: [(404, NOT_IN_CATALOGUE)] * 5,
    ClusterRoutes.METHOD_NOT_ALLOWED: [(405, "Method Not Allowed")] * 5,
    ClusterRoutes.SERVER_ERROR: [(500, "Internal Server Error")] * 5,
    ClusterRoutes.GONE: [
        (405, "Method Not Allowed"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (404, "Not Found"),
        (404, "Not Found"),
    ],
}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_cluster_routes_answer_as_the_mode_says(
    server: LocalBytezServer, client: httpx.Client, mode: ClusterRoutes
) -> None:
    server.cluster_routes = mode.value
    got = []
    for method, path, body in CLUSTER_CALLS:
        r = client.request(method, path, json=body)
        got.append((r.status_code, r.json()["error"]))
    assert got == EXPECTED[mode]
    # runs still work (serverless: the first run starts the model)
    assert run(client, GPT2, {"text": "x", "params": {"max_new_tokens": 2}}).status_code == 200


def test_cluster_routes_on_and_the_bool_forms(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.cluster_routes = True
    assert server.cluster_routes is ClusterRoutes.ON
    r = client.put(f"/models/v2/{GPT2}", json={"capacity": {"min": 1, "desired": 2, "max": 2}})
    assert r.status_code == 202
    assert client.get(f"/models/v2/{GPT2}").json()["output"]["capacity"]["desired"] == 2
    server.cluster_routes = False
    assert server.cluster_routes is ClusterRoutes.GONE
    with pytest.raises(ValueError):
        server.cluster_routes = "sometimes"


def test_hanging_cluster_routes_hold_until_the_client_gives_up(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.cluster_routes = ClusterRoutes.HANG
    t0 = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/models/v2/{GPT2}", timeout=0.5)
    assert time.perf_counter() - t0 < 3
    deadline = time.monotonic() + 3
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the hang-up and logs an aborted request
    assert [r.status for r in server.requests] == [0]
    assert run(client, GPT2, {"text": "x"}).status_code == 200  # nothing else is held


def test_the_log_keeps_arrival_order_when_a_hung_request_ends_late(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    # A cluster call hangs (its connection held open), a run is answered meanwhile, then
    # the hung call's client gives up: the log still shows the cluster call first, as
    # the requests arrived, though it ended last.
    server.cluster_routes = ClusterRoutes.HANG
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as hung:
        hung.sendall(
            f"GET /models/v2/{GPT2} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Key {KEY}\r\n\r\n".encode()
        )
        time.sleep(0.2)  # the server has read it and hangs
        assert run(client, GPT2, {"text": "x"}).status_code == 200
        assert [r.method for r in server.requests] == ["POST"]
    deadline = time.monotonic() + 3
    while len(server.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the hang-up and logs the aborted call
    log = server.requests
    assert [(r.method, r.status) for r in log] == [("GET", 0), ("POST", 200)]
    assert log[0].arrival < log[1].arrival


def test_a_hanging_request_ends_when_the_server_stops(bytez_server_factory) -> None:
    server = bytez_server_factory(cluster_routes="hang")
    t0 = time.perf_counter()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        import threading

        errors: list[BaseException] = []

        def call() -> None:
            try:
                c.put(f"/models/v2/{GPT2}", json={}, timeout=20)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        time.sleep(0.3)
        server.stop()
        thread.join(5)
    assert not thread.is_alive()
    assert errors
    assert isinstance(errors[0], httpx.TransportError)
    assert time.perf_counter() - t0 < 5


# ------------------------------------------------------------------ prices and meters

_SDK_METERS = {"micro", "xs", "sm", "md", "lg", "xl", "xxl", "super"}


def test_catalogue_prices_are_strings_and_meters_have_the_live_names(
    client: httpx.Client,
) -> None:
    listed = client.get("/models/v2/list/models").json()["output"]
    assert listed == CATALOGUE
    for entry in listed:
        assert set(entry) == {"modelId", "task", "params", "ramRequired", "meter", "meterPrice"}
        assert re.fullmatch(r"\d+(\.\d+)? / sec", entry["meterPrice"]), entry
        assert entry["meter"].removesuffix("-lm") in _SDK_METERS, entry
    gpt2 = next(e for e in listed if e["modelId"] == GPT2)
    r = run(client, GPT2, {"text": "x", "params": {"max_new_tokens": 1}})
    assert r.headers["inference-meter"] == gpt2["meter"]
    assert r.headers["inference-meter-price"] == gpt2["meterPrice"]


# ------------------------------------------------------------------ streams


def test_streams_are_event_stream_and_end_with_the_error_item(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.set_reply(["The log says ", "Error: ", "file not found", ", so check."])
    body = {"text": "x", "stream": True}
    with client.stream("POST", f"/models/v2/{GPT2}", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        chunks = list(r.iter_raw())
    # model text may contain "Error: " anywhere: the server sends it as it is
    assert b"".join(chunks) == b"The log says Error: file not found, so check."
    server.set_reply(["Hello", " world", " and more"])
    server.inject(FaultKind.ERROR_MID_STREAM, after_tokens=2, message="CUDA out of memory")
    with client.stream("POST", f"/models/v2/{GPT2}", json=body) as r:
        assert r.status_code == 200
        chunks = list(r.iter_raw())
    assert chunks == [b"Hello", b" world", b"Error: CUDA out of memory"]  # last item, then end


# ------------------------------------------------------------------ auth forms


@pytest.mark.parametrize(
    ("forms", "accepted"),
    [
        (["key"], {"Key"}),
        ([AuthForm.KEY, AuthForm.BEARER], {"Key", "Bearer"}),
        (["raw"], {"raw"}),
        (["key", "bearer", "raw"], {"Key", "Bearer", "raw"}),
    ],
)
def test_auth_forms_knob(server: LocalBytezServer, forms: list[Any], accepted: set[str]) -> None:
    server.auth_forms = forms
    values = {"Key": f"Key {KEY}", "Bearer": f"Bearer {KEY}", "raw": KEY}
    for name, value in values.items():
        r = httpx.get(f"{server.url}/models/v2/list/tasks", headers={"Authorization": value})
        assert (r.status_code == 200) == (name in accepted), (name, r.status_code)
    server.reset()
    assert server.auth_forms == frozenset({AuthForm.KEY})
    with pytest.raises(ValueError):
        server.auth_forms = []


# ------------------------------------------------------------------ input forms (official SDKs)


def test_input_form_for_text_chat_and_media_keys(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    native = run(client, GPT2, {"text": "Once", "params": {"max_new_tokens": 4}}).json()
    sdk = run(client, GPT2, {"input": "Once", "params": {"max_new_tokens": 4}, "json": None})
    assert sdk.json() == native
    chat_native = run(client, CHAT, {"messages": USER}).json()
    chat_sdk = run(client, CHAT, {"input": USER, "stream": False}, headers={"lang": "python"})
    assert chat_sdk.json() == chat_native
    assert server.requests[-1].headers["lang"] == "python"
    streamed = run(client, GPT2, {"input": "Once", "stream": True, "json": False})
    assert streamed.text == "".join(generate_continuation("Once", 20))
    for bad, fragment in (
        ({"input": "hi"}, "list of messages"),
        ({"text": "a", "input": "b"}, "one input"),
        ({"input": USER, "url": 5}, "`url`"),
        ({"input": USER, "json": "yes"}, "`json`"),
        ({"input": USER, "prompt": "x"}, "Unknown field(s): prompt"),
    ):
        r = run(client, CHAT, bad)
        assert r.status_code == 400, bad
        assert fragment in r.json()["error"], (bad, r.json())
    media = run(client, GPT2, {"url": "https://example.com/cat.png"})
    assert media.status_code == 400
    assert "media" in media.json()["error"]


def test_media_input_as_url_base64_or_input(client: httpx.Client) -> None:
    vit = "google/vit-base-patch16-224"
    url = "https://example.com/cat.png"
    by_url = run(client, vit, {"url": url})
    assert by_url.status_code == 200
    labels = by_url.json()["output"]
    assert [set(item) for item in labels] == [{"label", "score"}] * len(labels)
    assert run(client, vit, {"input": url}).json()["output"] == labels  # the SDK's form
    data_uri = "data:image/png;base64,iVBORw0KGgo="
    assert run(client, vit, {"base64": data_uri}).status_code == 200
    for bad in ({"text": url}, {"url": url, "input": url}, {"base64": "iVBOR"}, {"url": ""}):
        r = run(client, vit, bad)
        assert r.status_code == 400, bad


# ------------------------------------------------------------------ fake models


def test_a_new_behaviour_is_one_function_and_one_row(
    bytez_server_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def shout(run: FakeRun) -> FakeAnswer:
        text = (run.text or "").upper()
        return FakeAnswer([text], text)

    monkeypatch.setitem(FAKE_MODELS, "shout", shout)
    row = CatalogueRow("acme/shouter", "text-generation", 0.1, 0.4, "xs", 0.00001, fake="shout")
    server = bytez_server_factory(models=[*ROWS, row], load_delay=0)
    r = httpx.post(
        f"{server.url}/models/v2/acme/shouter",
        json={"text": "quiet please"},
        headers={"Authorization": f"Key {KEY}"},
    )
    assert r.json() == {"error": None, "output": "QUIET PLEASE"}


def test_chat_and_summaries_read_as_english(client: httpx.Client) -> None:
    content = run(client, CHAT, {"messages": USER, "params": {"max_new_tokens": 30}}).json()[
        "output"
    ]["content"]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", content) if s]
    assert len(sentences) >= 2
    assert all(s[0].isupper() or s[0] == '"' for s in sentences), sentences


def test_testing_package_imports_nothing_from_the_client_layers() -> None:
    root = Path(__file__).resolve().parents[2] / "langchain_bytez" / "testing"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("langchain"):
                    assert name.startswith("langchain_bytez.testing"), (path.name, name)


# ------------------------------------------------------------------ hardening


def test_control_routes_require_the_key_and_refuse_foreign_origins(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    fault = {"kind": "status_503"}
    assert httpx.post(f"{server.url}/_local/faults", json=fault).status_code == 401
    wrong = httpx.post(
        f"{server.url}/_local/reset", headers={"Authorization": "Key wrong"}, json={}
    )
    assert wrong.status_code == 401
    foreign = client.post("/_local/faults", json=fault, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    other_port = client.post("/_local/faults", json=fault, headers={"Origin": "http://127.0.0.1:1"})
    assert other_port.status_code == 403
    assert run(client, GPT2, {"text": "x"}).status_code == 200  # nothing was queued
    own = client.post(
        "/_local/faults", json=fault, headers={"Origin": f"http://127.0.0.1:{server.port}"}
    )
    assert own.status_code == 200
    assert run(client, GPT2, {"text": "x"}).status_code == 503


def test_request_log_is_bounded(bytez_server_factory) -> None:
    server = bytez_server_factory(request_log_limit=5, load_delay=0)
    assert server.request_log_limit == 5
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        for i in range(8):
            c.get("/models/v2/list/models", params={"task": str(i)})
    log = server.requests
    assert [r.query["task"] for r in log] == ["3", "4", "5", "6", "7"]
    with pytest.raises(ValueError):
        LocalBytezServer(request_log_limit=0)


def test_idle_keep_alive_connections_are_closed(bytez_server_factory) -> None:
    server = bytez_server_factory(idle_timeout=0.3)
    request = (
        f"GET /models/v2/list/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Key {KEY}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        t0 = time.perf_counter()
        assert sock.recv(65536) == b""  # the server closed the idle connection
        assert 0.2 < time.perf_counter() - t0 < 3
    # a connection that never sends a request is closed too
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert sock.recv(65536) == b""


# ------------------------------------------------------------------ command line


def test_cli_flags_set_the_modes(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    port_file = tmp_path / "port"
    args = [
        *("--port", "0", "--port-file", str(port_file), "--api-key", "cli-key", "--quiet"),
        *("--cluster-routes", "method_not_allowed", "--lenient-params"),
        *("--auth-form", "bearer", "--request-log-limit", "3", "--idle-timeout", "5"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_bytez.server", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        base = f"http://127.0.0.1:{int(port_file.read_text())}/models/v2"
        bearer = {"Authorization": "Bearer cli-key"}
        assert (
            httpx.get(f"{base}/list/tasks", headers={"Authorization": "Key cli-key"}).status_code
            == 401
        )
        assert httpx.put(f"{base}/{GPT2}", json={}, headers=bearer).status_code == 405
        lenient = {"text": "x", "params": {"stop_strings": ["y"]}}
        assert httpx.post(f"{base}/{GPT2}", json=lenient, headers=bearer).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_cli_refuses_an_unknown_mode() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "langchain_bytez.server", "--cluster-routes", "sometimes"],
        capture_output=True,
        text=True,
        timeout=60,  # importing the package is slow on a loaded machine
        check=False,
    )
    assert result.returncode == 2
    assert "sometimes" in result.stderr
