"""The I/O shells over the wire core.

[`langchain_bytez.client`][langchain_bytez.client] holds the two clients (the public
import path); [`langchain_bytez.clients.streams`][langchain_bytez.clients.streams] holds
their streams. Both only move bytes: everything else is in
[`langchain_bytez.wire`][langchain_bytez.wire].
"""
