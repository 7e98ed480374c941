"""Keys go only to the configured host, whatever redirects the server answers.

Two raw HTTP servers on 127.0.0.1 (different ports: different origins): the first
redirects every request, the second records what it receives. The package's own
clients do not follow redirects at all; an injected ``httpx`` client with
``follow_redirects=True`` does, and then neither ``Authorization``, ``provider-key`` nor
a credential-like default header may reach another origin (also ``localhost`` vs
``127.0.0.1`` on the same port, and an ``https`` downgrade is not an upgrade).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from langchain_bytez import AsyncBytezClient, BytezClient, BytezError, BytezLLM, ChatBytez

KEY = "sk-bytez-REDIRECT-KEY-1234"
PROVIDER = "sk-provider-REDIRECT-5678"
TOKEN = "header-token-REDIRECT-9012"
MODEL = "openai-community/gpt2"
SECRETS = (KEY, PROVIDER, TOKEN)
BODY = b'{"error": null, "output": "Hi there"}'


class Recorder(ThreadingHTTPServer):
    """A raw server: ``redirect_to`` set, it answers 307 there; else the envelope."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.redirect_to: str | None = None
        self.status = 307

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def leaked(self) -> list[str]:
        """Every secret value this server received, in any header."""
        return [
            secret
            for _, headers in self.seen
            for value in headers.values()
            for secret in SECRETS
            if secret in value
        ]


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        target = self.server.redirect_to
        if target is not None and not self.path.startswith("/landed"):
            self.send_response(self.server.status)
            self.send_header("Location", target + "/landed" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


def _serve(server: Recorder) -> Iterator[Recorder]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def origin() -> Iterator[Recorder]:
    yield from _serve(Recorder())


@pytest.fixture
def other() -> Iterator[Recorder]:
    yield from _serve(Recorder())


def _kwargs(origin: Recorder) -> dict[str, Any]:
    return {
        "api_key": KEY,
        "base_url": f"http://127.0.0.1:{origin.port}",
        "provider_key": PROVIDER,
        "default_headers": {"X-Auth-Token": TOKEN, "X-Trace": "t1"},
    }


def _landed(server: Recorder) -> list[dict[str, str]]:
    return [headers for path, headers in server.seen if path.startswith("/landed")]


# ------------------------------------------------------------- our own clients: no follow


def test_own_sync_client_does_not_follow_a_cross_host_redirect(
    origin: Recorder, other: Recorder
) -> None:
    origin.redirect_to = f"http://127.0.0.1:{other.port}"
    with BytezClient(**_kwargs(origin)) as client, pytest.raises(BytezError):
        client.run(MODEL, {"text": "x"})
    assert origin.seen  # the request went out, with the keys, to the configured host
    assert other.seen == []


async def test_own_async_client_does_not_follow_a_cross_host_redirect(
    origin: Recorder, other: Recorder
) -> None:
    origin.redirect_to = f"http://127.0.0.1:{other.port}"
    for transport in ("httpx", "auto"):
        async with AsyncBytezClient(**_kwargs(origin), async_transport=transport) as client:
            with pytest.raises(BytezError):
                await client.run(MODEL, {"text": "x"})
    assert other.seen == []


# ------------------------------------------------- injected clients that follow redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_injected_sync_client_follows_without_the_keys(
    origin: Recorder, other: Recorder, status: int
) -> None:
    origin.redirect_to = f"http://127.0.0.1:{other.port}"
    origin.status = status
    with httpx.Client(follow_redirects=True) as http:
        client = BytezClient(**_kwargs(origin), http_client=http)
        assert client.run(MODEL, {"text": "x"}).output == "Hi there"
    landed = _landed(other)
    assert len(landed) == 1
    assert other.leaked() == []
    assert "authorization" not in landed[0]
    assert "provider-key" not in landed[0]
    assert "x-auth-token" not in landed[0]
    assert landed[0]["x-trace"] == "t1"  # only credentials are dropped
    # The configured host did get them.
    assert origin.seen[0][1]["authorization"] == f"Key {KEY}"
    assert origin.seen[0][1]["provider-key"] == PROVIDER


async def test_injected_async_client_follows_without_the_keys(
    origin: Recorder, other: Recorder
) -> None:
    origin.redirect_to = f"http://127.0.0.1:{other.port}"
    async with httpx.AsyncClient(follow_redirects=True) as http:
        client = AsyncBytezClient(**_kwargs(origin), http_client=http)
        assert (await client.run(MODEL, {"text": "x"})).output == "Hi there"
        async with client.stream(MODEL, {"text": "x"}) as stream:
            assert "".join([piece async for piece in stream])
    assert len(_landed(other)) == 2
    assert other.leaked() == []


def _redirected_to_itself(origin: Recorder, host: str) -> list[dict[str, str]]:
    """Run once through a following client, redirected to ``host`` on the same port."""
    origin.redirect_to = f"http://{host}:{origin.port}"
    with httpx.Client(follow_redirects=True) as http:
        client = BytezClient(**_kwargs(origin), http_client=http)
        assert client.run(MODEL, {"text": "x"}).output == "Hi there"
    return _landed(origin)


def test_localhost_is_another_host_than_127_0_0_1(origin: Recorder) -> None:
    # Same server, same port, another host name: the keys stay behind.
    landed = _redirected_to_itself(origin, "localhost")
    assert len(landed) == 1
    assert not any(secret in value for value in landed[0].values() for secret in SECRETS)


def test_a_same_origin_redirect_keeps_the_keys(origin: Recorder) -> None:
    landed = _redirected_to_itself(origin, "127.0.0.1")
    assert landed[0]["authorization"] == f"Key {KEY}"
    assert landed[0]["provider-key"] == PROVIDER


def test_langchain_classes_with_an_injected_client(origin: Recorder, other: Recorder) -> None:
    origin.redirect_to = f"http://127.0.0.1:{other.port}"
    with httpx.Client(follow_redirects=True) as http:
        llm = BytezLLM(model=MODEL, auto_load=False, http_client=http, **_kwargs(origin))
        chat = ChatBytez(
            model="Qwen/Qwen2.5-0.5B-Instruct", auto_load=False, http_client=http, **_kwargs(origin)
        )
        llm.invoke("Hi")
        with contextlib.suppress(BytezError):  # the landing answer may not suit a chat
            chat.invoke("Hi")
    assert len(_landed(other)) == 2
    assert other.leaked() == []


def test_too_many_redirects_is_a_typed_error(origin: Recorder) -> None:
    origin.redirect_to = f"http://127.0.0.1:{origin.port}/loop"  # never lands
    with httpx.Client(follow_redirects=True, max_redirects=3) as http:
        client = BytezClient(**_kwargs(origin), http_client=http, max_retries=0)
        with pytest.raises(BytezError, match="redirects"):
            client.run(MODEL, {"text": "x"})
    assert len(origin.seen) == 4  # the request and three redirects
