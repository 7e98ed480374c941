"""Runs the python blocks of README.md and docs/ against the package's local server.

``make docs-snippets`` runs ``pytest --markdown-docs README.md docs`` (pytest-markdown-docs).
Each block runs unchanged, as a reader would paste it: this file points ``BYTEZ_BASE_URL``
and ``BYTEZ_API_KEY`` at one local Bytez-compatible server for the session, only for those
blocks (the test suite under ``tests/`` is untouched). Blocks that cannot run are marked
``notest`` in the markdown, with the reason next to them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_bytez.server import LocalBytezServer

SNIPPET_API_KEY = "docs-snippet-key"
# pytest-markdown-docs marks every item it collects with this keyword.
SNIPPET_MARKER = "markdown-docs"


@pytest.fixture(scope="session")
def docs_snippet_server() -> Iterator[LocalBytezServer]:
    """One local server for every documentation block of the session.

    Yields:
        The running server, accepting ``SNIPPET_API_KEY``.
    """
    # A short cold start: blocks that load a model still see the loading state.
    server = LocalBytezServer(api_keys={SNIPPET_API_KEY}, load_delay=0.05).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _docs_snippet_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point a documentation block's Bytez calls at the session's local server."""
    if SNIPPET_MARKER not in request.node.keywords:
        return
    server: LocalBytezServer = request.getfixturevalue("docs_snippet_server")
    monkeypatch.setenv("BYTEZ_BASE_URL", server.url)
    monkeypatch.setenv("BYTEZ_API_KEY", SNIPPET_API_KEY)
    monkeypatch.delenv("BYTEZ_PROVIDER_KEY", raising=False)
