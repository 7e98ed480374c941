"""The main job (`make demo`) and the endpoint picker it shares with the cookbook."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

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
    assert "Chain: PromptTemplate | BytezLLM | StrOutputParser" in proc.stdout
    # 12 tokens streamed one chunk each (the closing metadata chunk carries no text).
    assert "[12 streamed chunks in " in proc.stdout
    # Progress of the auto-load goes to stderr with load_progress=True.
    assert "running" in proc.stderr


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
