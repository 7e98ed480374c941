"""The sans-I/O wire core: everything about talking to Bytez except the talking.

No module here opens a socket, sleeps or starts a thread; each is tested by feeding it
values. The client shells ([`langchain_bytez.client`][langchain_bytez.client],
[`langchain_bytez.clients.streams`][langchain_bytez.clients.streams]) only do the I/O.

* [`endpoints`][langchain_bytez.wire.endpoints]: per endpoint, the request
  ([`Call`][langchain_bytez.wire.endpoints.Call]) and the reading of its answer; the
  two-request methods as plans.
* [`outputs`][langchain_bytez.wire.outputs]: one parser per task for a run's ``output``.
* [`retry`][langchain_bytez.wire.retry]: the retry loop as a state machine.
* [`deadline`][langchain_bytez.wire.deadline]: a call's total deadline and the bounded
  reading (and decompressing) of its body.
* [`stream`][langchain_bytez.wire.stream]: one streamed run's state and rules.
* [`config`][langchain_bytez.wire.config]: key, base URL, timeouts, headers, redaction,
  transport-error mapping, redirect rules, the async transport choice.
* [`headers`][langchain_bytez.wire.headers]: ``default_headers`` checks, credential
  headers, a secret's encoded echoes.
* Beside them, and older: [`langchain_bytez.protocol`][langchain_bytez.protocol]
  (model ids, bodies, envelopes, error mapping, ``Retry-After``, the retry policy) and
  [`langchain_bytez.streaming`][langchain_bytez.streaming] (the stream decoder with the
  ``Error:`` rule, stop cutting).
"""
