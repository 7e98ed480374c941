"""The waits of the client shells, in one place both import by name.

The retry loops of [`BytezClient`][langchain_bytez.client.BytezClient] and
[`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient] sleep through
[`sleep`][langchain_bytez.clients.io.sleep] and
[`async_sleep`][langchain_bytez.clients.io.async_sleep], looked up on this module at each
wait: tests (and callers who must not block) patch them here.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["async_sleep", "sleep"]


def sleep(seconds: float) -> None:
    """Wait between two attempts of a sync call.

    Args:
        seconds: How long.
    """
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    """Wait between two attempts of an async call.

    Args:
        seconds: How long.
    """
    await asyncio.sleep(seconds)
