"""Pytest fixtures serving a local Bytez-compatible API (kept path; see the testing wing).

Enable them with ``pytest_plugins = ["langchain_bytez.pytest_plugin"]`` in a
``conftest.py``. The fixtures live in
[`langchain_bytez.testing.pytest_plugin`][langchain_bytez.testing.pytest_plugin]; this
module re-exports them so the documented plugin path keeps working.
"""

from __future__ import annotations

from langchain_bytez.testing.pytest_plugin import (
    TEST_API_KEY,
    bytez_api_key,
    bytez_server,
    bytez_server_factory,
    bytez_server_session,
)

__all__ = [
    "TEST_API_KEY",
    "bytez_api_key",
    "bytez_server",
    "bytez_server_factory",
    "bytez_server_session",
]
