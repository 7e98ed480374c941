"""The Bytez routes of the local server: auth, catalogue, runs, streams, clusters, faults.

A [`Router`][langchain_bytez.testing.routes.Router] answers one
[`Exchange`][langchain_bytez.testing.http.Exchange] at a time; the knobs it reads live on
its [`LocalBytezServer`][langchain_bytez.testing.server.LocalBytezServer], so tests may
change them while the server runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_bytez.testing.catalogue import CatalogueRow, format_price
from langchain_bytez.testing.clusters import now_iso
from langchain_bytez.testing.control import SECRET_HEADERS, RecordedRequest, local_route
from langchain_bytez.testing.fake_models import (
    FAKE_MODELS,
    TASK_DEFAULT_FAKE,
    FakeAnswer,
    FakeRun,
    generate_continuation,
)
from langchain_bytez.testing.faults import Fault, FaultKind
from langchain_bytez.testing.http import Exchange, dumps
from langchain_bytez.testing.modes import AuthForm, ClusterRoutes
from langchain_bytez.testing.params import HTTPError, envelope_error, invalid_params, read_run_body

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_bytez.testing.server import LocalBytezServer

__all__ = ["NOT_IN_CATALOGUE", "Router"]

logger = logging.getLogger("langchain_bytez.server")

NOT_IN_CATALOGUE = "Model does not exist or has yet to be added to the Bytez catalog"
"""The live service's 404 text for a model it does not serve."""

_PREFIX = "/models/v2/"
_LOCAL_PREFIX = "/_local/"
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
    b"</body></html>\r\n"
)
# Live streams are sent as server-sent events' content type, with raw text chunks.
_STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"
_HANG_POLL = 0.05


def _fmt(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass
class _Info:
    """What the request log records about one exchange."""

    epoch: int
    arrival: int = 0
    json: Any = None
    auth_ok: bool = True
    model_id: str | None = None
    stream: bool = False
    release: Callable[[], None] | None = field(default=None, repr=False)


class Router:
    """Answers the Bytez routes for one server."""

    def __init__(self, server: LocalBytezServer) -> None:
        """Bind the router to its server.

        Args:
            server: Where the knobs, catalogue, faults, clusters and log live.
        """
        self.server = server

    # ------------------------------------------------------------------ entry

    async def handle(self, ex: Exchange) -> None:
        """Answer one exchange (never raises for a route's bug: answers 500)."""
        server = self.server
        info = _Info(epoch=server._epoch, arrival=server._log.arrived())
        recorded = False

        def finalize() -> None:
            # Runs just before the answer's last byte: a client that sends its next
            # request as soon as it has the answer finds the slot free and the log written.
            nonlocal recorded
            release, info.release = info.release, None
            if release is not None:
                release()
            if not recorded:
                recorded = True
                if info.epoch == server._epoch:  # nothing from before a reset() is logged
                    server._log.add(self._record(ex, info))

        ex.on_final = finalize
        started = time.perf_counter()
        try:
            await self._dispatch(ex, info)
        except (ConnectionError, OSError):
            ex.aborted = True
        except Exception:
            logger.exception("local Bytez server: %s %s failed", ex.method, ex.path)
            if ex.status:
                ex.aborted = True
            else:
                ex.keep_alive = False
                await self._json(ex, 500, {"error": "Internal Server Error", "output": None})
        if ex.on_final is not None:
            ex.on_final = None
            finalize()
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s %s %d %.1fms",
                ex.method,
                ex.path,
                0 if ex.aborted else ex.status,
                (time.perf_counter() - started) * 1000,
            )

    @staticmethod
    def _record(ex: Exchange, info: _Info) -> RecordedRequest:
        return RecordedRequest(
            method=ex.method,
            path=ex.path,
            query=ex.query,
            json=info.json,
            headers={k: v for k, v in ex.headers.items() if k not in SECRET_HEADERS},
            auth_ok=info.auth_ok,
            status=0 if ex.aborted else ex.status,
            model_id=info.model_id,
            stream=info.stream,
            arrival=info.arrival,
        )

    # ------------------------------------------------------------------ responses

    def meta_headers(
        self,
        row: CatalogueRow | None,
        elapsed: float = 0.0,
        *,
        reset: str = "1",
        remaining: int | None = None,
    ) -> list[tuple[str, str]]:
        """The metadata headers the live service sends with model answers.

        ``inference-meter-price`` is written like the catalogue's ``meterPrice``
        (``"0.0000833 / sec"``): the live catalogue uses that form and nothing documents
        a different one for the header.
        """
        server = self.server
        limit = server.concurrency_limit if server.concurrency_limit is not None else 1000
        if remaining is None:
            remaining = max(0, limit - server._counters.in_flight)
        meter, price = ("none", 0.0) if row is None else (row.meter, row.price)
        return [
            ("ratelimit-limit", str(limit)),
            ("ratelimit-remaining", str(remaining)),
            ("ratelimit-reset", reset),
            ("inference-meter", meter),
            ("inference-meter-price", format_price(price)),
            ("inference-time", f"{elapsed:.3f}"),
            ("inference-cost", f"{elapsed * price:.8f}"),
        ]

    async def _json(
        self,
        ex: Exchange,
        status: int,
        payload: Any,
        *,
        meta: list[tuple[str, str]] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        await self._send(ex, status, dumps(payload), meta=meta, extra=extra)

    async def _send(
        self,
        ex: Exchange,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        meta: list[tuple[str, str]] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        headers = [("content-type", content_type)]
        headers.extend(meta if meta is not None else self.meta_headers(None))
        headers.extend(extra or [])
        await ex.send(status, body, headers)

    # ------------------------------------------------------------------ dispatch

    def _auth_ok(self, headers: dict[str, str]) -> bool:
        raw = headers.get("authorization", "").strip()
        scheme, _, rest = raw.partition(" ")
        forms = self.server.auth_forms
        scheme = scheme.lower()
        if (scheme == "key" and AuthForm.KEY in forms) or (
            scheme == "bearer" and AuthForm.BEARER in forms
        ):
            key = rest.strip()
        elif " " not in raw and AuthForm.RAW in forms:
            key = raw
        else:
            return False
        keys = self.server._api_keys
        return bool(key) and (keys is None or key in keys)

    async def _dispatch(self, ex: Exchange, info: _Info) -> None:
        server = self.server
        path = ex.path
        if path.startswith(_LOCAL_PREFIX):
            info.json = await local_route(
                ex, key_ok=self._auth_ok(ex.headers), inject=server.inject, reset=server.reset
            )
            return
        if not path.startswith(_PREFIX):
            await self._json(ex, 404, {"error": "Not Found", "output": None})
            return
        if ex.body:
            try:
                info.json = json.loads(ex.body)
            except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
                info.json = None
        if isinstance(info.json, dict):
            info.stream = info.json.get("stream") is True
        rest = path[len(_PREFIX) :]
        method = ex.method
        route = "model"
        if rest in ("list/models", "list/tasks", "list/clusters") and method == "GET":
            route = rest
            info.model_id = ex.query.get("modelId")
        elif rest.startswith("request/") and method == "POST":
            route = "request"
            info.model_id = rest[len("request/") :]
        else:
            info.model_id = rest
        info.auth_ok = self._auth_ok(ex.headers)
        if not info.auth_ok:
            await self._json(ex, 401, {"error": "Unauthorized", "output": None})
            return
        valid_id = bool(_MODEL_ID_RE.match(rest)) and ".." not in rest.split("/")
        row = server._models.get(info.model_id or "")
        fault = server._faults.take(method, path, info.model_id, route == "model" and valid_id)
        if fault is not None:
            if fault.kind is not FaultKind.SLOW_FIRST_BYTE:
                await self.apply_fault(ex, info, fault, row)
                return
            await asyncio.sleep(fault.delay)
            if self._gone(ex, info):
                await ex.abort(rst=False)
                return
        try:
            if route == "list/models":
                await self._list_models(ex)
            elif route == "list/tasks":
                await self._json(ex, 200, {"error": None, "output": list(server._tasks)})
            elif route == "list/clusters":
                await self._list_clusters(ex, info)
            elif route == "request":
                if not _MODEL_ID_RE.match(info.model_id or ""):
                    raise envelope_error(400, f"Invalid model id: {info.model_id!r}")
                await self._json(ex, 200, {"error": None, "output": "Job queued"})
            elif not valid_id:
                raise envelope_error(404, "Not Found")
            elif method == "POST":
                await self._run(ex, info, row)
            elif method in ("PUT", "GET", "PATCH", "DELETE"):
                await self._cluster_route(ex, info, row)
            else:
                raise envelope_error(405, "Method Not Allowed")
        except HTTPError as exc:
            await self._json(ex, exc.status, exc.payload, meta=self.meta_headers(row))

    def _gone(self, ex: Exchange, info: _Info) -> bool:
        """Whether the client hung up or a reset() happened while the request waited."""
        return ex.gone() or info.epoch != self.server._epoch

    async def _list_models(self, ex: Exchange) -> None:
        task = ex.query.get("task")
        model_id = ex.query.get("modelId")
        output = [
            row.public()
            for row in self.server._models.values()
            if (task is None or row.task == task) and (model_id is None or row.model_id == model_id)
        ]
        await self._json(ex, 200, {"error": None, "output": output})

    # ------------------------------------------------------------------ clusters

    async def _cluster_mode_answer(self, ex: Exchange, info: _Info) -> bool:
        """Answer as the current cluster-routes mode says; ``False`` when the routes are on."""
        mode = self.server.cluster_routes
        if mode is ClusterRoutes.ON:
            return False
        if mode is ClusterRoutes.HANG:
            # Bounded: ends when the client gives up, on reset(), or when the server stops
            # (shutdown cancels this task).
            while not self._gone(ex, info):  # noqa: ASYNC110 - EOF has no event to await
                await asyncio.sleep(_HANG_POLL)
            await ex.abort(rst=False)
            return True
        if mode is ClusterRoutes.GONE:
            write = ex.method in ("PUT", "PATCH")
            status, message = (405, "Method Not Allowed") if write else (404, "Not Found")
        else:
            status, message = {
                ClusterRoutes.NOT_FOUND: (404, "Not Found"),
                ClusterRoutes.NOT_FOUND_CATALOGUE: (404, NOT_IN_CATALOGUE),
                ClusterRoutes.METHOD_NOT_ALLOWED: (405, "Method Not Allowed"),
                ClusterRoutes.SERVER_ERROR: (500, "Internal Server Error"),
            }[mode]
        await self._json(ex, status, {"error": message, "output": None})
        return True

    async def _list_clusters(self, ex: Exchange, info: _Info) -> None:
        if await self._cluster_mode_answer(ex, info):
            return
        clusters = sorted(self.server._clusters.clusters.values(), key=lambda c: c.created)
        await self._json(ex, 200, {"error": None, "output": [c.to_json() for c in clusters]})

    async def _cluster_route(self, ex: Exchange, info: _Info, row: CatalogueRow | None) -> None:
        if await self._cluster_mode_answer(ex, info):
            return
        if row is None:
            raise envelope_error(404, NOT_IN_CATALOGUE)
        if row.closed_source:
            raise envelope_error(
                400, f"{row.model_id} is served by its provider and has no Bytez instances"
            )
        status, output = self.server._clusters.handle(ex.method, row.model_id, info.json, ex.body)
        await self._json(ex, status, {"error": None, "output": output}, meta=self.meta_headers(row))

    # ------------------------------------------------------------------ runs

    def _answer(
        self, row: CatalogueRow, body: dict[str, Any], headers: dict[str, str]
    ) -> FakeAnswer:
        server = self.server
        run_input = read_run_body(body, row, strict=server.strict_params)
        given = run_input.params.get("max_new_tokens")
        with server._lock:
            reply = server._replies.get(row.model_id, server._replies.get(None))
        run = FakeRun(
            row=row,
            text=run_input.text,
            messages=run_input.messages,
            max_new_tokens=server.default_max_new_tokens if given is None else given,
            budget_given=given is not None,
            stream=run_input.stream,
            reply=reply,
            headers={k: v for k, v in headers.items() if k not in SECRET_HEADERS},
        )
        fake = FAKE_MODELS[row.fake or TASK_DEFAULT_FAKE[row.task]]
        return fake(run)

    async def _run(self, ex: Exchange, info: _Info, row: CatalogueRow | None) -> None:
        server = self.server
        if row is None:
            raise envelope_error(404, NOT_IN_CATALOGUE)
        body = info.json
        if not isinstance(body, dict):
            message = "Request body must be a JSON object" if ex.body else "Request body is empty"
            raise envelope_error(400, message)
        answer = self._answer(row, body, ex.headers)
        fault = server._faults.random(
            server.fault_rate, stream=info.stream, retry_after=server.random_fault_retry_after
        )
        if fault is not None:
            await self.apply_fault(ex, info, fault, row)
            return
        limit = server.concurrency_limit
        if limit is not None and server._counters.in_flight >= limit:
            meta = self.meta_headers(row, reset="1", remaining=0)
            await self._json(ex, 429, {"error": "Rate limit exceeded", "output": None}, meta=meta)
            return
        started = time.perf_counter()
        model_id = row.model_id
        counters = server._counters
        counters.admit(model_id, 1)
        book = server._clusters
        cluster = None
        if not row.closed_source:  # a provider runs closed models: no Bytez instance
            cluster = book.get(model_id)
            if cluster is None:
                cluster = book.create(model_id, {"min": 1, "desired": 1, "max": 1}, 5)
            cluster.pending += 1
        running = False
        held = True

        def release() -> None:
            nonlocal running, held
            if running:
                running = False
                counters.running(model_id, -1)
                if cluster is not None:
                    cluster.release()
            if held:
                held = False
                if cluster is not None:
                    cluster.pending -= 1
                    book.touch(cluster)
                counters.admit(model_id, -1)

        info.release = release
        try:
            if cluster is not None:
                await book.wait_ready(cluster)
                await cluster.acquire()
                cluster.last_activity = asyncio.get_running_loop().time()
            running = True
            counters.running(model_id, 1)
            if server.ttfb > 0:
                await asyncio.sleep(server.ttfb)
            if self._gone(ex, info):
                await ex.abort(rst=False)
                return
            if cluster is not None:
                cluster.inferences += 1
                cluster.last_inference = now_iso()
            if info.stream:
                await self._stream(ex, answer.tokens, row, started=started)
            else:
                meta = self.meta_headers(row, time.perf_counter() - started)
                payload = {"error": None, "output": answer.output, **answer.envelope}
                await self._json(ex, 200, payload, meta=meta)
        finally:
            info.release = None
            release()

    async def _stream(
        self,
        ex: Exchange,
        tokens: list[str],
        row: CatalogueRow | None,
        *,
        started: float | None = None,
        fault: Fault | None = None,
    ) -> None:
        elapsed = 0.0 if started is None else time.perf_counter() - started
        headers = [("content-type", _STREAM_CONTENT_TYPE), ("cache-control", "no-cache")]
        headers.extend(self.meta_headers(row, elapsed))
        ex.start(200, headers)
        limit = len(tokens)
        tail: bytes | None = None
        if fault is not None:
            if fault.kind is FaultKind.ERROR_AT_START:
                limit = 0
                tail = f"Error: {fault.message}".encode()
            else:
                limit = min(limit, fault.after_tokens)
                if fault.kind is FaultKind.ERROR_MID_STREAM:
                    tail = f"Error: {fault.message}".encode()
        delay = self.server.token_delay
        for index in range(limit):
            data = tokens[index].encode("utf-8", "replace")
            if not data:
                continue
            if index and delay > 0:
                await asyncio.sleep(delay)
            ex.write(data)
            await ex.drain()
        if fault is not None and fault.kind is FaultKind.DISCONNECT_MID_STREAM:
            await ex.abort(rst=False)
            return
        if tail is not None:
            # The container's streamer puts its error as the stream's last item.
            if limit and delay > 0:
                await asyncio.sleep(delay)
            ex.write(tail)
        ex.end()
        await ex.drain()

    # ------------------------------------------------------------------ faults

    def _fault_tokens(self, info: _Info, row: CatalogueRow | None, raw: bytes) -> list[str]:
        """Tokens for a faulty stream: the real reply when the body is valid."""
        if row is not None and isinstance(info.json, dict):
            try:
                tokens = self._answer(row, info.json, {}).tokens
            except (HTTPError, KeyError, TypeError):
                tokens = []
            if tokens:
                return tokens
        return generate_continuation(
            raw.decode("utf-8", "replace"), self.server.default_max_new_tokens
        )

    async def apply_fault(
        self, ex: Exchange, info: _Info, fault: Fault, row: CatalogueRow | None
    ) -> None:
        """Answer with ``fault`` instead of the real answer."""
        kind = fault.kind
        meta = self.meta_headers(row)
        wait = _fmt(fault.retry_after if fault.retry_after is not None else 1)
        if kind is FaultKind.STATUS_503:
            await self._json(ex, 503, {"error": "Service Unavailable", "output": None}, meta=meta)
        elif kind is FaultKind.RATE_LIMIT:
            meta = self.meta_headers(row, reset=wait, remaining=0)
            await self._json(ex, 429, {"error": "Rate limit exceeded", "output": None}, meta=meta)
        elif kind is FaultKind.RATE_LIMIT_RETRY_AFTER:
            meta = [h for h in self.meta_headers(row, remaining=0) if h[0] != "ratelimit-reset"]
            await self._json(
                ex,
                429,
                {"error": "Rate limit exceeded", "output": None},
                meta=meta,
                extra=[("retry-after", wait)],
            )
        elif kind is FaultKind.RESET:
            await ex.abort(rst=True)
        elif kind is FaultKind.DISCONNECT_MID_STREAM:
            tokens = self._fault_tokens(info, row, ex.body)
            if info.stream:
                await self._stream(ex, tokens, row, fault=fault)
            else:
                body = dumps({"error": None, "output": "".join(tokens)})
                headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
                ex.start(200, headers + meta)
                ex.write(body[: len(body) // 2])
                await ex.drain()
                await ex.abort(rst=False)
        elif kind in (FaultKind.ERROR_MID_STREAM, FaultKind.ERROR_AT_START):
            if info.stream:
                tokens = (
                    self._fault_tokens(info, row, ex.body)
                    if kind is FaultKind.ERROR_MID_STREAM
                    else []
                )
                await self._stream(ex, tokens, row, fault=fault)
            else:
                await self._json(ex, 200, {"error": fault.message, "output": None}, meta=meta)
        elif kind is FaultKind.MALFORMED_JSON:
            await self._send(ex, 200, b'{"error": null, "output": "tru', meta=meta)
        elif kind is FaultKind.ERROR_ENVELOPE:
            await self._json(ex, 200, {"error": fault.message, "output": None}, meta=meta)
        elif kind is FaultKind.PAYMENT_REQUIRED:
            payload = {
                "status": 402,
                "error": "Payment Required",
                "message": "Insufficient credits. Add credits at https://bytez.com/settings",
            }
            await self._json(ex, 402, payload, meta=meta)
        elif kind is FaultKind.HTML_502:
            await self._send(ex, 502, _HTML_502, content_type="text/html", meta=meta)
        elif kind is FaultKind.UNAUTHORIZED:
            await self._json(ex, 401, {"error": "Unauthorized", "output": None}, meta=meta)
        elif kind is FaultKind.NOT_FOUND:
            await self._json(ex, 404, {"error": NOT_IN_CATALOGUE, "output": None}, meta=meta)
        elif kind is FaultKind.INVALID_PARAMS:
            await self._json(ex, 422, invalid_params(fault.message).payload, meta=meta)
