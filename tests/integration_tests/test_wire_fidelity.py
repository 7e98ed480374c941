"""Faithful to the live API where the local server cannot (yet) say so: real HTTP, tiny servers.

Each test starts a small raw HTTP server on 127.0.0.1 that answers exactly one way the
live service might (cluster routes answering 404, 405, 500, hanging or garbage; an
existing 4-instance / 60-minute cluster; a stream whose last item is ``Error: ...``) and
checks what the package sends and returns over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from langchain_bytez import BytezLLM, ChatBytez
from langchain_bytez import manager as manager_module
from langchain_bytez.errors import (
    BytezAuthenticationError,
    BytezConnectionError,
    BytezStreamError,
)

MODEL = "org/model"
KEY = "wire-test-key"
CATALOGUE_404 = "Model does not exist or has yet to be added to the Bytez catalog"


@dataclass
class Seen:
    method: str
    path: str
    body: Any


@dataclass
class Script:
    """How the raw server answers; every field may be changed while it runs."""

    cluster: Callable[[str, Any], tuple[int, Any] | None] | None = None
    run_output: Any = "Once upon a time there was a test"
    stream_chunks: list[bytes] = field(default_factory=lambda: [b" hello", b" world"])
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, *methods: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method in methods]

    def cluster_calls(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if not (s.method == "POST" and s.path.count("/") == 4)]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return  # quiet

        def _answer(self, status: int, payload: Any, *, raw: bytes | None = None) -> None:
            body = raw if raw is not None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json" if raw is None else "text/html")
            self.send_header("content-length", str(len(body)))
            self.send_header("inference-meter-price", "0.0006478333 / sec")
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with script.lock:
                script.seen.append(Seen(self.command, self.path, body))
            if self.headers.get("authorization") != f"Key {KEY}":
                self._answer(401, {"error": "Unauthorized", "output": None})
                return
            is_run = self.command == "POST" and self.path.startswith("/models/v2/")
            if is_run:
                self._run(body or {})
                return
            answer = script.cluster(self.command, body) if script.cluster else None
            if answer is None:
                return  # the script already wrote (or hung)
            status, payload = answer
            if isinstance(payload, bytes):
                self._answer(status, None, raw=payload)
            else:
                self._answer(
                    status, {"error": None, "output": payload} if status < 400 else payload
                )

        def _run(self, body: dict[str, Any]) -> None:
            if not body.get("stream"):
                output = script.run_output
                if "messages" in body and isinstance(output, str):
                    output = {"role": "assistant", "content": output}
                self._answer(200, {"error": None, "output": output})
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for chunk in script.stream_chunks:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
                time.sleep(0.03)  # one network read per item, as the container writes them
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _handle  # noqa: N815

    return Handler


@pytest.fixture
def raw() -> Iterator[tuple[str, Script]]:
    script = Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _short_implicit_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    # The documented budget is 10 s per implicit call; the hanging route needs less here.
    monkeypatch.setattr(manager_module, "IMPLICIT_CALL_TIMEOUT", 0.5)


def llm(url: str, **kwargs: Any) -> BytezLLM:
    kwargs.setdefault("model", MODEL)
    return BytezLLM(api_key=KEY, base_url=url, max_retries=0, **kwargs)


def bytez_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if "auto-load" in str(w.message)]


# ------------------------------------------------------------------ implicit auto-load


def _hang(method: str, body: Any) -> None:
    time.sleep(2.0)  # longer than the implicit budget; bounded so the thread ends


CLUSTER_FAILURES: dict[str, Callable[[str, Any], tuple[int, Any] | None]] = {
    "404 plain": lambda m, b: (404, b"Cannot GET"),
    "404 catalogue text": lambda m, b: (404, {"error": CATALOGUE_404, "output": None}),
    "405": lambda m, b: (405, {"error": "Method Not Allowed", "output": None}),
    "500": lambda m, b: (500, {"error": "Internal Server Error", "output": None}),
    "hanging": _hang,
    "malformed": lambda m, b: (200, b"<html>gateway</html>"),
    "odd object": lambda m, b: (200, ["not", "a", "cluster"]),
}


@pytest.mark.parametrize("mode", sorted(CLUSTER_FAILURES))
def test_any_cluster_route_failure_sends_the_run_and_warns_once(
    raw: tuple[str, Script], mode: str
) -> None:
    url, script = raw
    script.cluster = CLUSTER_FAILURES[mode]
    model = llm(url)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert model.invoke("Once") == " upon a time there was a test"
        assert model.invoke("Once") == " upon a time there was a test"
        assert "".join(llm(url, concurrency=2).stream("Hi")) == " hello world"
    assert len(bytez_warnings(record)) == 1, bytez_warnings(record)
    assert script.calls("PATCH", "DELETE") == []
    assert len(script.calls("POST")) == 3  # every run was sent
    # Implicit calls are sent once each (no retries) and not again on later runs.
    assert len(script.calls("GET")) == 1
    assert len(script.calls("PUT")) <= 1


@pytest.mark.parametrize("mode", ["404 catalogue text", "500", "hanging"])
def test_async_runs_fall_back_the_same_way(raw: tuple[str, Script], mode: str) -> None:
    url, script = raw
    script.cluster = CLUSTER_FAILURES[mode]
    model = llm(url)

    async def both() -> list[str]:
        return [await model.ainvoke("Once"), await _join_async(model)]

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert asyncio.run(both()) == [" upon a time there was a test", " hello world"]
    assert len(bytez_warnings(record)) == 1
    assert script.calls("PATCH", "DELETE") == []
    assert len(script.calls("GET")) == 1


def test_a_hanging_cluster_route_costs_the_run_only_the_short_budget(
    raw: tuple[str, Script],
) -> None:
    url, script = raw
    script.cluster = _hang
    started = time.monotonic()
    with pytest.warns(UserWarning, match="auto-load"):
        assert llm(url).invoke("Once") == " upon a time there was a test"
    # One bounded GET (0.5 s here), then the run: far below the 2 s the route hangs.
    assert time.monotonic() - started < 1.8


def test_existing_cluster_is_never_changed_by_implicit_auto_load(raw: tuple[str, Script]) -> None:
    url, script = raw
    cluster = {
        "modelId": MODEL,
        "status": "on",
        "timeout": 60,
        "capacity": {"min": 4, "desired": 4, "max": 4},
    }
    script.cluster = lambda method, body: (200, cluster) if method == "GET" else (500, {})
    one, three = llm(url, concurrency=1), llm(url, concurrency=3, instance_timeout=120)
    for i in range(6):
        assert (one if i % 2 else three).invoke("Once") == " upon a time there was a test"
    assert script.calls("PUT", "PATCH", "DELETE") == []
    assert len(script.calls("GET")) == 1  # seen running once, remembered


@pytest.mark.parametrize("status", ["off", "failed"])
def test_an_off_or_failed_cluster_is_left_alone(raw: tuple[str, Script], status: str) -> None:
    url, script = raw
    cluster = {"modelId": MODEL, "status": status, "capacity": {"min": 2, "desired": 2, "max": 2}}
    script.cluster = lambda method, body: (200, cluster) if method == "GET" else (500, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a failure: no warning either
        assert llm(url).invoke("Once") == " upon a time there was a test"
    assert script.calls("PUT", "PATCH", "DELETE") == []


def test_a_cluster_is_created_only_when_none_exists(raw: tuple[str, Script]) -> None:
    url, script = raw
    state: dict[str, Any] = {}

    def cluster(method: str, body: Any) -> tuple[int, Any]:
        if method == "PUT":
            state.update(body, status="on", modelId=MODEL)
            return 202, "Loading"
        if method == "GET":
            return (200, state) if state else (404, {"error": "Not Found", "output": None})
        return 500, {"error": "unexpected", "output": None}

    script.cluster = cluster
    assert llm(url, concurrency=2, instance_timeout=600).invoke("Once").startswith(" upon")
    assert [s.body for s in script.calls("PUT")] == [
        {"capacity": {"min": 2, "desired": 2, "max": 2}, "timeout": 10}
    ]
    # A second object with other settings uses the cluster as it is.
    assert llm(url, concurrency=5).invoke("Once").startswith(" upon")
    assert len(script.calls("PUT")) == 1
    assert script.calls("PATCH", "DELETE") == []


def test_closed_source_models_get_no_cluster_call(raw: tuple[str, Script]) -> None:
    url, script = raw
    script.cluster = lambda method, body: (500, {"error": "must not be called", "output": None})
    chat = ChatBytez(model="openai/gpt-4o", api_key=KEY, base_url=url, max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert chat.invoke("Hi").text == "Once upon a time there was a test"
        assert llm(url, model="anthropic/claude-3-haiku-20240307").invoke("x")
    assert script.cluster_calls() == []


def test_a_401_on_the_cluster_route_is_raised_not_hidden(raw: tuple[str, Script]) -> None:
    url, script = raw
    script.cluster = lambda method, body: (401, {"error": "Unauthorized", "output": None})
    with pytest.raises(BytezAuthenticationError):
        llm(url).invoke("Once")
    assert script.calls("POST") == []


def test_a_prompt_the_client_refuses_is_refused_before_any_cluster_call(
    raw: tuple[str, Script],
) -> None:
    url, script = raw
    script.cluster = lambda method, body: (500, {"error": "must not be called", "output": None})
    model = llm(url)
    with pytest.raises(ValueError, match="JSON"):
        model.invoke("lone \ud800 surrogate")
    with pytest.raises(ValueError, match="JSON"):
        list(model.stream("lone \ud800 surrogate"))
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.invoke("Hi", params={"max_new_tokens": "9"})
    with pytest.raises(ValueError, match="model id"):
        llm(url, model="bad model id").invoke("Hi")
    assert script.seen == []


# ------------------------------------------------------------------ params


def test_stop_and_greedy_decoding_as_the_service_accepts_them(raw: tuple[str, Script]) -> None:
    url, script = raw
    script.cluster = CLUSTER_FAILURES["405"]
    script.stream_chunks = [b" alpha", b" beta", b" EN", b"D gamma"]
    model = llm(url, temperature=0.0, stop=["END"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "".join(model.stream("Hi")) == " alpha beta "
        assert model.invoke("Once", stop=["time"]) == " upon a "
    for run in script.calls("POST"):
        assert run.body["params"] == {"do_sample": False}


# ------------------------------------------------------------------ base URL and prices


@pytest.mark.parametrize("suffix", ["", "/", "/models/v2", "/models/v2/"])
def test_base_url_accepts_the_root_and_the_models_v2_form(
    raw: tuple[str, Script], suffix: str
) -> None:
    url, script = raw
    script.cluster = CLUSTER_FAILURES["405"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = llm(url + suffix, auto_load=False).generate(["Once"])
    assert script.calls("POST")[-1].path == f"/models/v2/{MODEL}"
    info = result.generations[0][0].generation_info or {}
    assert info["inference_meter_price"] == 0.0006478333
    assert info["inference_meter_price_unit"] == "sec"


# ------------------------------------------------------------------ stream errors


GOOD = [b"The log says ", b"Error: ", b"file not found", b", so check the path."]
BAD = [b"Hello", b" world", b"Error: CUDA out of memory"]


def test_error_like_model_text_streams_and_invokes_whole(raw: tuple[str, Script]) -> None:
    url, script = raw
    script.stream_chunks = GOOD
    whole = b"".join(GOOD).decode()
    model = llm(url, auto_load=False)
    chat = ChatBytez(model=MODEL, api_key=KEY, base_url=url, auto_load=False, max_retries=0)
    assert "".join(model.stream("x")) == whole
    assert model.invoke("x", streaming=True) == whole
    assert asyncio.run(_join_async(model)) == whole
    assert "".join(c.text for c in chat.stream("x")) == whole
    assert chat.invoke("x", streaming=True).text == whole


async def _join_async(model: BytezLLM) -> str:
    return "".join([piece async for piece in model.astream("x")])


def test_last_error_item_raises_a_stream_error_keeping_the_text(raw: tuple[str, Script]) -> None:
    url, script = raw
    script.stream_chunks = BAD
    model = llm(url, auto_load=False)
    chat = ChatBytez(model=MODEL, api_key=KEY, base_url=url, auto_load=False, max_retries=0)
    pieces: list[str] = []
    with pytest.raises(BytezStreamError, match="CUDA out of memory") as streamed:
        pieces.extend(model.stream("x"))
    assert "".join(pieces) == "Hello world"
    assert streamed.value.delivered_text == "Hello world"
    with pytest.raises(BytezStreamError, match="CUDA out of memory") as invoked:
        model.invoke("x", streaming=True)
    assert invoked.value.delivered_text == "Hello world"
    with pytest.raises(BytezStreamError, match="CUDA out of memory"):
        asyncio.run(_join_async(model))
    with pytest.raises(BytezStreamError, match="CUDA out of memory") as chatted:
        list(chat.stream("x"))
    assert chatted.value.delivered_text == "Hello world"


# ------------------------------------------------------------------ short tracebacks


def test_connection_refused_traceback_is_short_with_the_cause_last() -> None:
    model = BytezLLM(model=MODEL, api_key=KEY, base_url="http://127.0.0.1:9", max_retries=2)
    with pytest.raises(BytezConnectionError) as caught:
        model.invoke("Hi")
    lines = "".join(traceback.format_exception(caught.value)).rstrip().splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    assert lines[-1].startswith("langchain_bytez.errors.BytezConnectionError: ")
    assert lines[-1].endswith("Connection refused")
    assert caught.value.cause is not None  # the transport error is kept, not chained
    assert "httpcore" not in "\n".join(lines)
    assert "RetryError" not in "\n".join(lines)
