"""Requirements of the lowest-versions test run, read from pyproject.toml.

Prints one requirement a line: every runtime dependency pinned to its lower bound
(``langchain-core>=1.6,<2`` becomes ``langchain-core==1.6``), then the ``test`` dependency
group without the entries that cannot be installed next to those pins. With ``--check`` it
instead verifies that the running interpreter has exactly those lowest versions installed,
so the run cannot silently test newer releases.

Run by ``make lowest`` (part of ``make test``).
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# The requirement strings of pyproject.toml are plain ``name[extras]>=low,<high``: a regular
# expression reads them, so printing needs only the standard library (a fresh machine's
# interpreter has no ``packaging``).
NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
LOWER = re.compile(r">=\s*([^,;\s]+)")


def canonical(name: str) -> str:
    """Normalise a distribution name (PEP 503).

    Args:
        name: A distribution name.

    Returns:
        The lower-case name with runs of ``-_.`` replaced by ``-``.
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(text: str) -> str:
    """The distribution name at the start of a requirement string.

    Args:
        text: A PEP 508 requirement string.

    Returns:
        Its canonical distribution name.

    Raises:
        ValueError: The string does not start with a name.
    """
    match = NAME.match(text)
    if match is None:
        raise ValueError(f"cannot read a name in {text!r}")
    return canonical(match.group(1))


# Test-group entries left out of the lowest run, with the reason.
EXCLUDED = {
    # Pinned to the newest release for the main run; the lowest run pins its own.
    "langchain-core": "the main run's pin",
    # langchain-tests 1.1.9 requires a langchain-core newer than the lowest allowed.
    "langchain-tests": "needs a newer langchain-core",
    # Only the docs-snippet run (make docs-snippets) uses it.
    "pytest-markdown-docs": "used by the docs-snippet run only",
}


def lowest_pins(dependencies: list[str]) -> list[str]:
    """Pin each requirement to the version of its ``>=`` lower bound.

    Args:
        dependencies: PEP 508 requirement strings.

    Returns:
        ``name==version`` strings, in the input order.

    Raises:
        ValueError: A requirement has no ``>=`` lower bound.
    """
    pins = []
    for text in dependencies:
        lower = LOWER.findall(text.split(";", 1)[0])
        if len(lower) != 1:
            raise ValueError(f"{text!r} needs exactly one '>=' lower bound")
        pins.append(f"{requirement_name(text)}=={lower[0]}")
    return pins


def requirements() -> tuple[list[str], list[str]]:
    """The runtime pins and the kept test-group requirements.

    Returns:
        ``(pins, test_requirements)``.
    """
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    pins = lowest_pins(project["project"]["dependencies"])
    excluded = {canonical(name) for name in EXCLUDED}
    tests = [
        entry
        for entry in project["dependency-groups"]["test"]
        if isinstance(entry, str) and requirement_name(entry) not in excluded
    ]
    return pins, tests


def check(pins: list[str]) -> list[str]:
    """Compare the installed versions with the pins.

    Args:
        pins: ``name==version`` strings.

    Returns:
        One message per package whose installed version differs (empty when all match).
    """
    # Run inside the lowest venv, where langchain-core brings ``packaging``.
    from packaging.version import Version

    problems = []
    for pin in pins:
        name, wanted = re.split(r"==", pin, maxsplit=1)
        try:
            installed = version(name)
        except PackageNotFoundError:
            problems.append(f"{name} is not installed (wanted {wanted})")
            continue
        if Version(installed) != Version(wanted):
            problems.append(f"{name} {installed} is installed, not the lowest allowed {wanted}")
    return problems


def main(argv: list[str]) -> int:
    """Print the requirements, or check them with ``--check``.

    Args:
        argv: Command-line arguments.

    Returns:
        The process exit code.
    """
    pins, tests = requirements()
    if "--check" in argv:
        problems = check(pins)
        for problem in problems:
            print(f"lowest-versions run: {problem}", file=sys.stderr)
        return 1 if problems else 0
    print("\n".join([*pins, *tests]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
