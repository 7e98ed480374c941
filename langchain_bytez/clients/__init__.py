"""The I/O shells over the wire core.

[`langchain_bytez.client`][langchain_bytez.client] is the public import path of the two
clients and their streams. Each shell is written once, async, in ``clients/_async/``
(``client.py``, ``streams.py``, ``redirects.py``); its sync twin in ``clients/_sync/`` is
generated from it by ``.ci/unasync.py`` (``make generate``; ``make lint`` fails while they
differ). Beside them: the typed options (``options.py``), the httpx pools (``pools.py``),
the retry sleeps (``io.py``) and the aiohttp transport (``transports.py``). They only
move bytes: everything else is in [`langchain_bytez.wire`][langchain_bytez.wire].
"""
