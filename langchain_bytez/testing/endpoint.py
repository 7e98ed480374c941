"""Where an example sends its requests: Bytez with a key, the local server without one."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from langchain_bytez.testing.server import LocalBytezServer

__all__ = ["Endpoint", "endpoint_from_env"]


@dataclass(frozen=True)
class Endpoint:
    """Where an example or app sends its Bytez requests, and what to close afterwards.

    Attributes:
        base_url: The API base URL (Bytez's, or the local server's loopback URL).
        api_key: The key to send (from ``BYTEZ_API_KEY``, or the local server's key).
        server: The local server started for this endpoint, or ``None`` for Bytez.
    """

    base_url: str
    # Kept out of repr: endpoints get printed and logged.
    api_key: str = field(repr=False)
    server: LocalBytezServer | None = None

    @property
    def is_local(self) -> bool:
        """Whether requests go to a local Bytez-compatible server started for us."""
        return self.server is not None

    def describe(self) -> str:
        """One line saying which endpoint is used and why, never the key.

        Returns:
            For example ``"Endpoint: http://127.0.0.1:8080 (local Bytez-compatible
            server: BYTEZ_API_KEY is not set)"``.
        """
        if self.server is not None:
            why = "local Bytez-compatible server: BYTEZ_API_KEY is not set"
        else:
            why = "Bytez API, key from BYTEZ_API_KEY"
        return f"Endpoint: {self.base_url} ({why})"

    def close(self) -> None:
        """Stop the local server, if one was started (idempotent)."""
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Endpoint:
        """Use the endpoint as a context manager that closes it on exit.

        Returns:
            The endpoint.
        """
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the local server, if any."""
        self.close()


def endpoint_from_env(*, local_api_key: str = "local-key", **server_knobs: Any) -> Endpoint:
    """Pick the endpoint for a demo or example: Bytez with a key, a local server without.

    With ``BYTEZ_API_KEY`` set, requests go to ``BYTEZ_BASE_URL`` (default
    ``https://api.bytez.com``) and nothing is started. Without it, a
    [`LocalBytezServer`][langchain_bytez.testing.server.LocalBytezServer] is started on a
    free loopback port, accepting ``local_api_key``, so the same code runs offline.

    Args:
        local_api_key: The key the local server accepts (and the endpoint carries).
        **server_knobs: Knobs for the local server (``load_delay``, ``token_delay``...);
            ignored when a real key is set.

    Returns:
        The endpoint; close it (or use it in a ``with`` block) to stop a local server.
    """
    api_key = os.environ.get("BYTEZ_API_KEY", "").strip()
    if api_key:
        base_url = os.environ.get("BYTEZ_BASE_URL", "").strip() or "https://api.bytez.com"
        return Endpoint(base_url=base_url.rstrip("/"), api_key=api_key)
    server = LocalBytezServer(api_keys={local_api_key}, **server_knobs).start()
    return Endpoint(base_url=server.url, api_key=local_api_key, server=server)
