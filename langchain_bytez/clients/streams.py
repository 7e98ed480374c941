"""``TextStream`` and ``AsyncTextStream``: the I/O of a streamed run, over one core.

Both are [`StreamCore`][langchain_bytez.wire.stream.StreamCore] (the state, the
decoder, the ``Error:`` rule, the typed errors) plus the few lines that touch the
socket: open the response (through the client's retry driver), read its chunks, close
it. ``AsyncTextStream`` is written in ``clients/_async/streams.py``; ``TextStream`` is
generated from it (``clients/_sync/streams.py``). Import them from
[`langchain_bytez.client`][langchain_bytez.client].
"""

from __future__ import annotations

from langchain_bytez.clients._async.streams import AsyncTextStream
from langchain_bytez.clients._sync.streams import TextStream

__all__ = ["AsyncTextStream", "TextStream"]
