"""Run every cookbook script against the local server and check what it prints.

Each script runs in its own process (``sys.executable``) with ``BYTEZ_API_KEY`` removed
from the environment, so it starts the local Bytez-compatible server in-process. The
six scripts run concurrently (they are mostly waiting on simulated latency), so the
whole module takes about as long as the slowest script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from langchain_bytez.server import LocalBytezServer

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = ROOT / "cookbook"
SCRIPT_TIMEOUT = 90.0  # seconds; each script takes a few seconds locally

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
    elapsed: float

    def explain(self) -> str:
        return (
            f"{self.script}: exit {self.returncode} after {self.elapsed:.1f} s\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


def _scripts() -> list[str]:
    return sorted(path.name for path in COOKBOOK.glob("[0-9][0-9]_*.py"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("BYTEZ_API_KEY", "BYTEZ_BASE_URL", "BYTEZ_PROVIDER_KEY"):
        env.pop(name, None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """Start every script at once, then collect their output (bounded by a timeout)."""
    started = time.perf_counter()
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(COOKBOOK / name)],
            cwd=ROOT,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in _scripts()
    }
    results: dict[str, Run] = {}
    for name, proc in procs.items():
        remaining = max(1.0, SCRIPT_TIMEOUT - (time.perf_counter() - started))
        try:
            out, err = proc.communicate(timeout=remaining)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            code = None
        results[name] = Run(
            name,
            code,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            time.perf_counter() - started,
        )
    return results


def _ok(runs: dict[str, Run], name: str) -> Run:
    run = runs[name]
    assert run.returncode == 0, run.explain()
    assert "Traceback" not in run.stderr, run.explain()
    assert LOCAL_ENDPOINT.search(run.stdout), run.explain()
    assert "api.bytez.com" not in run.stdout, run.explain()
    return run


def _lines(run: Run, *expected: str) -> None:
    """Every expected line is printed exactly (as a whole line)."""
    printed = run.stdout.splitlines()
    for line in expected:
        assert line in printed, f"missing line {line!r}\n{run.explain()}"


def _matches(run: Run, *patterns: str) -> list[re.Match[str]]:
    found = []
    for pattern in patterns:
        match = re.search(pattern, run.stdout, re.MULTILINE)
        assert match, f"no match for {pattern!r}\n{run.explain()}"
        found.append(match)
    return found


EXPECTED_SCRIPTS = {
    "01_quickstart.py",
    "02_lcel_streaming.py",
    "03_rag.py",
    "04_batch.py",
    "05_langgraph.py",
    "06_model_management.py",
    "07_agent_tools.py",
    "08_structured_extraction.py",
}


def test_every_script_is_covered() -> None:
    assert set(_scripts()) == EXPECTED_SCRIPTS


def test_01_quickstart(runs: dict[str, Run]) -> None:
    run = _ok(runs, "01_quickstart.py")
    _lines(
        run,
        "  openai-community/gpt2: 0.124B parameters, 0.5 GB RAM",
        "Loaded: openai-community/gpt2 state=running",
        "Streamed 12 chunks, same text as invoke: True",
        "Status after stop: stopped",
        "Quickstart finished.",
    )
    tasks, models, invoked = _matches(
        run,
        r"^Tasks served: (\d+) \(for example .*chat",
        r"^Text-generation models with at most 1B parameters: (\d+)$",
        r"^Invoke result: '(.+)'$",
    )
    assert int(tasks[1]) >= 5
    assert int(models[1]) >= 1
    assert len(invoked[1].split()) == 12  # max_new_tokens=12 words from the local server
    # Progress events came in order: deploying first, running last.
    progress = re.findall(r"^  progress: (\w+)", run.stdout, re.MULTILINE)
    assert progress[0] == "deploying", run.explain()
    assert progress[-1] == "running", run.explain()


def test_02_lcel_streaming(runs: dict[str, Run]) -> None:
    run = _ok(runs, "02_lcel_streaming.py")
    _lines(
        run,
        "Callback handler saw 24 tokens",
        "Callback tokens match the answer: True",
        "astream_events yielded 24 token events",
        "Event tokens match the chain output: True",
        "LCEL streaming finished.",
    )
    # The system and human messages of the prompt reached the model.
    _matches(
        run,
        r'^Callback tokens:Hello! I am Ada\. You said: "Explain photosynthesis',
        r'^Event tokens:Hello! I am Ada\. You said: "Explain rainbows',
    )


def test_03_rag(runs: dict[str, Run]) -> None:
    run = _ok(runs, "03_rag.py")
    _lines(run, "Documents: 5", "Top source: retries.md", "RAG finished.")
    chunks, stored, length = _matches(
        run,
        r"^Chunks after splitting: (\d+)$",
        r"^Vector store holds (\d+) chunks$",
        r"^Answer length: (\d+) characters$",
    )
    assert int(chunks[1]) > 5  # the splitter did split
    assert stored[1] == chunks[1]
    assert int(length[1]) > 0
    # The streamed answer is grounded in the question, and the sources are listed
    # once each, best match first.
    _matches(run, r'^Answer: Hello! You said: "How many times is a request retried')
    (sources,) = _matches(run, r"^Sources: (.+)$")
    listed = sources[1].split(", ")
    assert listed[0] == "retries.md"
    assert len(listed) == len(set(listed))


def test_04_batch(runs: dict[str, Run]) -> None:
    run = _ok(runs, "04_batch.py")
    _lines(
        run,
        "Injected 30 rate-limit answers (retry after 0.05 s)",
        "Failures: 0",
        "Retries logged: 30",
        "Server answered 429 30 times",
        "Batch finished.",
    )
    completed, peak = _matches(
        run,
        r"^Completed 300/300 prompts in (\d+\.\d) s",
        r"^Peak runs in flight: (\d+) \(cap 8\)$",
    )
    assert float(completed[1]) < 30, "the batch must finish well under a minute"
    assert 1 <= int(peak[1]) <= 8
    # The retries are visible in the log, one WARNING line each (tqdm starts lines
    # with a carriage return, hence no ^ anchor)...
    # The wait is the server's 0.05 s plus jitter (spreading callers refused together).
    retry_lines = re.findall(
        r"WARNING langchain_bytez: Bytez POST /models/v2/openai-community/gpt2 failed "
        r"\(attempt \d of 7\): BytezRateLimitError \(HTTP 429\); retrying in \d\.\d\d s\n",
        run.stderr,
    )
    assert len(retry_lines) == 30, run.explain()
    # ...and the progress bar reached the end.
    assert "300/300" in run.stderr, run.explain()


def test_05_langgraph(runs: dict[str, Run]) -> None:
    run = _ok(runs, "05_langgraph.py")
    _lines(
        run,
        "Node finished: pick_model -> ['candidates', 'model']",
        "Node finished: answer -> ['answer']",
        "Node finished: headline -> ['headline']",
        "Question: Why is the sky blue?",
        "Chosen model: Qwen/Qwen2.5-0.5B-Instruct (out of 2 candidates)",
        "LangGraph finished.",
    )
    order = [line for line in run.stdout.splitlines() if line.startswith("Node finished:")]
    assert [line.split()[2] for line in order] == ["pick_model", "answer", "headline"]
    _matches(
        run,
        r"^\[pick_model\] 2 chat candidates; picked Qwen/Qwen2\.5-0\.5B-Instruct — chat model",
        r'^Answer: Hello! You said: "Why is the sky blue\?"',
        r"^Headline: \S+",
    )


def test_06_model_management(runs: dict[str, Run]) -> None:
    run = _ok(runs, "06_model_management.py")
    _lines(
        run,
        "Session open: openai-community/gpt2 state=on instances=2",
        "Session open: Qwen/Qwen2.5-0.5B-Instruct state=on instances=1",
        "Instances listed: 2",
        "Text batch: 6 results; chat batch: 3 replies",
        "Peak runs in flight: Qwen/Qwen2.5-0.5B-Instruct=1",
        "After the session: openai-community/gpt2 state=stopped",
        "After the session: Qwen/Qwen2.5-0.5B-Instruct state=stopped",
        "Model management finished.",
    )
    (peak,) = _matches(run, r"^Peak runs in flight: openai-community/gpt2=(\d+)$")
    assert 1 <= int(peak[1]) <= 2  # concurrency=2 caps the client side
    _matches(run, r"^Handle run \(openai-community/gpt2\): 'The two models are \S")
    # progress=True reported both loads on stderr.
    assert "[bytez] openai-community/gpt2: running" in run.stderr, run.explain()
    assert "[bytez] Qwen/Qwen2.5-0.5B-Instruct: running" in run.stderr, run.explain()


def test_06_degrades_clearly_without_cluster_routes(
    bytez_server_factory: Callable[..., LocalBytezServer], bytez_api_key: str
) -> None:
    # With BYTEZ_API_KEY set the script talks to that endpoint as it would to Bytez; this
    # one is a local server in its default mode (cluster routes answer 404, as Bytez's
    # current docs describe the live service).
    server = bytez_server_factory(ttfb=0.05, token_delay=0.005)
    env = {**_env(), "BYTEZ_API_KEY": bytez_api_key, "BYTEZ_BASE_URL": server.url}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(COOKBOOK / "06_model_management.py")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    run = Run(
        "06_model_management.py",
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        time.perf_counter() - started,
    )
    assert run.returncode == 0, run.explain()
    assert "Traceback" not in run.stderr, run.explain()
    for model_id in ("openai-community/gpt2", "Qwen/Qwen2.5-0.5B-Instruct"):
        _lines(
            run,
            f"Session open: {model_id}: cluster routes unavailable at {server.url}; "
            "serverless mode (the first run starts the model)",
        )
    _lines(run, "Instances listed: 0", "Text batch: 6 results; chat batch: 3 replies")
    _lines(run, "Model management finished.")
    # The runs went serverless: the handle's run and the batch of six reached the server.
    assert server.count("POST", "/models/v2/openai-community/gpt2") == 7


@pytest.mark.parametrize("script", sorted(EXPECTED_SCRIPTS))
def test_script_is_a_jupytext_notebook(script: str) -> None:
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(COOKBOOK / script)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 1
    assert kinds.count("code") >= 1
    # Each notebook opens with its title.
    assert kinds[0] == "markdown"
    assert notebook.cells[0].source.startswith(f"# {script[:2]} ·")


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
