"""The client shells: the async source in ``clients/_async/``, the generated sync twins.

``tests/unit_tests/test_generated.py`` checks that every generated module matches its
source; here: the public names still lead to them, the sync modules hold no async
leftovers, and the generator rules this layout relies on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from langchain_bytez import client
from langchain_bytez.clients import _async, _sync, io, redirects, streams
from tests.unit_tests.test_generated import unasync

ROOT = Path(__file__).resolve().parents[2]
SYNC = Path(_sync.__file__).parent


def test_the_public_paths_lead_to_the_shells() -> None:
    from langchain_bytez.clients._async.client import AsyncBytezClient  # noqa: PLC0415
    from langchain_bytez.clients._async.redirects import AsyncRedirectGuard  # noqa: PLC0415
    from langchain_bytez.clients._async.streams import AsyncTextStream  # noqa: PLC0415
    from langchain_bytez.clients._sync.client import BytezClient  # noqa: PLC0415
    from langchain_bytez.clients._sync.redirects import RedirectGuard  # noqa: PLC0415
    from langchain_bytez.clients._sync.streams import TextStream  # noqa: PLC0415

    assert (client.BytezClient, client.AsyncBytezClient) == (BytezClient, AsyncBytezClient)
    assert (client.TextStream, client.AsyncTextStream) == (TextStream, AsyncTextStream)
    assert (streams.TextStream, streams.AsyncTextStream) == (TextStream, AsyncTextStream)
    assert (redirects.RedirectGuard, redirects.AsyncRedirectGuard) == (
        RedirectGuard,
        AsyncRedirectGuard,
    )
    for name in client.__all__:
        assert hasattr(client, name), name
    assert _async.__doc__
    assert _sync.__doc__


@pytest.mark.parametrize("path", sorted(SYNC.glob("*.py")), ids=lambda p: p.name)
def test_the_sync_shells_hold_no_async_leftovers(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    async_nodes = (ast.AsyncFunctionDef, ast.AsyncWith, ast.AsyncFor, ast.Await)
    leftovers = [type(node).__name__ for node in ast.walk(tree) if isinstance(node, async_nodes)]
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    leftovers += sorted(n for n in names if n.startswith(("Async", "async")) or n in unasync.NAMES)
    assert not leftovers, f"{path.name}: {leftovers}"


def test_both_shells_sleep_through_clients_io() -> None:
    # One home for the retry waits: the sync shell calls io.sleep, the async io.async_sleep.
    sync_source = (SYNC / "client.py").read_text(encoding="utf-8")
    async_source = (SYNC.parent / "_async" / "client.py").read_text(encoding="utf-8")
    assert "io.sleep(" in sync_source
    assert "io.async_sleep(" in async_source
    assert callable(io.sleep)
    assert callable(io.async_sleep)


def test_the_article_follows_the_mapped_name() -> None:
    sync = unasync.sync_text("an ``AsyncBytezClient``, an AsyncIterator, an ``httpx.AsyncClient``")
    assert sync == "a ``BytezClient``, an Iterator, an ``httpx.Client``"
    assert unasync.sync_text("An [`AsyncTextStream`][x.AsyncTextStream]") == (
        "A [`TextStream`][x.TextStream]"
    )


def test_the_pool_and_read_names_map() -> None:
    assert unasync.sync_name("AsyncPooledClient") == "SyncPooledClient"
    assert unasync.sync_name("aread") == "read"


def test_generated_modules_start_with_a_line_within_the_line_length() -> None:
    for source, target in unasync.pairs():
        first = target.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(unasync.GENERATED_MARK)
        assert source.relative_to(ROOT).as_posix() in first
        assert len(first) <= 100, first
