"""The one source of the client shells: the async modules ``../_sync/`` is generated from.

Edit these, then run ``make generate`` (``.ci/unasync.py``): it writes the sync twin of
each module to [`langchain_bytez.clients._sync`][langchain_bytez.clients._sync]. Import
the classes from their public homes ([`langchain_bytez.client`][langchain_bytez.client]).
"""
