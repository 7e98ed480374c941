"""Count the sync/async twins of ``langchain_bytez``: how much of the package exists twice.

Every module of the package is parsed with ``ast`` (nothing is imported or run) and these
pairs are made:

- **methods**: an ``async def X`` of class ``C`` with a ``def X`` (or ``aX`` with ``X``,
  ``__aX__`` with ``__X__``, ``X_async`` with ``X_sync`` or ``X``) of the sibling class
  (``AsyncFoo`` with ``Foo``) or of ``C``;
- **functions**: a module-level ``async def aX`` with ``def X`` (the same module first,
  else the first module, by path, that has one);
- **classes**: ``AsyncFoo`` with ``Foo`` (the same module first, else any module).

Leading underscores are kept apart (``_aX`` pairs with ``_X``, ``_AsyncFoo`` with
``_Foo``). It prints the number of pairs and the number of lines they cover, both sides
counted, each line of a file once however many pairs cover it (decorators included).
``--tree REV`` measures a git revision instead of the working tree (``git archive`` into a
temporary folder); ``--list`` prints the pairs, largest first.

Run: ``python .ci/twins.py [--tree REV] [--list]``.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "langchain_bytez"
# The first words of every module .ci/unasync.py generates.
GENERATED_MARK = "# Generated from "

Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass(frozen=True)
class Span:
    """One definition: where it stands.

    Attributes:
        module: The module's path relative to the package's parent (``langchain_bytez/x.py``).
        name: The qualified name (``Class.method`` or ``function``).
        first: The first line (its first decorator, if any).
        last: The last line.
    """

    module: str
    name: str
    first: int
    last: int

    @property
    def lines(self) -> int:
        """The number of lines the definition spans."""
        return self.last - self.first + 1


@dataclass
class Module:
    """What one module defines at its top level and in its classes.

    Attributes:
        path: The module's path relative to the package's parent.
        functions: Module-level functions by name, with whether each is ``async``.
        classes: Classes by name.
        methods: Per class name, its methods by name, with whether each is ``async``.
    """

    path: str
    functions: dict[str, tuple[Span, bool]] = field(default_factory=dict)
    classes: dict[str, Span] = field(default_factory=dict)
    methods: dict[str, dict[str, tuple[Span, bool]]] = field(default_factory=dict)


def span_of(module: str, name: str, node: Def) -> Span:
    """The lines of a definition, decorators included.

    Args:
        module: The module's path.
        name: The qualified name to give it.
        node: The definition.

    Returns:
        Its span.
    """
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    last = node.end_lineno if node.end_lineno is not None else node.lineno
    return Span(module, name, first, last)


def read_module(path: str, source: str) -> Module:
    """Collect a module's functions, classes and methods.

    Args:
        path: The module's path, as it is to be reported.
        source: Its source text.

    Returns:
        What it defines.
    """
    module = Module(path)
    for node in ast.parse(source, filename=path).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            is_async = isinstance(node, ast.AsyncFunctionDef)
            module.functions[node.name] = (span_of(path, node.name, node), is_async)
        elif isinstance(node, ast.ClassDef):
            module.classes[node.name] = span_of(path, node.name, node)
            members = module.methods.setdefault(node.name, {})
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    qualified = f"{node.name}.{item.name}"
                    is_async = isinstance(item, ast.AsyncFunctionDef)
                    members[item.name] = (span_of(path, qualified, item), is_async)
    return module


def sync_names(name: str) -> list[str]:
    """The names a sync twin of ``name`` may have: ``name`` itself, then without its ``a``.

    Args:
        name: The name of an async function or method.

    Returns:
        The candidates, most likely first (``aload`` → ``aload``, ``load``; ``_arun`` →
        ``_arun``, ``_run``; ``__aenter__`` → ``__aenter__``, ``__enter__``;
        ``_load_async`` → ``_load_async``, ``_load_sync``, ``_load``).
    """
    candidates = [name]
    if name.startswith("__a") and name.endswith("__") and len(name) > 5:
        candidates.append("__" + name[3:])
    else:
        bare = name.lstrip("_")
        prefix = name[: len(name) - len(bare)]
        if bare.startswith("a") and len(bare) > 1:
            candidates.append(prefix + bare[1:])
        if bare.endswith("_async") and len(bare) > len("_async"):
            stem = name[: -len("_async")]
            candidates += [stem + "_sync", stem]
    return candidates


def sync_class_name(name: str) -> str | None:
    """The name of the sync sibling of an ``Async`` class.

    Args:
        name: A class name.

    Returns:
        ``Foo`` for ``AsyncFoo``, ``_Foo`` for ``_AsyncFoo``; ``None`` for other names.
    """
    bare = name.lstrip("_")
    prefix = name[: len(name) - len(bare)]
    if bare.startswith("Async") and len(bare) > len("Async"):
        return prefix + bare[len("Async") :]
    return None


def find_class(modules: list[Module], home: Module, name: str) -> Module | None:
    """The module that defines class ``name``: ``home`` first, else the first by path.

    Args:
        modules: Every module of the package, sorted by path.
        home: The module asking.
        name: A class name.

    Returns:
        The defining module, or ``None``.
    """
    if name in home.classes:
        return home
    return next((m for m in modules if name in m.classes), None)


def method_twin(
    modules: list[Module], home: Module, cls: str, method: str
) -> tuple[Span, bool] | None:
    """The sync twin of the async method ``cls.method``.

    Args:
        modules: Every module of the package, sorted by path.
        home: The module defining ``cls``.
        cls: The class name.
        method: The async method's name.

    Returns:
        The twin's span and whether it is async, or ``None`` when there is none.
    """
    places: list[tuple[Module, str]] = []
    sibling = sync_class_name(cls)
    if sibling is not None:
        where = find_class(modules, home, sibling)
        if where is not None:
            places.append((where, sibling))
    places.append((home, cls))
    for where, owner in places:
        for candidate in sync_names(method):
            if owner == cls and candidate == method:
                continue  # the method itself
            found = where.methods[owner].get(candidate)
            if found is not None and not found[1]:
                return found
    return None


def pair_up(modules: list[Module]) -> list[tuple[Span, Span]]:
    """Every sync/async pair of the package.

    Args:
        modules: Every module of the package, sorted by path.

    Returns:
        ``(async side, sync side)`` pairs, in module order.
    """
    pairs: list[tuple[Span, Span]] = []
    for module in modules:
        for name, span in module.classes.items():
            sibling = sync_class_name(name)
            where = find_class(modules, module, sibling) if sibling is not None else None
            if sibling is not None and where is not None:
                pairs.append((span, where.classes[sibling]))
            for method, (method_span, is_async) in module.methods[name].items():
                twin = method_twin(modules, module, name, method) if is_async else None
                if twin is not None:
                    pairs.append((method_span, twin[0]))
        for name, (span, is_async) in module.functions.items():
            if not is_async:
                continue
            for candidate in sync_names(name)[1:]:
                homes = [module, *(m for m in modules if m is not module)]
                found = next(
                    (
                        m.functions[candidate][0]
                        for m in homes
                        if candidate in m.functions and not m.functions[candidate][1]
                    ),
                    None,
                )
                if found is not None:
                    pairs.append((span, found))
                    break
    return pairs


def covered_lines(pairs: list[tuple[Span, Span]]) -> int:
    """The lines the pairs cover, both sides, each line of a module counted once.

    Args:
        pairs: The pairs.

    Returns:
        The number of distinct ``(module, line)`` places inside any side of any pair.
    """
    places: set[tuple[str, int]] = set()
    for pair in pairs:
        for span in pair:
            places.update((span.module, line) for line in range(span.first, span.last + 1))
    return len(places)


def read_package(root: Path, *, generated: bool = False) -> list[Module]:
    """Parse every module of the package below ``root``.

    Args:
        root: The folder holding the ``langchain_bytez`` package.
        generated: Whether to include the sync modules ``.ci/unasync.py`` writes from
            their async sources (left out by default: nobody edits them, so what they
            repeat is written once).

    Returns:
        Its modules, sorted by path.
    """
    modules = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if generated or not source.startswith(GENERATED_MARK):
            modules.append(read_module(path.relative_to(root).as_posix(), source))
    return modules


def export_tree(revision: str, into: Path) -> None:
    """Write the package as it is at a git revision into a folder.

    Args:
        revision: Any git revision (``main``, a commit).
        into: An empty folder.
    """
    archive = into / "tree.tar"
    subprocess.run(  # noqa: S603 - fixed argv, the revision is an argument of git
        ["git", "archive", "--format=tar", f"--output={archive}", revision, PACKAGE],  # noqa: S607
        cwd=ROOT,
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def report(root: Path, *, listing: bool) -> str:
    """The figures (and with ``listing`` the pairs) as text.

    Args:
        root: The folder holding the ``langchain_bytez`` package.
        listing: Whether to list the pairs, largest first.

    Returns:
        The text to print.
    """
    pairs = pair_up(read_package(root))
    everything = pair_up(read_package(root, generated=True))
    lines = [
        f"{len(pairs)} pairs, {covered_lines(pairs)} lines"
        f" (generated modules counted too: {len(everything)} pairs,"
        f" {covered_lines(everything)} lines)"
    ]
    if listing:
        for a, s in sorted(pairs, key=lambda p: -(p[0].lines + p[1].lines)):
            lines.append(
                f"{a.lines + s.lines:5d}  {a.module}:{a.first} {a.name}"
                f"  ~  {s.module}:{s.first} {s.name}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the twins' figures for the working tree or a revision.

    Args:
        argv: The command-line arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", metavar="REV", help="measure a git revision instead")
    parser.add_argument("--list", action="store_true", help="list the pairs, largest first")
    args = parser.parse_args(argv)
    if args.tree is None:
        print(report(ROOT, listing=args.list))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        export_tree(args.tree, Path(folder))
        print(report(Path(folder), listing=args.list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
