"""The sync client shells, generated from ``../_async/`` by ``.ci/unasync.py``: do not edit.

Each module here is the sync twin of the module of the same name in
[`langchain_bytez.clients._async`][langchain_bytez.clients._async]; change that one and
run ``make generate`` (``make lint`` fails while they differ). Import the classes from
their public homes ([`langchain_bytez.client`][langchain_bytez.client]).
"""
