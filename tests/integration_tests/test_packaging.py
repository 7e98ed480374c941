"""The wheel and the sdist build and install, and the README's install line installs this package.

The name ``langchain-bytez`` on the package index holds Bytez's own 0.0.x package with the
same import name, so these tests check that what gets installed is *this* package: its
version, its ``py.typed`` marker and its classes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import langchain_bytez

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 600.0
# The last release of Bytez's own package on the index, which this package supersedes.
BYTEZ_OLD_PACKAGE = "langchain-bytez==0.0.7"


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _fresh_venv(venv: Path, *, with_pip: bool) -> Path:
    args = [sys.executable, "-m", "venv", str(venv)]
    if not with_pip:
        args.insert(3, "--without-pip")
    _run(args)
    return _venv_python(venv)


def _borrow_dependencies(venv: Path) -> None:
    """Let a fresh venv import the runtime dependencies of the running environment.

    A ``.pth`` line appends this environment's site-packages to the venv's path, after the
    venv's own: the package installed into the venv wins, and the editable install of the
    checkout is not visible (``.pth`` files of an appended directory are not processed).
    """
    site = Path(
        _run(
            [
                str(_venv_python(venv)),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ]
        ).stdout.strip()
    )
    (site / "borrowed_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )


def _installed_package(python: Path) -> tuple[str, str]:
    """The version and the file of ``langchain_bytez`` as the given interpreter imports it."""
    out = _run(
        [
            str(python),
            "-c",
            "import langchain_bytez as p; from langchain_bytez import ChatBytez, BytezLLM; "
            "print(p.__version__); print(p.__file__)",
        ],
        cwd="/",  # not the checkout: its directory must not shadow the installed package
    ).stdout.split()
    return out[0], out[1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("build", reason="the wheel and sdist build needs the test group")
    pytest.importorskip("hatchling", reason="the offline build needs hatchling installed")
    out = tmp_path_factory.mktemp("dist")
    # No isolation: hatchling is already installed, so the build needs no download.
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--wheel",
            "--sdist",
            "--outdir",
            str(out),
        ],
        cwd=ROOT,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_wheel_and_sdist_carry_the_package_its_types_and_license(
    dists: tuple[Path, Path],
) -> None:
    wheel, sdist = dists
    version = langchain_bytez.__version__
    assert wheel.name == f"langchain_bytez-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"langchain_bytez-{version}.dist-info/METADATA").decode()
    assert "langchain_bytez/py.typed" in names
    assert "langchain_bytez/__init__.py" in names
    assert f"langchain_bytez-{version}.dist-info/licenses/LICENSE" in names
    assert not any(name.startswith("tests/") for name in names)
    assert "Requires-Python: >=3.11" in metadata
    assert "License-Expression: MIT" in metadata
    with tarfile.open(sdist) as archive:
        members = set(archive.getnames())
    prefix = f"langchain_bytez-{version}"
    for needed in ("langchain_bytez/py.typed", "LICENSE", "README.md", "pyproject.toml"):
        assert f"{prefix}/{needed}" in members, needed


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_dist_installs_into_a_fresh_venv(
    dists: tuple[Path, Path], kind: str, tmp_path: Path
) -> None:
    dist = dists[0] if kind == "wheel" else dists[1]
    venv = tmp_path / "venv"
    python = _fresh_venv(venv, with_pip=False)
    # This environment's pip installs into the venv (--python); --no-deps: the runtime
    # dependencies are borrowed below instead of downloaded again. The sdist builds in
    # pip's isolated environment, as a user's install would.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(dist)])
    _borrow_dependencies(venv)
    version, where = _installed_package(python)
    assert version == langchain_bytez.__version__
    assert where.startswith(str(venv)), where
    assert (Path(where).parent / "py.typed").is_file()


def _readme_install_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Install\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert section is not None, "README.md has no '## Install' section"
    block = re.search(r"^```bash\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    assert block is not None, "the Install section has no bash block"
    return block.group(1)


def test_readme_install_line_installs_this_package_over_bytez_old_one(tmp_path: Path) -> None:
    block = _readme_install_block()
    assert "pip install" in block
    venv = tmp_path / "venv"
    python = _fresh_venv(venv, with_pip=True)
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONPATH", None)
    # A user who tried the old name first: Bytez's 0.0.x package, same import name.
    old = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", BYTEZ_OLD_PACKAGE],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    # The block runs literally, as a user pastes it, from the root of the checkout.
    _run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, env=env)
    version, where = _installed_package(python)
    assert version == langchain_bytez.__version__
    assert where.startswith(str(venv)), where
    if old.returncode == 0:
        listed = _run([str(python), "-m", "pip", "list", "--format=freeze"]).stdout
        assert f"langchain-bytez=={langchain_bytez.__version__}" in listed
        assert "langchain-bytez==0.0.7" not in listed
