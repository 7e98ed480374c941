"""Catalogue and instance utilities, and LangChain document loaders over them.

Functions (each with an async twin prefixed ``a``):

* [`list_models`][langchain_bytez.loaders.list_models]: the Bytez catalogue as
  [`ModelInfo`][langchain_bytez.types.ModelInfo], filtered by task on the server and by size / RAM /
  id substring here.
* [`list_tasks`][langchain_bytez.loaders.list_tasks]: the task names Bytez serves.
* [`list_instances`][langchain_bytez.loaders.list_instances]: your instance clusters as
  [`ClusterStatus`][langchain_bytez.types.ClusterStatus].
* [`request_model`][langchain_bytez.loaders.request_model]: ask Bytez to add a Hugging Face model to
  the catalogue.

They take a ``client`` (kept open) or build one from ``api_key`` / ``base_url`` /
environment (``BYTEZ_API_KEY``, ``BYTEZ_BASE_URL``) and close it afterwards.

Loaders: [`BytezCatalogLoader`][langchain_bytez.loaders.BytezCatalogLoader] (one ``Document`` per
catalogue model, readable text for retrieval, every field in metadata) and
[`BytezInstanceLoader`][langchain_bytez.loaders.BytezInstanceLoader] (one ``Document`` per cluster).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, TypedDict, TypeVar

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pydantic import SecretStr
from typing_extensions import Unpack

from langchain_bytez.client import AsyncBytezClient, BytezClient
from langchain_bytez.errors import BytezError, BytezNotFoundError
from langchain_bytez.types import ClusterState, ClusterStatus, ModelInfo, check_options

__all__ = [
    "BytezCatalogLoader",
    "BytezInstanceLoader",
    "CatalogueQuery",
    "Connection",
    "alist_instances",
    "alist_models",
    "alist_tasks",
    "arequest_model",
    "instance_document",
    "list_instances",
    "list_models",
    "list_tasks",
    "model_document",
    "request_model",
]

logger = logging.getLogger("langchain_bytez")
"""The package logger, ``logging.getLogger("langchain_bytez")``."""

_T = TypeVar("_T")
_C = TypeVar("_C", BytezClient, AsyncBytezClient)


# --------------------------------------------------------------------------- helpers


class Connection(TypedDict, Generic[_C], total=False):
    """The keyword-only connection options of the functions (each ``None`` by default).

    Attributes:
        client: Client to use (left open); by default one is built and closed.
        api_key: API key for the built client (default ``BYTEZ_API_KEY``).
        base_url: Endpoint for the built client (default ``BYTEZ_BASE_URL`` or Bytez).
    """

    client: _C | None
    api_key: str | SecretStr | None
    base_url: str | None


class CatalogueQuery(Connection[_C], total=False):
    """The keyword-only options of ``list_models``: a connection and the filters.

    Attributes:
        max_params: Only models with at most this many **billion** parameters (models of
            unknown size are excluded when set).
        max_ram: Only models needing at most this many GB of RAM (unknown excluded).
        search: Case-insensitive substring the model id must contain.
    """

    max_params: float | None
    max_ram: float | None
    search: str | None


def _with_client(
    function: str, connection: Connection[BytezClient], call: Callable[[BytezClient], _T]
) -> _T:
    check_options(function, connection, Connection)
    client = connection.get("client")
    if client is not None:
        return call(client)
    # We made it, so we close it: no pooled sockets left behind by a one-off listing.
    key, base_url = connection.get("api_key"), connection.get("base_url")
    with BytezClient(api_key=key, base_url=base_url) as owned:
        return call(owned)


async def _awith_client(
    function: str,
    connection: Connection[AsyncBytezClient],
    call: Callable[[AsyncBytezClient], Awaitable[_T]],
) -> _T:
    check_options(function, connection, Connection)
    client = connection.get("client")
    if client is not None:
        return await call(client)
    key, base_url = connection.get("api_key"), connection.get("base_url")
    async with AsyncBytezClient(api_key=key, base_url=base_url) as owned:
        return await call(owned)


def _connection_of(query: CatalogueQuery[_C]) -> Connection[_C]:
    """The connection options of a catalogue query (its filters left out)."""
    return {
        "client": query.get("client"),
        "api_key": query.get("api_key"),
        "base_url": query.get("base_url"),
    }


def _check_limit(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a number, got {type(value).__name__} {value!r}"
        raise ValueError(msg)  # noqa: TRY004 - the documented contract is ValueError
    if not math.isfinite(value) or value < 0:
        msg = f"{name} must be a non-negative finite number, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _model_filter(
    task: str | None, query: CatalogueQuery[Any], function: str = "list_models"
) -> Callable[[ModelInfo], bool]:
    check_options(function, query, CatalogueQuery)
    max_params = _check_limit("max_params", query.get("max_params"))
    max_ram = _check_limit("max_ram", query.get("max_ram"))
    search = query.get("search")
    pattern: object = search  # typed callers can't pass anything else; untyped ones can
    if pattern is not None and not isinstance(pattern, str):
        msg = f"search must be a string, got {type(pattern).__name__}"
        raise ValueError(msg)
    needle = search.casefold() if search else None

    def keep(info: ModelInfo) -> bool:
        # The server filters by task too; checking again costs nothing and protects
        # against an endpoint that ignores the query parameter.
        if task is not None and info.task is not None and info.task != task:
            return False
        # A limit is a promise ("fits in 8 GB"): models whose size is unknown can't keep
        # it, so they are left out whenever the limit is set.
        if max_params is not None and (info.params is None or info.params > max_params):
            return False
        if max_ram is not None and (info.ram_required is None or info.ram_required > max_ram):
            return False
        return needle is None or needle in info.model_id.casefold()

    return keep


def _is_route_gone(error: BytezError) -> bool:
    return error.status_code == 405 or isinstance(error, BytezNotFoundError)


# --------------------------------------------------------------------------- functions


def list_models(
    task: str | None = None, **query: Unpack[CatalogueQuery[BytezClient]]
) -> list[ModelInfo]:
    """List the Bytez catalogue, optionally filtered.

    Args:
        task: Only models of this task (``"chat"``, ``"summarization"``...); filtered by
            the server.
        **query: Keyword-only [`CatalogueQuery`][langchain_bytez.loaders.CatalogueQuery]:
            the connection (``client``, ``api_key``, ``base_url``) and the filters
            ``max_params`` (billions of parameters), ``max_ram`` (GB) and ``search``
            (case-insensitive substring of the id).

    Returns:
        The matching catalogue entries, in the server's order.

    Raises:
        ValueError: If a filter has the wrong type or a negative value.
        BytezError: If the request fails.

    Example:
        ```python
        from langchain_bytez.loaders import list_models

        small_chat = list_models("chat", max_params=3, search="qwen")
        ```
    """
    keep, connection = _model_filter(task, query), _connection_of(query)
    models = _with_client("list_models", connection, lambda c: c.list_models(task))
    return [info for info in models if keep(info)]


async def alist_models(
    task: str | None = None, **query: Unpack[CatalogueQuery[AsyncBytezClient]]
) -> list[ModelInfo]:
    """Async version of [`list_models`][langchain_bytez.loaders.list_models]."""
    keep, connection = _model_filter(task, query, "alist_models"), _connection_of(query)
    models = await _awith_client("alist_models", connection, lambda c: c.list_models(task))
    return [info for info in models if keep(info)]


def list_tasks(**connection: Unpack[Connection[BytezClient]]) -> list[str]:
    """List the task names Bytez serves (``"chat"``, ``"text-generation"``...).

    Args:
        **connection: Keyword-only [`Connection`][langchain_bytez.loaders.Connection]
            options: ``client`` (left open; by default one is built and closed),
            ``api_key`` and ``base_url`` for the built client.

    Returns:
        The task names.
    """
    return _with_client("list_tasks", connection, lambda c: c.list_tasks())


async def alist_tasks(**connection: Unpack[Connection[AsyncBytezClient]]) -> list[str]:
    """Async version of [`list_tasks`][langchain_bytez.loaders.list_tasks]."""
    return await _awith_client("alist_tasks", connection, lambda c: c.list_tasks())


def _instances_or_empty(error: BytezError) -> list[ClusterStatus]:
    if not _is_route_gone(error):
        raise error
    # Serverless endpoints have no clusters to list; that is not an error for callers
    # asking "what is running".
    logger.warning(
        "Bytez cluster listing unavailable (HTTP %s); reporting no instances",
        error.status_code,
    )
    return []


def list_instances(**connection: Unpack[Connection[BytezClient]]) -> list[ClusterStatus]:
    """List your instance clusters.

    Args:
        **connection: As for [`list_tasks`][langchain_bytez.loaders.list_tasks].

    Returns:
        One status per cluster; empty when the endpoint has no cluster routes
        (serverless mode, logged as a warning).
    """

    def call(c: BytezClient) -> list[ClusterStatus]:
        try:
            return c.list_clusters()
        except BytezError as exc:
            return _instances_or_empty(exc)

    return _with_client("list_instances", connection, call)


async def alist_instances(
    **connection: Unpack[Connection[AsyncBytezClient]],
) -> list[ClusterStatus]:
    """Async version of [`list_instances`][langchain_bytez.loaders.list_instances]."""

    async def call(c: AsyncBytezClient) -> list[ClusterStatus]:
        try:
            return await c.list_clusters()
        except BytezError as exc:
            return _instances_or_empty(exc)

    return await _awith_client("alist_instances", connection, call)


def request_model(model_id: str, **connection: Unpack[Connection[BytezClient]]) -> str:
    """Ask Bytez to add a Hugging Face model to its catalogue (Bytez's ``process``).

    Args:
        model_id: The Hugging Face model id (``org/name``).
        **connection: As for [`list_tasks`][langchain_bytez.loaders.list_tasks].

    Returns:
        The server's answer, e.g. ``"Job queued"``.
    """
    return _with_client("request_model", connection, lambda c: c.request_model(model_id))


async def arequest_model(model_id: str, **connection: Unpack[Connection[AsyncBytezClient]]) -> str:
    """Async version of [`request_model`][langchain_bytez.loaders.request_model]."""
    return await _awith_client("arequest_model", connection, lambda c: c.request_model(model_id))


# --------------------------------------------------------------------------- documents


def _number(value: float) -> str:
    # "0.124", "1", "7.5": no trailing zeros, no scientific notation.
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _price(value: float) -> str:
    # Per-second prices are tiny (3.47e-05): show them as plain decimals.
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


def model_document(info: ModelInfo) -> Document:
    """Turn a catalogue entry into a ``Document`` for retrieval.

    The text reads like ``"openai-community/gpt2 — text-generation model, 0.124B
    parameters, needs 1 GB RAM, billed on meter sm at $0.0000347/s"``; every
    [`ModelInfo`][langchain_bytez.types.ModelInfo] field is in the metadata.

    Args:
        info: The catalogue entry.

    Returns:
        The document (its ``id`` is the model id).
    """
    parts = [f"{info.task} model" if info.task else "model (task unknown)"]
    if info.params is not None:
        parts.append(f"{_number(info.params)}B parameters")
    if info.ram_required is not None:
        parts.append(f"needs {_number(info.ram_required)} GB RAM")
    if info.meter is not None and info.meter_price is not None:
        unit = _UNIT_ABBREVIATIONS.get((info.meter_price_unit or "sec").lower())
        per = unit if unit is not None else f" {info.meter_price_unit}"
        parts.append(f"billed on meter {info.meter} at ${_price(info.meter_price)}/{per.strip()}")
    elif info.meter is not None:
        parts.append(f"billed on meter {info.meter}")
    content = f"{info.model_id} — {', '.join(parts)}"
    metadata: dict[str, Any] = {"source": "bytez-catalog", **info.model_dump()}
    return Document(id=info.model_id, page_content=content, metadata=metadata)


# The catalogue's price unit ("0.0006478333 / sec") written the short way.
_UNIT_ABBREVIATIONS = {"sec": "s", "second": "s", "s": "s", "hour": "h", "hr": "h", "h": "h"}


def instance_document(status: ClusterStatus) -> Document:
    """Turn a cluster status into a ``Document``.

    Args:
        status: The cluster status.

    Returns:
        The document: a one-line summary, and every status field in the metadata
        (times as ISO strings, ``state`` as its string value).
    """
    parts = [status.state.value]
    if status.raw_status:
        parts[0] += f" ({status.raw_status})"
    if status.instances is not None:
        parts.append(f"{status.instances} instance(s)")
    cap = status.capacity
    if cap is not None:
        parts.append(f"capacity min {cap.min} / desired {cap.desired} / max {cap.max}")
    if status.idle_timeout_minutes is not None:
        parts.append(f"idle timeout {status.idle_timeout_minutes} min")
    if status.inferences is not None:
        parts.append(f"{status.inferences} inference(s)")
    if status.reason:
        parts.append(f"reason: {status.reason}")
    content = f"{status.model_id} — {', '.join(parts)}"
    metadata: dict[str, Any] = {"source": "bytez-instances", **status.model_dump(mode="json")}
    return Document(id=status.model_id, page_content=content, metadata=metadata)


class _BytezConnectionLoader(BaseLoader):
    """Connection settings shared by the Bytez document loaders.

    The key is kept as a ``SecretStr`` and left out of pickles, so a loader's
    ``vars()``, pickle or debugger view never shows it.
    """

    def __init__(
        self,
        client: BytezClient | None,
        async_client: AsyncBytezClient | None,
        api_key: str | SecretStr | None,
        base_url: str | None,
    ) -> None:
        self.client = client
        self.async_client = async_client
        self.api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.base_url = base_url

    def __getstate__(self) -> dict[str, Any]:
        """Pickle state without the key (read from ``BYTEZ_API_KEY`` again on use).

        Returns:
            The state for ``pickle``.
        """
        state = dict(self.__dict__)
        state["api_key"] = None
        return state

    def _fetch(self, fetch: Callable[..., _T], *args: Any, **filters: Any) -> _T:
        """Call a listing function with the loader's sync connection."""
        key, base_url = self.api_key, self.base_url
        return fetch(*args, client=self.client, api_key=key, base_url=base_url, **filters)

    async def _afetch(
        self,
        fetch: Callable[..., _T],
        afetch: Callable[..., Awaitable[_T]],
        *args: Any,
        **filters: Any,
    ) -> _T:
        """Call a listing function's async twin with the loader's async connection."""
        if self.async_client is None and self.client is not None:
            # Only a sync client was given: use it off the loop rather than ignore it.
            return await asyncio.to_thread(fetch, *args, client=self.client, **filters)
        key, base_url = self.api_key, self.base_url
        return await afetch(
            *args, client=self.async_client, api_key=key, base_url=base_url, **filters
        )


class BytezCatalogLoader(_BytezConnectionLoader):
    """Load the Bytez model catalogue as documents, one per model.

    Handy for "which model should I use" retrieval: the text names the task, size, RAM
    and price; the metadata holds every catalogue field (``model_id``, ``task``,
    ``params``, ``ram_required``, ``meter``, ``meter_price``, ``meter_price_unit``) plus
    ``source``.

    Attributes:
        task: Only models of this task (``None``: every task).
        client: Sync client used by ``load``/``lazy_load`` (left open), or ``None`` to
            build one per load.
        async_client: Async client used by ``aload``/``alazy_load`` (left open), or
            ``None`` to build one per load.
        api_key: API key for built clients (``None``: ``BYTEZ_API_KEY``).
        base_url: Endpoint for built clients (``None``: ``BYTEZ_BASE_URL`` or the
            default).
        max_params: Only models with at most this many billion parameters.
        max_ram: Only models needing at most this many GB of RAM.
        search: Case-insensitive substring the model id must contain.

    Example:
        ```python
        from langchain_bytez.loaders import BytezCatalogLoader

        docs = BytezCatalogLoader(task="summarization", max_ram=8).load()
        ```
    """

    def __init__(
        self,
        task: str | None = None,
        *,
        client: BytezClient | None = None,
        async_client: AsyncBytezClient | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        max_params: float | None = None,
        max_ram: float | None = None,
        search: str | None = None,
    ) -> None:
        """Create the loader (filters are checked now, nothing is sent yet).

        Args:
            task: Only models of this task.
            client: Sync client to use (left open); by default one is built per load.
            async_client: Async client for ``alazy_load`` (left open); by default one is
                built per load.
            api_key: API key for built clients (default ``BYTEZ_API_KEY``).
            base_url: Endpoint for built clients.
            max_params: Only models with at most this many billion parameters.
            max_ram: Only models needing at most this many GB of RAM.
            search: Case-insensitive substring the model id must contain.
        """
        query: CatalogueQuery[Any] = {
            "max_params": max_params,
            "max_ram": max_ram,
            "search": search,
        }
        _model_filter(task, query)  # fail fast on bad filters
        super().__init__(client, async_client, api_key, base_url)
        self.task = task
        self.max_params = max_params
        self.max_ram = max_ram
        self.search = search

    def _filters(self) -> dict[str, Any]:
        """The client-side filters, as keyword arguments of ``list_models``."""
        return {"max_params": self.max_params, "max_ram": self.max_ram, "search": self.search}

    def lazy_load(self) -> Iterator[Document]:
        """Yield one document per matching catalogue model.

        Yields:
            The documents, in the catalogue's order.
        """
        for info in self._fetch(list_models, self.task, **self._filters()):
            yield model_document(info)

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Async version of ``lazy_load``, with ``async_client`` (or ``client`` in a thread)."""
        for info in await self._afetch(list_models, alist_models, self.task, **self._filters()):
            yield model_document(info)


class BytezInstanceLoader(_BytezConnectionLoader):
    """Load your Bytez instance clusters as documents, one per cluster.

    The metadata holds the state (``"running"``...), ``raw_status``, ``capacity``,
    ``instances``, ``inferences``, ``idle_timeout_minutes``, times and ``reason``.

    Attributes:
        client: As for [`BytezCatalogLoader`][langchain_bytez.loaders.BytezCatalogLoader],
            like ``async_client``, ``api_key`` and ``base_url``.
        states: The cluster states kept, as a frozenset of ``ClusterState``, or ``None``
            for every listed cluster.

    Example:
        ```python
        from langchain_bytez.loaders import BytezInstanceLoader
        from langchain_bytez.types import ClusterState

        running = BytezInstanceLoader(states=[ClusterState.RUNNING]).load()
        ```
    """

    def __init__(
        self,
        *,
        client: BytezClient | None = None,
        async_client: AsyncBytezClient | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        states: Iterable[ClusterState | str] | ClusterState | str | None = None,
    ) -> None:
        """Create the loader.

        Args:
            client: As for ``BytezCatalogLoader``, like ``async_client``, ``api_key`` and
                ``base_url``.
            async_client: The async client.
            api_key: The API key.
            base_url: The endpoint.
            states: Only clusters in these states, or in this one state (default: every
                listed cluster).

        Raises:
            ValueError: If a state is not a ``ClusterState`` value.
        """
        super().__init__(client, async_client, api_key, base_url)
        if isinstance(states, str):  # one state ("running" or ClusterState.RUNNING)
            states = [states]
        self.states = None if states is None else frozenset(ClusterState(s) for s in states)

    def _documents(self, clusters: list[ClusterStatus]) -> Iterator[Document]:
        for status in clusters:
            if self.states is None or status.state in self.states:
                yield instance_document(status)

    def lazy_load(self) -> Iterator[Document]:
        """Yield one document per cluster.

        Yields:
            The documents.
        """
        yield from self._documents(self._fetch(list_instances))

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Async version of ``lazy_load``, with ``async_client`` (or ``client`` in a thread)."""
        for document in self._documents(await self._afetch(list_instances, alist_instances)):
            yield document
