"""One fake of the Bytez HTTP API for the unit tests (no server, no network).

[`FakeBytez`][tests.unit_tests.fake_bytez.FakeBytez] is an ``httpx.MockTransport``
handler, sync (``fake.sync``) and async (``fake.async_``), that answers like Bytez:

* runs (``POST /models/v2/{model}``): the envelope ``{"error", "output"}`` with Bytez's
  metadata headers, or a plain-text stream when the body says ``"stream": true``;
* clusters (``GET``/``PUT``/``PATCH``/``DELETE /models/v2/{model}``) over an in-memory
  cluster table that turns ``on`` (or ``failed``, for a model in ``fail_next``) after
  ``polls_to_run`` reads; unknown models, cluster routes that are gone (``routes_gone``,
  ``get_405``) and a slow ``PUT`` (``put_delay``) can be scripted, and ``cluster_hook``
  may answer a cluster call in the fake's place;
* the list routes (``/models/v2/list/{models,tasks,clusters}``) and ``request/``.

Answers are scripted (``output``, ``chunks``, ``statuses``, ``delay``); every request is
logged (``log`` for all, ``requests`` for run bodies); ``peak_in_flight`` is the most runs
answered at once. ``clients()`` builds httpx clients wired to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

FAKE_KEY = "sk-FAKE-KEY-0123456789"
URL = "http://127.0.0.1:9"
PREFIX = "/models/v2"
HEADERS = {
    "ratelimit-limit": "100",
    "ratelimit-remaining": "99",
    "ratelimit-reset": "30",
    "inference-meter": "sm-gpu",
    "inference-meter-price": "0.0001",
    "inference-time": "0.5",
    "inference-cost": "0.00005",
}


UNKNOWN_MODEL = "Model does not exist or has yet to be added to the Bytez catalog"
# Keys of a cluster-table entry that the service would not show.
_INTERNAL = frozenset({"reads", "fail"})


def _echo_world(body: dict[str, Any]) -> Any:
    return body["text"] + " world"


class FakeBytez:
    """A scripted, recording fake of the Bytez API (see the module docstring).

    Attributes:
        output: The run output: a value, or a function of the request body (default:
            the prompt + ``" world"``).
        chunks: The streamed body, chunk by chunk.
        statuses: HTTP statuses to answer the next runs with (an error envelope),
            before answering normally again.
        delay: Seconds before a run is answered: a number or a function of the body.
        requests: The JSON body of every run, in order.
        paths: The path of every run.
        log: ``(method, path?query)`` of every request, runs and cluster calls alike.
        pulled: Stream chunks the client actually read.
        in_flight: Runs being answered right now; ``peak_in_flight`` the most at once.
        clusters: The cluster table, by model id (``{"status": ..., "reads": n}``).
        polls_to_run: Reads of a new cluster before it says ``on``.
        catalogue: What ``list/models`` answers (filtered by ``task``).
        tasks: What ``list/tasks`` answers.
        failures: ``(status, error)`` to answer a non-run route with, by its path after
            ``/models/v2/`` (``"list/clusters"``, a model id for its cluster calls...).
        fail_next: Per model, the reason its next created cluster fails to boot with.
        unknown: Model ids the catalogue does not know (their cluster calls get 404).
        routes_gone: The cluster routes are gone (404, and 405 for ``PUT``).
        get_405: ``GET`` of a cluster answers 405.
        put_delay: Seconds before a ``PUT`` is answered.
        cluster_hook: Called with ``(method, model_id)`` before a cluster call is
            answered; a response it returns is the answer.
        cluster_bodies: ``(method, model_id, JSON body)`` of every cluster call.
    """

    def __init__(self) -> None:
        """Create a fake that echoes prompts and streams ``" hello world"``."""
        self.output: Any = _echo_world
        self.chunks: list[bytes] = [b" hello", b" world"]
        self.statuses: list[int] = []
        self.delay: float | Callable[[dict[str, Any]], float] = 0.0
        self.headers = dict(HEADERS)
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.log: list[tuple[str, str]] = []
        self.pulled = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.clusters: dict[str, dict[str, Any]] = {}
        self.polls_to_run = 1
        self.catalogue: list[dict[str, Any]] = []
        self.tasks: list[str] = []
        self.failures: dict[str, tuple[int, str]] = {}
        self.fail_next: dict[str, str] = {}
        self.unknown: set[str] = set()
        self.routes_gone = False
        self.get_405 = False
        self.put_delay = 0.0
        self.cluster_hook: Callable[[str, str], httpx.Response | None] | None = None
        self.cluster_bodies: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        # A key of its own: clients of two fakes never share a ModelManager.
        self.api_key = f"{FAKE_KEY}-{uuid.uuid4().hex[:12]}"

    # ------------------------------------------------------------------ wiring

    def clients(self) -> tuple[httpx.Client, httpx.AsyncClient]:
        """Return a sync and an async httpx client answered by this fake."""
        return (
            httpx.Client(transport=httpx.MockTransport(self.sync)),
            httpx.AsyncClient(transport=httpx.MockTransport(self.async_)),
        )

    def add_cluster(self, model_id: str, status: str, **extra: Any) -> None:
        """Put a cluster in the table (``extra``: capacity, timeout, instances...)."""
        with self.lock:
            self.clusters[model_id] = {"status": status, "reads": 0, **extra}

    @property
    def calls(self) -> list[tuple[str, str]]:
        """``(method, model_id)`` of every cluster call (runs and list routes left out)."""
        with self.lock:
            log = list(self.log)
        prefix = PREFIX + "/"
        return [
            (method, path[len(prefix) :])
            for method, path in log
            if method != "POST"
            and path.startswith(prefix)
            and not path[len(prefix) :].startswith(("list/", "request/"))
        ]

    def count(self, method: str) -> int:
        """How many cluster calls of this method were made."""
        return sum(1 for m, _ in self.calls if m == method)

    def texts(self) -> list[str]:
        """The ``text`` of every run sent (embedding and text-generation runs)."""
        with self.lock:
            return [r["text"] for r in self.requests if "text" in r]

    # ------------------------------------------------------------------ answers

    def _json(self, status: int, output: Any, error: str | None = None) -> httpx.Response:
        return httpx.Response(status, headers=self.headers, json={"error": error, "output": output})

    def _route(self, request: httpx.Request) -> httpx.Response | None:
        """Answer a non-run request, or return ``None`` for a run."""
        path = request.url.path
        query = request.url.query.decode()
        with self.lock:
            self.log.append((request.method, path + (f"?{query}" if query else "")))
        rest = path[len(PREFIX) + 1 :] if path.startswith(PREFIX + "/") else path
        if (failure := self.failures.get(rest)) is not None:
            return self._json(failure[0], None, failure[1])
        if rest == "list/models":
            task = request.url.params.get("task")
            return self._json(200, [m for m in self.catalogue if task in (None, m.get("task"))])
        if rest == "list/tasks":
            return self._json(200, list(self.tasks))
        if rest == "list/clusters":
            return self._json(200, [self._cluster_json(m) for m in list(self.clusters)])
        if rest.startswith("request/"):
            return self._json(200, "Job queued")
        if request.method == "POST":
            return None
        return self._cluster(request.method, rest, request)

    def _cluster_json(self, model_id: str) -> dict[str, Any]:
        cluster = self.clusters[model_id]
        shown = {k: v for k, v in cluster.items() if k not in _INTERNAL}
        return {"modelId": model_id, **shown}

    def _cluster(self, method: str, model_id: str, request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = json.loads(request.content or b"{}")
        with self.lock:
            self.cluster_bodies.append((method, model_id, body))
        if self.cluster_hook is not None and (answer := self.cluster_hook(method, model_id)):
            return answer
        if self.get_405 and method == "GET":
            return self._json(405, None, "Method Not Allowed")
        if self.routes_gone:
            return self._json(405 if method == "PUT" else 404, None, "Not Found")
        if model_id in self.unknown:
            return self._json(404, None, UNKNOWN_MODEL)
        with self.lock:
            return self._cluster_answer(method, model_id, body)

    def _cluster_answer(self, method: str, model_id: str, body: dict[str, Any]) -> httpx.Response:
        cluster = self.clusters.get(model_id)
        if method == "PUT":
            if cluster is not None:
                return self._json(409, None, "Cluster already exists")
            self.clusters[model_id] = {
                "status": "loading",
                "reads": 0,
                "capacity": body.get("capacity"),
                "timeout": body.get("timeout"),
                "fail": self.fail_next.pop(model_id, None),
            }
            return self._json(202, "Loading")  # as the service answers a create
        if cluster is None:
            return self._json(404, None, "Cluster not found")
        if method == "DELETE":
            del self.clusters[model_id]
            return self._json(200, None)
        if method == "PATCH":
            for field in ("capacity", "timeout"):
                if body.get(field) is not None:
                    cluster[field] = body[field]
            if body.get("status") == "on" and cluster["status"] in ("off", "failed"):
                cluster["status"], cluster["reads"] = "loading", 0  # boots again
            elif body.get("status"):
                cluster["status"] = body["status"]
            return self._json(200, self._cluster_json(model_id))
        cluster["reads"] += 1
        if cluster["status"] == "loading" and cluster["reads"] >= self.polls_to_run:
            if cluster.get("fail"):
                cluster["status"], cluster["reason"] = "failed", cluster["fail"]
            else:
                cluster["status"] = "on"
        return self._json(200, self._cluster_json(model_id))

    def _run(self, request: httpx.Request) -> tuple[dict[str, Any], httpx.Response | None, float]:
        body: dict[str, Any] = json.loads(request.content)
        with self.lock:
            self.requests.append(body)
            self.paths.append(request.url.path)
            status = self.statuses.pop(0) if self.statuses else None
        if status is not None:
            return body, self._json(status, None, "Model is busy"), 0.0
        delay = float(self.delay(body)) if callable(self.delay) else float(self.delay)
        return body, None, delay

    def _answer(self, body: dict[str, Any], stream: Any) -> httpx.Response:
        if body.get("stream"):
            headers = {**self.headers, "content-type": "text/plain"}
            return httpx.Response(200, headers=headers, content=stream)
        output = self.output(body) if callable(self.output) else self.output
        return self._json(200, output)

    def _enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    # ------------------------------------------------------------------ handlers

    def sync(self, request: httpx.Request) -> httpx.Response:
        """The ``httpx.MockTransport`` handler of sync clients."""
        if request.method == "PUT" and self.put_delay:
            time.sleep(self.put_delay)
        answered = self._route(request)
        if answered is not None:
            return answered
        body, failure, delay = self._run(request)
        if failure is not None:
            return failure
        self._enter()
        try:
            if delay:
                time.sleep(delay)
        finally:
            self._leave()

        def chunks() -> Iterator[bytes]:
            for chunk in self.chunks:
                self.pulled += 1
                yield chunk

        return self._answer(body, chunks())

    async def async_(self, request: httpx.Request) -> httpx.Response:
        """The ``httpx.MockTransport`` handler of async clients."""
        if request.method == "PUT" and self.put_delay:
            await asyncio.sleep(self.put_delay)
        answered = self._route(request)
        if answered is not None:
            return answered
        body, failure, delay = self._run(request)
        if failure is not None:
            return failure
        self._enter()
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            self._leave()

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                self.pulled += 1
                yield chunk

        return self._answer(body, chunks())
