"""``AsyncBytezClient``: the I/O shell of the Bytez API client over the wire core.

What the clients do, their retries and their secrets: see
[`langchain_bytez.client`][langchain_bytez.client], where both are imported from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import tenacity
from pydantic import SecretStr
from typing_extensions import Unpack

from langchain_bytez.clients import io
from langchain_bytez.clients._async.streams import AsyncTextStream
from langchain_bytez.clients.options import (
    ClusterCallOptions,
    ClusterChanges,
    RunOptions,
    stream_args,
    update_plan,
)
from langchain_bytez.clients.pools import AsyncPooledClient
from langchain_bytez.errors import BytezError
from langchain_bytez.lifecycle.manager import AsyncModelHandle
from langchain_bytez.limiter import Slot
from langchain_bytez.types import Capacity, ClusterStatus, ModelInfo, RunResult
from langchain_bytez.wire import endpoints
from langchain_bytez.wire.config import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_STREAM_IDLE_TIMEOUT,
    AsyncTransport,
    ReadResponse,
)
from langchain_bytez.wire.deadline import Deadline
from langchain_bytez.wire.endpoints import Answer, Call, Plan, PlanDriver
from langchain_bytez.wire.retry import OnRetry

__all__ = ["AsyncBytezClient"]

_T = TypeVar("_T")


class AsyncBytezClient(AsyncPooledClient):
    """Asynchronous client for the Bytez API.

    One pooled ``httpx.AsyncClient`` is opened on first use and reused by every call
    ([`AsyncPooledClient`][langchain_bytez.clients.pools.AsyncPooledClient] says who may
    share it and when a fresh one is opened). Use the client as a context manager, or
    call [`aclose`][langchain_bytez.client.AsyncBytezClient.aclose], to release the pool.

    Example:
        ```python
        from langchain_bytez.client import AsyncBytezClient

        async with AsyncBytezClient() as client:  # reads BYTEZ_API_KEY
            result = await client.run("openai-community/gpt2", {"text": "Once upon a time"})
            async with client.stream("openai-community/gpt2", {"text": "Hi"}) as stream:
                async for text in stream:
                    print(text, end="")
        ```
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        default_headers: Mapping[str, str] | None = None,
        provider_key: str | SecretStr | None = None,
        http_client: httpx.AsyncClient | None = None,
        on_retry: OnRetry | None = None,
        async_transport: AsyncTransport = "auto",  # unasync: async-only
        max_concurrent_requests: int | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        stream_idle_timeout: float | None = DEFAULT_STREAM_IDLE_TIMEOUT,
    ) -> None:
        """Create a client; nothing is sent until the first call.

        Args:
            api_key: The Bytez API key; defaults to the ``BYTEZ_API_KEY`` environment
                variable.
            base_url: The API root; defaults to ``BYTEZ_BASE_URL``, then
                ``https://api.bytez.com``.
            timeout: Each call's total deadline (slot wait, connect, server, body,
                retry waits; streams too), in seconds or an ``httpx.Timeout`` whose
                ``read`` is the total. Defaults to
                [`DEFAULT_TIMEOUT`][langchain_bytez.client.DEFAULT_TIMEOUT] (10 minutes).
            max_retries: Retries after the first attempt for retryable failures.
            max_retry_wait: Longest single wait between attempts, in seconds.
            default_headers: Extra headers sent with every request.
            provider_key: Key of a closed-source provider, sent as ``provider-key``.
            http_client: An ``httpx.AsyncClient`` to use instead of our own; it is not
                closed by [`aclose`][langchain_bytez.client.AsyncBytezClient.aclose].
            on_retry: Called with tenacity's ``RetryCallState`` before each retry.
            async_transport: The transport of our own pool (an injected ``http_client``
                is used as it is): ``"aiohttp"`` (``httpx-aiohttp``'s transport, from
                ``pip install 'langchain-bytez[aiohttp]'``: flat under hundreds of
                concurrent streams), ``"httpx"`` (httpx's default pool), or ``"auto"``:
                aiohttp when installed and no proxy variable is set, else httpx. See
                [`AsyncTransport`][langchain_bytez.wire.config.AsyncTransport].
            max_concurrent_requests: Most model runs and open streams in flight to the
                account at once (``None``: learned from 429s by the limiter every
                client of this base URL and key shares).
            max_response_bytes: Largest answer read, after decompression (64 MiB).
            stream_idle_timeout: Longest wait for a stream's next chunk (120 s).

        Raises:
            MissingAPIKeyError: If no key was given and ``BYTEZ_API_KEY`` is unset.
            ValueError: If ``base_url``, a retry or a limit setting is invalid.
            ValueError: If ``async_transport`` is none of ``"auto"``, ``"httpx"``, ``"aiohttp"``.
            TypeError: If ``http_client`` is not an ``httpx.AsyncClient``.
            ImportError: If ``async_transport="aiohttp"`` and the extra is not installed.
        """
        super().__init__(
            api_key,
            http_client=http_client,
            async_transport=async_transport,  # unasync: async-only
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            default_headers=default_headers,
            provider_key=provider_key,
            on_retry=on_retry,
            max_concurrent_requests=max_concurrent_requests,
            max_response_bytes=max_response_bytes,
            stream_idle_timeout=stream_idle_timeout,
        )

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> AsyncBytezClient:
        """Return the client itself."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the client (whatever ended the ``async with`` block, it propagates)."""
        await self.aclose()

    # -- I/O --------------------------------------------------------------------------

    async def _send(
        self, call: Call[Any], deadline: Deadline, idle: float | None = None
    ) -> httpx.Response:
        """Send one request; the response's body is still to be read (and closed)."""
        http = self._client()
        request = self._request(http, call, deadline)
        started = self._clock()
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            failure = exc
        else:
            return self._arrived(call, (request, started), response, deadline, idle)
        # Outside the except: see _caused_by.
        raise self._read_failure(failure, deadline, call.model_id)

    async def _read(
        self, response: httpx.Response, deadline: Deadline, model_id: str | None
    ) -> ReadResponse:
        """Read and close a body within the call's deadline and ``max_response_bytes``."""
        reader = self._body_reader(response, model_id)
        with reader.reading():
            try:
                async for chunk in response.aiter_raw() if reader.raw else response.aiter_bytes():
                    reader.take(chunk, deadline)
                reader.take(None, deadline)
            finally:
                await response.aclose()
        return self._body_read(response, reader, deadline)

    async def _acquire(self, call: Call[Any], deadline: Deadline, front: bool) -> Slot:
        """A slot of the account's limiter, waiting at most the time left."""
        wait = self._slot_wait(deadline)
        slot = await self._limiter.aacquire(wait, cap=self._max_concurrent, front=front)
        if slot is None:
            raise self._no_slot(call, wait)
        return slot

    async def _with_retries(
        self,
        attempt: Callable[[], Awaitable[_T]],  # unasync: async-only
        # unasync: sync-only attempt: Callable[[], _T],
        label: str,
        on_retry: OnRetry | None,
        deadline: Deadline,
    ) -> _T:
        try:
            return await attempt()
        except BytezError as exc:
            failure = exc
        loop = self._retry_loop(failure, label, on_retry, tenacity.AsyncRetrying)
        while loop is not None and (wait := loop.after(failure, deadline)) is not None:
            await io.async_sleep(wait)
            try:
                return await attempt()
            except BytezError as exc:
                failure = exc
        # Raised afresh: the attempts' frames add nothing to the traceback of the last
        # failure (its message says what failed).
        raise failure.with_traceback(None)

    async def _execute(self, call: Call[_T]) -> _T:
        deadline = self._deadline(call.timeout)
        attempts = 0

        async def attempt() -> Answer:
            nonlocal attempts
            # A retry queues ahead of calls that have not waited yet.
            slot = await self._acquire(call, deadline, attempts > 0) if call.slot else None
            attempts += 1
            with self._holding(slot):
                response = await self._send(call, deadline)
                read = await self._read(response, deadline, call.model_id)
                return self._answer(read, call.model_id)

        if call.retry:
            answer = await self._with_retries(attempt, call.label, call.on_retry, deadline)
        else:
            answer = await attempt()
        return call.parse(answer, self._redact)

    async def _drive(self, plan: Plan[_T]) -> _T:
        """Run a multi-request plan: execute each call it yields, send back the result."""
        driver = PlanDriver(plan)
        while (call := driver.next_call()) is not None:
            try:
                driver.reply(await self._execute(call))
            except BytezError as exc:
                driver.fail(exc)
        return driver.result

    # -- runs -------------------------------------------------------------------------

    async def run(
        self, model_id: str, payload: Mapping[str, Any], **options: Unpack[RunOptions]
    ) -> RunResult:
        """Run a model once and return its whole output.

        Args:
            model_id: The Bytez model id, such as ``"openai-community/gpt2"``.
            payload: ``{"text": ...}`` or ``{"messages": ...}``, plus optional ``params``;
                ``None`` values are dropped.
            **options: Keyword-only [`RunOptions`][langchain_bytez.client.RunOptions]:
                ``timeout`` overrides the client's timeout for this call; ``on_retry`` is
                called with tenacity's ``RetryCallState`` before each retry.

        Returns:
            The output, response metadata and provider info.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If the payload has unknown keys.
            BytezError: The typed error for the failure, after any retries.
        """
        return await self._execute(endpoints.run(model_id, payload, **options))

    def stream(
        self, model_id: str, payload: Mapping[str, Any], **options: Unpack[RunOptions]
    ) -> AsyncTextStream:
        """Prepare a streamed run; the request is sent when the stream is entered.

        Args:
            model_id: The Bytez model id.
            payload: As for [`run`][langchain_bytez.client.AsyncBytezClient.run].
            **options: As for ``run``; the ``timeout`` bounds each wait for the next
                chunk.

        Returns:
            The run's [`AsyncTextStream`][langchain_bytez.client.AsyncTextStream]; use
            ``async with client.stream(...) as s: async for t in s: ...``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If the payload has unknown keys.
        """
        return AsyncTextStream(self, model_id, *stream_args(self, model_id, payload, options))

    # -- catalogue --------------------------------------------------------------------

    async def list_models(
        self, task: str | None = None, *, model_id: str | None = None
    ) -> list[ModelInfo]:
        """List catalogue models, optionally only those of one task or one id.

        The filter is applied by the server; if the server answers the filtered request
        with an error, the whole catalogue is fetched and filtered here.

        Args:
            task: Only models of this task (``"chat"``, ``"text-generation"``...).
            model_id: Only the model with this id.

        Returns:
            The matching catalogue entries.

        Raises:
            BytezError: The typed error for the failure.
        """
        return await self._drive(endpoints.list_models(task, model_id))

    async def list_tasks(self) -> list[str]:
        """List the tasks the catalogue knows.

        Returns:
            Task names such as ``"chat"`` and ``"text-generation"``.

        Raises:
            BytezError: The typed error for the failure.
        """
        return await self._execute(endpoints.list_tasks())

    async def request_model(self, model_id: str) -> str:
        """Ask Bytez to add a Hugging Face model to its catalogue.

        Args:
            model_id: The Hugging Face model id.

        Returns:
            The server's answer, such as ``"Job queued"``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            BytezError: The typed error for the failure.
        """
        return await self._execute(endpoints.request_model(model_id))

    # -- clusters ---------------------------------------------------------------------

    async def create_cluster(
        self,
        model_id: str,
        capacity: Capacity,
        timeout_minutes: int,
        **options: Unpack[ClusterCallOptions],
    ) -> str:
        """Start loading a model's instance cluster.

        Args:
            model_id: The Bytez model id.
            capacity: Instance counts (``Capacity.fixed(n)`` for ``n`` parallel runs).
            timeout_minutes: Idle minutes before the cluster shuts down (1 to 1440).
            **options: Keyword-only
                [`ClusterCallOptions`][langchain_bytez.client.ClusterCallOptions]:
                ``timeout`` overrides the client's request timeout for this call;
                ``retry=False`` sends the request once, without the client's retries.

        Returns:
            The server's answer, such as ``"Loading"``.

        Raises:
            InvalidModelIdError: If the model id is malformed (nothing is sent).
            ValueError: If ``timeout_minutes`` is out of range.
            BytezError: The typed error for the failure.
        """
        call = endpoints.create_cluster(model_id, capacity, timeout_minutes, **options)
        return await self._execute(call)

    async def get_cluster(
        self, model_id: str, **options: Unpack[ClusterCallOptions]
    ) -> ClusterStatus:
        """Read a model's instance cluster.

        Args:
            model_id: The Bytez model id.
            **options: As for
                [`create_cluster`][langchain_bytez.client.AsyncBytezClient.create_cluster].

        Returns:
            The cluster's status.

        Raises:
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        return await self._execute(endpoints.get_cluster(model_id, **options))

    async def update_cluster(
        self, model_id: str, **changes: Unpack[ClusterChanges]
    ) -> ClusterStatus:
        """Change a model's cluster: capacity, idle timeout, or switch it on/off.

        Args:
            model_id: The Bytez model id.
            **changes: Keyword-only [`ClusterChanges`][langchain_bytez.client.ClusterChanges]:
                ``capacity`` (new instance counts), ``timeout_minutes`` (new idle timeout,
                1 to 1440 minutes), ``status`` (``"on"`` or ``"off"``).

        Returns:
            The cluster's status after the change.

        Raises:
            ValueError: If nothing is to change, or a value is out of range.
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        return await self._drive(update_plan(model_id, changes))

    async def delete_cluster(self, model_id: str) -> None:
        """Stop and delete a model's instance cluster.

        Args:
            model_id: The Bytez model id.

        Raises:
            BytezNotFoundError: If the model has no cluster.
            BytezError: The typed error for other failures.
        """
        await self._execute(endpoints.delete_cluster(model_id))

    async def list_clusters(self) -> list[ClusterStatus]:
        """List this account's instance clusters.

        Returns:
            One status per cluster.

        Raises:
            BytezError: The typed error for the failure.
        """
        return await self._execute(endpoints.list_clusters())

    def model(self, model_id: str) -> AsyncModelHandle:
        """A handle bound to one model (load, status, run, stream, stop).

        Args:
            model_id: The Bytez model id.

        Returns:
            The model's [`AsyncModelHandle`][langchain_bytez.manager.AsyncModelHandle].

        Raises:
            InvalidModelIdError: If the model id is malformed.
        """
        return AsyncModelHandle(self, model_id)
