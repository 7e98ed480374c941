"""Sync and async clients for the Bytez HTTP API: thin I/O shells over the wire core.

[`BytezClient`][langchain_bytez.client.BytezClient] and
[`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient] offer the same methods (the async
ones are coroutines): run a model, stream its text, read the catalogue, and manage a
model's instance cluster. Everything but the I/O lives in
[`langchain_bytez.wire`][langchain_bytez.wire]: each method asks the core for a
[`Call`][langchain_bytez.wire.endpoints.Call] (or a plan of calls) and executes it. The
methods' typed options are defined in
[`langchain_bytez.clients.options`][langchain_bytez.clients.options], and the pool a
request goes through in [`langchain_bytez.clients.pools`][langchain_bytez.clients.pools].

Retries: failures whose error ``is_retryable`` (429, 500/502/503/504, connection
failures and timeouts before any answer) are retried up to ``max_retries`` times,
waiting as long as the server asked (``Retry-After``, ``ratelimit-reset`` on a 429) or
with jittered exponential backoff. The first attempt is made directly; the
[`RetryLoop`][langchain_bytez.wire.retry.RetryLoop] is only built after a retryable
failure, so the happy path pays nothing for retries. A stream is retried only until its
response starts; never after text was delivered.

Layout: ``AsyncBytezClient`` and ``AsyncTextStream`` are written once, in
``clients/_async/``; ``BytezClient`` and ``TextStream`` are generated from them into
``clients/_sync/`` by ``.ci/unasync.py`` (``make generate``). All four are imported from
here.

Secrets: the key is kept as a ``pydantic.SecretStr``, sent only in the
``Authorization`` header, and removed from every error message; ``repr`` shows the base
URL only, and ``cache_key`` carries a fingerprint, never the key.
"""

from __future__ import annotations

import logging

from langchain_bytez.clients._async.client import AsyncBytezClient
from langchain_bytez.clients._sync.client import BytezClient
from langchain_bytez.clients.options import (
    ClusterCallOptions,
    ClusterChanges,
    RunOptions,
    TimeoutArg,
)
from langchain_bytez.clients.streams import AsyncTextStream, TextStream
from langchain_bytez.wire.config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_LIMITS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_STREAM_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
    AsyncTransport,
)
from langchain_bytez.wire.retry import OnRetry

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_STREAM_IDLE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "AsyncBytezClient",
    "AsyncTextStream",
    "AsyncTransport",
    "BytezClient",
    "ClusterCallOptions",
    "ClusterChanges",
    "OnRetry",
    "RunOptions",
    "TextStream",
    "TimeoutArg",
]

logger = logging.getLogger("langchain_bytez")
"""The package logger, ``logging.getLogger("langchain_bytez")``.

Request timings go to ``DEBUG``, retries and other recovered problems to
``INFO``/``WARNING``."""
