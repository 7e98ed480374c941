"""Model lifecycle on Bytez: load (instance clusters), wait, status, stop, and run caps.

Bytez serves a model from an *instance cluster*: ``capacity.desired`` instances, each
serving one request at a time, shut down after ``timeout`` idle minutes. This module is
the public face of that lifecycle; the code lives in rooms with one job each:

* [`ModelHandle`][langchain_bytez.manager.ModelHandle] /
  [`AsyncModelHandle`][langchain_bytez.manager.AsyncModelHandle] (what ``client.model(id)``
  returns): ``load`` (create or update the cluster and wait until it runs, with progress),
  ``start`` (the same without waiting), ``status``, ``run``, ``stream``, ``stop``.
* [`ModelManager`][langchain_bytez.manager.ModelManager]: one per API endpoint and key
  (``client.cache_key``). It makes concurrent first calls single-flight (one create-cluster
  request however many threads or tasks ask at once), remembers which models are running
  for a short while, caps in-flight runs per model (``limit`` / ``alimit``) and detects the
  serverless fallback. Its
  [`ensure_available`][langchain_bytez.manager.ModelManager.ensure_available] is the
  *implicit* auto-load the LangChain classes run before a model's first run: it never
  changes an existing cluster (no PATCH, no DELETE), creates one only when none exists,
  skips closed-source models, bounds each cluster call (one attempt,
  ``IMPLICIT_CALL_TIMEOUT`` seconds) and turns any failure but 401/402 into a serverless
  run with one warning per model and base URL.
* [`LoadProgress`][langchain_bytez.manager.LoadProgress] events, the console reporter and
  [`langchain_progress_dispatcher`][langchain_bytez.manager.langchain_progress_dispatcher],
  which turns the events into LangChain custom events named ``"bytez_model_loading"``
  (visible in ``astream_events``).

Where the code is: the decisions in [`lifecycle.plans`][langchain_bytez.lifecycle.plans]
(pure generators), their sync and async drivers in
[`lifecycle.drivers`][langchain_bytez.lifecycle.drivers], state and single flight in
[`lifecycle.coordinator`][langchain_bytez.lifecycle.coordinator], the manager and handles
in [`lifecycle.manager`][langchain_bytez.lifecycle.manager], the in-flight cap in
[`limiter`][langchain_bytez.limiter], and progress display in
[`progress`][langchain_bytez.progress] (the LangChain layer).

Idle timeouts are given in **seconds** (the LangChain-facing unit) and sent to Bytez in
whole **minutes, rounded up**, between 1 and 1440 (24 h): ``timeout=90`` keeps the model
for 2 idle minutes. When the service no longer offers the cluster routes (they were
dropped from the official SDKs in September 2025) everything degrades to serverless
mode: ``load`` returns ``None`` after one warning and the first run starts the model.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from langchain_bytez.lifecycle import settings as _settings
from langchain_bytez.lifecycle.coordinator import AutoLoadOptions
from langchain_bytez.lifecycle.manager import (
    AsyncModelHandle,
    LoadOptions,
    ModelHandle,
    ModelManager,
    SizedLoadOptions,
)
from langchain_bytez.lifecycle.progress import (
    AsyncProgressCallback,
    AsyncProgressOption,
    LoadProgress,
    ProgressCallback,
    ProgressOption,
)
from langchain_bytez.lifecycle.settings import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    IMPLICIT_CALL_TIMEOUT,
    IMPLICIT_RETRY_AFTER,
    MAX_TIMEOUT_MINUTES,
    timeout_to_minutes,
)
from langchain_bytez.progress import (
    LOADING_EVENT_NAME,
    ConsoleProgressReporter,
    alangchain_progress_dispatcher,
    langchain_progress_dispatcher,
)

__all__ = [
    "DEFAULT_DEADLINE_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "IMPLICIT_CALL_TIMEOUT",
    "IMPLICIT_RETRY_AFTER",
    "LOADING_EVENT_NAME",
    "MAX_TIMEOUT_MINUTES",
    "AsyncModelHandle",
    "AsyncProgressCallback",
    "AsyncProgressOption",
    "AutoLoadOptions",
    "ConsoleProgressReporter",
    "LoadOptions",
    "LoadProgress",
    "ModelHandle",
    "ModelManager",
    "ProgressCallback",
    "ProgressOption",
    "SizedLoadOptions",
    "alangchain_progress_dispatcher",
    "langchain_progress_dispatcher",
    "timeout_to_minutes",
]

# The implicit auto-load budgets are documented as tunable here
# (``langchain_bytez.manager.IMPLICIT_CALL_TIMEOUT = 5``); the lifecycle reads them from
# ``lifecycle.settings`` at each call, so setting one here sets it there too.
_TUNABLE = frozenset({"IMPLICIT_CALL_TIMEOUT", "IMPLICIT_RETRY_AFTER"})


class _ManagerModule(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _TUNABLE:
            setattr(_settings, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _ManagerModule
