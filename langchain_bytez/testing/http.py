"""HTTP/1.1 for the local server: ``h11`` does the framing, asyncio streams the bytes.

[`serve_connection`][langchain_bytez.testing.http.serve_connection] reads requests off
one connection (keep-alive, chunked or sized bodies, ``Expect: 100-continue``, an idle
timeout between requests) and hands each to a handler as an
[`Exchange`][langchain_bytez.testing.http.Exchange], through which the handler answers:
whole bodies, streamed chunks, or a deliberate abort (for fault injection).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

import h11

__all__ = ["Exchange", "dumps", "serve_connection"]

_READ_SIZE = 16 * 1024
# h11 refuses (431) an unfinished head above this; reads are smaller, so it always checks.
_MAX_HEAD = 32 * 1024


def dumps(obj: Any) -> bytes:
    r"""Compact JSON as UTF-8 (``\\u`` escapes only where a lone surrogate forces them).

    Args:
        obj: The value.

    Returns:
        The bytes.
    """
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"Status"


class Exchange:
    """One request on a connection and the means to answer it.

    Attributes:
        method: Upper-case method.
        path: Percent-decoded path without the query.
        query: Query parameters (last value wins).
        headers: Lower-case names; repeated headers joined with ``", "``.
        body: The whole request body.
        keep_alive: Whether the connection stays open after the answer.
        status: The status sent (``0`` until a head is sent).
        aborted: Whether the connection was cut instead of answered.
        state: Free slot for the router's per-request data.
    """

    def __init__(
        self,
        conn: h11.Connection,
        request: h11.Request,
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Wrap a parsed request.

        Args:
            conn: The connection's h11 state machine.
            request: The request head.
            body: The request body.
            reader: The connection's reader (to notice the client hanging up).
            writer: The connection's writer.
        """
        self._conn = conn
        self._reader = reader
        self.writer = writer
        target = request.target.decode("latin-1")
        raw_path, _, raw_query = target.partition("?")
        self.method = request.method.decode("latin-1").upper()
        self.path = unquote(raw_path)
        self.query: dict[str, str] = dict(parse_qsl(raw_query)) if raw_query else {}
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.headers = headers
        self.body = body
        self.keep_alive = True
        self.status = 0
        self.aborted = False
        self.on_final: Callable[[], None] | None = None

    def gone(self) -> bool:
        """Whether the client has hung up (EOF seen on the connection)."""
        return self._reader.at_eof() or self.writer.transport.is_closing()

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Send the response head. Without ``content-length`` the body is chunked.

        Args:
            status: The HTTP status.
            headers: Header pairs.
        """
        if not self.keep_alive:
            headers = [*headers, ("connection", "close")]
        self.status = status
        self.writer.write(
            self._conn.send(
                h11.Response(status_code=status, headers=headers, reason=_reason(status))
            )
        )

    def write(self, data: bytes) -> None:
        """Send part of the body (one chunk when chunked).

        Args:
            data: Non-empty bytes.
        """
        self.writer.write(self._conn.send(h11.Data(data=data)))

    def end(self) -> None:
        """End the body (the terminating chunk when chunked)."""
        self._finalize()
        self.writer.write(self._conn.send(h11.EndOfMessage()))

    async def drain(self) -> None:
        """Wait until the transport takes the bytes written so far."""
        await self.writer.drain()

    async def send(
        self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """Send a whole answer.

        Args:
            status: The HTTP status.
            body: The body.
            headers: Header pairs (``content-type`` included); ``content-length`` is added.
        """
        headers = [*(headers or []), ("content-length", str(len(body)))]
        if not self.keep_alive:
            headers.append(("connection", "close"))
        self.status = status
        # Record and release before the first byte leaves: a client that has the answer
        # finds the log written and the slot free.
        self._finalize()
        conn = self._conn
        data = conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
        if body:
            data += conn.send(h11.Data(data=body))
        self.writer.write(data + conn.send(h11.EndOfMessage()))
        await self.drain()

    async def abort(self, *, rst: bool) -> None:
        """Cut the connection: a TCP reset, or a FIN after the bytes already written.

        Args:
            rst: Send a reset instead of a clean close.
        """
        transport = self.writer.transport
        if rst:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            # Let the bytes already written reach the kernel before the FIN.
            for _ in range(100):
                if transport.get_write_buffer_size() == 0 or transport.is_closing():
                    break
                await asyncio.sleep(0.001)
        self.aborted = True
        self._finalize()
        transport.abort()

    def _finalize(self) -> None:
        on_final, self.on_final = self.on_final, None
        if on_final is not None:
            on_final()


class _ClosedError(Exception):
    """The client closed the connection (or stayed idle too long) between requests."""


async def _next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, idle_timeout: float | None
) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await asyncio.wait_for(reader.read(_READ_SIZE), idle_timeout)
        except TimeoutError:
            raise _ClosedError from None
        if not data and conn.their_state is h11.IDLE:
            raise _ClosedError
        conn.receive_data(data)


def _refusal(status: int, message: str) -> tuple[h11.Response, bytes]:
    body = dumps({"error": message, "output": None})
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    ]
    return h11.Response(status_code=status, headers=headers, reason=_reason(status)), body


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handle: Callable[[Exchange], Awaitable[None]],
    *,
    idle_timeout: float | None,
    max_body: int,
    closing: Callable[[], bool],
) -> bool:
    """Serve requests on one connection until it closes.

    Args:
        reader: The connection's reader.
        writer: The connection's writer.
        handle: Answers one exchange (must send a complete answer or abort).
        idle_timeout: Seconds a connection may wait for (or dawdle over) its next
            request before it is closed (``None``: forever).
        max_body: Largest request body accepted (413 beyond it).
        closing: Whether the server is shutting down (stop after the current answer).

    Returns:
        Whether the connection must be aborted rather than closed.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    while not closing():
        try:
            event = await _next_event(conn, reader, idle_timeout)
            if isinstance(event, h11.ConnectionClosed):
                return False
            if not isinstance(event, h11.Request):
                return True
            body = await _read_body(conn, event, reader, writer, idle_timeout, max_body)
        except _ClosedError:
            return False
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            message = "Header too large" if status == 431 else f"Bad request: {exc}"
            await _refuse(conn, writer, status, message)
            return False
        except _TooLargeError:
            await _refuse(conn, writer, 413, "Request body too large")
            return False
        exchange = Exchange(conn, event, body, reader, writer)
        await handle(exchange)
        if exchange.aborted:
            return True
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            continue
        await writer.drain()
        return False
    return False


class _TooLargeError(Exception):
    """The request body is larger than allowed."""


async def _read_body(
    conn: h11.Connection,
    request: h11.Request,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    idle_timeout: float | None,
    max_body: int,
) -> bytes:
    for name, value in request.headers:
        if name.lower() == b"content-length" and int(value) > max_body:
            raise _TooLargeError
    if conn.they_are_waiting_for_100_continue:
        writer.write(
            conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
        )
    parts: list[bytes] = []
    total = 0
    while True:
        event = await _next_event(conn, reader, idle_timeout)
        if isinstance(event, h11.Data):
            total += len(event.data)
            if total > max_body:
                raise _TooLargeError
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(parts)
        else:
            raise _ClosedError


async def _refuse(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str
) -> None:
    response, body = _refusal(status, message)
    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
        with contextlib.suppress(h11.LocalProtocolError):
            writer.write(conn.send(response) + conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
