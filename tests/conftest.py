"""Shared fixtures: the local Bytez-compatible server (see ``langchain_bytez.pytest_plugin``)."""

from collections.abc import Iterator

import pytest

from langchain_bytez.lifecycle import coordinator
from langchain_bytez.manager import ModelManager

pytest_plugins = ["langchain_bytez.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_lifecycle_state() -> Iterator[None]:
    """Start each test with no remembered cluster state and no "warned once" marks.

    The model managers are shared per (base URL, key) for the life of the process, and
    the session server keeps its URL: without this, one test's 404 from the cluster
    routes (the server's default mode) would put a later test that turns the routes on
    into serverless mode, and a warning said once would not be said again.
    """
    yield
    ModelManager._registry.drain()
    with coordinator._IMPLICIT_WARNED_LOCK:
        coordinator._IMPLICIT_WARNED.clear()
