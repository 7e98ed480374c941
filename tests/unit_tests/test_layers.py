"""The house rules of imports: arrows point down, and there is no cycle.

The import graph is read from the source (``ast``), not from ``sys.modules``: an import
under ``if TYPE_CHECKING:`` is no edge; one inside a function (a lazy import) is.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import langchain_bytez

PACKAGE = Path(langchain_bytez.__file__).parent

# The LangChain layer and the public facades over it; everything else is below it.
LANGCHAIN_LAYER = {
    "langchain_bytez",
    "langchain_bytez.base",
    "langchain_bytez.call_settings",
    "langchain_bytez.chat_messages",
    "langchain_bytez.chat_models",
    "langchain_bytez.chat_tools",
    "langchain_bytez.demo",
    "langchain_bytez.embeddings",
    "langchain_bytez.generation",
    "langchain_bytez.llms",
    "langchain_bytez.manager",
    "langchain_bytez.progress",
    "langchain_bytez.run_helpers",
    "langchain_bytez.tool_calling",
}


def _module_name(path: Path) -> str:
    if not path.is_relative_to(PACKAGE):
        return path.stem
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Below the LangChain layer and fully checked (lazy imports included), the generated
# ``_sync/`` modules and their ``_async/`` sources too.
LIFECYCLE = {"langchain_bytez.limiter"} | {
    _module_name(p) for p in (PACKAGE / "lifecycle").rglob("*.py")
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@functools.cache
def _imports(path: Path, *, lazy: bool) -> frozenset[str]:
    """Modules imported at run time (module level, and in functions when ``lazy``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, *, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other, in_function=in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if inner and not lazy:
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1])
                    base = f"{base}.{child.module}" if child.module else base
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child, in_function=inner)

    visit(tree, in_function=False)
    return frozenset(found)


def _graph(*, lazy: bool) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts}
    # Every submodule import runs the package root first (Python's doing, not an arrow
    # of ours), and the root imports everything by design: edges into it are not counted.
    return {
        name: {
            m
            for m in _imports(path, lazy=lazy)
            if m in modules and m not in {name, "langchain_bytez"}
        }
        for name, path in modules.items()
    }


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_lifecycle_layer_imports_nothing_from_langchain() -> None:
    graph = _graph(lazy=True)
    for module in sorted(LIFECYCLE):
        path = PACKAGE.parent / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
        own = {m for m in _imports(path, lazy=True) if m.startswith("langchain_core")}
        assert not own, f"{module} imports {sorted(own)}"
        upward = _reachable(graph, module) & (LANGCHAIN_LAYER - {"langchain_bytez"})
        assert not upward, f"{module} reaches the LangChain layer through {sorted(upward)}"


def test_nothing_below_the_langchain_layer_imports_langchain_callbacks() -> None:
    graph = _graph(lazy=False)
    lower = set(graph) - LANGCHAIN_LAYER
    assert LIFECYCLE <= lower
    for module in sorted(lower):
        for reached in {module} | _reachable(graph, module):
            if reached == "langchain_bytez":
                continue
            path = PACKAGE.parent / (reached.replace(".", "/") + ".py")
            if not path.exists():
                path = PACKAGE.parent / reached.replace(".", "/") / "__init__.py"
            callbacks = {
                m for m in _imports(path, lazy=False) if m.startswith("langchain_core.callbacks")
            }
            assert not callbacks, f"{module} imports {sorted(callbacks)} (via {reached})"


def test_no_import_cycle_inside_the_package() -> None:
    # Module-level edges: a cycle there breaks imports.
    graph = _graph(lazy=False)
    cycles = [m for m in graph if m in _reachable(graph, m)]
    assert not cycles, f"import cycle through {sorted(cycles)}"


def test_the_checker_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    # The walker itself must catch what it is for: a function-level import is an edge.
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import langchain_core.callbacks\n"
        "def f():\n    from langchain_core.callbacks import manager\n",
        encoding="utf-8",
    )
    assert _imports(source, lazy=False) == {"typing", "typing.TYPE_CHECKING"}
    assert "langchain_core.callbacks" in _imports(source, lazy=True)
