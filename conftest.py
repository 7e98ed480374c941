"""Runs the python blocks of README.md and docs/ against the package's local server.

``make docs-snippets`` runs ``pytest --markdown-docs README.md docs/*.md``
(pytest-markdown-docs). Each block runs unchanged, as a reader would paste it: this file
points ``BYTEZ_BASE_URL`` and ``BYTEZ_API_KEY`` at a local Bytez-compatible server for the
session, only for those blocks (the test suite under ``tests/`` is untouched). Blocks that
cannot run are marked ``notest`` in the markdown, with the reason next to them.

The server has the local server's default modes (those of the live service as
documented: no cluster routes, strict params), except for the pages in
``PAGES_WITH_CLUSTER_ROUTES``: they show explicit model management, which needs the
cluster routes, and say so at their top; their blocks get a second server with
``cluster_routes="on"`` (its own URL, so the client's per-endpoint state of one server
never leaks into the other).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_bytez.server import LocalBytezServer

SNIPPET_API_KEY = "docs-snippet-key"
# pytest-markdown-docs marks every item it collects with this keyword.
SNIPPET_MARKER = "markdown-docs"
# Pages whose blocks run against a server with the cluster routes on (see above).
PAGES_WITH_CLUSTER_ROUTES = frozenset({"model-management.md", "loaders.md"})


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


@pytest.fixture(scope="session")
def docs_snippet_server_with_cluster_routes() -> Iterator[LocalBytezServer]:
    """A local server with the cluster routes on, for the model-management pages.

    Yields:
        The running server, accepting ``SNIPPET_API_KEY``.
    """
    server = LocalBytezServer(
        api_keys={SNIPPET_API_KEY}, load_delay=0.05, cluster_routes="on"
    ).start()
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
    wants_routes = request.node.path.name in PAGES_WITH_CLUSTER_ROUTES
    fixture = "docs_snippet_server_with_cluster_routes" if wants_routes else "docs_snippet_server"
    server: LocalBytezServer = request.getfixturevalue(fixture)
    monkeypatch.setenv("BYTEZ_BASE_URL", server.url)
    monkeypatch.setenv("BYTEZ_API_KEY", SNIPPET_API_KEY)
    monkeypatch.delenv("BYTEZ_PROVIDER_KEY", raising=False)
