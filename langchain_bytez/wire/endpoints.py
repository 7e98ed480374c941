"""Per endpoint: the request to send and how to read its answer, as pure values.

Every public client method is one [`Call`][langchain_bytez.wire.endpoints.Call]
(method, path, body, and a ``parse`` that turns the answer's output into the method's
result), or, when a method needs a second request (the catalogue's fallback, the
cluster read-back), a *plan*: a generator that yields calls and receives their results.
The sync and async shells execute calls and drive plans; they never look inside one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import ValidationError

from langchain_bytez import protocol
from langchain_bytez.errors import BytezAPIError, BytezError, BytezNotFoundError
from langchain_bytez.types import Capacity, ClusterStatus, ModelInfo, ResponseMeta, RunResult

__all__ = [
    "Answer",
    "Call",
    "EncodedPayload",
    "Plan",
    "PlanDriver",
    "create_cluster",
    "delete_cluster",
    "get_cluster",
    "list_clusters",
    "list_models",
    "list_tasks",
    "request_model",
    "run",
    "stream_body",
    "stream_call",
    "update_cluster",
]

T = TypeVar("T")
S = TypeVar("S")
Redact = Callable[[str], str]

logger = logging.getLogger("langchain_bytez")

LIST_MODELS = f"{protocol.API_PREFIX}/list/models"
LIST_TASKS = f"{protocol.API_PREFIX}/list/tasks"
LIST_CLUSTERS = f"{protocol.API_PREFIX}/list/clusters"
REQUEST_PREFIX = f"{protocol.API_PREFIX}/request/"


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer, envelope unpacked.

    Attributes:
        output: The envelope's ``output``.
        provider: The envelope's ``provider`` object, if any.
        meta: Status and headers worth keeping.
    """

    output: Any
    provider: dict[str, Any] | None
    meta: ResponseMeta


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to the Bytez API and the reading of its answer.

    Attributes:
        method: The HTTP method.
        path: The API path, such as ``/models/v2/openai-community/gpt2``.
        parse: Turns the answer into the method's result; receives the client's
            redaction function (server text is redacted like every message).
        model_id: The model the call is about, for errors.
        content: The encoded JSON body, if any.
        params: Query parameters, if any.
        timeout: The call's own timeout (``None``: the client's).
        on_retry: The call's own retry callback.
        retry: ``False`` sends once, without the client's retries.
        slot: Whether the call holds a slot of the account's concurrency limiter
            (model runs do; catalogue and cluster calls do not).
    """

    method: str
    path: str
    parse: Callable[[Answer, Redact], T]
    model_id: str | None = None
    content: bytes | None = None
    params: Mapping[str, str] | None = None
    timeout: float | httpx.Timeout | None = None
    on_retry: Callable[..., None] | None = None
    retry: bool = True
    slot: bool = False

    @property
    def label(self) -> str:
        """``"POST /models/v2/..."``: names the request in log lines."""
        return f"{self.method} {self.path}"


Plan = Generator[Call[Any], Any, T]
"""A multi-request method: yields calls, receives each result (or its error), returns."""


class PlanDriver(Generic[S, T]):
    """Steps a [`Plan`][langchain_bytez.wire.endpoints.Plan] for a shell that executes its calls.

    Any generator of steps is driven the same way: the lifecycle drivers use it for the
    cluster plans of [`lifecycle.plans`][langchain_bytez.lifecycle.plans].

    ``while (call := driver.next_call()) is not None``: execute ``call``, then hand
    back its result with ``reply`` or its error with ``fail`` (the plan may catch it or
    let it propagate out of the next ``next_call``). When the plan ends, ``next_call``
    returns ``None`` and ``result`` holds its value.
    """

    __slots__ = ("_failure", "_plan", "_reply", "result")

    def __init__(self, plan: Generator[S, Any, T]) -> None:
        """Wrap ``plan`` (not started yet)."""
        self._plan = plan
        self._reply: Any = None
        self._failure: BytezError | None = None
        self.result: T

    def next_call(self) -> S | None:
        """The next call to execute, or ``None`` when the plan is done."""
        try:
            if self._failure is None:
                return self._plan.send(self._reply)
            return self._plan.throw(self._failure)
        except StopIteration as done:
            self.result = done.value
            return None

    def reply(self, value: Any) -> None:
        """Hand the last call's result to the plan."""
        self._reply, self._failure = value, None

    def fail(self, error: BytezError) -> None:
        """Hand the last call's error to the plan."""
        self._reply, self._failure = None, error


def _text(answer: Answer, _: Redact) -> str:
    return "" if answer.output is None else str(answer.output)


def _nothing(_answer: Answer, _redact: Redact) -> None:
    return None


def _output(answer: Answer, _: Redact) -> Any:
    return answer.output


# -- runs ----------------------------------------------------------------------------


class EncodedPayload(Mapping[str, Any]):
    """A run payload built and encoded once, before the run: read-only.

    The LangChain classes check a run's body before auto-load may send anything
    (``call_settings.check_request``); the client then sends ``content`` as it is
    rather than building and encoding the same body again. As a mapping it reads as
    the built body (``None`` values dropped, never ``stream``), so any client accepts
    it like the payload it came from. Nested values are not copied: what was checked
    is what is sent.

    Attributes:
        stream: Whether ``content`` asks for a streamed answer.
        content: The encoded body.
    """

    __slots__ = ("_body", "content", "stream")

    def __init__(self, payload: Mapping[str, Any], *, stream: bool) -> None:
        """Build and encode ``payload``'s body.

        Raises:
            TypeError: If ``payload`` or its ``params`` is not a mapping.
            ValueError: If the payload has an unknown key or cannot be encoded as JSON.
        """
        body = protocol.build_run_body(payload, stream=False)
        self._body = body
        self.stream = stream
        self.content = protocol.encode_json({**body, "stream": True} if stream else body)

    def __getitem__(self, key: str) -> Any:
        """The built body's value of ``key``."""
        return self._body[key]

    def __iter__(self) -> Iterator[str]:
        """The built body's keys."""
        return iter(self._body)

    def __len__(self) -> int:
        """The number of keys of the built body."""
        return len(self._body)

    def __repr__(self) -> str:
        """The built body and the stream flag."""
        return f"EncodedPayload({self._body!r}, stream={self.stream})"


def _run_content(payload: Mapping[str, Any], stream: bool) -> bytes:
    """The encoded body of a run: the one ``payload`` carries, if it was encoded already.

    Raises:
        TypeError: If ``payload`` or its ``params`` is not a mapping.
        ValueError: If the payload has an unknown key or cannot be encoded as JSON.
    """
    if type(payload) is EncodedPayload and payload.stream is stream:
        return payload.content
    return protocol.encode_json(protocol.build_run_body(payload, stream))


def run(
    model_id: str,
    payload: Mapping[str, Any],
    *,
    timeout: float | httpx.Timeout | None = None,
    on_retry: Callable[..., None] | None = None,
) -> Call[RunResult]:
    """``POST /models/v2/{model_id}``: run a model once.

    Raises:
        InvalidModelIdError: If the model id is malformed.
        ValueError: If the payload has unknown keys.
    """
    path = protocol.model_path(model_id)
    body = _run_content(payload, stream=False)

    def parse(answer: Answer, _: Redact) -> RunResult:
        return RunResult(
            model_id=model_id, output=answer.output, meta=answer.meta, provider=answer.provider
        )

    return Call("POST", path, parse, model_id, body, timeout=timeout, on_retry=on_retry, slot=True)


def stream_body(model_id: str, payload: Mapping[str, Any]) -> tuple[str, bytes]:
    """The path and encoded body of a streamed run.

    Raises:
        InvalidModelIdError: If the model id is malformed.
        ValueError: If the payload has unknown keys.
    """
    path = protocol.model_path(model_id)
    return path, _run_content(payload, stream=True)


def stream_call(model_id: str, path: str, content: bytes) -> Call[Any]:
    """The request of a streamed run (its body is read by the stream, not parsed here)."""
    return Call("POST", path, _output, model_id, content, slot=True)


# -- catalogue -----------------------------------------------------------------------


def _should_fall_back(error: BytezError) -> bool:
    # The server answered the filtered call with an error: maybe it does not know the
    # filter. Auth, credit and rate-limit failures would fail the unfiltered call too.
    status = error.status_code
    return status is not None and status >= 400 and status not in {401, 402, 429}


def parse_models(output: Any, task: str | None, model_id: str | None) -> list[ModelInfo]:
    """Catalogue entries of ``output``, odd entries skipped, filtered here too."""
    if not isinstance(output, list):
        msg = f"Unexpected catalogue answer: expected a list, got {type(output).__name__}"
        raise BytezAPIError(msg, retryable=False)
    models: list[ModelInfo] = []
    for item in output:
        if not isinstance(item, Mapping) or not item.get("modelId"):
            continue  # tolerate odd entries rather than fail the whole catalogue
        try:
            info = ModelInfo.model_validate(item)
        except ValidationError:
            logger.debug("Skipping a malformed catalogue entry: %r", item.get("modelId"))
            continue
        # Filter here too: an older server may ignore the query parameters.
        if task is not None and info.task != task:
            continue
        if model_id is not None and info.model_id != model_id:
            continue
        models.append(info)
    return models


def list_models(task: str | None, model_id: str | None) -> Plan[list[ModelInfo]]:
    """``GET /models/v2/list/models``, filtered by the server, else fetched whole.

    If the server answers the filtered request with an error that the unfiltered one
    would not share, the whole catalogue is fetched and filtered here.
    """
    params: dict[str, str] = {}
    if task is not None:
        params["task"] = task
    if model_id is not None:
        params["modelId"] = model_id
    try:
        output = yield Call("GET", LIST_MODELS, _output, params=params or None)
    except BytezError as exc:
        if not params or not _should_fall_back(exc):
            raise
        logger.info(
            "Bytez refused the filtered catalogue (HTTP %s); filtering client-side",
            exc.status_code,
        )
        output = yield Call("GET", LIST_MODELS, _output)
    return parse_models(output, task, model_id)


def parse_tasks(output: Any) -> list[str]:
    """Task names of a task-list ``output`` (strings or ``{"task": ...}`` entries)."""
    if not isinstance(output, list):
        msg = f"Unexpected task list: expected a list, got {type(output).__name__}"
        raise BytezAPIError(msg, retryable=False)
    tasks: list[str] = []
    for item in output:
        if isinstance(item, str):
            tasks.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("task"), str):
            tasks.append(item["task"])
    return tasks


def list_tasks() -> Call[list[str]]:
    """``GET /models/v2/list/tasks``."""
    return Call("GET", LIST_TASKS, lambda answer, _: parse_tasks(answer.output))


def request_model(model_id: str) -> Call[str]:
    """``POST /models/v2/request/{model_id}``: ask Bytez to add a model.

    Raises:
        InvalidModelIdError: If the model id is malformed.
    """
    protocol.validate_model_id(model_id)
    return Call("POST", REQUEST_PREFIX + model_id, _text, model_id)


# -- clusters ------------------------------------------------------------------------


def cluster_body(
    capacity: Capacity | Mapping[str, int] | None,
    timeout_minutes: int | None,
    status: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a cluster create/update.

    Raises:
        ValueError: If ``timeout_minutes`` or ``status`` is out of range.
        pydantic.ValidationError: If ``capacity`` is not a valid ``Capacity``.
    """
    body: dict[str, Any] = {}
    if capacity is not None:
        cap = capacity if isinstance(capacity, Capacity) else Capacity.model_validate(capacity)
        body["capacity"] = {"min": cap.min, "desired": cap.desired, "max": cap.max}
    if timeout_minutes is not None:
        if (
            isinstance(timeout_minutes, bool)
            or not isinstance(timeout_minutes, int)
            or not 1 <= timeout_minutes <= 1440
        ):
            msg = f"timeout_minutes must be an integer from 1 to 1440, got {timeout_minutes!r}"
            raise ValueError(msg)
        body["timeout"] = timeout_minutes
    if status is not None:
        if status not in {"on", "off"}:
            msg = f"status must be 'on' or 'off', got {status!r}"
            raise ValueError(msg)
        body["status"] = status
    return body


def parse_cluster(output: Any, model_id: str | None, redact: Redact | None = None) -> ClusterStatus:
    """The cluster status of ``output``; its failure reason redacted.

    Raises:
        BytezNotFoundError: If ``output`` is null (the model has no cluster).
        BytezAPIError: If ``output`` is not a cluster object.
    """
    if output is None:
        raise BytezNotFoundError("The model has no instance cluster", model_id=model_id)
    if not isinstance(output, Mapping):
        msg = f"Unexpected cluster answer: expected an object, got {type(output).__name__}"
        raise BytezAPIError(msg, model_id=model_id, retryable=False)
    try:
        status = ClusterStatus.from_api(output, model_id)
    except ValidationError as exc:
        # Typed like any other unusable answer (a pydantic error is no BytezError).
        msg = f"Unexpected cluster answer: {exc.error_count()} malformed field(s)"
        raise BytezAPIError(msg, model_id=model_id, retryable=False) from None
    if redact is not None and status.reason:
        # The failure reason is server text that ends up in BytezModelLoadError and in
        # load-progress events: redacted like every other server message.
        status = status.model_copy(update={"reason": redact(status.reason)})
    return status


def parse_clusters(output: Any, redact: Redact | None = None) -> list[ClusterStatus]:
    """The cluster statuses of a cluster-list ``output``; odd entries skipped."""
    if output is None:
        return []
    if not isinstance(output, list):
        msg = f"Unexpected cluster list: expected a list, got {type(output).__name__}"
        raise BytezAPIError(msg, retryable=False)
    clusters: list[ClusterStatus] = []
    for item in output:
        if not isinstance(item, Mapping):
            continue
        try:
            clusters.append(parse_cluster(item, None, redact))
        except BytezAPIError:
            continue  # one odd entry does not hide the others
    return clusters


def create_cluster(
    model_id: str,
    capacity: Capacity,
    timeout_minutes: int,
    *,
    timeout: float | httpx.Timeout | None = None,
    retry: bool = True,
) -> Call[str]:
    """``PUT /models/v2/{model_id}``: start loading a cluster.

    Raises:
        InvalidModelIdError: If the model id is malformed.
        ValueError: If ``timeout_minutes`` is out of range.
    """
    path = protocol.model_path(model_id)
    content = protocol.encode_json(cluster_body(capacity, timeout_minutes))
    return Call("PUT", path, _text, model_id, content, timeout=timeout, retry=retry)


def get_cluster(
    model_id: str, *, timeout: float | httpx.Timeout | None = None, retry: bool = True
) -> Call[ClusterStatus]:
    """``GET /models/v2/{model_id}``: read a cluster.

    Raises:
        InvalidModelIdError: If the model id is malformed.
    """

    def parse(answer: Answer, redact: Redact) -> ClusterStatus:
        return parse_cluster(answer.output, model_id, redact)

    return Call("GET", protocol.model_path(model_id), parse, model_id, timeout=timeout, retry=retry)


def update_cluster(
    model_id: str,
    capacity: Capacity | None,
    timeout_minutes: int | None,
    status: str | None,
) -> Plan[ClusterStatus]:
    """``PATCH /models/v2/{model_id}``, then a read-back if the answer had no cluster.

    Raises:
        ValueError: If nothing is to change, or a value is out of range.
    """
    path = protocol.model_path(model_id)
    body = cluster_body(capacity, timeout_minutes, status)
    if not body:
        msg = "update_cluster needs capacity, timeout_minutes or status"
        raise ValueError(msg)

    def parse(answer: Answer, redact: Redact) -> ClusterStatus | None:
        if not isinstance(answer.output, Mapping):
            return None
        return parse_cluster(answer.output, model_id, redact)

    cluster: ClusterStatus | None = yield Call(
        "PATCH", path, parse, model_id, protocol.encode_json(body)
    )
    if cluster is None:
        # Tolerate a server that acknowledges without the object: read it back.
        cluster = yield get_cluster(model_id)
    return cluster


def delete_cluster(model_id: str) -> Call[None]:
    """``DELETE /models/v2/{model_id}``: stop and delete a cluster.

    Raises:
        InvalidModelIdError: If the model id is malformed.
    """
    return Call("DELETE", protocol.model_path(model_id), _nothing, model_id)


def list_clusters() -> Call[list[ClusterStatus]]:
    """``GET /models/v2/list/clusters``."""
    return Call("GET", LIST_CLUSTERS, lambda answer, redact: parse_clusters(answer.output, redact))
