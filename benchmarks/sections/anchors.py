"""Section 6, anchors: what users would otherwise pick, against the same local server.

* Bytez's own SDK, ``bytez`` 3.0.1 (installed in ``.venv`` by the ``test`` group), in this
  process: ``Bytez(key).model(id).run(text, params)``, interleaved with a raw pooled
  ``httpx.Client`` POST of the same body and with this package's ``BytezLLM.invoke``. The
  SDK has no public base-URL setting; its ``_client.host`` (the URL prefix it posts to) is
  pointed at the local server, as in ``tests/integration_tests/test_server_bytez_sdk.py``.
* Bytez's old LangChain package, ``langchain-bytez`` 0.0.7. It pins ``langchain==0.3.17``
  (langchain-core 0.3), which cannot live next to this package's langchain-core 1.x, so it
  runs in a subprocess with its own venv (created once, cached in ``.venv-bench-anchors/``,
  or where ``BYTEZ_BENCH_ANCHORS_VENV`` points). It has no base-URL parameter: ``__init__``
  sets ``url`` to ``https://api.bytez.com/models/v2/<model>`` (or ``localhost:8080`` with
  ``debug=True``); ``url`` is a public pydantic field read on every request, so it is
  re-pointed at the local server after construction. Its ratio is to a raw pooled
  ``httpx`` POST in that same subprocess.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OLD_VERSION = "0.0.7"
VENV = Path(os.environ.get("BYTEZ_BENCH_ANCHORS_VENV", ROOT / ".venv-bench-anchors"))
STAMP = VENV / f".installed-langchain-bytez-{OLD_VERSION}"
SETUP_TIMEOUT = 600.0
CASE_TIMEOUT = 300.0

# Runs inside the scratch venv, from a temporary directory (so that this checkout's own
# ``langchain_bytez`` is not on sys.path and the old package is the one imported).
OLD_SCRIPT = r"""
import asyncio, json, statistics, sys, time
import httpx, langchain_core, langchain_bytez
from importlib.metadata import version
from langchain_bytez import BytezLLM

url, key, model, prompt, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
params = {"max_new_tokens": 5}
endpoint = f"{url}/models/v2/{model}"
llm = BytezLLM(model_id=model, api_key=key, params=params)
assert llm.url.startswith(("https://api.bytez.com", "http://localhost:8080")), llm.url
llm.url = endpoint  # no base-URL parameter: the public field every request reads
headers = {"Authorization": f"Key {key}", "Content-Type": "application/json"}
body = json.dumps({"text": prompt, "params": params, "stream": False}).encode()

def interleave(n, a, b):
    ta, tb = [], []
    for i in range(n):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            t = time.perf_counter()
            (a if which == 0 else b)()
            (ta if which == 0 else tb).append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)

out = {"version": version("langchain-bytez"), "langchain_core": langchain_core.__version__}
with httpx.Client(headers=headers, timeout=30) as raw:
    def raw_call():
        r = raw.post(endpoint, content=body)
        r.raise_for_status()
        return r.json()["output"]
    sample = llm.invoke(prompt)
    assert isinstance(sample, str) and sample == raw_call(), (sample, raw_call())
    for _ in range(max(5, n // 10)):
        llm.invoke(prompt); raw_call()
    lib_s, raw_s = interleave(n, lambda: llm.invoke(prompt), raw_call)
    out["invoke_ms"], out["raw_ms"] = lib_s * 1e3, raw_s * 1e3

async def run_async():
    async with httpx.AsyncClient(headers=headers, timeout=30) as raw:
        async def raw_call():
            r = await raw.post(endpoint, content=body)
            r.raise_for_status()
            return r.json()["output"]
        for _ in range(max(5, n // 10)):
            await llm.ainvoke(prompt); await raw_call()
        ta, tb = [], []
        for i in range(n):
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                t = time.perf_counter()
                await (llm.ainvoke(prompt) if which == 0 else raw_call())
                (ta if which == 0 else tb).append(time.perf_counter() - t)
        return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3

out["ainvoke_ms"], out["araw_ms"] = asyncio.run(run_async())
print(json.dumps(out))
"""


def ensure_venv(say: Callable[[str], None]) -> Path:
    """The cached scratch venv with the old package; created on first use."""
    python = VENV / "bin" / "python"
    if STAMP.exists() and python.exists():
        return python
    say(f"anchors: creating {VENV} with langchain-bytez=={OLD_VERSION} (once, ~1 min)")
    subprocess.run(
        [_base_python(), "-m", "venv", "--clear", str(VENV)],
        check=True,
        timeout=SETUP_TIMEOUT,
        capture_output=True,
    )
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"langchain-bytez=={OLD_VERSION}",
            "httpx",
        ],
        check=True,
        timeout=SETUP_TIMEOUT,
        capture_output=True,
    )
    STAMP.touch()
    return python


def _base_python() -> str:
    """The interpreter this venv was made from (a venv's venv would inherit nothing)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def run_old(python: Path, url: str, key: str, model: str, prompt: str, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bytez-bench-anchor-") as tmp:
        script = Path(tmp) / "old_langchain_bytez.py"
        script.write_text(OLD_SCRIPT)
        proc = subprocess.run(
            [str(python), str(script), url, key, model, prompt, str(n)],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"langchain-bytez {OLD_VERSION} case failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_anchors(
    url: str,
    quick: bool,
    *,
    add: Callable[..., None],
    say: Callable[[str], None],
    key: str,
    model: str,
    prompt: str,
) -> None:
    n = 20 if quick else 300
    bench_sdk(url, n, add=add, say=say, key=key, model=model, prompt=prompt)
    name = f"langchain-bytez {OLD_VERSION} (Bytez's old package) BytezLLM"
    if quick and not STAMP.exists():
        for method, raw in (("invoke", "httpx.Client"), ("ainvoke", "httpx.AsyncClient")):
            add(
                "6 anchors",
                f"{name}.{method} / raw {raw} POST (own venv)",
                "skipped in --quick (needs a scratch venv)",
                "-",
                None,
            )
        return
    try:
        python = ensure_venv(say)
        say(f"anchors: {n} interleaved langchain-bytez {OLD_VERSION} invoke / raw (subprocess)")
        res = run_old(python, url, key, model, prompt, n)
    except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
        for method, raw in (("invoke", "httpx.Client"), ("ainvoke", "httpx.AsyncClient")):
            add(
                "6 anchors",
                f"{name}.{method} / raw {raw} POST (own venv)",
                f"not measured: {str(exc).strip().splitlines()[-1][:80]}",
                "-",
                None,
            )
        return
    for method, raw, lib_key, raw_key in (
        ("invoke", "httpx.Client", "invoke_ms", "raw_ms"),
        ("ainvoke", "httpx.AsyncClient", "ainvoke_ms", "araw_ms"),
    ):
        ratio = res[lib_key] / res[raw_key]
        add(
            "6 anchors",
            f"{name}.{method} / raw {raw} POST (own venv)",
            f"{ratio:.2f}x ({res[lib_key]:.3f} / {res[raw_key]:.3f} ms, "
            f"core {res['langchain_core']})",
            "-",
            None,
            ratio=ratio,
            **res,
        )


def bench_sdk(
    url: str,
    n: int,
    *,
    add: Callable[..., None],
    say: Callable[[str], None],
    key: str,
    model: str,
    prompt: str,
) -> None:
    import bytez
    import httpx

    from langchain_bytez import BytezLLM

    params = {"max_new_tokens": 5}
    endpoint = f"{url}/models/v2/{model}"
    body = json.dumps({"text": prompt, "params": params}).encode()
    sdk = bytez.Bytez(key)
    sdk._client.host = f"{url}/models/v2/"  # no public base-URL setting (see module doc)
    sdk_model = sdk.model(model)
    ours = BytezLLM(model=model, api_key=key, base_url=url, max_new_tokens=5, auto_load=True)
    headers = {"Authorization": f"Key {key}", "Content-Type": "application/json"}

    with httpx.Client(headers=headers, timeout=30) as raw:

        def raw_call() -> Any:
            response = raw.post(endpoint, content=body)
            response.raise_for_status()
            return response.json()["output"]

        def sdk_call() -> Any:
            result = sdk_model.run(prompt, params)
            if result.error:
                raise RuntimeError(f"bytez SDK: {result.error}")
            return result.output

        fns: list[Callable[[], Any]] = [sdk_call, lambda: ours.invoke(prompt), raw_call]
        for _ in range(max(10, n // 10)):
            for fn in fns:
                fn()
        echoed = raw_call()
        assert sdk_call() == echoed, "the SDK and the raw POST got different answers"
        # The service echoes the prompt in front of the answer; BytezLLM strips it.
        assert echoed.endswith(ours.invoke(prompt))
        say(f"anchors: {n} interleaved bytez SDK run / BytezLLM.invoke / raw POST")
        times: list[list[float]] = [[] for _ in fns]
        for i in range(n):
            for j in range(len(fns)):
                which = (i + j) % len(fns)
                started = time.perf_counter()
                fns[which]()
                times[which].append(time.perf_counter() - started)
    sdk_ms, ours_ms, raw_ms = (statistics.median(t) * 1e3 for t in times)
    from importlib.metadata import version

    for label, ms in (
        (f"bytez SDK {version('bytez')} model.run", sdk_ms),
        ("  this package's BytezLLM.invoke, same process and server", ours_ms),
    ):
        add(
            "6 anchors",
            f"{label} / raw httpx.Client POST",
            f"{ms / raw_ms:.2f}x ({ms:.3f} / {raw_ms:.3f} ms)",
            "-",
            None,
            ratio=ms / raw_ms,
            lib_median_ms=ms,
            raw_median_ms=raw_ms,
            calls=n,
        )
