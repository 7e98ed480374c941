"""Hostile and extreme input through the LangChain classes.

* Malformed model ids are refused with ``InvalidModelIdError`` (a ``ValueError``) before
  any request, by every entry point that takes one.
* Generation params of the wrong type are refused before anything is sent, whether
  they come as constructor fields, per-call arguments or inside ``params={...}``.
* Every kind of unicode round-trips byte for byte, streamed and not.
* A 1 MB prompt and a 1 MB streamed answer work, and streaming memory is bounded (see
  :func:`test_one_megabyte_streamed_answer_memory_is_per_chunk` for the criterion).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_bytez import (
    AsyncBytezClient,
    BytezClient,
    BytezEmbeddings,
    BytezLLM,
    ChatBytez,
    InvalidModelIdError,
    ModelHandle,
    request_model,
)
from langchain_bytez.generation import StreamEnd, stream_text
from langchain_bytez.server import LocalBytezServer, embed_text

LLM_MODEL = "openai-community/gpt2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

ServerFactory = Callable[..., LocalBytezServer]


@pytest.fixture
def server(bytez_server_factory: ServerFactory) -> LocalBytezServer:
    # A fresh server: its request count starts at 0 and no model is cached as loaded.
    return bytez_server_factory(load_delay=0.0)


def _common(server: LocalBytezServer) -> dict[str, Any]:
    return {"api_key": "test-key", "base_url": server.url}


# ------------------------------------------------------------------------- model ids

BAD_IDS = [
    "../etc/passwd",
    "org/../secret",
    "..",
    "org/.",
    "%2e%2e/x",
    "org/%2e%2e",
    "..%2f..%2fadmin",
    "org%2fname",
    "org/name?x=1",
    "org/name#frag",
    "org/name/extra",
    "/org/name",
    "org//name",
    "org\\name",
    "a" * 300,
    "\u043epenai-community/gpt2",  # Cyrillic o
    "openai-community\u2215gpt2",  # division slash
    "\uff4frg/name",  # full-width o
    "",
    " ",
    " org/name",
    "org/name ",
    "org/name\n",
    "\norg/name",
    "org/name\x00",
    "org/name\r\nX-Injected: 1",
    "list/models",
    "request/x",
]

SURFACES: dict[str, Callable[[str, LocalBytezServer], Any]] = {
    "BytezLLM.invoke": lambda bad, s: BytezLLM(model=bad, **_common(s)).invoke("x"),
    "BytezLLM.stream": lambda bad, s: list(BytezLLM(model=bad, **_common(s)).stream("x")),
    "BytezLLM.ainvoke": lambda bad, s: asyncio.run(BytezLLM(model=bad, **_common(s)).ainvoke("x")),
    "BytezLLM per-call model": lambda bad, s: BytezLLM(model=LLM_MODEL, **_common(s)).invoke(
        "x", model=bad
    ),
    "ChatBytez.invoke": lambda bad, s: ChatBytez(model=bad, **_common(s)).invoke("x"),
    "ChatBytez.stream": lambda bad, s: list(ChatBytez(model=bad, **_common(s)).stream("x")),
    "BytezEmbeddings": lambda bad, s: BytezEmbeddings(model=bad, **_common(s)).embed_query("x"),
    "client.model": lambda bad, s: BytezClient("test-key", base_url=s.url).model(bad),
    "ModelHandle": lambda bad, s: ModelHandle(BytezClient("test-key", base_url=s.url), bad),
    "AsyncBytezClient.model": lambda bad, s: AsyncBytezClient("test-key", base_url=s.url).model(
        bad
    ),
    "request_model": lambda bad, s: request_model(bad, api_key="test-key", base_url=s.url),
}


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_malformed_model_ids_are_refused_before_any_request(
    server: LocalBytezServer, surface: str
) -> None:
    call = SURFACES[surface]
    for bad in BAD_IDS:
        with pytest.raises(ValueError) as info:
            call(bad, server)
        if surface == "BytezLLM per-call model" and bad == "":
            # Refused by the per-call argument check (model must be non-empty).
            assert "model" in str(info.value)
            continue
        assert isinstance(info.value, InvalidModelIdError), (surface, bad, info.value)
        assert "Invalid model id" in str(info.value), (surface, bad)
    assert server.requests == []


# ------------------------------------------------------------------------- params

CTOR_BAD: list[dict[str, Any]] = [
    {"max_new_tokens": "10"},
    {"max_new_tokens": 1.5},
    {"max_new_tokens": True},
    {"temperature": "hot"},
    {"temperature": -1.0},
    {"top_k": 1.5},
    {"top_p": 2.0},
    {"stop": 5},
    {"stop": "x"},
    {"stop": [5]},
    {"params": "max_new_tokens=10"},
    {"streaming": "maybe"},  # ("yes" is pydantic's lax bool: accepted as True)
]

CALL_BAD: list[dict[str, Any]] = [
    {"max_new_tokens": "10"},
    {"max_tokens": "10"},
    {"temperature": "hot"},
    {"temperature": float("nan")},
    {"top_k": 1.5},
    {"stop": 5},
    {"stop": "ab"},  # would otherwise become the stops "a" and "b"
    {"stop": [5]},
    {"stop": [["nested"]]},
    {"params": {"max_new_tokens": "10"}},
    {"params": {"temperature": "hot"}},
    {"params": {"stop_strings": [1, 2]}},
    {"params": {"x": {"y": object()}}},
    {"params": {"x": float("inf")}},
    {"repetition_penalty": "high"},
    {"num_return_sequences": 2.5},
    {"timeout": "1"},
    {"model": 5},
    {"temprature": 0.5},  # a typo, named
]


@pytest.mark.parametrize("cls", [BytezLLM, ChatBytez])
def test_wrong_param_types_are_refused_before_sending(
    server: LocalBytezServer, cls: type[Any]
) -> None:
    model_id = LLM_MODEL if cls is BytezLLM else CHAT_MODEL
    for bad in CTOR_BAD:
        with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
            cls(model=model_id, **_common(server), **bad)
    model = cls(model=model_id, **_common(server))
    for bad in CALL_BAD:
        args = dict(bad)
        stop = args.pop("stop", None)
        for run in (
            lambda: model.invoke("x", stop=stop, **args),
            lambda: list(model.stream("x", stop=stop, **args)),
        ):
            with pytest.raises(ValueError) as info:
                run()
            # Clear: names the argument (or the value) that is wrong.
            message = str(info.value)
            names = [*bad, *(bad.get("params") or {}), "JSON"]
            assert any(name in message for name in names), message
    assert server.requests == []
    # A non-JSON value hidden in the instance's params is refused too, still unsent.
    with pytest.raises(ValueError, match="JSON"):
        cls(model=model_id, params={"x": object()}, **_common(server)).invoke("x")
    assert server.requests == []


# ------------------------------------------------------------------------- unicode

UNICODE = {
    "combining": "e\u0301 a\u0308 Z\u0351\u0352\u0353\u0354 \u0915\u094d\u0937",
    "emoji_zwj": "👩\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈 👨🏽\u200d💻 🇺🇳",
    "rtl": "مرحبا بالعالم \u202bשלום\u202c \u200fabc",
    "nul_and_controls": "a\x00b\x01c\x7f\td\r\ne\u2028f\u2029",
    "astral": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 🜲 𠀀",
    "cjk": "漢字かなカナ한국어 中文",
    "bom_and_specials": "\ufeffstart \ufffd \uffff end",
}
PROMPT = "Say: " + " | ".join(UNICODE.values())
# The reply pieces are the same strings: each becomes one streamed chunk.
REPLY = list(UNICODE.values())


def test_unicode_round_trips_byte_for_byte(server: LocalBytezServer) -> None:
    server.set_reply(REPLY)
    expected = "".join(REPLY)
    llm = BytezLLM(model=LLM_MODEL, **_common(server))
    full = BytezLLM(model=LLM_MODEL, return_full_text=True, **_common(server))
    chat = ChatBytez(model=CHAT_MODEL, **_common(server))
    emb = BytezEmbeddings(model=EMBED_MODEL, **_common(server))

    assert llm.invoke(PROMPT) == expected
    assert "".join(llm.stream(PROMPT)) == expected
    assert [p for p in llm.stream(PROMPT) if p] == REPLY  # chunk boundaries kept
    assert full.invoke(PROMPT) == PROMPT + expected
    assert "".join(full.stream(PROMPT)) == PROMPT + expected
    assert asyncio.run(llm.ainvoke(PROMPT)) == expected
    assert chat.invoke(PROMPT).content == expected
    assert "".join(c.text for c in chat.stream(PROMPT)) == expected
    # The server embedded exactly the text sent: same vector as embedding it locally.
    for text in UNICODE.values():
        assert emb.embed_query(text) == pytest.approx(embed_text(text))

    # And the server received the prompt exactly, byte for byte.
    runs = [r for r in server.requests if r.method == "POST" and r.json]
    texts = {r.json.get("text") for r in runs if r.path.endswith(LLM_MODEL)}
    assert texts == {PROMPT}
    messages = [r.json["messages"] for r in runs if r.path.endswith(CHAT_MODEL)]
    assert messages
    assert all(m == [{"role": "user", "content": PROMPT}] for m in messages)


# ------------------------------------------------------------------------- size

MB = 1 << 20


def test_one_megabyte_prompt(server: LocalBytezServer) -> None:
    server.set_reply([" done"])
    prompt = ("The quick brown fox — 🦊 — jumps. " * 40_000)[:MB]
    llm = BytezLLM(model=LLM_MODEL, **_common(server))
    assert llm.invoke(prompt) == " done"
    assert "".join(llm.stream(prompt)) == " done"
    sent = [r.json["text"] for r in server.requests if r.method == "POST" and r.json]
    assert len(sent) == 2
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    assert all(hashlib.sha256(t.encode()).hexdigest() == digest for t in sent)


_CHILD_SERVER = """
import sys
from langchain_bytez.server import LocalBytezServer
server = LocalBytezServer(api_keys={"test-key"}, load_delay=0).start()
server.set_reply([sys.argv[1]] * int(sys.argv[2]))
print(server.url, flush=True)
sys.stdin.read()  # serve until the test closes our stdin
server.stop()
"""


@pytest.fixture
def megabyte_server() -> Iterator[str]:
    """A server in a child process answering 1,024 chunks of 1 KiB.

    Out of process so that tracemalloc sees the client's allocations only (the server
    materialises its whole reply, which is not what is being measured).
    """
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SERVER, PIECE, "1024"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


PIECE = ("0123456789abcdef" * 64)[:-1] + "\n"  # 1 KiB


def test_one_megabyte_streamed_answer_memory_is_per_chunk(megabyte_server: str) -> None:
    """A 1 MB answer in 1 KiB chunks through the streaming pipeline, each chunk dropped.

    Criterion, and why: the client keeps a reference to every piece it delivered
    (``BytezStreamError.delivered_text`` needs them), so the answer stays *retained*,
    once and by reference, until the stream is dropped. What must not grow with the
    answer is the *transient* memory: the peak above what is retained at the end (read
    buffers, decoding, stop cutting). It must stay below 256 KiB, a quarter of the
    answer (observed: ~55 KiB for 1 MB and for 4 MB alike); the peak must be the answer
    plus that, never a second whole copy; and once the stream is dropped, everything is
    freed. ``stream_text`` is measured, not ``BytezLLM.stream``: langchain-core's
    ``stream()`` itself sums every chunk for ``on_llm_end``, which is not ours to bound.
    """
    llm = BytezLLM(model=LLM_MODEL, auto_load=False, api_key="test-key", base_url=megabyte_server)
    call = llm._call_settings(["never-appears"], {})  # the stop cutter is in the path
    payload = call.payload(text="go")
    for _ in stream_text(llm, call, payload):  # warm up: the pool, lazy imports, caches
        pass

    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest, size = hashlib.sha256(), 0
        items = stream_text(llm, call, payload)
        for item in items:
            if isinstance(item, StreamEnd):
                break
            digest.update(item.encode())
            size += len(item)
        retained, peak = tracemalloc.get_traced_memory()
        del items, item
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert size == MB
    assert digest.hexdigest() == hashlib.sha256((PIECE * 1024).encode()).hexdigest()
    transient = peak - retained
    print(
        f"\n1 MB stream: peak +{(peak - base) / 1024:.0f} KiB, retained at end "
        f"+{(retained - base) / 1024:.0f} KiB, transient {transient / 1024:.0f} KiB, "
        f"after drop +{(after - base) / 1024:.0f} KiB"
    )
    assert transient < 256 * 1024
    assert peak - base < MB + 256 * 1024
    assert after - base < 64 * 1024
