"""Pytest fixtures serving a local Bytez-compatible API.

Enable them with ``pytest_plugins = ["langchain_bytez.pytest_plugin"]`` in a
``conftest.py``. Importing this module has no side effects.

Fixtures:
    bytez_api_key: The API key the fixture servers accept (``"test-key"``).
    bytez_server_session: One
        [`LocalBytezServer`][langchain_bytez.testing.server.LocalBytezServer] for the whole
        session.
    bytez_server: The session server, reset before and after the test (fast).
    bytez_server_factory: ``factory(**kwargs) -> LocalBytezServer`` starting a new server
        with custom knobs; every server it made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_bytez.testing.server import LocalBytezServer

__all__ = [
    "TEST_API_KEY",
    "bytez_api_key",
    "bytez_server",
    "bytez_server_factory",
    "bytez_server_session",
]

TEST_API_KEY = "test-key"
"""The API key the fixture servers accept (what the ``bytez_api_key`` fixture returns)."""


@pytest.fixture(scope="session")
def bytez_api_key() -> str:
    """The API key accepted by the fixture servers.

    Returns:
        ``"test-key"``.
    """
    return TEST_API_KEY


@pytest.fixture(scope="session")
def bytez_server_session() -> Iterator[LocalBytezServer]:
    """One local Bytez server for the whole test session.

    Yields:
        The running server, accepting the key ``"test-key"``.
    """
    server = LocalBytezServer(api_keys={TEST_API_KEY}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bytez_server(bytez_server_session: LocalBytezServer) -> Iterator[LocalBytezServer]:
    """The session server, reset (faults, log, clusters, counters, knobs) around the test.

    Args:
        bytez_server_session: The session-wide server.

    Yields:
        The freshly reset server.
    """
    bytez_server_session.reset()
    try:
        yield bytez_server_session
    finally:
        bytez_server_session.reset()


@pytest.fixture
def bytez_server_factory() -> Iterator[Callable[..., LocalBytezServer]]:
    """Start new local Bytez servers with custom knobs; all are stopped at teardown.

    The servers accept ``"test-key"`` unless ``api_keys`` is given.

    Yields:
        ``factory(**kwargs) -> LocalBytezServer`` (kwargs of ``LocalBytezServer``).
    """
    servers: list[LocalBytezServer] = []

    def factory(**kwargs: Any) -> LocalBytezServer:
        kwargs.setdefault("api_keys", {TEST_API_KEY})
        server = LocalBytezServer(**kwargs)
        servers.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in reversed(servers):
            server.stop()
