"""Token callbacks count tokens: 12 streamed pieces are 12 ``on_llm_new_token`` calls.

The stream's closing chunk carries the metadata, not a token: it reaches the consumer
(``stream`` yields its empty text, as langchain-core does) but no token callback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.llms import BytezLLM
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez

PIECES = [f" w{i}" for i in range(12)]


class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


class AsyncTokens(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


@pytest.fixture
def make() -> Iterator[Any]:
    fake = FakeBytez()
    fake.chunks = [piece.encode() for piece in PIECES]
    yield from fake_models(fake)


def fake_models(fake: FakeBytez) -> Iterator[Any]:
    """Yield a factory of Bytez objects answered by ``fake``; closes their clients after."""
    clients: list[Any] = []

    def factory(cls: type[Any], **kwargs: Any) -> Any:
        http, ahttp = fake.clients()
        clients.append(http)
        return cls(
            model="org/model",
            api_key=FAKE_KEY,
            base_url=URL,
            auto_load=False,
            http_client=http,
            http_async_client=ahttp,
            **kwargs,
        )

    yield factory
    for client in clients:
        if isinstance(client, httpx.Client):
            client.close()


def test_llm_stream_reports_each_piece_once(make: Any) -> None:
    handler = Tokens()
    pieces = list(make(BytezLLM).stream("Hi", {"callbacks": [handler]}))
    assert [p for p in pieces if p] == PIECES
    assert handler.tokens == PIECES


async def test_llm_astream_reports_each_piece_once(make: Any) -> None:
    handler = AsyncTokens()
    pieces = [p async for p in make(BytezLLM).astream("Hi", {"callbacks": [handler]})]
    assert [p for p in pieces if p] == PIECES
    assert handler.tokens == PIECES


def test_llm_streaming_invoke_reports_each_piece_once(make: Any) -> None:
    handler = Tokens()
    assert make(BytezLLM, streaming=True).invoke("Hi", {"callbacks": [handler]}) == "".join(PIECES)
    assert handler.tokens == PIECES


async def test_llm_streaming_ainvoke_reports_each_piece_once(make: Any) -> None:
    handler = Tokens()
    llm = make(BytezLLM, streaming=True)
    assert await llm.ainvoke("Hi", {"callbacks": [handler]}) == "".join(PIECES)
    assert handler.tokens == PIECES


def test_chat_streaming_call_reports_each_piece_once(make: Any) -> None:
    # streaming=True per call: ChatBytez._generate streams and reports the tokens.
    handler = Tokens()
    message = make(ChatBytez).invoke("Hi", {"callbacks": [handler]}, streaming=True)
    assert message.content == "".join(PIECES)
    assert message.response_metadata["model_name"] == "org/model"  # the closing chunk's
    assert handler.tokens == PIECES


async def test_chat_async_streaming_call_reports_each_piece_once(make: Any) -> None:
    handler = AsyncTokens()
    message = await make(ChatBytez).ainvoke("Hi", {"callbacks": [handler]}, streaming=True)
    assert message.content == "".join(PIECES)
    assert handler.tokens == PIECES
