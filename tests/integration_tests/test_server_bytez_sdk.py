"""Bytez's own Python SDK (``bytez`` 3.0.1), pointed at the local server.

A client nobody here wrote: it sends ``{"input": ..., "params": ..., "stream": ...}``
with ``Authorization: Key <k>`` and a ``lang`` header, and reads the answers its docs
promise. Its base URL is not a constructor argument; its ``Client`` keeps it in
``host`` (``https://api.bytez.com/models/v2/``), which is what is overridden here.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_bytez.server import CATALOGUE, LocalBytezServer, generate_continuation

bytez = pytest.importorskip("bytez")

KEY = "test-key"
GPT2 = "openai-community/gpt2"
CHAT = "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.fixture
def sdk(bytez_server: LocalBytezServer) -> Any:
    bytez_server.load_delay = 0.0
    client = bytez.Bytez(KEY)
    client._client.host = f"{bytez_server.url}/models/v2/"
    return client


def test_sdk_text_run(sdk: Any, bytez_server: LocalBytezServer) -> None:
    result = sdk.model(GPT2).run("Once upon a time", {"max_new_tokens": 6})
    assert result.error is None
    assert result.output == "Once upon a time" + "".join(
        generate_continuation("Once upon a time", 6)
    )
    sent = bytez_server.requests[-1]
    assert sent.json == {
        "params": {"max_new_tokens": 6},
        "stream": False,
        "input": "Once upon a time",
    }
    assert sent.headers["lang"] == "python"


def test_sdk_chat_run(sdk: Any) -> None:
    messages = [
        {"role": "system", "content": "You are a friendly chatbot"},
        {"role": "user", "content": "What is the capital of England?"},
    ]
    result = sdk.model(CHAT).run(messages)
    assert result.error is None
    assert result.output["role"] == "assistant"
    assert 'You said: "What is the capital of England?"' in result.output["content"]


def test_sdk_streaming(sdk: Any) -> None:
    lines = list(sdk.model(GPT2).run("Stream this", {"max_new_tokens": 8}, stream=True))
    assert "".join(lines) == "".join(generate_continuation("Stream this", 8))


def test_sdk_closed_source_model_with_provider_key(
    sdk: Any, bytez_server: LocalBytezServer
) -> None:
    result = sdk.model("openai/gpt-4o", "sk-provider").run([{"role": "user", "content": "Hi"}])
    assert result.error is None
    assert result.provider["object"] == "chat.completion"
    assert "provider-key" not in bytez_server.requests[-1].headers


def test_sdk_list_routes(sdk: Any) -> None:
    models = sdk.list.models()
    assert models.error is None
    assert models.output == CATALOGUE
    chat = sdk.list.models({"task": "chat"})
    assert chat.output
    assert all(m["task"] == "chat" for m in chat.output)
    one = sdk.list.models({"modelId": GPT2})
    assert [m["modelId"] for m in one.output] == [GPT2]
    assert "chat" in sdk.list.tasks().output


def test_sdk_sees_the_strict_params_error(sdk: Any) -> None:
    result = sdk.model(GPT2).run("x", {"stop_strings": ["END"]})
    assert result.error == "stop_strings is not supported for this model on Bytez"
    assert result.output is None
