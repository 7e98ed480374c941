# Generated from langchain_bytez/lifecycle/_async/manager.py by .ci/unasync.py:
# do not edit; edit the async source and run `make generate`.
# `make lint` and tests/unit_tests/test_generated.py check it.
"""The manager's async methods: explicit and implicit loads, and the per-model cap.

``ManagerMethods`` holds what ``ModelManager`` does with a client:
``ensure_loaded`` (explicit, single-flight), ``ensure_available`` (the implicit,
best-effort auto-load before a run) and ``limit``. They run on the state and single
flight of [`LoadCoordinator`][langchain_bytez.lifecycle.coordinator.LoadCoordinator],
which they extend; ``ModelManager`` inherits them with their sync twins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from typing_extensions import Unpack

from langchain_bytez.errors import BytezError
from langchain_bytez.lifecycle.coordinator import AutoLoadOptions, LoadCoordinator, LoadRequest
from langchain_bytez.lifecycle.options import LoadOptions, load_spec
from langchain_bytez.lifecycle.progress import ProgressOption
from langchain_bytez.lifecycle.settings import DEFAULT_TIMEOUT_SECONDS
from langchain_bytez.protocol import validate_model_id
from langchain_bytez.types import ClusterStatus

if TYPE_CHECKING:
    from langchain_bytez.client import BytezClient

__all__ = ["ManagerMethods"]


class ManagerMethods(LoadCoordinator):
    """The async methods of ``ModelManager``, on the coordinator's state."""

    def ensure_loaded(
        self,
        client: BytezClient,
        model_id: str,
        *,
        concurrency: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        **options: Unpack[LoadOptions[ProgressOption]],
    ) -> ClusterStatus | None:
        """Make sure a model's cluster is running, loading it if needed (single-flight).

        Sync and async callers share one flight per model.

        Args:
            client: The Bytez client to use.
            model_id: The Bytez model id.
            concurrency: Instances to run (``min = desired = max``).
            timeout: Idle seconds before the cluster shuts down; sent as whole minutes,
                rounded up, 1 to 1440.
            **options: Keyword-only [`LoadOptions`][langchain_bytez.manager.LoadOptions]
                (``capacity``, ``progress``: silent by default, ``deadline``).

        Returns:
            The running cluster's status, or ``None`` in serverless mode.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the load fails or misses the deadline.
            BytezError: On other service errors (unknown model, bad key...).
        """
        spec = load_spec(concurrency, timeout, options, "ensure_loaded")
        model_id = validate_model_id(model_id)
        load, progress = LoadRequest(model_id, spec), options.get("progress")
        return self._load_sync(client, load, progress, use_cache=True)

    def ensure_available(
        self,
        client: BytezClient,
        model_id: str,
        **options: Unpack[AutoLoadOptions[ProgressOption]],
    ) -> ClusterStatus | None:
        """Implicit auto-load before a run: best effort, never breaks or alters anything.

        The rule (``docs/model-management.md``):

        * closed-source models (``openai/...``, ``anthropic/...``; see
          [`is_closed_source`][langchain_bytez.protocol.is_closed_source]) get no cluster
          call;
        * a cluster that is on is used as it is; one that is loading is waited for; one
          that is off or failed is left alone (the run is sent; never PATCH, PUT on top
          of it, or DELETE);
        * a cluster is created (PUT, with ``concurrency`` and ``timeout``) only when none
          exists;
        * each cluster call is sent once with a timeout of
          [`IMPLICIT_CALL_TIMEOUT`][langchain_bytez.manager.IMPLICIT_CALL_TIMEOUT] seconds;
          any failure except 401/402 returns ``None`` (the run is sent anyway), warns once
          per model and base URL, and skips the model's auto-load for
          [`IMPLICIT_RETRY_AFTER`][langchain_bytez.manager.IMPLICIT_RETRY_AFTER] seconds.

        Args:
            client: The Bytez client to use.
            model_id: The Bytez model id.
            **options: Keyword-only
                [`AutoLoadOptions`][langchain_bytez.manager.AutoLoadOptions]
                (``concurrency``, ``timeout``, ``progress``, ``deadline``).

        Returns:
            The running cluster's status, or ``None`` when the run is to be sent as is.

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezAuthenticationError: On 401 (the run would fail the same way).
            BytezPaymentRequiredError: On 402.
        """
        load, known = self._implicit_start(model_id, options)
        if load is None:
            return known
        try:
            return self._load_sync(client, load, options.get("progress"), use_cache=False)
        except BytezError as error:
            self._implicit_fallback(client.cache_key[0], load.model_id, error)
            return None

    @contextmanager
    def limit(self, model_id: str, concurrency: int) -> Iterator[None]:
        """Hold one of ``concurrency`` slots of a model, waiting while all are taken.

        An optional per-model cap for your own code: the LangChain classes and the
        clients do not take it. Model runs are limited account-wide by the clients
        (see ``max_concurrent_requests``). Threads and the tasks of every event loop
        share one count.

        Args:
            model_id: The Bytez model id.
            concurrency: Most holders of this model's slots at once through this manager.

        Yields:
            Nothing; the slot is released on exit.

        Raises:
            ValueError: If ``concurrency`` is not a positive integer.
        """
        slot = self._limiter(model_id, concurrency).acquire()
        try:
            yield
        finally:
            if slot is not None:
                slot.release()
