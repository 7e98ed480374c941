"""The sync modules generated from async sources (``.ci/unasync.py``) are up to date and right.

The generator's rules are tested on small sources here; the check that every generated
module in the tree matches its source runs the generator itself, as ``make lint`` does.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync_generator", ROOT / ".ci/unasync.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and annotations look the module up
    spec.loader.exec_module(module)
    return module


unasync = _load_generator()


def _translate(source: str) -> str:
    return str(unasync.translate(textwrap.dedent(source)))


def test_every_generated_module_matches_its_async_source() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci/unasync.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert unasync.pairs(), "no async source found: the generated layout is gone"


def test_generated_modules_say_so_and_name_their_source() -> None:
    for source, target in unasync.pairs():
        head = target.read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith(unasync.GENERATED_MARK)
        assert source.relative_to(ROOT).as_posix() in head


def test_keywords_go_and_names_map() -> None:
    sync = _translate(
        """
        async def fetch(client: AsyncBytezClient) -> AsyncIterator[bytes]:
            async with client.stream() as stream:
                async for piece in stream.aiter_raw():
                    yield piece
            await stream.aclose()
            return await anext(chunks, None)
        """
    )
    assert sync == textwrap.dedent(
        """
        def fetch(client: BytezClient) -> Iterator[bytes]:
            with client.stream() as stream:
                for piece in stream.iter_raw():
                    yield piece
            stream.close()
            return next(chunks, None)
        """
    )


def test_names_inside_longer_names_are_left_alone() -> None:
    assert _translate("answer = anextra + aclosed + Asyncness\n") == (
        "answer = anextra + aclosed + Asyncness\n"
    )


def test_docstrings_and_comments_read_right_on_the_sync_side() -> None:
    sync = _translate(
        '''
        class AsyncThing:
            """An async thing: ``async with AsyncThing() as t: await t.run()``."""

            async def __aenter__(self) -> AsyncThing:  # an async enter
                return self
        '''
    )
    assert '"""A thing: ``with Thing() as t: t.run()``."""' in sync
    assert "def __enter__(self) -> Thing:  # an enter" in sync


def test_async_only_lines_and_blocks_are_left_out() -> None:
    sync = _translate(
        """
        def f(self) -> None:
            keep = 1
            self.loop = None  # unasync: async-only
            # unasync: async-only begin
            self.timer = asyncio.timeout(3)
            self.more = 2
            # unasync: async-only end
            # unasync: sync-only self.lock = threading.Lock()
            done = 3
        """
    )
    assert sync == textwrap.dedent(
        """
        def f(self) -> None:
            keep = 1
            self.lock = threading.Lock()
            done = 3
        """
    )


def test_docstring_entries_of_async_only_words_are_left_out() -> None:
    sync = _translate(
        '''
        def f(timeout: float) -> None:
            """Do it.

            Args:
                timeout: How long.
                async_transport: Which transport,
                    on two lines.
                retries: How often.
            """
        '''
    )
    assert "async_transport" not in sync
    assert "on two lines" not in sync
    assert "timeout: How long." in sync
    assert "retries: How often." in sync


@pytest.mark.parametrize(
    "source",
    [
        "# unasync: async-only begin\nx = 1\n",
        "x = 1\n# unasync: async-only end\n",
        "# unasync: async-only begin\n# unasync: async-only begin\n",
    ],
)
def test_unbalanced_blocks_are_refused(source: str) -> None:
    with pytest.raises(SystemExit):
        unasync.translate(source)
