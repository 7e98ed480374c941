"""The main job (`make demo`) and the endpoint picker it shares with the cookbook."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from langchain_bytez.demo import describe_failure
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezRateLimitError,
)
from langchain_bytez.server import endpoint_from_env


def test_demo_streams_a_chain_against_the_local_server() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"BYTEZ_API_KEY", "BYTEZ_BASE_URL"}}
    proc = subprocess.run(
        [sys.executable, "-m", "langchain_bytez.demo", "--max-new-tokens", "12"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Endpoint: http://127.0.0.1:")
    assert "local Bytez-compatible server: BYTEZ_API_KEY is not set" in lines[0]
    # The fake model is named as such before any of its text appears.
    assert lines[1].startswith("Note: the answer below comes from the local server's FAKE model")
    assert "Chain: PromptTemplate | BytezLLM | StrOutputParser" in proc.stdout
    assert "Prompt: Once upon a time, a lighthouse keeper who collects postcards" in proc.stdout
    # 12 tokens streamed one chunk each (the closing metadata chunk carries no text).
    assert "[12 streamed chunks in " in proc.stdout
    # The demo runs serverless (auto_load=False): no cluster call, hence no auto-load
    # warning against the local server, which answers cluster routes with 404 like Bytez.
    assert proc.stderr == ""


def test_demo_with_an_unreachable_api_fails_fast_in_a_few_lines() -> None:
    env = dict(os.environ)
    # Port 9 (discard) on loopback: nothing listens, so connections are refused at once.
    env.update(BYTEZ_API_KEY="sk-demo-FAKE-5678", BYTEZ_BASE_URL="http://127.0.0.1:9")
    # The timeout bounds the run: the default retry budget (3 attempts, waits up to 60 s)
    # would overrun it, the demo's own settings (1 retry, 2 s wait) do not.
    proc = subprocess.run(
        [sys.executable, "-m", "langchain_bytez.demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    output = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(output) <= 10, "\n".join(output)
    assert "Traceback" not in proc.stderr
    errors = proc.stderr.splitlines()
    assert "Demo failed: BytezConnectionError calling http://127.0.0.1:9" in errors
    assert any(line.startswith("  Why: ") and "127.0.0.1:9" in line for line in errors)
    fix = next(line for line in errors if line.startswith("  Fix: "))
    assert "unset BYTEZ_API_KEY" in fix
    assert "sk-demo-FAKE-5678" not in proc.stdout + proc.stderr
    # No raw warning (the demo makes no implicit cluster call that could warn).
    assert "Warning" not in proc.stderr
    assert "auto-load" not in proc.stderr


def test_endpoint_without_key_starts_and_stops_a_local_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BYTEZ_API_KEY", raising=False)
    with endpoint_from_env(local_api_key="k-local", load_delay=0) as endpoint:
        assert endpoint.is_local
        assert endpoint.api_key == "k-local"
        assert "BYTEZ_API_KEY is not set" in endpoint.describe()
        answer = httpx.get(
            f"{endpoint.base_url}/models/v2/list/tasks", headers={"Authorization": "Key k-local"}
        )
        assert answer.status_code == 200
        refused = httpx.get(
            f"{endpoint.base_url}/models/v2/list/tasks", headers={"Authorization": "Key other"}
        )
        assert refused.status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{endpoint.base_url}/models/v2/list/tasks", timeout=2)


def test_endpoint_with_key_uses_bytez_and_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEZ_API_KEY", "sk-endpoint-FAKE-1234")
    monkeypatch.delenv("BYTEZ_BASE_URL", raising=False)
    endpoint = endpoint_from_env()
    assert not endpoint.is_local
    assert endpoint.base_url == "https://api.bytez.com"
    assert "sk-endpoint-FAKE-1234" not in endpoint.describe()
    assert endpoint.api_key == "sk-endpoint-FAKE-1234"
    assert "sk-endpoint-FAKE-1234" not in repr(endpoint)
    endpoint.close()  # nothing to stop: must not fail

    monkeypatch.setenv("BYTEZ_BASE_URL", "https://bytez.example.test/")
    assert endpoint_from_env().base_url == "https://bytez.example.test"


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (BytezAuthenticationError("Invalid API key", status_code=401), "check BYTEZ_API_KEY"),
        (BytezPaymentRequiredError("No credits", status_code=402), "add credits"),
        (BytezNotFoundError("No such model", status_code=404), "--model"),
        (BytezRateLimitError("Slow down", status_code=429), "wait a minute"),
        (BytezAPIError("Bad gateway", status_code=502), "run it again later"),
    ],
)
def test_demo_failure_lines_name_what_why_and_fix(error: BytezError, hint: str) -> None:
    lines = describe_failure(error, base_url="https://api.bytez.com", local=False)
    assert lines[0] == f"Demo failed: {type(error).__name__} calling https://api.bytez.com"
    assert lines[1] == f"  Why: {error.message}"
    assert lines[2].startswith("  Fix: ")
    assert hint in lines[2]
    # Against the local server, unsetting the key is no fix: it is a bug to report.
    local = describe_failure(error, base_url="http://127.0.0.1:1", local=True)
    assert "unset BYTEZ_API_KEY" not in local[2]
    assert "report" in local[2]
