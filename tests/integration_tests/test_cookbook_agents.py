"""Run the agent cookbook scripts (07, 08) against the local server and check their output.

Each script runs in its own process with ``BYTEZ_API_KEY`` removed, so it starts the
local Bytez-compatible server in-process; both run concurrently.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = ROOT / "cookbook"
SCRIPT_TIMEOUT = 90.0
SCRIPTS = ("07_agent_tools.py", "08_structured_extraction.py")
LOCAL_ENDPOINT = re.compile(
    r"^Endpoint: http://127\.0\.0\.1:\d+ \(local Bytez-compatible server: "
    r"BYTEZ_API_KEY is not set\)$",
    re.MULTILINE,
)


@dataclass
class Run:
    script: str
    returncode: int | None
    stdout: str
    stderr: str

    def explain(self) -> str:
        return (
            f"{self.script}: exit {self.returncode}\n--- stdout ---\n{self.stdout}\n"
            f"--- stderr ---\n{self.stderr[-4000:]}"
        )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("BYTEZ_API_KEY", "BYTEZ_BASE_URL", "BYTEZ_PROVIDER_KEY"):
        env.pop(name, None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(COOKBOOK / name)],
            cwd=ROOT,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in SCRIPTS
    }
    results: dict[str, Run] = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=SCRIPT_TIMEOUT)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            code = None
        results[name] = Run(name, code, out.decode("utf-8", "replace"), err.decode("utf-8"))
    return results


def _ok(runs: dict[str, Run], name: str) -> Run:
    run = runs[name]
    assert run.returncode == 0, run.explain()
    assert "Traceback" not in run.stderr, run.explain()
    assert LOCAL_ENDPOINT.search(run.stdout), run.explain()
    return run


def _lines(run: Run, *expected: str) -> None:
    printed = run.stdout.splitlines()
    for line in expected:
        assert line in printed, f"missing line {line!r}\n{run.explain()}"


def test_07_agent_tools(runs: dict[str, Run]) -> None:
    run = _ok(runs, "07_agent_tools.py")
    _lines(
        run,
        "Tool call: add({'a': 2, 'b': 3})",
        "Invalid tool calls: 0",
        "   tool: 5",
        "Tools run: add(2, 3)",
        "Agent answer: The answer is 5.",
        "Tools run: get_weather('Paris')",
        "Streamed answer: The answer is Sunny and 21 °C in Paris.",
        "Agent tools finished.",
    )
    # The agent's messages in order: question, the call, its result, the answer.
    kinds = re.findall(r"^ +(human|ai|tool): ", run.stdout, re.MULTILINE)
    assert kinds == ["human", "ai", "tool", "ai"], run.explain()
    # The streamed call came before its result, and both before the answer's text.
    (streamed,) = re.findall(r"^Streamed: (.*)$", run.stdout, re.MULTILINE)
    assert streamed.startswith("[call get_weather] [result 'Sunny and 21 °C in Paris.'] The")


def test_08_structured_extraction(runs: dict[str, Run]) -> None:
    run = _ok(runs, "08_structured_extraction.py")
    _lines(
        run,
        "function_calling: Person(name='Ann', age=31)",
        "     json_schema: Person(name='Ann', age=31)",
        "       json_mode: Person(name='Ann', age=31)",
        "'Bob is 42.' -> Bob, 42",
        "'Chloe turned 27 last week.' -> Chloe, 27",
        "'Dmitri, 65, retired in May.' -> Dmitri, 65",
        "Extracted 3 people, all typed: True",
        'Refused: OutputParserException, model wrote \'{"name": "Ann"}\'',
        'include_raw: parsed=None, raw text=\'{"name": "Ann"}\'',
        "Structured extraction finished.",
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_a_jupytext_notebook(script: str) -> None:
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(COOKBOOK / script)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 1
    assert kinds.count("code") >= 1
    assert kinds[0] == "markdown"
    assert notebook.cells[0].source.startswith(f"# {script[:2]} ·")
