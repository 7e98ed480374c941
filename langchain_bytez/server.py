"""A local Bytez-compatible HTTP server (kept path; the code lives in ``langchain_bytez.testing``).

It imitates the live Bytez service as documented: the ``/models/v2`` routes (runs,
catalogue, clusters), the envelope, the metadata headers, raw-text streaming sent as
``text/event-stream``, and injectable faults; where the live behaviour is unknown, each
plausible behaviour is a mode. It binds loopback addresses only.

Python use:

```python
from langchain_bytez.server import FaultKind, LocalBytezServer

with LocalBytezServer(api_keys={"k"}) as server:
    server.inject(FaultKind.STATUS_503)
    ...  # point a client at server.url, sending "Authorization: Key k"
```

Command line:

```bash
python -m langchain_bytez.server --port 8080 --api-key k
```
"""

from __future__ import annotations

from langchain_bytez.testing.catalogue import CATALOGUE, ROWS, CatalogueRow
from langchain_bytez.testing.cli import main
from langchain_bytez.testing.control import RecordedRequest
from langchain_bytez.testing.endpoint import Endpoint, endpoint_from_env
from langchain_bytez.testing.fake_models import embed_text, generate_continuation
from langchain_bytez.testing.faults import FaultKind
from langchain_bytez.testing.modes import AuthForm, ClusterRoutes
from langchain_bytez.testing.routes import logger
from langchain_bytez.testing.server import LocalBytezServer

__all__ = [
    "CATALOGUE",
    "ROWS",
    "AuthForm",
    "CatalogueRow",
    "ClusterRoutes",
    "Endpoint",
    "FaultKind",
    "LocalBytezServer",
    "RecordedRequest",
    "embed_text",
    "endpoint_from_env",
    "generate_continuation",
    "logger",
    "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
