"""The documentation site builds offline with ``mkdocs build --strict``, and covers the API.

``--strict`` turns every MkDocs warning into a failure: broken links between pages, nav
entries without a file, and docstrings mkdocstrings cannot render.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "langchain_bytez"
BUILD_TIMEOUT = 300.0


def _public_modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    env = dict(os.environ)
    env["NO_MKDOCS_2_WARNING"] = "1"  # Material's banner about its successor
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-6000:]}"
    # The pages exist and the API reference was generated from the docstrings.
    for page in ("index.html", "quickstart/index.html", "migration/index.html"):
        assert (site / page).is_file(), page
    for module in _public_modules():
        html = (site / "api" / module / "index.html").read_text(encoding="utf-8")
        assert f"langchain_bytez.{module}" in html, module
    llms = (site / "api" / "llms" / "index.html").read_text(encoding="utf-8")
    assert "BytezLLM" in llms
    assert "max_new_tokens" in llms
    # No web fonts or other remote assets are fetched by the theme.
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in index


def test_every_module_has_an_api_page() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for module in _public_modules():
        page = ROOT / "docs" / "api" / f"{module}.md"
        assert page.is_file(), f"docs/api/{module}.md is missing"
        assert f"::: langchain_bytez.{module}" in page.read_text(encoding="utf-8")
        assert re.search(rf"^\s*- .*api/{module}\.md\s*$", nav, re.MULTILINE), (
            f"api/{module}.md is not in the mkdocs.yml nav"
        )


def test_public_classes_and_functions_have_docstrings() -> None:
    griffe = pytest.importorskip("griffe")
    package = griffe.load("langchain_bytez", search_paths=[str(ROOT)], docstring_parser="google")
    missing: list[str] = []

    def visit(obj: object) -> None:
        for name, member in obj.members.items():  # type: ignore[attr-defined]
            if name.startswith("_") or member.is_alias:
                continue
            if member.is_module or member.is_class or member.is_function:
                if not (member.docstring and member.docstring.value.strip()):
                    missing.append(member.path)
            if member.is_module or member.is_class:
                visit(member)

    visit(package)
    assert not missing, "public objects without a docstring:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    "path",
    [
        "langchain_bytez.base.BytezModelMixin",
        "langchain_bytez.generation.BytezGenerationMixin",
        "langchain_bytez.llms.BytezLLM",
        "langchain_bytez.chat_models.ChatBytez",
        "langchain_bytez.embeddings.BytezEmbeddings",
    ],
)
def test_langchain_class_fields_have_docstrings(path: str) -> None:
    griffe = pytest.importorskip("griffe")
    package = griffe.load("langchain_bytez", search_paths=[str(ROOT)], docstring_parser="google")
    cls = package[path.removeprefix("langchain_bytez.")]
    undocumented = [
        name
        for name, member in cls.members.items()
        if member.is_attribute
        and not name.startswith("_")
        and name != "model_config"
        and not (member.docstring and member.docstring.value.strip())
    ]
    assert not undocumented, f"{path} fields without a docstring: {undocumented}"


def _markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", _markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_link_only_to_files_in_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for match in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        resolved = (page.parent / target).resolve()
        if not resolved.exists() or ROOT not in resolved.parents:
            broken.append(target)
    assert not broken, f"{page.name} links to files not in the repository: {broken}"
    # The wire contract used to be cited from outside the repository.
    assert "bytez-protocol.md" not in text


def test_license_file_is_mit_and_matches_the_metadata() -> None:
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "Copyright (c) 2026 langchain-bytez developers" in license_text
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
