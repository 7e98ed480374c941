"""``.ci/lowest_requirements.py``: what the lowest-versions run (make lowest) installs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lowest_requirements", ROOT / ".ci" / "lowest_requirements.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_runtime_dependencies_are_pinned_to_their_lower_bounds(script: ModuleType) -> None:
    assert script.lowest_pins(["langchain-core>=1.6,<2", "pydantic >= 2.10, <3"]) == [
        "langchain-core==1.6",
        "pydantic==2.10",
    ]
    assert script.lowest_pins(["Foo_Bar[x]>=1.0; python_version < '4'"]) == ["foo-bar==1.0"]


@pytest.mark.parametrize("requirement", ["httpx", "httpx<1", "httpx>=0.27,>=0.28"])
def test_a_dependency_without_one_lower_bound_is_refused(
    script: ModuleType, requirement: str
) -> None:
    with pytest.raises(ValueError, match="lower bound"):
        script.lowest_pins([requirement])


def test_pyproject_gives_every_runtime_dependency_a_pin(script: ModuleType) -> None:
    pins, tests = script.requirements()
    names = [pin.split("==")[0] for pin in pins]
    assert names == ["langchain-core", "httpx", "pydantic", "tenacity"]
    kept = {script.requirement_name(entry) for entry in tests}
    # The main run's pins and what cannot install next to the lowest versions stay out.
    assert "langchain-core" not in kept
    assert "langchain-tests" not in kept
    assert {"pytest", "pytest-asyncio", "hypothesis"} <= kept


def test_check_reports_versions_other_than_the_pins(script: ModuleType) -> None:
    assert script.check([f"pytest=={pytest.__version__}"]) == []
    problems = script.check(["pytest==0.0.1", "surely-not-installed-dist==1.0"])
    assert "pytest" in problems[0]
    assert "not the lowest allowed 0.0.1" in problems[0]
    assert "surely-not-installed-dist is not installed" in problems[1]
