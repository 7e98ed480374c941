"""``.ci/twins.py``: how sync/async twins are paired and their lines counted."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

SOURCE = textwrap.dedent(
    """
    class Foo:
        def run(self):
            return 1

        def close(self):
            return 2

        def lonely(self):
            return 3

        def _load_sync(self):
            return 4

        async def _load_async(self):
            return 5


    class AsyncFoo:
        async def run(self):
            return 1

        async def aclose(self):
            return 2

        async def __aenter__(self):
            return self

        def helper(self):
            return 6


    class Bar:
        def get(self):
            return 1

        @staticmethod
        async def aget():
            return 1


    def fetch():
        return 1


    async def afetch():
        return 1


    async def orphan():
        return 1
    """
)


@pytest.fixture(scope="module")
def twins() -> ModuleType:
    folder = str(ROOT / ".ci")
    sys.path.insert(0, folder)  # .ci is a folder of scripts, not a package
    try:
        return importlib.import_module("twins")
    finally:
        sys.path.remove(folder)


def names(pairs: list[tuple[object, object]]) -> set[tuple[str, str]]:
    return {(a.name, s.name) for a, s in pairs}  # type: ignore[attr-defined]


def test_pairs_classes_methods_and_functions(twins: ModuleType) -> None:
    module = twins.read_module("pkg/m.py", SOURCE)
    assert names(twins.pair_up([module])) == {
        ("AsyncFoo", "Foo"),
        ("AsyncFoo.run", "Foo.run"),  # same name in the sibling class
        ("AsyncFoo.aclose", "Foo.close"),  # aX with X
        ("Foo._load_async", "Foo._load_sync"),  # X_async with X_sync, same class
        ("Bar.aget", "Bar.get"),  # aX with X in the same class, decorators allowed
        ("afetch", "fetch"),  # module level
    }


def test_sync_methods_and_unmatched_async_ones_are_no_pairs(twins: ModuleType) -> None:
    module = twins.read_module("pkg/m.py", SOURCE)
    paired = {name for pair in names(twins.pair_up([module])) for name in pair}
    # __aenter__ has no __enter__ in Foo; orphan has no sync twin; helper is sync.
    assert not paired & {"AsyncFoo.__aenter__", "orphan", "AsyncFoo.helper", "Foo.lonely"}


def test_the_sibling_class_may_live_in_another_module(twins: ModuleType) -> None:
    sync = twins.read_module("pkg/a.py", "class Foo:\n    def run(self):\n        return 1\n")
    other = "class AsyncFoo:\n    async def run(self):\n        return 1\n"
    asynchronous = twins.read_module("pkg/b.py", other)
    pairs = twins.pair_up([sync, asynchronous])
    assert names(pairs) == {("AsyncFoo", "Foo"), ("AsyncFoo.run", "Foo.run")}
    # Both classes span lines 1-3; the methods inside are not counted again.
    assert twins.covered_lines(pairs) == 6


def test_covered_lines_count_each_line_once_and_include_decorators(twins: ModuleType) -> None:
    module = twins.read_module("pkg/m.py", SOURCE)
    bar = [(a, s) for a, s in twins.pair_up([module]) if a.name == "Bar.aget"]
    aget, get = bar[0]
    assert aget.lines == 3  # the decorator line, the def, the body
    assert get.lines == 2
    assert twins.covered_lines(bar + bar) == 5


def test_the_report_counts_pairs_and_lines(twins: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / twins.PACKAGE
    package.mkdir()
    twin_source = "def fetch():\n    return 1\n\n\nasync def afetch():\n    return 1\n"
    (package / "m.py").write_text(twin_source)
    (package / "n.py").write_text("def nothing():\n    return 1\n")
    modules = twins.read_package(tmp_path)
    assert [m.path for m in modules] == [f"{twins.PACKAGE}/m.py", f"{twins.PACKAGE}/n.py"]
    text = twins.report(tmp_path, listing=True)
    assert text.splitlines()[0] == (
        "1 pairs, 4 lines (generated modules counted too: 1 pairs, 4 lines)"
    )
    assert "afetch" in text.splitlines()[1]


def test_generated_modules_count_only_in_the_second_figure(
    twins: ModuleType, tmp_path: Path
) -> None:
    package = tmp_path / twins.PACKAGE
    (package / "_async").mkdir(parents=True)
    (package / "_sync").mkdir()
    (package / "_async" / "m.py").write_text(
        "class AsyncFoo:\n    async def run(self):\n        pass\n"
    )
    generated = f"{twins.GENERATED_MARK}x by y\nclass Foo:\n    def run(self):\n        pass\n"
    (package / "_sync" / "m.py").write_text(generated)
    maintained = twins.read_package(tmp_path)
    assert [m.path for m in maintained] == [f"{twins.PACKAGE}/_async/m.py"]
    assert len(twins.read_package(tmp_path, generated=True)) == 2
    assert twins.report(tmp_path, listing=False) == (
        "0 pairs, 0 lines (generated modules counted too: 2 pairs, 6 lines)"
    )
