"""The API key never leaves the Authorization header.

A recognisable fake key is used for real calls against the local server (which accepts
it), and every place a key could leak is searched for it: ``repr``/``str`` of every
public object, LangChain serialisation, pickles, callback payloads, tracer runs, DEBUG
logs of every logger (ours, httpx, httpcore, the local server), and the messages and
formatted tracebacks (whole ``__cause__``/``__context__`` chains) of every error a real
failure produces, including failures whose server message *echoes* the key.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run

from langchain_bytez import (
    AsyncBytezClient,
    BytezCatalogLoader,
    BytezClient,
    BytezEmbeddings,
    BytezError,
    BytezInstanceLoader,
    BytezLLM,
    ChatBytez,
    ModelManager,
)
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezConnectionError,
    BytezInvalidRequestError,
    BytezModelLoadError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezRateLimitError,
    BytezStreamError,
    BytezTimeoutError,
)
from langchain_bytez.server import FaultKind, LocalBytezServer

FAKE = "sk-bytez-FAKE-KEY-7f3a9c"
HEADER_SECRET = "hdr-FAKE-SECRET-55aa91"
LLM_MODEL = "openai-community/gpt2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

ServerFactory = Callable[..., LocalBytezServer]


def assert_clean(*texts: object) -> None:
    for text in texts:
        rendered = text if isinstance(text, str) else repr(text)
        assert FAKE not in rendered, rendered[:2000]


def assert_error_clean(error: BaseException) -> None:
    """Message, repr, attributes, pickle and the formatted chained traceback."""
    formatted = "".join(traceback.format_exception(error))
    assert_clean(str(error), repr(error), formatted, repr(vars(error)), repr(error.args))
    chained: BaseException | None = error
    while chained is not None:  # format_exception covers the chain; be explicit anyway
        assert_clean(str(chained), repr(chained))
        chained = chained.__cause__ or chained.__context__
    assert FAKE.encode() not in pickle.dumps(error)


@pytest.fixture
def server(bytez_server_factory: ServerFactory) -> LocalBytezServer:
    return bytez_server_factory(api_keys={FAKE}, load_delay=0.0)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # Every logger at DEBUG, the server's and httpx/httpcore's included.
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "langchain_bytez", "langchain_bytez.server"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    records = caplog.get_records("setup") + caplog.get_records("call")
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records)
    assert records  # the capture really captured something
    assert_clean(text)


def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_bytez.clients import io as client_io  # noqa: PLC0415

    monkeypatch.setattr(client_io, "sleep", lambda s: None)

    async def asleep(s: float) -> None:
        return None

    monkeypatch.setattr(client_io, "async_sleep", asleep)


# ------------------------------------------------------------------------- callbacks, tracers


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.payloads: list[Any] = []

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self.payloads.append(("llm_start", serialized, prompts, kwargs))

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.payloads.append(("chat_start", serialized, messages, kwargs))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.payloads.append(("llm_end", response, kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.payloads.append(("llm_error", error, kwargs))

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self.payloads.append(("retry", repr(retry_state.outcome.exception()), kwargs))

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.payloads.append(("custom", name, data, kwargs))


class CollectingTracer(BaseTracer):
    """A LangSmith-style tracer: keeps every finished root run (children inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.runs.append(run)

    def dump(self) -> str:
        def walk(run: Run) -> Iterator[Run]:
            yield run
            for child in run.child_runs:
                yield from walk(child)

        parts = []
        for root in self.runs:
            for run in walk(root):
                parts.append(
                    json.dumps(
                        {
                            "serialized": run.serialized,
                            "extra": run.extra,  # invocation_params and metadata
                            "inputs": run.inputs,
                            "outputs": run.outputs,
                            "error": run.error,
                            "events": run.events,
                            "tags": run.tags,
                        },
                        default=repr,
                    )
                )
        return "\n".join(parts)


def test_models_calls_callbacks_tracers_and_serialisation(
    server: LocalBytezServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    # Cluster routes on (one mode of the live service): auto-load then reports its
    # progress as custom callback events, whose payloads are checked too.
    server.cluster_routes = "on"
    # A credential in default_headers is a secret like the keys.
    common = {
        "api_key": FAKE,
        "base_url": server.url,
        "provider_key": FAKE,
        "default_headers": {"X-Api-Key": HEADER_SECRET, "X-Trace": "t1"},
    }
    llm = BytezLLM(model=LLM_MODEL, max_new_tokens=4, temperature=0.5, **common)
    chat = ChatBytez(model=CHAT_MODEL, max_new_tokens=4, **common)
    emb = BytezEmbeddings(model=EMBED_MODEL, **common)
    recorder, tracer = Recorder(), CollectingTracer()
    config = {"callbacks": [recorder, tracer], "metadata": {"user": "u1"}}

    server.inject(FaultKind.STATUS_503, 1)  # an on_retry payload too
    llm.invoke("Hi", config=config)
    list(llm.stream("Hi", config=config))
    llm.batch(["a", "b"], config=config)
    chat.invoke("Hi", config=config)
    list(chat.stream("Hi", config=config))
    emb.embed_documents(["x", "y"])

    kinds = {payload[0] for payload in recorder.payloads}
    assert {"llm_start", "chat_start", "llm_end", "retry", "custom"} <= kinds
    assert len(tracer.runs) >= 6
    assert_clean(recorder.payloads, tracer.dump(), repr(tracer.runs))
    shown = (recorder.payloads, tracer.dump(), repr(tracer.runs), debug_logs.text)
    assert not any(HEADER_SECRET in (s if isinstance(s, str) else repr(s)) for s in shown)

    for model in (llm, chat, emb):
        # The header secret: everywhere but the object's own attributes (vars()).
        for text in (repr(model), str(model), dumps(model), model.model_dump_json()):
            assert HEADER_SECRET not in text
        assert HEADER_SECRET not in repr(getattr(model, "_identifying_params", {}))
        assert_clean(
            repr(model),
            str(model),
            dumps(model),
            json.dumps(dumpd(model)),
            model.model_dump(),
            model.model_dump_json(),
            getattr(model, "_identifying_params", {}),
            vars(model),
        )
        assert FAKE.encode() not in pickle.dumps(model)
        client = model._sync_client()
        assert_clean(
            repr(client), str(client), client.cache_key, repr(ModelManager.for_client(client))
        )
        with pytest.raises(TypeError):
            pickle.dumps(client)
    # The key did reach the server, in the header only (and is not recorded there).
    assert all("authorization" not in r.headers for r in server.requests)


def test_serverless_fallback_warning_and_logs_are_clean(
    server: LocalBytezServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    # The local server's default: cluster routes answer 404, so the implicit auto-load
    # falls back to a serverless run with one warning; neither it nor the logs hold the key.
    llm = BytezLLM(model=LLM_MODEL, max_new_tokens=4, api_key=FAKE, base_url=server.url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert llm.invoke("Hi")
    fallback = [w for w in caught if "serverless" in str(w.message)]
    assert len(fallback) == 1
    assert_clean(*(str(w.message) for w in caught))


async def test_async_objects_streams_handles_and_loaders(
    server: LocalBytezServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    server.cluster_routes = "on"  # a real load, status and stop (not the serverless answer)
    async with AsyncBytezClient(FAKE, base_url=server.url, provider_key=FAKE) as aclient:
        handle = aclient.model(LLM_MODEL)
        await handle.load(concurrency=1)
        stream = aclient.stream(LLM_MODEL, {"text": "Hi"})
        async with stream:
            pieces = [p async for p in stream]
        assert pieces
        assert_clean(repr(aclient), repr(handle), repr(stream), str(stream), vars(stream))
        assert_clean(repr(await handle.status()), repr(handle.manager))
        await handle.stop()
    with BytezClient(FAKE, base_url=server.url) as client:
        handle = client.model(LLM_MODEL)
        with client.stream(LLM_MODEL, {"text": "Hi"}) as sync_stream:
            list(sync_stream)
        assert_clean(repr(client), repr(handle), repr(sync_stream), vars(sync_stream))
        with pytest.raises(TypeError):
            pickle.dumps(sync_stream)  # holds the client, which refuses
    for loader in (
        BytezCatalogLoader(api_key=FAKE, base_url=server.url),
        BytezInstanceLoader(api_key=FAKE, base_url=server.url),
    ):
        docs = loader.load()
        assert_clean(repr(loader), str(loader), vars(loader), docs)
        try:
            blob = pickle.dumps(loader)
        except TypeError:
            continue  # refusing is fine
        assert FAKE.encode() not in blob


# ------------------------------------------------------------------------- real failures


def _raise_for(kind: str, server: LocalBytezServer, monkeypatch: pytest.MonkeyPatch) -> BytezError:
    """Provoke one real failure of the given kind; return the error raised."""
    _fast(monkeypatch)
    llm = BytezLLM(model=LLM_MODEL, api_key=FAKE, base_url=server.url, auto_load=False)
    # Faults whose server message echoes the key: a hostile or buggy gateway.
    echo = f"bad credentials {FAKE} (Authorization: Key {FAKE})"
    try:
        if kind == "connection":
            with socket.socket() as s:  # a port with nobody listening
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            BytezLLM(model=LLM_MODEL, api_key=FAKE, base_url=f"http://127.0.0.1:{port}",
                     auto_load=False, max_retries=1).invoke("x")  # fmt: skip
        elif kind == "timeout":
            server.inject(FaultKind.SLOW_FIRST_BYTE, 1, delay=0.6)
            BytezLLM(model=LLM_MODEL, api_key=FAKE, base_url=server.url, auto_load=False,
                     max_retries=0, timeout=0.2).invoke("x")  # fmt: skip
        elif kind == "load":
            # An explicit load: implicit auto-load never raises for a failed cluster
            # (the run is sent anyway), so the typed load error comes from load().
            server.cluster_routes = "on"  # a cluster that exists, then fails to boot
            server.fail_next_load(LLM_MODEL, reason=f"boot failed for {FAKE}")
            with BytezClient(api_key=FAKE, base_url=server.url) as client:
                client.model(LLM_MODEL).load(progress=False)
        elif kind == "stream_mid":
            server.inject(FaultKind.ERROR_MID_STREAM, 1, message=echo)
            list(llm.stream("x"))
        elif kind == "stream_drop":
            server.inject(FaultKind.DISCONNECT_MID_STREAM, 1)
            list(llm.stream("x"))
        else:
            fault = FaultKind(kind)
            server.inject(fault, 5, message=echo, retry_after=0.01)
            llm.invoke("x")
    except BytezError as exc:
        return exc
    pytest.fail(f"{kind} did not fail")


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("unauthorized", BytezAuthenticationError),
        ("payment_required", BytezPaymentRequiredError),
        ("not_found", BytezNotFoundError),
        ("invalid_params", BytezInvalidRequestError),
        ("rate_limit", BytezRateLimitError),
        ("status_503", BytezAPIError),
        ("html_502", BytezAPIError),
        ("error_envelope", BytezAPIError),
        ("malformed_json", BytezAPIError),
        ("connection", BytezConnectionError),
        ("timeout", BytezTimeoutError),
        ("stream_mid", BytezStreamError),
        ("stream_drop", BytezStreamError),
        ("load", BytezModelLoadError),
    ],
)
def test_errors_and_tracebacks_of_real_failures(
    server: LocalBytezServer,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    kind: str,
    cls: type[BytezError],
) -> None:
    error = _raise_for(kind, server, monkeypatch)
    assert isinstance(error, cls)
    assert_error_clean(error)


def test_error_echoing_the_key_is_redacted_not_dropped(
    server: LocalBytezServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The redaction keeps the rest of the server's message: still useful to a reader.
    error = _raise_for("invalid_params", server, monkeypatch)
    assert "bad credentials ***" in str(error)


# ------------------------------------------------------------------------- plain http


def test_plain_http_to_a_remote_host_warns_without_opening_a_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_sockets(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a real socket was opened")

    monkeypatch.setattr(socket, "create_connection", no_sockets)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"error": None, "output": "Hi there"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        # The warning comes when the object is made, before anything is sent.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            llm = BytezLLM(
                model=LLM_MODEL,
                api_key=FAKE,
                base_url="http://example.invalid",
                http_client=http,
                auto_load=False,
            )
        with warnings.catch_warnings(record=True) as later:
            warnings.simplefilter("always")
            assert llm.invoke("Hi") == " there"
    assert not [w for w in later if "plain http" in str(w.message)]  # not again per call
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("plain http://" in m and "example.invalid" in m for m in messages)
    assert_clean(messages)
    # The request went to the mock transport (and did carry the key, as asked).
    assert [str(r.url) for r in seen] == [f"http://example.invalid/models/v2/{LLM_MODEL}"]
    assert seen[0].headers["authorization"] == f"Key {FAKE}"
