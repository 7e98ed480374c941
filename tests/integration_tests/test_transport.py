"""The async transport: aiohttp when the extra is installed, httpx otherwise, same results.

The package's own async clients run on ``httpx-aiohttp``'s transport when it is
installed (``async_transport="auto"``, the default) and on httpx's pool when it is not
(simulated here by hiding the module); either way streams work end to end against the
local server, chunk by chunk, with the errors httpx itself would raise. An injected
``http_async_client`` is always used as it is.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import httpx
import pytest

from langchain_bytez import (
    AsyncBytezClient,
    BytezClient,
    BytezConnectionError,
    BytezLLM,
    BytezStreamError,
)
from langchain_bytez.client import DEFAULT_LIMITS
from langchain_bytez.server import FaultKind, LocalBytezServer
from langchain_bytez.wire.config import resolve_async_transport

pytest.importorskip("httpx_aiohttp")  # the test group installs the extra's packages
from langchain_bytez.clients.transports import BytezAiohttpTransport  # noqa: E402

MODEL = "openai-community/gpt2"
TOKENS = [" alpha", " beta", " gamma", " delta"]


@pytest.fixture
def server(bytez_server: LocalBytezServer) -> LocalBytezServer:
    bytez_server.set_reply(TOKENS)
    return bytez_server


@pytest.fixture
def no_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import httpx_aiohttp`` fail, as without the extra."""
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    monkeypatch.delitem(sys.modules, "langchain_bytez.clients.transports", raising=False)


async def _drain(client: AsyncBytezClient) -> None:
    async with client.stream(MODEL, {"text": "x"}) as stream:
        async for _ in stream:
            pass


async def _pieces(llm: BytezLLM) -> list[str]:
    # (without the empty closing chunk BytezLLM.astream may add)
    return [chunk async for chunk in llm.astream("Hi") if chunk]


def _transport_of(http: httpx.AsyncClient | httpx.Client) -> Any:
    return http._transport  # type: ignore[attr-defined,no-any-return]


# ------------------------------------------------------------------------- choosing


def test_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    assert resolve_async_transport("auto", "https://api.bytez.com") == "aiohttp"
    assert resolve_async_transport("aiohttp", "https://api.bytez.com") == "aiohttp"
    assert resolve_async_transport("httpx", "https://api.bytez.com") == "httpx"
    # AiohttpTransport ignores proxy variables; httpx honours them.
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert resolve_async_transport("auto", "https://api.bytez.com") == "httpx"
    with pytest.raises(ValueError, match="async_transport"):
        resolve_async_transport("curl", "https://api.bytez.com")


def test_without_the_extra(no_aiohttp: None) -> None:
    assert resolve_async_transport("auto", "https://api.bytez.com") == "httpx"
    with pytest.raises(ImportError, match=r"langchain-bytez\[aiohttp\]"):
        AsyncBytezClient("k" * 8, base_url="https://api.bytez.com", async_transport="aiohttp")
    with pytest.raises(ImportError, match=r"langchain-bytez\[aiohttp\]"):
        BytezLLM(
            model=MODEL, api_key="k" * 8, base_url="https://h.example", async_transport="aiohttp"
        )


# ------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("choice", ["auto", "aiohttp", "httpx"])
async def test_own_client_streams_on_the_chosen_transport(
    server: LocalBytezServer, bytez_api_key: str, choice: str
) -> None:
    expected = BytezAiohttpTransport if choice != "httpx" else httpx.AsyncHTTPTransport
    async with AsyncBytezClient(
        bytez_api_key, base_url=server.url, async_transport=choice
    ) as client:
        assert client.transport == ("httpx" if choice == "httpx" else "aiohttp")
        result = await client.run(MODEL, {"text": "Hi"})
        assert result.output == "Hi" + "".join(TOKENS)
        async with client.stream(MODEL, {"text": "Hi"}) as stream:
            pieces = [piece async for piece in stream]
        assert isinstance(_transport_of(client._client()), expected)  # type: ignore[arg-type]
    assert pieces == TOKENS  # chunk by chunk, as the server sent them


async def test_without_the_extra_the_llm_falls_back_to_httpx(
    server: LocalBytezServer, bytez_api_key: str, no_aiohttp: None
) -> None:
    llm = BytezLLM(model=MODEL, api_key=bytez_api_key, base_url=server.url, auto_load=False)
    assert await _pieces(llm) == TOKENS
    client = llm._async_client()
    assert client.transport == "httpx"
    assert isinstance(_transport_of(client._client()), httpx.AsyncHTTPTransport)  # type: ignore[arg-type]


async def test_langchain_objects_use_the_field(
    server: LocalBytezServer, bytez_api_key: str
) -> None:
    common: dict[str, Any] = {"model": MODEL, "api_key": bytez_api_key, "base_url": server.url}
    aio = BytezLLM(**common, auto_load=False)  # default: auto
    plain = BytezLLM(**common, auto_load=False, async_transport="httpx")
    assert await _pieces(aio) == await _pieces(plain) == TOKENS
    assert aio._async_client().transport == "aiohttp"
    assert plain._async_client().transport == "httpx"
    assert await aio.abatch(["a", "b", "c"]) == await plain.abatch(["a", "b", "c"])
    async with httpx.AsyncClient() as injected:
        own = BytezLLM(**common, auto_load=False, http_async_client=injected)
        assert await _pieces(own) == TOKENS
        assert own._async_client().transport == "injected"
        assert own._async_client()._client() is injected


async def test_own_pools_get_the_default_limits(bytez_api_key: str) -> None:
    # A connection cap: 500 concurrent calls no longer open 500 sockets.
    assert DEFAULT_LIMITS.max_connections == 400
    with BytezClient(bytez_api_key, base_url="https://h.example") as sync:
        pool = _transport_of(sync._client())._pool  # type: ignore[arg-type,attr-defined]
        assert pool._max_connections == DEFAULT_LIMITS.max_connections
        assert pool._max_keepalive_connections == DEFAULT_LIMITS.max_keepalive_connections
    async with AsyncBytezClient(
        bytez_api_key, base_url="https://h.example", async_transport="httpx"
    ) as client:
        pool = _transport_of(client._client())._pool  # type: ignore[arg-type,attr-defined]
        assert pool._max_connections == DEFAULT_LIMITS.max_connections
        assert pool._max_keepalive_connections == DEFAULT_LIMITS.max_keepalive_connections
    async with AsyncBytezClient(
        bytez_api_key, base_url="https://h.example", async_transport="aiohttp"
    ) as client:
        transport = _transport_of(client._client())
        assert transport.limits == DEFAULT_LIMITS  # type: ignore[attr-defined]


# ----------------------------------------------------------------------- failures alike


@pytest.mark.parametrize("choice", ["aiohttp", "httpx"])
async def test_failures_map_to_the_same_typed_errors(
    server: LocalBytezServer, bytez_api_key: str, choice: str
) -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = AsyncBytezClient(
        bytez_api_key, base_url=f"http://127.0.0.1:{port}", max_retries=0, async_transport=choice
    )
    with pytest.raises(BytezConnectionError, match="Could not reach"):
        await refused.run(MODEL, {"text": "x"})
    await refused.aclose()
    async with AsyncBytezClient(
        bytez_api_key, base_url=server.url, max_retries=0, async_transport=choice
    ) as client:
        server.inject(FaultKind.DISCONNECT_MID_STREAM, 1)
        with pytest.raises(BytezStreamError) as caught:
            await _drain(client)
        assert isinstance(caught.value.cause, httpx.TransportError)
