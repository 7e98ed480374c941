"""The pure budgets of a call: its deadline, and the bounded decoding of its body."""

from __future__ import annotations

import gzip
import time
import zlib

import httpx
import pytest

from langchain_bytez.client import BytezClient
from langchain_bytez.errors import (
    BytezConcurrencyTimeoutError,
    BytezResponseTooLargeError,
    BytezTimeoutError,
)
from langchain_bytez.limiter import AccountLimiter
from langchain_bytez.wire.deadline import (
    ACCEPT_ENCODING,
    BodyReader,
    Deadline,
    concurrency_timeout,
)

MIB = 1024 * 1024


def test_a_number_is_the_total_and_each_phase_is_cut_to_the_time_left() -> None:
    deadline = Deadline(httpx.Timeout(connect=10.0, read=3.0, write=3.0, pool=3.0))
    assert deadline.total == 3.0
    phases = deadline.timeout("m/x")
    assert phases.connect is not None
    assert phases.read is not None
    assert phases.connect <= 3.0  # even connecting cannot outlast the call
    assert 2.5 < phases.read <= 3.0


def test_an_expired_deadline_refuses_the_next_request() -> None:
    deadline = Deadline(httpx.Timeout(1.0), clock=time.monotonic() - 5)
    assert deadline.expired
    assert deadline.remaining() == 0.0
    with pytest.raises(BytezTimeoutError, match="timeout of 1 s"):
        deadline.timeout("m/x")
    with pytest.raises(BytezTimeoutError):
        deadline.check("m/x")


def test_no_read_timeout_means_no_total() -> None:
    deadline = Deadline(httpx.Timeout(None))
    assert deadline.total is None
    assert deadline.remaining() == float("inf")
    assert deadline.timeout(None) is deadline.phases
    deadline.check(None)


def test_the_body_reads_get_the_time_left_and_the_idle_limit() -> None:
    deadline = Deadline(httpx.Timeout(30.0))

    def request() -> httpx.Request:
        return httpx.Request("POST", "https://x.test", extensions={"timeout": {"read": 30.0}})

    idle = request()
    deadline.body_timeouts(idle, idle=2.0)
    assert idle.extensions["timeout"]["read"] == 2.0
    total = request()
    deadline.body_timeouts(total)
    assert 29.0 < total.extensions["timeout"]["read"] <= 30.0


def test_identity_bodies_are_counted_and_stop_past_the_limit() -> None:
    reader = BodyReader(10, "", "m/x")
    assert reader.feed(b"12345") == [b"12345"]
    assert reader.feed(b"") == []
    with pytest.raises(BytezResponseTooLargeError, match="max_response_bytes=10") as info:
        reader.feed(b"678901")
    assert (info.value.limit, info.value.received) == (10, 11)
    assert info.value.is_retryable is False


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, no header
    ],
)
def test_compressed_bodies_are_decoded_in_bounded_steps(encoding: str, pack: object) -> None:
    text = b'{"error": null, "output": "' + b"x" * 3_000_000 + b'"}'
    packed = pack(text)  # type: ignore[operator]
    reader = BodyReader(4 * MIB, encoding, None)
    pieces: list[bytes] = []
    for start in range(0, len(packed), 1000):
        pieces.extend(reader.feed(packed[start : start + 1000]))
    pieces.extend(reader.finish())
    assert b"".join(pieces) == text
    assert max(len(piece) for piece in pieces) <= 256 * 1024  # never one huge piece
    assert reader.received == len(text)


def test_a_compression_bomb_stops_at_the_limit_within_one_step() -> None:
    bomb = gzip.compress(b"\0" * (50 * MIB), compresslevel=9)
    assert len(bomb) < 100_000
    reader = BodyReader(MIB, "gzip", None)
    with pytest.raises(BytezResponseTooLargeError) as info:
        reader.feed(bomb)  # one raw chunk that would unpack to 50 MiB
    assert MIB < info.value.received <= MIB + 256 * 1024


def test_a_corrupt_compressed_body_is_a_decoding_error() -> None:
    reader = BodyReader(MIB, "gzip", None)
    with pytest.raises(httpx.DecodingError):
        reader.feed(b"this is not gzip at all")


def test_unknown_encodings_are_left_to_httpx_and_only_counted() -> None:
    reader = BodyReader(MIB, "br", None)
    assert reader.raw is False
    assert reader.feed(b"decoded") == [b"decoded"]
    already = BodyReader(MIB, "gzip", None, read=True)
    assert already.raw is False
    assert already.feed(b"plain") == [b"plain"]


def test_the_take_step_checks_the_deadline_after_each_chunk() -> None:
    reader = BodyReader(MIB, "", "m/x")
    live = Deadline(httpx.Timeout(5.0))
    reader.take(b"abc", live)
    assert reader.body == b"abc"
    late = Deadline(httpx.Timeout(1.0), clock=time.monotonic() - 2)
    with pytest.raises(BytezTimeoutError):
        reader.take(b"def", late)


def test_reading_keeps_a_transport_failure_for_later() -> None:
    reader = BodyReader(MIB, "", None)
    with reader.reading():
        raise httpx.ReadError("reset")
    assert isinstance(reader.failure, httpx.ReadError)


def test_the_concurrency_error_names_the_count_the_limit_and_the_remedies() -> None:
    limiter = AccountLimiter(1)
    slot = limiter.try_acquire()
    assert slot is not None
    explicit = concurrency_timeout(limiter, 1, 2.0, "m/x")
    assert isinstance(explicit, BytezConcurrencyTimeoutError)
    assert (explicit.in_flight, explicit.limit, explicit.waited) == (1, 1, 2.0)
    text = str(explicit)
    for part in ("1 request(s)", "limit is 1", "max_concurrent_requests=1", "Raise timeout"):
        assert part in text
    learned = concurrency_timeout(limiter, None, 2.0, "m/x")
    assert "learned from the account's 429 answers" in str(learned)


def test_clients_ask_only_for_encodings_they_can_bound() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"error": None, "output": "ok"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with BytezClient("k" * 8, base_url="https://api.test", http_client=http) as client:
        assert client.run("org/model", {"text": "x"}).output == "ok"
    assert seen[0].headers["accept-encoding"] == ACCEPT_ENCODING
    custom = BytezClient(
        "k" * 8,
        base_url="https://api.test",
        http_client=http,
        default_headers={"Accept-Encoding": "identity"},
    )
    custom.run("org/model", {"text": "x"})
    assert seen[1].headers["accept-encoding"] == "identity"


def test_size_and_limit_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_response_bytes"):
        BytezClient("k" * 8, base_url="https://api.test", max_response_bytes=0)
    with pytest.raises(ValueError, match="max_concurrent_requests"):
        BytezClient("k" * 8, base_url="https://api.test", max_concurrent_requests=0)
    with pytest.raises(ValueError, match="stream_idle_timeout"):
        BytezClient("k" * 8, base_url="https://api.test", stream_idle_timeout=-1)
    client = BytezClient("k" * 8, base_url="https://api.test", max_concurrent_requests=3)
    assert client.max_concurrent_requests == 3
    assert client.concurrency_limit <= 3
    assert client.max_response_bytes == 64 * MIB
