"""Section ``transports``: async HTTP transports under consecutive rounds of concurrent streams.

Every candidate is one long-lived ``httpx.AsyncClient`` (or, for ``httpx2``, its own
``httpx2.AsyncClient``), kept across all rounds: the collapse this section looks for (issue
15) only shows once the pool holds idle keep-alive connections, i.e. from the second round.

Candidates:

* ``httpcore``: httpx's default ``AsyncHTTPTransport`` (httpcore's ``AsyncConnectionPool``);
* ``aiohttp``: ``httpx_aiohttp.AiohttpTransport`` (package ``httpx-aiohttp``), aiohttp's
  ``TCPConnector`` under httpx's API;
* ``httpcore2``: httpcore2's ``AsyncConnectionPool`` (the pool of the ``httpx2`` fork)
  mounted as an ``httpx`` transport by the small adapter below, so that an
  ``httpx.AsyncClient`` (what ``http_async_client=`` accepts) runs on it;
* ``httpx2``: a plain ``httpx2.AsyncClient`` (raw rows only: ``BytezLLM`` accepts only an
  ``httpx.AsyncClient``).

Rounds are interleaved across candidates (round 1 of every candidate, then round 2...), so
load on the shared machine hits them alike. Each ratio is the round's wall time over the
median single-stream time of the same candidate, measured in the same run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

# A generous connection cap for every candidate: aiohttp's TCPConnector defaults to 100
# connections (it would queue 28 of 128 streams), httpcore to none when asked.
LIMITS = httpx.Limits(max_connections=2048, max_keepalive_connections=1024, keepalive_expiry=30)


class Httpcore2Transport(httpx.AsyncBaseTransport):
    """httpcore2's pool (the ``httpx2`` fork's core) behind httpx's transport interface.

    Only what a plain-HTTP benchmark needs: no proxies, no TLS settings, exceptions left as
    httpcore2's own. It shows what swapping the pool alone would buy.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        import httpcore2

        self._httpcore2 = httpcore2
        self._pool = httpcore2.AsyncConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core = self._httpcore2
        req = core.Request(
            method=request.method,
            url=core.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,  # type: ignore[arg-type]
            extensions=request.extensions,
        )
        resp = await self._pool.handle_async_request(req)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_Httpcore2Stream(resp.stream),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Httpcore2Stream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


@dataclass
class Candidate:
    """One transport: how to build its long-lived client, and whether it can be injected."""

    name: str
    what: str
    make: Callable[[dict[str, str]], Any] | None  # headers -> client; None: unavailable
    injectable: bool
    missing: str = ""


def candidates() -> list[Candidate]:
    out = [
        Candidate(
            "httpcore",
            "httpx default pool (httpcore " + _version("httpcore") + ")",
            lambda h: httpx.AsyncClient(headers=h, timeout=60, limits=LIMITS),
            injectable=True,
        )
    ]
    try:
        from httpx_aiohttp import AiohttpTransport

        out.append(
            Candidate(
                "aiohttp",
                f"httpx-aiohttp AiohttpTransport (aiohttp {_version('aiohttp')})",
                lambda h: httpx.AsyncClient(
                    headers=h, timeout=60, transport=AiohttpTransport(limits=LIMITS)
                ),
                injectable=True,
            )
        )
    except ImportError as exc:
        out.append(
            Candidate(
                "aiohttp", "httpx-aiohttp AiohttpTransport", None, injectable=True, missing=str(exc)
            )
        )
    try:
        import httpcore2  # noqa: F401

        out.append(
            Candidate(
                "httpcore2",
                f"httpcore2 {_version('httpcore2')} pool as an httpx transport",
                lambda h: httpx.AsyncClient(
                    headers=h, timeout=60, transport=Httpcore2Transport(LIMITS)
                ),
                injectable=True,
            )
        )
    except ImportError as exc:
        out.append(
            Candidate("httpcore2", "httpcore2 pool", None, injectable=True, missing=str(exc))
        )
    try:
        import httpx2

        limits2 = httpx2.Limits(
            max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections,
            keepalive_expiry=LIMITS.keepalive_expiry,
        )
        out.append(
            Candidate(
                "httpx2",
                f"httpx2 {_version('httpx2')} AsyncClient",
                lambda h: httpx2.AsyncClient(headers=h, timeout=60, limits=limits2),
                injectable=False,
            )
        )
    except ImportError as exc:
        out.append(
            Candidate("httpx2", "httpx2 AsyncClient", None, injectable=False, missing=str(exc))
        )
    return out


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


@dataclass(frozen=True)
class Plan:
    rounds: int
    streams: int
    big: int  # one round of this many, reported
    singles: int


FULL_PLAN = Plan(rounds=5, streams=128, big=512, singles=5)
QUICK_PLAN = Plan(rounds=2, streams=32, big=64, singles=2)


def bench_transports(
    url: str,
    quick: bool,
    *,
    add: Callable[..., None],
    say: Callable[[str], None],
    headers: dict[str, str],
    body: bytes,
    model: str,
    prompt: str,
    key: str,
) -> None:
    """Measure every candidate raw and (where injectable) through ``BytezLLM.astream``."""
    from langchain_bytez import BytezLLM

    plan = QUICK_PLAN if quick else FULL_PLAN
    endpoint = f"{url}/models/v2/{model}"
    found = candidates()
    loop = asyncio.new_event_loop()
    clients: dict[str, Any] = {}
    # "<candidate> raw" / "<candidate> BytezLLM" -> one stream through that client
    runners: dict[str, Callable[[], Awaitable[int]]] = {}
    try:
        # A loader with the largest concurrency creates the cluster (capacity.desired) the
        # server runs in parallel; every other object then finds it running.
        loader = BytezLLM(
            model=model,
            api_key=key,
            base_url=url,
            max_new_tokens=20,
            concurrency=plan.big,
            auto_load=True,
        )
        loader.invoke(prompt)
        for cand in found:
            if cand.make is None:
                continue
            raw = cand.make(headers)
            clients[f"{cand.name} raw"] = raw
            runners[f"{cand.name} raw"] = _raw_runner(raw, endpoint, body)
            if cand.injectable:
                shared = cand.make(headers)
                clients[f"{cand.name} BytezLLM"] = shared
                llm = BytezLLM(
                    model=model,
                    api_key=key,
                    base_url=url,
                    max_new_tokens=20,
                    concurrency=plan.big,
                    auto_load=True,
                    http_async_client=shared,
                )
                runners[f"{cand.name} BytezLLM"] = _llm_runner(llm, prompt)

        def burst(run: Callable[[], Awaitable[int]], n: int) -> float:
            async def go() -> None:
                counts = await asyncio.gather(*(run() for _ in range(n)))
                assert all(c >= 1 for c in counts), counts

            started = time.perf_counter()
            loop.run_until_complete(go())
            return time.perf_counter() - started

        say(f"transports: single streams ({plan.singles} each, {len(runners)} clients)")
        singles: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(plan.singles):
            for name, run in runners.items():
                singles[name].append(burst(run, 1))
        rounds: dict[str, list[float]] = {name: [] for name in runners}
        for r in range(plan.rounds):
            say(f"transports: round {r + 1}/{plan.rounds} of {plan.streams} streams")
            for name, run in runners.items():
                rounds[name].append(burst(run, plan.streams))
        say(f"transports: one round of {plan.big} streams")
        big: dict[str, float] = {name: burst(run, plan.big) for name, run in runners.items()}
    finally:
        for client in clients.values():
            loop.run_until_complete(client.aclose())
        # As asyncio.run does: the package closes its loop-scoped pools at this hook.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    import statistics

    for cand in found:
        for layer in ("raw", "BytezLLM"):
            label = f"{cand.name} {layer}"
            how = "raw gather of client.stream" if layer == "raw" else "BytezLLM.astream"
            title = f"{cand.what}, {how}"
            if label not in runners:
                reason = (
                    cand.missing or "not injectable: http_async_client takes an httpx.AsyncClient"
                )
                add(
                    "7 transports",
                    f"{title}: {plan.rounds} rounds of {plan.streams} / 1",
                    f"n/a ({reason[:60]})",
                    "-",
                    None,
                    transport=cand.name,
                    layer=layer,
                )
                add(
                    "7 transports",
                    f"{title}: 1 round of {plan.big} / 1",
                    "n/a",
                    "-",
                    None,
                    transport=cand.name,
                    layer=layer,
                )
                continue
            unit = statistics.median(singles[label])
            ratios = [t / unit for t in rounds[label]]
            worst = max(ratios)
            target = 2.0 if layer == "BytezLLM" else None
            add(
                "7 transports",
                f"{title}: {plan.rounds} rounds of {plan.streams} / 1",
                ", ".join(f"{x:.2f}" for x in ratios) + f"x (1 stream {unit * 1e3:.0f} ms)",
                "every round <= 2.00x" if target else "-",
                None if target is None else worst <= target,
                transport=cand.name,
                layer=layer,
                ratios=ratios,
                single_ms=unit * 1e3,
                round_ms=[t * 1e3 for t in rounds[label]],
            )
            ratio = big[label] / unit
            add(
                "7 transports",
                f"{title}: 1 round of {plan.big} / 1",
                f"{ratio:.2f}x",
                "<= 3.00x (if the server keeps up)" if target else "-",
                None if target is None else ratio <= 3.0,
                transport=cand.name,
                layer=layer,
                ratio=ratio,
                wall_ms=big[label] * 1e3,
            )


def _raw_runner(client: Any, endpoint: str, body: bytes) -> Callable[[], Awaitable[int]]:
    async def one() -> int:
        count = 0
        async with client.stream("POST", endpoint, content=body) as response:
            response.raise_for_status()
            async for _ in response.aiter_raw():
                count += 1
        return count

    return one


def _llm_runner(llm: Any, prompt: str) -> Callable[[], Awaitable[int]]:
    async def one() -> int:
        count = 0
        async for _ in llm.astream(prompt):
            count += 1
        return count

    return one
