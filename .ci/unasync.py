"""Generate the package's sync modules from their async sources, or check they agree.

Every module under a ``_async/`` folder of ``langchain_bytez`` is the one source of an I/O
shell; its sync twin is written to the sibling ``_sync/`` folder (``clients/_async/client.py``
-> ``clients/_sync/client.py``), as httpcore does. Only the async side is edited; ``make
generate`` rewrites the sync side and ``make lint`` (and a unit test) fail when they differ.

The translation works on tokens, so names inside longer names are never touched:

- the ``async`` of ``async def``/``async with``/``async for`` and every ``await`` go;
- names are mapped by ``NAMES`` (``aclose`` -> ``close``, ``anext`` -> ``next``...) and
  ``AsyncFoo``/``_AsyncFoo`` lose their ``Async`` (``AsyncBytezClient`` -> ``BytezClient``);
- in strings and comments, the words of ``NAMES``, ``Async``-prefixed names and the phrases
  of ``TEXT`` are rewritten (``async with`` -> ``with``, ``await x`` -> ``x``), so docstrings
  and their examples read right on both sides.

Directives in the source, for what exists on one side only:

- a line ending in ``# unasync: async-only`` is left out of the sync module;
- the lines from ``# unasync: async-only begin`` to ``# unasync: async-only end`` too;
- ``# unasync: sync-only <code>`` becomes ``<code>`` (same indentation) in the sync module;
- in a docstring, an entry naming one of ``ASYNC_ONLY_WORDS`` is left out with its
  continuation lines (``async_transport: ...`` under ``Args:``).

The result goes through ``ruff check --fix`` (imports only) and ``ruff format``, so the
generated file is lint-clean as it is written.

Run: ``python .ci/unasync.py`` (write) or ``python .ci/unasync.py --check``.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "langchain_bytez"
# The source's path stands alone on the first line, which stays within ruff's line length.
HEADER = (
    "# Generated from {source} by .ci/unasync.py:\n"
    "# do not edit; edit the async source and run `make generate`.\n"
    "# `make lint` and tests/unit_tests/test_generated.py check it.\n"
)
GENERATED_MARK = "# Generated from "

# Name tokens: async name -> sync name. Names starting with ``Async``/``_Async`` followed
# by a capital letter lose that prefix without being listed.
NAMES: dict[str, str] = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "_async": "_sync",
    "_aperform": "_perform",
    "_load_async": "_load_sync",
    "aacquire": "acquire",
    "aclose": "close",
    "aclose_iterator": "close_iterator",
    "adrive": "drive",
    "aensure_available": "ensure_available",
    "aensure_loaded": "ensure_loaded",
    "aiter_bytes": "iter_bytes",
    "aiter_raw": "iter_raw",
    "alimit": "limit",
    "anext": "next",
    "aread": "read",
    "async_sleep": "sleep",
    "asynccontextmanager": "contextmanager",
    "AsyncPooledClient": "SyncPooledClient",
    "call_async": "call_sync",
    "StopAsyncIteration": "StopIteration",
}
# Async names that must stay as they are on the sync side.
KEEP: frozenset[str] = frozenset()
# Phrases of strings and comments (after the names): regex -> replacement.
TEXT: list[tuple[str, str]] = [
    (r"\basync (def|with|for)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\b([Aa])n async (?=[aeiouAEIOU])", r"\1n "),
    (r"\b([Aa])n async\b", r"\1"),
    (r"\bAsynchronous\b", "Synchronous"),
    (r"\basynchronous\b", "synchronous"),
    (r"\bcoroutine\b", "function"),
    (r"\bcoroutines\b", "functions"),
    # "an ``AsyncBytezClient``" -> "a ``BytezClient``" ("an AsyncIterator" keeps its "an").
    (r"\b([Aa])n (?=[`\[]*_?Async(?![AEIOU])[A-Z])", r"\1 "),
]
ASYNC_ONLY_WORDS: tuple[str, ...] = ("async_transport",)

_ASYNC_PREFIX = re.compile(r"^(_?)Async(?=[A-Z])")
_WORD = re.compile(r"\b_?[A-Za-z_][A-Za-z0-9_]*\b")
_LINE_ONLY = "# unasync: async-only"
_BEGIN = "# unasync: async-only begin"
_END = "# unasync: async-only end"
_SYNC_ONLY = re.compile(r"^(\s*)# unasync: sync-only (.*)$")


def sync_name(name: str) -> str:
    """The sync side's name for a name of the async source.

    Args:
        name: A name token.

    Returns:
        Its sync spelling (itself when nothing maps it).
    """
    if name in KEEP:
        return name
    if name in NAMES:
        return NAMES[name]
    return _ASYNC_PREFIX.sub(r"\1", name)


def sync_text(text: str) -> str:
    """Rewrite the prose of a string or comment for the sync side.

    Args:
        text: A string literal's or comment's text.

    Returns:
        The text with async names and phrases in their sync form.
    """
    for pattern, replacement in TEXT:
        text = re.sub(pattern, replacement, text)
    return _WORD.sub(lambda match: sync_name(match.group(0)), text)


def drop_async_only_entries(text: str) -> str:
    """Leave out the docstring entries (and their continuation lines) of async-only words.

    Args:
        text: A string literal.

    Returns:
        The literal without those entries.
    """
    if not any(word in text for word in ASYNC_ONLY_WORDS):
        return text
    kept: list[str] = []
    dropping_deeper_than: int | None = None
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if dropping_deeper_than is not None:
            if line.strip() and indent > dropping_deeper_than:
                continue
            dropping_deeper_than = None
        if any(word in line for word in ASYNC_ONLY_WORDS):
            dropping_deeper_than = indent
            continue
        kept.append(line)
    return "\n".join(kept)


def apply_directives(source: str) -> str:
    """Apply the line directives: drop async-only lines, uncomment sync-only ones.

    Args:
        source: The async module's text.

    Returns:
        The text the token translation starts from.

    Raises:
        SystemExit: If an ``async-only begin`` has no ``end`` (or the other way round).
    """
    lines: list[str] = []
    skipping = False
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == _BEGIN:
            if skipping:
                raise SystemExit(f"line {number}: nested '{_BEGIN}'")
            skipping = True
            continue
        if stripped == _END:
            if not skipping:
                raise SystemExit(f"line {number}: '{_END}' without a begin")
            skipping = False
            continue
        if skipping or line.rstrip().endswith(_LINE_ONLY):
            continue
        match = _SYNC_ONLY.match(line.rstrip("\n"))
        lines.append(f"{match.group(1)}{match.group(2)}\n" if match else line)
    if skipping:
        raise SystemExit(f"'{_BEGIN}' without an end")
    return "".join(lines)


def translate(source: str) -> str:
    """Translate an async module's text into its sync twin (before formatting).

    Args:
        source: The async module's text.

    Returns:
        The sync module's text.
    """
    text = apply_directives(source)
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        return line_starts[position[0] - 1] + position[1]

    out: list[str] = []
    cursor = 0
    drop_space = False
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        start, end = offset(token.start), offset(token.end)
        gap = text[cursor:start]
        if drop_space and gap.strip() == "" and "\n" not in gap:
            gap = ""
        out.append(gap)
        drop_space = False
        if token.type == tokenize.NAME and token.string in ("async", "await"):
            drop_space = True
        elif token.type == tokenize.NAME:
            out.append(sync_name(token.string))
        elif token.type in (tokenize.STRING, tokenize.COMMENT):
            out.append(sync_text(drop_async_only_entries(token.string)))
        else:
            out.append(text[start:end])
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def ruff() -> list[str]:
    """The ruff command of this environment.

    Returns:
        The command's first words.

    Raises:
        SystemExit: If ruff is not installed.
    """
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        raise SystemExit("ruff is needed to format generated modules: pip install ruff")
    return [found]


def polish(text: str, target: Path) -> str:
    """Sort and prune the imports and format the module as ``make lint`` wants it.

    Args:
        text: The translated module.
        target: Where it will be written (ruff reads its settings for that path).

    Returns:
        The formatted module.
    """
    name = str(target.relative_to(ROOT))
    steps = [
        ["check", "--fix", "--quiet", "--select", "F401,I001", "--exit-zero"],
        ["format", "--quiet"],
    ]
    for step in steps:
        text = subprocess.run(  # noqa: S603 - ruff of this environment, fixed arguments
            [*ruff(), *step, "--stdin-filename", name, "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def pairs() -> list[tuple[Path, Path]]:
    """Every async source with the sync module it generates.

    Returns:
        ``(source, target)`` pairs, sorted by source path.
    """
    found = []
    for source in sorted(PACKAGE.rglob("_async/*.py")):
        if source.name == "__init__.py":
            continue
        found.append((source, source.parent.parent / "_sync" / source.name))
    return found


def generate(source: Path, target: Path) -> str:
    """The text of the sync module ``target`` for the async ``source``.

    Args:
        source: The async module.
        target: The sync module's path.

    Returns:
        The sync module's text, header included.
    """
    header = HEADER.format(source=source.relative_to(ROOT).as_posix())
    return polish(header + translate(source.read_text(encoding="utf-8")), target)


def main(argv: list[str] | None = None) -> int:
    """Write (or check) every generated sync module.

    Args:
        argv: The command line (``--check``).

    Returns:
        The exit status: 1 when ``--check`` finds a module out of date.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a module is out of date")
    args = parser.parse_args(argv)
    stale = []
    for source, target in pairs():
        wanted = generate(source, target)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == wanted:
            continue
        if args.check:
            stale.append(target)
            continue
        target.parent.mkdir(exist_ok=True)
        target.write_text(wanted, encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT)}")
    orphans = [
        path
        for path in sorted(PACKAGE.rglob("_sync/*.py"))
        if path.name != "__init__.py" and not (path.parent.parent / "_async" / path.name).exists()
    ]
    for path in stale:
        print(f"out of date: {path.relative_to(ROOT)} (run `make generate`)", file=sys.stderr)
    for path in orphans:
        print(f"no async source for {path.relative_to(ROOT)}", file=sys.stderr)
    return 1 if stale or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
