"""The local Bytez-compatible server, exercised over real HTTP with httpx."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_bytez.server import (
    CATALOGUE,
    ClusterRoutes,
    FaultKind,
    LocalBytezServer,
    RecordedRequest,
    embed_text,
    generate_continuation,
)

KEY = "test-key"
GPT2 = "openai-community/gpt2"
CHAT = "Qwen/Qwen2.5-0.5B-Instruct"
VL = "Qwen/Qwen2-VL-2B-Instruct"
SEVEN = (
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "inference-meter",
    "inference-meter-price",
    "inference-time",
    "inference-cost",
)


@pytest.fixture
def server(bytez_server: LocalBytezServer) -> LocalBytezServer:
    bytez_server.load_delay = 0.0  # no cold start unless a test asks for one
    # This file tests the cluster simulation; the modes have their own files.
    bytez_server.cluster_routes = ClusterRoutes.ON
    return bytez_server


@pytest.fixture
def client(server: LocalBytezServer):
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Key {KEY}"}, timeout=10
    ) as c:
        yield c


def run(client: httpx.Client, model: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return client.post(f"/models/v2/{model}", json=body, **kw)


def stream_chunks(
    client: httpx.Client, model: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[bytes], list[float]]:
    chunks: list[bytes] = []
    times: list[float] = []
    with client.stream("POST", f"/models/v2/{model}", json={**body, "stream": True}) as r:
        for chunk in r.iter_raw():
            chunks.append(chunk)
            times.append(time.perf_counter())
    return r, chunks, times


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# ------------------------------------------------------------------ lifecycle


def test_start_is_fast_and_stop_is_idempotent() -> None:
    server = LocalBytezServer()
    t0 = time.perf_counter()
    server.start()
    assert time.perf_counter() - t0 < 1.0
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0
    r = httpx.get(f"{server.url}/models/v2/list/tasks", headers={"Authorization": "Key any"})
    assert r.status_code == 200
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/models/v2/list/tasks", timeout=1)


def test_context_manager_and_non_loopback_refused() -> None:
    with LocalBytezServer(api_keys=["a"]) as server:
        r = httpx.get(f"{server.url}/models/v2/list/tasks", headers={"Authorization": "Key a"})
        assert r.status_code == 200
    with pytest.raises(ValueError, match="loopback"):
        LocalBytezServer(host="0.0.0.0")


def test_stop_closes_open_streams(bytez_server_factory) -> None:
    server = bytez_server_factory(load_delay=0, token_delay=0.2)
    done = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            with httpx.stream(
                "POST",
                f"{server.url}/models/v2/{GPT2}",
                json={"text": "a", "stream": True, "params": {"max_new_tokens": 100}},
                headers={"Authorization": f"Key {KEY}"},
                timeout=10,
            ) as r:
                for _ in r.iter_raw():
                    pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    server.stop()
    assert time.perf_counter() - t0 < 3
    assert done.wait(3)
    assert errors  # the stream was cut, not completed


# ------------------------------------------------------------------ auth and headers


@pytest.mark.parametrize("value", [f"Key {KEY}", f"key   {KEY}", f"KEY {KEY}"])
def test_auth_forms_accepted(server: LocalBytezServer, value: str) -> None:
    r = httpx.get(f"{server.url}/models/v2/list/tasks", headers={"Authorization": value})
    assert r.status_code == 200
    assert server.requests[-1].auth_ok


@pytest.mark.parametrize(
    "value", [None, "", "Key", "Key wrong", "Bearer wrong", "wrong", f"Bearer {KEY}", KEY]
)
def test_auth_refused(server: LocalBytezServer, value: str | None) -> None:
    headers = {} if value is None else {"Authorization": value}
    r = httpx.post(f"{server.url}/models/v2/{GPT2}", json={"text": "hi"}, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "Unauthorized", "output": None}
    rec = server.requests[-1]
    assert not rec.auth_ok
    assert rec.status == 401


def test_any_key_when_no_keys_configured(bytez_server_factory) -> None:
    server = bytez_server_factory(api_keys=None)
    ok = httpx.get(f"{server.url}/models/v2/list/tasks", headers={"Authorization": "Key zz"})
    assert ok.status_code == 200
    missing = httpx.get(f"{server.url}/models/v2/list/tasks")
    assert missing.status_code == 401


def test_recorded_request_hides_secrets(server: LocalBytezServer, client: httpx.Client) -> None:
    run(
        client, GPT2, {"text": "hi", "params": {"max_new_tokens": 2}}, headers={"provider-key": "p"}
    )
    rec = server.requests[-1]
    assert isinstance(rec, RecordedRequest)
    assert "authorization" not in rec.headers
    assert "provider-key" not in rec.headers
    assert rec.headers["content-type"] == "application/json"
    assert rec.model_id == GPT2
    assert rec.json == {"text": "hi", "params": {"max_new_tokens": 2}}
    assert rec.method == "POST"
    assert rec.path == f"/models/v2/{GPT2}"
    assert rec.status == 200
    assert rec.stream is False


def test_headers_on_every_answer(client: httpx.Client) -> None:
    run_answer = run(client, GPT2, {"text": "hi"})
    for name in SEVEN:
        assert name in run_answer.headers, name
    assert run_answer.headers["inference-meter"] == "xs"  # the live meter names' form
    price = run_answer.headers["inference-meter-price"]
    assert price == "0.0000833 / sec"  # written like the catalogue's meterPrice
    assert float(run_answer.headers["inference-time"]) >= 0
    for answer in (
        client.get("/models/v2/list/models"),
        client.get(f"/models/v2/{GPT2}"),
        run(client, "no/such-model", {"text": "x"}),
    ):
        for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
            assert name in answer.headers


def test_logs_never_contain_the_key(
    server: LocalBytezServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_bytez.server")
    run(client, GPT2, {"text": "hi"})
    client.get("/models/v2/list/models", headers={"Authorization": "Key sekrit-bad-key"})
    with client.stream("POST", f"/models/v2/{GPT2}", json={"text": "a", "stream": True}) as r:
        r.read()
    server.inject(FaultKind.STATUS_503)
    run(client, GPT2, {"text": "hi"})
    assert any("/models/v2/" in rec.getMessage() for rec in caplog.records)
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert KEY not in text
    assert "sekrit" not in text
    assert any(" 401 " in rec.getMessage() for rec in caplog.records)


# ------------------------------------------------------------------ catalogue


def test_catalogue_and_tasks(client: httpx.Client) -> None:
    models = client.get("/models/v2/list/models").json()
    assert models["error"] is None
    assert len(models["output"]) == len(CATALOGUE) >= 12
    for entry in models["output"]:
        assert set(entry) == {"modelId", "task", "params", "ramRequired", "meter", "meterPrice"}
    gpt2 = next(m for m in models["output"] if m["modelId"] == GPT2)
    assert gpt2["task"] == "text-generation"
    assert gpt2["params"] == pytest.approx(0.124)
    chat = client.get("/models/v2/list/models", params={"task": "chat"}).json()["output"]
    assert chat
    assert {m["task"] for m in chat} == {"chat"}
    one = client.get("/models/v2/list/models", params={"task": "chat", "modelId": CHAT}).json()[
        "output"
    ]
    assert [m["modelId"] for m in one] == [CHAT]
    assert client.get("/models/v2/list/models", params={"task": "nope"}).json()["output"] == []
    tasks = client.get("/models/v2/list/tasks").json()["output"]
    assert len(tasks) == len(set(tasks))
    assert set(tasks) == {m["task"] for m in CATALOGUE}
    for task in ("chat", "text-generation", "feature-extraction", "image-text-to-text"):
        assert task in tasks


def test_request_model(client: httpx.Client) -> None:
    r = client.post("/models/v2/request/some-org/some-model")
    assert r.status_code == 200
    assert r.json() == {"error": None, "output": "Job queued"}


def test_unknown_model_and_bad_routes(client: httpx.Client) -> None:
    for method in ("POST", "GET", "PUT", "PATCH", "DELETE"):
        r = client.request(method, "/models/v2/nobody/nothing", json={"text": "x"})
        assert r.status_code == 404, method
        assert r.json() == {
            "error": "Model does not exist or has yet to be added to the Bytez catalog",
            "output": None,
        }
    assert client.post("/models/v2/a/b/c", json={"text": "x"}).status_code == 404
    assert client.get("/elsewhere").status_code == 404


def test_single_segment_model_id(client: httpx.Client) -> None:
    r = run(client, "gpt2", {"text": "Hi", "params": {"max_new_tokens": 3}})
    assert r.status_code == 200
    assert r.json()["output"] == "Hi" + "".join(generate_continuation("Hi", 3))


# ------------------------------------------------------------------ text generation


def test_text_generation_is_prompt_plus_continuation(client: httpx.Client) -> None:
    prompt = "Once upon a time"
    r = run(client, GPT2, {"text": prompt, "params": {"max_new_tokens": 7}})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    tokens = generate_continuation(prompt, 7)
    assert len(tokens) == 7
    assert all(t.startswith(" ") and len(t) > 1 for t in tokens)
    assert r.json() == {"error": None, "output": prompt + "".join(tokens)}
    default = run(client, GPT2, {"text": prompt}).json()["output"]
    assert default == prompt + "".join(generate_continuation(prompt, 20))
    assert run(client, GPT2, {"text": prompt, "params": {"max_new_tokens": 0}}).json() == {
        "error": None,
        "output": prompt,
    }


def test_generation_is_deterministic_readable_and_varies() -> None:
    a = generate_continuation("alpha", 30)
    assert a == generate_continuation("alpha", 30)
    assert generate_continuation("alpha", 5) == a[:5]
    starts = {generate_continuation(str(p), 3)[0] for p in range(40)}
    assert len(starts) > 5  # different prompts start at different sentences
    text = "".join(a).strip()
    assert text[0].isupper()  # a continuation starts at a sentence
    assert "." in text  # and runs through whole sentences
    words = text.replace(".", "").replace(",", "").split()
    assert all(w.replace("—", "").replace("'", "").isalpha() or w == "—" for w in words), words
    vocabulary = {t for p in range(200) for t in generate_continuation(str(p), 40)}
    assert any(len(t.encode()) != len(t) for t in vocabulary)  # multi-byte words occur


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(prompt=st.text(max_size=40), n=st.integers(min_value=0, max_value=60))
def test_max_new_tokens_is_a_token_budget(client: httpx.Client, prompt: str, n: int) -> None:
    tokens = generate_continuation(prompt, n)
    assert len(tokens) == n
    assert all(t.startswith(" ") and " " not in t[1:] for t in tokens)
    out = run(client, GPT2, {"text": prompt, "params": {"max_new_tokens": n}}).json()["output"]
    assert out == prompt + "".join(tokens)


def test_set_reply_overrides_tokens(server: LocalBytezServer, client: httpx.Client) -> None:
    server.set_reply(["Hel", "lo", " wor", "ld", "!"])
    assert run(client, GPT2, {"text": "P: "}).json()["output"] == "P: Hello world!"
    limited = run(client, GPT2, {"text": "P: ", "params": {"max_new_tokens": 2}})
    assert limited.json()["output"] == "P: Hello"
    server.set_reply(["just phi"], model_id="microsoft/phi-2")
    assert run(client, "microsoft/phi-2", {"text": ""}).json()["output"] == "just phi"
    server.set_reply(None)
    assert run(client, GPT2, {"text": "x", "params": {"max_new_tokens": 2}}).json()[
        "output"
    ] == "x" + "".join(generate_continuation("x", 2))
    assert run(client, "microsoft/phi-2", {"text": ""}).json()["output"] == "just phi"


def test_one_megabyte_reply_and_prompt(server: LocalBytezServer, client: httpx.Client) -> None:
    big = "é" * 500_000  # 1 MB of UTF-8
    server.set_reply([big])
    r = run(client, GPT2, {"text": big})
    assert r.json()["output"] == big + big
    _, chunks, _ = stream_chunks(client, GPT2, {"text": "x"})
    assert b"".join(chunks).decode() == big


# ------------------------------------------------------------------ streaming


def test_stream_one_token_per_chunk_with_delays(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.token_delay = 0.05
    server.ttfb = 0.1
    prompt = "stream me"
    t0 = time.perf_counter()
    r, chunks, times = stream_chunks(
        client, GPT2, {"text": prompt, "params": {"max_new_tokens": 6}}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")  # as the live service
    assert r.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.headers
    tokens = generate_continuation(prompt, 6)
    assert chunks == [t.encode() for t in tokens]  # no prompt, one token per chunk
    assert times[0] - t0 >= 0.09
    # tokens are written 50 ms apart: the client sees them spread out, not in one burst
    assert times[-1] - times[0] >= 5 * 0.05 * 0.9
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    assert gaps[len(gaps) // 2] >= 0.03, gaps
    assert server.requests[-1].stream is True


def test_stream_multibyte_tokens(server: LocalBytezServer, client: httpx.Client) -> None:
    tokens = ["café", " naïve", " 日本語", " Ελληνικά", " 🚀", " ✓", " ü"]
    server.set_reply(tokens)
    _, chunks, _ = stream_chunks(client, GPT2, {"text": "x"})
    assert chunks == [t.encode() for t in tokens]
    assert b"".join(chunks).decode() == "".join(tokens)


def test_stream_max_tokens(client: httpx.Client) -> None:
    prompt = "halt"
    tokens = generate_continuation(prompt, 10)
    _, chunks, _ = stream_chunks(client, GPT2, {"text": prompt, "params": {"max_new_tokens": 3}})
    assert chunks == [t.encode() for t in tokens[:3]]


async def test_concurrent_streams_do_not_block_each_other(server: LocalBytezServer) -> None:
    server.token_delay = 0.05
    # one cluster instance per stream, so they really run in parallel
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        put = await c.put(
            f"/models/v2/{GPT2}",
            json={"capacity": {"min": 1, "desired": 8, "max": 8}, "timeout": 5},
        )
        assert put.status_code == 202

        async def one(i: int) -> int:
            body = {"text": f"p{i}", "stream": True, "params": {"max_new_tokens": 10}}
            n = 0
            async with c.stream("POST", f"/models/v2/{GPT2}", json=body) as r:
                async for _ in r.aiter_raw():
                    n += 1
            return n

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(i) for i in range(8)))
        elapsed = time.perf_counter() - t0
    assert counts == [10] * 8
    assert elapsed < 0.45 * 2  # 8 streams of 0.45 s each, in parallel
    assert server.peak_in_flight(GPT2) == 8


# ------------------------------------------------------------------ chat


def test_chat_reply(client: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant named Robo."},
        {"role": "user", "content": "What is the capital of France?", "name": "Alice"},
    ]
    r = run(client, CHAT, {"messages": messages, "params": {"max_new_tokens": 30}})
    out = r.json()["output"]
    assert out["role"] == "assistant"
    content = out["content"]
    assert isinstance(content, str)
    assert content.startswith("Hello, Alice! I am Robo.")
    assert 'You said: "What is the capital of France?"' in content
    assert len(content.split(" ")) == 30
    assert run(client, CHAT, {"messages": messages, "params": {"max_new_tokens": 30}}).json() == {
        "error": None,
        "output": out,
    }
    short = run(client, CHAT, {"messages": messages, "params": {"max_new_tokens": 2}}).json()
    assert short["output"]["content"] == "Hello, Alice!"


def test_chat_block_content_and_media(client: httpx.Client) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this"},
                {"type": "image", "url": "https://example.com/cat.png"},
            ],
        }
    ]
    out = run(client, VL, {"messages": messages}).json()["output"]
    assert isinstance(out["content"], list)
    assert out["content"][0]["type"] == "text"
    text = out["content"][0]["text"]
    assert "I see an image" in text
    assert "Describe this" in text
    audio = [{"role": "user", "content": [{"type": "audio", "base64": "data:audio/wav;base64,AA"}]}]
    out = run(client, "Qwen/Qwen2-Audio-7B-Instruct", {"messages": audio}).json()["output"]
    assert "audio" in out["content"][0]["text"]


def test_chat_answer_and_stream(client: httpx.Client) -> None:
    messages = [{"role": "user", "content": "Tell me a story"}]
    full = run(client, CHAT, {"messages": messages, "params": {"max_new_tokens": 25}}).json()
    content = full["output"]["content"]
    _, chunks, _ = stream_chunks(
        client, CHAT, {"messages": messages, "params": {"max_new_tokens": 25}}
    )
    assert b"".join(chunks).decode() == content
    assert len(chunks) == 25
    assert content.startswith('Hello! You said: "Tell me a story".')


def test_chat_multi_turn_uses_last_user_message(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "second question"},
    ]
    content = run(client, CHAT, {"messages": messages}).json()["output"]["content"]
    assert 'You said: "second question"' in content


# ------------------------------------------------------------------ other tasks


def test_embeddings_shapes(client: httpx.Client) -> None:
    text = "The quick brown fox jumps over the lazy dog"
    flat = run(client, "sentence-transformers/all-MiniLM-L6-v2", {"text": text}).json()["output"]
    assert flat == embed_text(text)
    assert len(flat) == 384
    nested = run(client, "BAAI/bge-small-en-v1.5", {"text": text}).json()["output"]
    assert nested == [embed_text(text)]
    per_token = run(client, "google-bert/bert-base-uncased", {"text": text}).json()["output"]
    assert len(per_token) == 1
    rows = per_token[0]
    assert len(rows) == len(text.split()) + 2
    assert all(len(row) == 768 for row in rows)
    mean = [sum(col) / len(rows) for col in zip(*rows)]
    assert cosine(mean, embed_text(text, 768)) > 0.9999
    empty = run(client, "BAAI/bge-small-en-v1.5", {"text": ""})
    assert empty.status_code == 400
    assert empty.json() == {"error": "text must be a non-empty string", "output": None}


def test_embed_text_similarity() -> None:
    a = embed_text("I love programming in Python")
    b = embed_text("I love programming in python!")
    c = embed_text("Quarterly revenue grew by eleven percent")
    assert math.isclose(sum(x * x for x in a), 1.0)
    assert cosine(a, b) > 0.8
    assert cosine(a, c) < 0.5
    assert embed_text("") == [0.0] * 384
    assert len(embed_text("x", dim=16)) == 16


def test_text_to_text_tasks(client: httpx.Client) -> None:
    article = (
        "The city council approved a new park on Monday. Construction starts next year. "
        "Residents welcomed the decision."
    )
    summary = run(client, "facebook/bart-large-cnn", {"text": article}).json()["output"]
    assert isinstance(summary, str)
    assert summary
    assert len(summary) < len(article)
    french = run(client, "Helsinki-NLP/opus-mt-en-fr", {"text": "Hello world"}).json()["output"]
    assert french == "Bonjour monde"
    answer = run(client, "google/flan-t5-base", {"text": "What is 2+2?"}).json()["output"]
    assert isinstance(answer, str)
    assert answer


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("model", "body", "status", "fragment"),
    [
        (GPT2, {"text": "x", "prompt": "y"}, 400, "Unknown field(s): prompt"),
        (GPT2, {"messages": [{"role": "user", "content": "x"}]}, 400, "text"),
        (GPT2, {"text": 5}, 400, "text"),
        (GPT2, {}, 400, "text"),
        (CHAT, {"text": "hi"}, 400, "messages"),
        (CHAT, {"messages": []}, 400, "messages"),
        (CHAT, {"messages": [{"role": "bot", "content": "x"}]}, 400, "role"),
        (CHAT, {"messages": [{"role": "user", "content": 3}]}, 400, "content"),
        (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "type"),
        (CHAT, {"messages": [{"role": "user", "content": [{"type": "image"}]}]}, 400, "url"),
        (GPT2, {"text": "x", "stream": "yes"}, 400, "stream"),
        (GPT2, {"text": "x", "params": []}, 400, "params"),
        (GPT2, {"text": "x", "params": {"max_new_tokens": "5"}}, 422, "max_new_tokens"),
        (GPT2, {"text": "x", "params": {"max_new_tokens": True}}, 422, "max_new_tokens"),
        (GPT2, {"text": "x", "params": {"max_new_tokens": -1}}, 422, "max_new_tokens"),
        (GPT2, {"text": "x", "params": {"top_k": 1.5}}, 422, "top_k"),
        (GPT2, {"text": "x", "params": {"temperature": "hot"}}, 422, "temperature"),
        (GPT2, {"text": "x", "params": {"top_p": False}}, 422, "top_p"),
        (GPT2, {"text": "x", "params": {"do_sample": 1}}, 422, "do_sample"),
        (GPT2, {"text": "x", "params": {"stop_strings": [1]}}, 422, "stop_strings"),
        (GPT2, {"text": "x", "params": {"stop_strings": ["x"]}}, 422, "stop_strings"),
    ],
)
def test_validation(
    client: httpx.Client, model: str, body: dict, status: int, fragment: str
) -> None:
    r = run(client, model, body)
    assert r.status_code == status, r.text
    payload = r.json()
    assert fragment in payload["error"]
    if status == 422:
        assert payload["stack_trace"].startswith("Traceback")
    else:
        assert payload["output"] is None


def test_unknown_params_accepted_and_bad_json(client: httpx.Client) -> None:
    ok = run(client, GPT2, {"text": "x", "params": {"no_repeat_ngram_size": 3, "top_k": 5}})
    assert ok.status_code == 200
    bad = client.post(
        f"/models/v2/{GPT2}", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert bad.json()["output"] is None


# ------------------------------------------------------------------ faults


NON_STREAM_FAULTS = {
    FaultKind.STATUS_503: (503, {"error": "Service Unavailable", "output": None}),
    FaultKind.RATE_LIMIT: (429, {"error": "Rate limit exceeded", "output": None}),
    FaultKind.RATE_LIMIT_RETRY_AFTER: (429, {"error": "Rate limit exceeded", "output": None}),
    FaultKind.ERROR_ENVELOPE: (200, {"error": "boom", "output": None}),
    FaultKind.UNAUTHORIZED: (401, {"error": "Unauthorized", "output": None}),
    FaultKind.NOT_FOUND: (
        404,
        {
            "error": "Model does not exist or has yet to be added to the Bytez catalog",
            "output": None,
        },
    ),
}


@pytest.mark.parametrize("kind", list(NON_STREAM_FAULTS))
def test_json_faults(server: LocalBytezServer, client: httpx.Client, kind: FaultKind) -> None:
    server.inject(kind, message="boom")
    r = run(client, GPT2, {"text": "x"})
    status, body = NON_STREAM_FAULTS[kind]
    assert r.status_code == status
    assert r.json() == body
    assert run(client, GPT2, {"text": "x"}).status_code == 200  # consumed
    assert server.requests[-2].status == status


def test_rate_limit_headers(server: LocalBytezServer, client: httpx.Client) -> None:
    server.inject(FaultKind.RATE_LIMIT)
    server.inject(FaultKind.RATE_LIMIT, retry_after=2.5)
    server.inject(FaultKind.RATE_LIMIT_RETRY_AFTER, retry_after=3)
    server.inject(FaultKind.RATE_LIMIT_RETRY_AFTER)
    assert run(client, GPT2, {"text": "x"}).headers["ratelimit-reset"] == "1"
    assert run(client, GPT2, {"text": "x"}).headers["ratelimit-reset"] == "2.5"
    third = run(client, GPT2, {"text": "x"})
    assert third.headers["retry-after"] == "3"
    assert "ratelimit-reset" not in third.headers
    assert run(client, GPT2, {"text": "x"}).headers["retry-after"] == "1"


def test_payment_html_malformed_invalid_params(
    server: LocalBytezServer, client: httpx.Client
) -> None:
    server.inject(FaultKind.PAYMENT_REQUIRED)
    r = run(client, GPT2, {"text": "x"})
    assert r.status_code == 402
    assert r.json()["status"] == 402
    assert r.json()["error"] == "Payment Required"
    assert r.json()["message"].startswith("Insufficient credits.")
    server.inject(FaultKind.HTML_502)
    r = run(client, GPT2, {"text": "x"})
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert r.text.startswith("<html><head><title>502 Bad Gateway</title>")
    server.inject(FaultKind.MALFORMED_JSON)
    r = run(client, GPT2, {"text": "x"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.content == b'{"error": null, "output": "tru'
    with pytest.raises(ValueError):
        r.json()
    server.inject(FaultKind.INVALID_PARAMS, message="bad temperature")
    r = run(client, GPT2, {"text": "x"})
    assert r.status_code == 422
    assert r.json()["error"] == "bad temperature"
    assert r.json()["stack_trace"].startswith("Traceback")


def test_reset_fault(server: LocalBytezServer, client: httpx.Client) -> None:
    server.inject(FaultKind.RESET)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        run(client, GPT2, {"text": "x"})
    assert server.requests[-1].status == 0
    assert run(client, GPT2, {"text": "x"}).status_code == 200


def test_disconnect_mid_stream(server: LocalBytezServer, client: httpx.Client) -> None:
    server.inject(FaultKind.DISCONNECT_MID_STREAM, after_tokens=2)
    prompt = "cut me"
    chunks: list[bytes] = []

    def consume() -> None:
        with client.stream(
            "POST", f"/models/v2/{GPT2}", json={"text": prompt, "stream": True}
        ) as r:
            assert r.status_code == 200
            chunks.extend(r.iter_raw())

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        consume()
    assert chunks == [t.encode() for t in generate_continuation(prompt, 20)[:2]]
    assert server.requests[-1].status == 0
    # non-stream: headers and half the body, then the connection drops
    server.inject(FaultKind.DISCONNECT_MID_STREAM)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        run(client, GPT2, {"text": prompt})
    assert run(client, GPT2, {"text": prompt}).status_code == 200


def test_error_mid_stream_and_at_start(server: LocalBytezServer, client: httpx.Client) -> None:
    server.inject(FaultKind.ERROR_MID_STREAM, after_tokens=3, message="CUDA out of memory")
    prompt = "err"
    r, chunks, _ = stream_chunks(client, GPT2, {"text": prompt})
    assert r.status_code == 200
    tokens = generate_continuation(prompt, 20)
    assert chunks == [*(t.encode() for t in tokens[:3]), b"Error: CUDA out of memory"]
    server.inject(FaultKind.ERROR_AT_START, message="model crashed")
    r, chunks, _ = stream_chunks(client, GPT2, {"text": prompt})
    assert r.status_code == 200
    assert b"".join(chunks) == b"Error: model crashed"
    # on a non-stream run these faults become an error envelope
    server.inject(FaultKind.ERROR_MID_STREAM, message="m")
    assert run(client, GPT2, {"text": "x"}).json() == {"error": "m", "output": None}


def test_slow_first_byte(server: LocalBytezServer, client: httpx.Client) -> None:
    server.inject(FaultKind.SLOW_FIRST_BYTE, delay=0.3)
    t0 = time.perf_counter()
    r = run(client, GPT2, {"text": "x"})
    assert time.perf_counter() - t0 >= 0.29
    assert r.status_code == 200
    server.inject(FaultKind.SLOW_FIRST_BYTE, delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        run(client, GPT2, {"text": "x"}, timeout=0.2)


def test_fault_matching(server: LocalBytezServer, client: httpx.Client) -> None:
    server.inject(FaultKind.STATUS_503, count=2, model_id="microsoft/phi-2")
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    assert client.get(f"/models/v2/{GPT2}").status_code == 200  # GET does not match POST
    assert run(client, "microsoft/phi-2", {"text": "x"}).status_code == 503
    assert run(client, "microsoft/phi-2", {"text": "x"}).status_code == 503
    assert run(client, "microsoft/phi-2", {"text": "x"}).status_code == 200
    server.inject(FaultKind.HTML_502, method="GET", path_prefix="/models/v2/list/models")
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    assert client.get("/models/v2/list/models").status_code == 502
    assert client.get("/models/v2/list/models").status_code == 200
    server.inject(FaultKind.STATUS_503, method=None)
    assert client.get(f"/models/v2/{GPT2}").status_code == 503
    server.inject("status_503", count=5)
    server.clear_faults()
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    with pytest.raises(ValueError):
        server.inject("no-such-fault")


def test_random_faults(bytez_server_factory) -> None:
    server = bytez_server_factory(load_delay=0, fault_rate=1.0, seed=7)
    statuses = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        for _ in range(12):
            try:
                statuses.append(run(c, GPT2, {"text": "x"}).status_code)
            except httpx.TransportError:
                statuses.append(0)
        server.fault_rate = 0.0
        assert run(c, GPT2, {"text": "x"}).status_code == 200
    assert all(s in (0, 429, 502, 503) for s in statuses), statuses
    assert len(set(statuses)) > 1
    replay = [r.status for r in server.requests[:12]]
    server.reset()
    server.fault_rate = 1.0
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        for _ in range(12):
            try:
                run(c, GPT2, {"text": "x"})
            except httpx.TransportError:
                pass
    assert [r.status for r in server.requests] == replay  # same seed, same faults


def test_local_control_routes(server: LocalBytezServer, client: httpx.Client) -> None:
    r = client.post("/_local/faults", json={"kind": "status_503", "count": 2, "model_id": GPT2})
    assert r.status_code == 200
    assert run(client, GPT2, {"text": "x"}).status_code == 503
    bad = client.post("/_local/faults", json={"kind": "nope"})
    assert bad.status_code == 400
    assert client.post("/_local/reset").status_code == 200
    assert run(client, GPT2, {"text": "x"}).status_code == 200  # the second fault was dropped
    assert server.count("POST", f"/models/v2/{GPT2}") == 1, "\n".join(
        f"{r.method} {r.path} {r.model_id} {r.status} {r.json} {r.headers}" for r in server.requests
    )


def test_count_and_requests(server: LocalBytezServer, client: httpx.Client) -> None:
    run(client, GPT2, {"text": "x"})
    run(client, CHAT, {"messages": [{"role": "user", "content": "x"}]})
    client.get("/models/v2/list/models", params={"task": "chat"})
    assert server.count() == 3, "\n".join(
        f"{r.method} {r.path} {r.model_id} {r.status} {r.json} {r.headers}" for r in server.requests
    )
    assert server.count("POST") == 2
    assert server.count("get") == 1
    assert server.count(path="/models/v2/list/models") == 1
    assert server.count(path_prefix="/models/v2/Qwen") == 1
    assert server.requests[-1].query == {"task": "chat"}


# ------------------------------------------------------------------ clusters


def test_cluster_lifecycle(server: LocalBytezServer, client: httpx.Client) -> None:
    server.load_delay = 0.2
    server.idle_seconds_per_minute = 0.3
    url = f"/models/v2/{GPT2}"
    missing = client.get(url)
    assert missing.status_code == 404
    assert missing.json() == {"error": "Cluster not found", "output": None}
    body = {"capacity": {"min": 1, "desired": 2, "max": 3}, "timeout": 1}
    put = client.put(url, json=body)
    assert put.status_code == 202
    assert put.json() == {"error": None, "output": "Loading"}
    assert client.put(url, json=body).status_code == 409
    loading = client.get(url).json()["output"]
    assert loading["status"] == "loading"
    assert loading["instances"] == 0
    assert loading["capacity"] == {"min": 1, "desired": 2, "max": 3}
    assert loading["timeout"] == 1
    time.sleep(0.25)
    on = client.get(url).json()["output"]
    assert on["status"] == "on"
    assert on["instances"] == 2
    assert on["inferences"] == 0
    assert on["lastInference"] is None
    assert on["created"].endswith("Z")
    assert on["modified"] >= on["created"]
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    after = client.get(url).json()["output"]
    assert after["inferences"] == 1
    assert after["lastInference"] is not None
    listed = client.get("/models/v2/list/clusters").json()["output"]
    assert [c["modelId"] for c in listed] == [GPT2]
    # PATCH capacity while on: briefly loading again
    patched = client.patch(url, json={"capacity": {"min": 1, "desired": 3, "max": 3}})
    assert patched.status_code == 200
    assert patched.json()["output"]["status"] == "loading"
    assert patched.json()["output"]["capacity"]["desired"] == 3
    time.sleep(0.25)
    assert client.get(url).json()["output"]["status"] == "on"
    off = client.patch(url, json={"status": "off"}).json()["output"]
    assert off["status"] == "off"
    assert off["instances"] == 0
    assert client.patch(url, json={"status": "on"}).json()["output"]["status"] == "loading"
    # idle shutdown: timeout 1 minute = 0.3 s here
    time.sleep(0.25 + 0.45)
    assert client.get(url).status_code == 404
    assert client.get("/models/v2/list/clusters").json()["output"] == []
    assert client.delete(url).status_code == 404


def test_cluster_delete_and_bad_bodies(server: LocalBytezServer, client: httpx.Client) -> None:
    url = f"/models/v2/{CHAT}"
    for bad in (
        {"capacity": {"min": 2, "desired": 1, "max": 3}},
        {"capacity": {"min": 1, "desired": 1, "max": 0}},
        {"capacity": {"desired": "2"}},
        {"capacity": [1]},
        {"timeout": 0},
        {"timeout": 1441},
        {"timeout": 2.5},
        {"timeout": True},
        {"surprise": 1},
    ):
        r = client.put(url, json=bad)
        assert r.status_code == 400, bad
        assert r.json()["output"] is None
    assert client.put(url, content=b"nope").status_code == 400
    assert client.patch(url, json={"timeout": 3}).status_code == 404
    assert client.put(url, json={}).status_code == 202
    cluster = client.get(url).json()["output"]
    assert cluster["capacity"] == {"min": 1, "desired": 1, "max": 1}
    assert cluster["timeout"] == 5
    assert client.patch(url, json={"status": "sideways"}).status_code == 400
    assert client.patch(url, json={"timeout": 7}).json()["output"]["timeout"] == 7
    deleted = client.delete(url)
    assert deleted.status_code == 200
    assert deleted.json() == {"error": None, "output": None}
    assert client.get(url).status_code == 404


def test_run_cold_start_autocreates_cluster(server: LocalBytezServer, client: httpx.Client) -> None:
    server.load_delay = 0.3
    t0 = time.perf_counter()
    r = run(client, GPT2, {"text": "cold"})
    assert time.perf_counter() - t0 >= 0.28
    assert r.status_code == 200
    cluster = client.get(f"/models/v2/{GPT2}").json()["output"]
    assert cluster["status"] == "on"
    assert cluster["capacity"] == {"min": 1, "desired": 1, "max": 1}
    assert cluster["timeout"] == 5
    assert cluster["inferences"] == 1
    t0 = time.perf_counter()
    run(client, GPT2, {"text": "warm"})
    assert time.perf_counter() - t0 < 0.2


def test_run_waits_for_loading_cluster(server: LocalBytezServer, client: httpx.Client) -> None:
    server.load_delay = 0.3
    client.put(f"/models/v2/{GPT2}", json={"timeout": 5})
    t0 = time.perf_counter()
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    assert time.perf_counter() - t0 >= 0.2


def test_fail_next_load(server: LocalBytezServer, client: httpx.Client) -> None:
    server.load_delay = 0.05
    server.fail_next_load(GPT2, reason="Instance failed to boot: no GPU")
    assert client.put(f"/models/v2/{GPT2}", json={}).status_code == 202
    time.sleep(0.1)
    cluster = client.get(f"/models/v2/{GPT2}").json()["output"]
    assert cluster["status"] == "failed"
    assert cluster["reason"] == "Instance failed to boot: no GPU"
    r = run(client, GPT2, {"text": "x"})
    assert r.status_code == 503
    assert "no GPU" in r.json()["error"]
    # a failed cluster can be recreated
    assert client.put(f"/models/v2/{GPT2}", json={}).status_code == 202
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    # on auto-create too
    server.fail_next_load(CHAT)
    r = run(client, CHAT, {"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 503
    assert "out of memory" in r.json()["error"]


def test_no_cluster_routes(bytez_server_factory) -> None:
    server = bytez_server_factory(cluster_routes=False, load_delay=0.1)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        url = f"/models/v2/{GPT2}"
        assert c.put(url, json={}).status_code == 405
        assert c.patch(url, json={}).status_code == 405
        for r in (c.get(url), c.delete(url), c.get("/models/v2/list/clusters")):
            assert r.status_code == 404
            assert r.json()["error"] == "Not Found"
        t0 = time.perf_counter()
        assert run(c, GPT2, {"text": "x"}).status_code == 200  # serverless cold start
        assert time.perf_counter() - t0 >= 0.09
        assert c.get("/models/v2/list/models").status_code == 200
    server.cluster_routes = True
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        assert c.get(f"/models/v2/{GPT2}").json()["output"]["status"] == "on"


async def test_account_concurrency_limit(server: LocalBytezServer) -> None:
    server.concurrency_limit = 2
    server.ttfb = 0.3
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        await c.put(f"/models/v2/{GPT2}", json={"capacity": {"min": 1, "desired": 4, "max": 4}})
        results = await asyncio.gather(
            *(c.post(f"/models/v2/{GPT2}", json={"text": str(i)}) for i in range(5))
        )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 429, 429, 429]
    limited = next(r for r in results if r.status_code == 429)
    assert limited.json() == {"error": "Rate limit exceeded", "output": None}
    assert limited.headers["ratelimit-reset"] == "1"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert server.peak_in_flight() == 2


async def test_per_cluster_queueing(server: LocalBytezServer) -> None:
    server.ttfb = 0.15
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        await c.put(f"/models/v2/{GPT2}", json={"capacity": {"min": 1, "desired": 2, "max": 2}})
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(c.post(f"/models/v2/{GPT2}", json={"text": str(i)}) for i in range(6))
        )
        elapsed = time.perf_counter() - t0
    assert [r.status_code for r in results] == [200] * 6  # queued, not refused
    assert server.peak_running(GPT2) == 2
    assert server.peak_in_flight(GPT2) == 6
    assert server.peak_in_flight() == 6
    assert elapsed >= 3 * 0.15 - 0.02
    assert server.in_flight() == 0


async def test_thousand_concurrent_connections(bytez_server_factory) -> None:
    # raw asyncio sockets: httpx itself cannot open 1,000 connections quickly on 2 cores
    server = bytez_server_factory(load_delay=0, ttfb=1.0, cluster_routes="on")
    httpx.put(
        f"{server.url}/models/v2/{GPT2}",
        json={"capacity": {"min": 1, "desired": 1000, "max": 1000}},
        headers={"Authorization": f"Key {KEY}"},
    )
    body = json.dumps({"text": "x", "params": {"max_new_tokens": 2}}).encode()
    request = (
        f"POST /models/v2/{GPT2} HTTP/1.1\r\nHost: x\r\nAuthorization: Key {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        payload = await reader.readexactly(length)
        writer.close()
        assert json.loads(payload)["error"] is None
        return head.split(b" ")[1]

    t0 = time.perf_counter()
    statuses = await asyncio.gather(*(one() for _ in range(1000)))
    assert time.perf_counter() - t0 < 10
    assert statuses == [b"200"] * 1000
    assert server.peak_in_flight() >= 900


# ------------------------------------------------------------------ raw HTTP


def _raw(server: LocalBytezServer, payload: bytes, reads: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.count(b"HTTP/1.1 ") >= reads and data.endswith(b"}"):
                break
        return data


def test_keep_alive_and_chunked_request_body(server: LocalBytezServer) -> None:
    body = json.dumps({"text": "hi", "params": {"max_new_tokens": 1}}).encode()
    one = (
        f"POST /models/v2/{GPT2} HTTP/1.1\r\nHost: x\r\nAuthorization: Key {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    data = _raw(server, one + one, reads=2)
    assert data.count(b"HTTP/1.1 200 OK") == 2
    chunked = (
        f"POST /models/v2/{GPT2} HTTP/1.1\r\nHost: x\r\nAuthorization: Key {KEY}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    data = _raw(server, chunked)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in data.lower()
    assert _raw(server, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_reset_restores_knobs(server: LocalBytezServer, client: httpx.Client) -> None:
    server.ttfb = 5
    server.concurrency_limit = 0
    server.set_reply(["x"])
    server.fail_next_load(GPT2)
    server.strict_params = False
    run(client, GPT2, {"text": "x"})
    server.reset()
    assert server.ttfb == 0
    assert server.concurrency_limit is None
    assert server.load_delay == 0.3
    assert server.cluster_routes is ClusterRoutes.NOT_FOUND
    assert server.strict_params is True
    assert server.requests == []
    server.load_delay = 0
    server.cluster_routes = "on"
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    assert client.get(f"/models/v2/{GPT2}").json()["output"]["status"] == "on"


def test_plugin_factory_defaults(bytez_server_factory, bytez_api_key: str) -> None:
    server = bytez_server_factory(load_delay=0, default_max_new_tokens=3)
    r = httpx.post(
        f"{server.url}/models/v2/{GPT2}",
        json={"text": "x"},
        headers={"Authorization": f"Key {bytez_api_key}"},
    )
    assert r.json()["output"] == "x" + "".join(generate_continuation("x", 3))
    other = bytez_server_factory()
    assert other.port != server.port


def test_plugin_import_has_no_side_effects() -> None:
    code = (
        "import threading, langchain_bytez.pytest_plugin as p;"
        "assert threading.active_count() == 1;"
        "print(sorted(n for n in dir(p) if n.startswith('bytez_')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=True
    ).stdout
    assert "bytez_server_factory" in out


# ------------------------------------------------------------------ CLI


def test_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langchain_bytez.server",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--api-key",
            "cli-key",
            "--load-delay",
            "0",
            "--fault",
            "status_503:1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        port = int(port_file.read_text())
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == f"Local Bytez-compatible server listening on http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}/models/v2/{GPT2}"
        headers = {"Authorization": "Key cli-key"}
        assert httpx.post(url, json={"text": "x"}, headers=headers).status_code == 503
        assert httpx.post(url, json={"text": "x"}, headers=headers).status_code == 200
        assert (
            httpx.post(url, json={"text": "x"}, headers={"Authorization": "Key x"}).status_code
            == 401
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert f"POST /models/v2/{GPT2} 200" in stderr
        assert "cli-key" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_refuses_non_loopback_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "langchain_bytez.server", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr


# ------------------------------------------------------------------ malformed and unusual HTTP


def _raw_exchange(server: LocalBytezServer, payload: bytes, timeout: float = 3) -> bytes:
    """Send ``payload``, read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        return data


def _post_head(path: str, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return (f"POST {path} {version}\r\nHost: x\r\nAuthorization: Key {KEY}\r\n{extra}\r\n").encode()


def test_malformed_chunked_bodies_answer_400(
    server: LocalBytezServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="langchain_bytez.server")
    head = _post_head(f"/models/v2/{GPT2}", "Transfer-Encoding: chunked\r\n")
    for body in (
        b"zz\r\n{}\r\n0\r\n\r\n",  # size is not hex
        b"-2\r\n{}\r\n0\r\n\r\n",  # negative size
        b"2\r\n{}XX0\r\n\r\n",  # no CRLF after the chunk data
        b"1" * 70_000 + b"\r\n",  # a size line longer than the reader's limit
    ):
        answer = _raw_exchange(server, head + body)
        # h11 counts an endless size line against the head limit: 431 for that one
        assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), (body[:20], answer[:80])
        assert b"connection: close" in answer.lower()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_oversized_requests_answer_413_and_431(server: LocalBytezServer) -> None:
    big = _post_head(f"/models/v2/{GPT2}", "Content-Length: 999999999999\r\n")
    assert _raw_exchange(server, big).startswith(b"HTTP/1.1 413 ")
    huge_header = (
        b"GET /models/v2/list/tasks HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    assert _raw_exchange(server, huge_header).startswith(b"HTTP/1.1 431 ")


def test_absurd_json_and_numbers_answer_instead_of_crashing(
    server: LocalBytezServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="langchain_bytez.server")
    nested = b"[" * 100_000 + b"]" * 100_000  # RecursionError in json.loads
    r = client.post(f"/models/v2/{GPT2}", content=nested)
    assert r.status_code == 400
    assert r.json()["output"] is None
    bad_local = client.post("/_local/faults", content=nested)
    assert bad_local.status_code == 400
    # an integer too large for a float is still a number (math.isfinite would overflow)
    huge = run(client, GPT2, {"text": "x", "params": {"temperature": 10**400}})
    assert huge.status_code == 200
    # a max_new_tokens no model can produce is refused, not generated (it would block the loop)
    t0 = time.perf_counter()
    r = run(client, GPT2, {"text": "x", "params": {"max_new_tokens": 10**9}})
    assert time.perf_counter() - t0 < 2
    assert r.status_code == 422
    assert "max_new_tokens" in r.json()["error"]
    assert (
        run(client, GPT2, {"text": "x", "params": {"max_new_tokens": 100_000}}).status_code == 200
    )
    over = run(client, GPT2, {"text": "x", "params": {"max_new_tokens": 1_000_001}})
    assert over.status_code == 422
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_expect_100_continue(server: LocalBytezServer) -> None:
    body = json.dumps({"text": "hi", "params": {"max_new_tokens": 1}}).encode()
    head = _post_head(
        f"/models/v2/{GPT2}",
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n",
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(head)
        interim = sock.recv(65536)  # a client waits for this before sending the body
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
    # a body that will be refused gets the refusal, not an invitation to send it
    big = _post_head(
        f"/models/v2/{GPT2}", "Content-Length: 999999999999\r\nExpect: 100-continue\r\n"
    )
    assert _raw_exchange(server, big).startswith(b"HTTP/1.1 413 ")


def test_http10_clients_get_no_chunked_coding(server: LocalBytezServer) -> None:
    body = json.dumps({"text": "old", "stream": True, "params": {"max_new_tokens": 4}}).encode()
    payload = _post_head(f"/models/v2/{GPT2}", f"Content-Length: {len(body)}\r\n", "HTTP/1.0")
    answer = _raw_exchange(server, payload + body)
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"transfer-encoding" not in head.lower()  # RFC 9112: not to an HTTP/1.0 client
    assert b"connection: close" in head.lower()
    assert content == "".join(generate_continuation("old", 4)).encode()  # close-delimited
    # h11 serves HTTP/1.0 without keep-alive: the connection closes after each answer
    plain = json.dumps({"text": "old", "params": {"max_new_tokens": 1}}).encode()
    keep = _post_head(
        f"/models/v2/{GPT2}",
        f"Content-Length: {len(plain)}\r\nConnection: keep-alive\r\n",
        "HTTP/1.0",
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(keep + plain)
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in first.lower()


def test_auth_scheme_without_key_is_refused(bytez_server_factory) -> None:
    server = bytez_server_factory(api_keys=None)  # any non-empty key
    for value in ("Key", "Bearer", "key  "):
        answer = _raw_exchange(
            server,
            f"GET /models/v2/list/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: {value}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 401 "), value
    ok = httpx.get(f"{server.url}/models/v2/list/tasks", headers={"Authorization": "Key any"})
    assert ok.status_code == 200
    raw = httpx.get(f"{server.url}/models/v2/list/tasks", headers={"Authorization": "rawkey"})
    assert raw.status_code == 401  # the bare key is refused unless auth_forms says otherwise


@pytest.mark.parametrize(
    "extra",
    [
        {"path_prefix": 5},
        {"method": 5},
        {"model_id": ["x"]},
        {"message": None},
        {"delay": -1},
        {"delay": "slow"},
        {"retry_after": "soon"},
        {"after_tokens": 1e999},
    ],
)
def test_local_faults_refuse_bad_values(
    server: LocalBytezServer, client: httpx.Client, extra: dict[str, Any]
) -> None:
    content = json.dumps({"kind": "status_503", **extra}).encode()  # 1e999 -> Infinity
    r = client.post("/_local/faults", content=content)
    assert r.status_code == 400, r.text
    # nothing was queued, and nothing poisons the fault queue for later requests
    assert run(client, GPT2, {"text": "x"}).status_code == 200
    assert client.get("/models/v2/list/models").status_code == 200


def test_a_failing_route_answers_500(
    bytez_server_factory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = bytez_server_factory(load_delay=0)

    async def broken(req: Any) -> None:
        raise RuntimeError("bug in a route")

    monkeypatch.setattr(server._router, "_list_models", broken)
    caplog.set_level(logging.ERROR, logger="langchain_bytez.server")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}) as c:
        r = c.get("/models/v2/list/models")
        assert r.status_code == 500
        assert r.json() == {"error": "Internal Server Error", "output": None}
        assert r.headers["connection"] == "close"
        assert c.get("/models/v2/list/tasks").status_code == 200
    assert any("bug in a route" in (r.exc_text or "") for r in caplog.records)
    assert server.requests[0].status == 500
