"""The local Bytez-compatible server, in rooms by job.

It imitates the live Bytez service as documented (never the package's own client), and
where the live behaviour is unknown it offers each plausible behaviour as a mode. It
imports nothing from the client layers: the standard library and ``h11`` only.

- `http`: HTTP/1.1 framing (``h11``) on asyncio streams.
- `routes`: the Bytez routes, streams and fault answers.
- `params`: run-body and params checks.
- `clusters`: instance clusters, cold starts, idling.
- `catalogue` and
  `fake_models`: the models and their answers.
- `faults`: injectable failures.
- `modes`: the fidelity modes.
- `control`: request log, counters, ``/_local/*``.
- `server`: `LocalBytezServer`.
- `endpoint` and
  `cli`: examples' endpoint choice and the command line.
- `pytest_plugin`: fixtures.
"""

from langchain_bytez.testing.catalogue import CATALOGUE, ROWS, CatalogueRow
from langchain_bytez.testing.control import RecordedRequest
from langchain_bytez.testing.endpoint import Endpoint, endpoint_from_env
from langchain_bytez.testing.fake_models import (
    FAKE_MODELS,
    FakeAnswer,
    FakeRun,
    embed_text,
    fake_model,
    generate_continuation,
)
from langchain_bytez.testing.faults import FaultKind
from langchain_bytez.testing.modes import AuthForm, ClusterRoutes
from langchain_bytez.testing.server import LocalBytezServer

__all__ = [
    "CATALOGUE",
    "FAKE_MODELS",
    "ROWS",
    "AuthForm",
    "CatalogueRow",
    "ClusterRoutes",
    "Endpoint",
    "FakeAnswer",
    "FakeRun",
    "FaultKind",
    "LocalBytezServer",
    "RecordedRequest",
    "embed_text",
    "endpoint_from_env",
    "fake_model",
    "generate_continuation",
]
