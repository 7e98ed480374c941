# Generated from langchain_bytez/lifecycle/_async/handle.py by .ci/unasync.py:
# do not edit; edit the async source and run `make generate`.
# `make lint` and tests/unit_tests/test_generated.py check it.
"""What a model handle does: load, start, status, stop, run and stream a model.

``HandleMethods`` is the I/O half of ``ModelHandle``; the other half (the
model, its client, its manager: ``_ModelHandleBase``) is shared by both handles in
``lifecycle/manager.py``. The decisions are in the plans, run here by the driver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Unpack

from langchain_bytez.lifecycle.coordinator import LoadRequest
from langchain_bytez.lifecycle.drivers import PlanRun, drive
from langchain_bytez.lifecycle.options import LoadOptions, load_spec
from langchain_bytez.lifecycle.plans import Plan
from langchain_bytez.lifecycle.progress import ProgressOption
from langchain_bytez.lifecycle.settings import DEFAULT_DEADLINE_SECONDS, LoadSpec, run_payload
from langchain_bytez.types import Capacity, ClusterStatus, RunResult

if TYPE_CHECKING:
    from langchain_bytez.client import BytezClient, TextStream
    from langchain_bytez.lifecycle.manager import ModelManager

__all__ = ["HandleMethods"]

_T = TypeVar("_T")


class HandleMethods:
    """The methods of ``ModelHandle``, on the state ``_ModelHandleBase`` sets."""

    _client: BytezClient
    _model_id: str
    _manager: ModelManager

    def load(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        **options: Unpack[LoadOptions[ProgressOption]],
    ) -> ClusterStatus | None:
        """Create (or update) the model's cluster and wait until it is running.

        An existing cluster is updated (PATCH) when the capacity or timeout *given here*
        differ from its own (sizes left ``None`` are kept as they are), and turned back
        on when off. Polling backs off from 0.05 s, doubling up to 5 s.

        Args:
            concurrency: Instances to run (``min = desired = max = concurrency``);
                ``None`` keeps an existing cluster's capacity (a new one gets 1).
            timeout: Idle seconds before the cluster shuts down (``None`` keeps an
                existing cluster's, a new one gets 300 s); Bytez counts whole
                minutes, so this is rounded **up** to minutes and must be 1..1440
                minutes (at most 86400 s).
            **options: Keyword-only [`LoadOptions`][langchain_bytez.manager.LoadOptions]:
                ``capacity`` (autoscaling; overrides ``concurrency``), ``progress``
                (``True``, the default, prints to stderr), ``deadline`` (default 15 min).

        Returns:
            The running cluster's status, or ``None`` in serverless mode (cluster
            routes unavailable: the first run starts the model).

        Raises:
            ValueError: On out-of-range or wrongly typed settings.
            BytezModelLoadError: If the cluster fails (message has the server's reason)
                or is not running by the deadline (message has the last status).
            BytezError: On other service errors (unknown model, bad key...).
        """
        spec = load_spec(concurrency, timeout, options, "load")
        progress = options.get("progress", True)
        load = LoadRequest(self._model_id, spec)
        return self._manager._load_sync(self._client, load, progress, use_cache=False)

    def _drive(self, plan: Plan[_T]) -> _T:
        return drive(plan, self._client, PlanRun(self._model_id, state=self._manager))

    def start(
        self,
        concurrency: int | None = None,
        timeout: float | None = None,
        *,
        capacity: Capacity | Mapping[str, int] | None = None,
    ) -> ClusterStatus | None:
        """Like ``load`` but returns as soon as the cluster is requested.

        Args:
            concurrency: Instances to run; ``None`` keeps an existing cluster's capacity
                (a new one gets 1).
            timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
                ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
            capacity: Full capacity for autoscaling; overrides ``concurrency``.

        Returns:
            The cluster status known right after the request (usually deploying), or
            ``None`` in serverless mode.
        """
        spec = LoadSpec.build(concurrency, timeout, capacity, DEFAULT_DEADLINE_SECONDS)
        plan = self._manager._load_plan(self._model_id, spec, wait=False)
        return self._drive(plan)

    def status(self) -> ClusterStatus:
        """Read the cluster's status.

        Returns:
            The status; ``ClusterState.STOPPED`` when the model has no cluster, and
            ``raw_status="serverless"`` in serverless mode.
        """
        return self._drive(self._manager._status_plan(self._model_id))

    def stop(self) -> None:
        """Delete the cluster. Idempotent: stopping a stopped model is fine."""
        self._drive(self._manager._stop_plan(self._model_id))

    def run(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run the model once.

        Args:
            input: A string (sent as ``text``) or a list of message dicts (sent as
                ``messages``) for chat and ``*-text-to-text`` models.
            params: Generation parameters (``max_new_tokens``, ``temperature``...).

        Returns:
            The run's output and response metadata.
        """
        return self._client.run(self._model_id, run_payload(input, params))

    def stream(
        self,
        input: str | Sequence[Mapping[str, Any]],  # noqa: A002
        params: Mapping[str, Any] | None = None,
    ) -> TextStream:
        """Stream the model's output as text.

        Args:
            input: A string or a list of message dicts, as for
                [`run`][langchain_bytez.manager.ModelHandle.run].
            params: Generation parameters.

        Returns:
            The client's ``TextStream``:
            ``with handle.stream(...) as s: for t in s``.
        """
        return self._client.stream(self._model_id, run_payload(input, params))
