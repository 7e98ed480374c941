"""Smoke test of the benchmark suite: ``benchmarks/run.py --quick`` prints every row.

Only the table's shape is checked: timing targets are never asserted in tests (shared
machines make them flaky); ``make bench`` is where they are read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "run.py"

# Every row the table must print (a substring of the Metric column, or a tuple of
# substrings that must all be in it), in order.
EXPECTED_ROWS: list[str | tuple[str, ...]] = [
    "BytezClient.run / raw httpx.Client POST (library layer)",
    *(
        row
        for name, floor, raw in (
            ("BytezLLM.invoke", "floor LLM.invoke", "raw httpx.Client POST"),
            ("ChatBytez.invoke", "floor BaseChatModel.invoke", "raw httpx.Client POST"),
            (
                "BytezEmbeddings.embed_query",
                "floor Embeddings.embed_query",
                "raw httpx.Client POST",
            ),
            ("BytezLLM.ainvoke", "floor LLM.ainvoke", "raw httpx.AsyncClient POST"),
        )
        for row in (
            f"{name} / {raw}",
            f"{floor} / {raw} (langchain-core)",
            f"{name} / {floor} (this package)",
        )
    ),
    "first on_llm_new_token - raw TTFB",
    "client CPU per chunk above raw iter_raw",
    "of which BytezClient.stream",
    *(
        f"{method}: {n} "
        for method in (
            "abatch",
            "gather(astream)",
            "batch (threads)",
            "raw httpx.AsyncClient gather (baseline)",
        )
        for n in (1, 8, 32, 128)
    ),
    "answer through BytezLLM.stream",
    "CPU of BytezLLM.stream / BytezClient.stream",
    "answer through BytezLLM.astream",
    "CPU of BytezLLM.astream / BytezClient.stream",
    "of which BytezClient.stream (library layer, same answer)",
    "peak RSS rise sending a",
    "RSS trend over",
    "first call, cluster already running",
    "later calls (cached",
    "bytez SDK 3.0.1 model.run / raw httpx.Client POST",
    "this package's BytezLLM.invoke, same process and server",
    "langchain-bytez 0.0.7 (Bytez's old package) BytezLLM.invoke",
    "langchain-bytez 0.0.7 (Bytez's old package) BytezLLM.ainvoke",
    # --quick runs 2 rounds of 32 and one of 64 (the full run: 5 of 128, one of 512).
    # The transport rows name versions, so each is matched by two substrings.
    *(
        (transport, f", {layer}: {rounds}")
        for transport in (
            "httpx default pool (httpcore ",
            "httpx-aiohttp AiohttpTransport (aiohttp ",
            "httpcore2 ",
            "httpx2 ",
        )
        for layer in ("raw gather of client.stream", "BytezLLM.astream")
        for rounds in ("2 rounds of 32 / 1", "1 round of 64 / 1")
    ),
]


# A bound against a hang, not a timing target: --quick starts ten Python processes
# (four servers, five fresh-process cases, and the old package's subprocess when its venv
# is cached), which alone take tens of seconds on a shared 2-core machine; it took about
# 150 s there while other test suites ran.
QUICK_RUN_LIMIT = 240.0


@pytest.mark.timeout(QUICK_RUN_LIMIT + 30)
def test_quick_benchmark_prints_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_RUN_LIMIT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    header = next(line for line in table.splitlines() if line.startswith("Section"))
    for column in ("Metric", "Measured", "Target", "Result"):
        assert column in header
    lines = [line for line in table.splitlines() if line[:1].isdigit() and "  " in line]
    position = 0
    for expected in EXPECTED_ROWS:
        parts = (expected,) if isinstance(expected, str) else expected
        found = [
            i
            for i, line in enumerate(lines)
            if i >= position and all(part in line for part in parts)
        ]
        assert found, f"row {expected!r} missing from:\n{table}"
        position = found[0]
        assert lines[position].rstrip().endswith(("PASS", "MISS", "info")), lines[position]
    data = json.loads(out.read_text())
    assert data["mode"] == "quick"
    printed = [line for line in lines if line.rstrip().endswith(("PASS", "MISS", "info"))]
    assert len(data["rows"]) == len(printed)
    assert data["machine"]["nproc"] >= 1
