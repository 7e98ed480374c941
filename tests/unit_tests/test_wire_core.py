"""Unit tests of the sans-I/O wire core, fed values directly: no client, no transport.

The shells over it are tested in ``test_client_unit.py`` (MockTransport); here each pure
room is checked on its own: endpoint calls and plans, output parsers, the retry loop
and the stream core.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_bytez import protocol
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezConnectionError,
    BytezError,
    BytezInvalidRequestError,
    BytezNotFoundError,
    BytezRateLimitError,
    BytezStreamError,
    InvalidModelIdError,
)
from langchain_bytez.types import Capacity, ClusterState, ResponseMeta
from langchain_bytez.wire import endpoints
from langchain_bytez.wire.config import ClientCore
from langchain_bytez.wire.endpoints import Answer, Call, PlanDriver
from langchain_bytez.wire.outputs import (
    chat_content,
    content_text,
    embedding_vector,
    text_of_output,
)
from langchain_bytez.wire.retry import RetryLoop
from langchain_bytez.wire.stream import StreamCore

MODEL = "openai-community/gpt2"
KEY = "sk-FAKE-KEY-0123456789"


def answer(output: Any, provider: dict[str, Any] | None = None) -> Answer:
    return Answer(output, provider, ResponseMeta.from_headers({}, 200))


def keep(text: str) -> str:
    return text


# ------------------------------------------------------------------------- endpoints


def test_run_call_carries_the_request_and_builds_the_result() -> None:
    on_retry = print
    call = endpoints.run(MODEL, {"text": "Hi", "params": None}, timeout=3, on_retry=on_retry)
    assert (call.method, call.path, call.model_id) == ("POST", f"/models/v2/{MODEL}", MODEL)
    assert json.loads(call.content or b"") == {"text": "Hi"}  # None params dropped
    assert call.timeout == 3
    assert call.on_retry is on_retry
    assert call.retry is True
    assert call.label == f"POST /models/v2/{MODEL}"
    result = call.parse(answer("Hello", {"name": "p"}), keep)
    assert (result.model_id, result.output, result.provider) == (MODEL, "Hello", {"name": "p"})


def test_invalid_input_fails_while_building_before_any_io() -> None:
    with pytest.raises(InvalidModelIdError):
        endpoints.run("bad id", {"text": "x"})
    with pytest.raises(ValueError, match="unknown"):
        endpoints.run(MODEL, {"txt": "x"})
    with pytest.raises(InvalidModelIdError):
        endpoints.request_model("bad id")
    with pytest.raises(ValueError, match="1 to 1440"):
        endpoints.create_cluster(MODEL, Capacity.fixed(1), 0)


def test_stream_body_asks_for_a_stream() -> None:
    path, content = endpoints.stream_body(MODEL, {"messages": [{"role": "user", "content": "hi"}]})
    assert path == f"/models/v2/{MODEL}"
    assert json.loads(content)["stream"] is True
    call = endpoints.stream_call(MODEL, path, content)
    assert (call.method, call.content, call.model_id) == ("POST", content, MODEL)


def test_cluster_calls() -> None:
    create = endpoints.create_cluster(MODEL, Capacity.fixed(2), 30, timeout=5, retry=False)
    assert (create.method, create.retry, create.timeout) == ("PUT", False, 5)
    assert json.loads(create.content or b"") == {
        "capacity": {"min": 2, "desired": 2, "max": 2},
        "timeout": 30,
    }
    assert create.parse(answer("Loading"), keep) == "Loading"
    assert create.parse(answer(None), keep) == ""
    get = endpoints.get_cluster(MODEL)
    status = get.parse(answer({"modelId": MODEL, "status": "FAILED", "reason": KEY}), redact)
    assert status.state is ClusterState.FAILED
    assert KEY not in (status.reason or "")  # server text is redacted
    with pytest.raises(BytezNotFoundError):
        get.parse(answer(None), keep)
    assert endpoints.delete_cluster(MODEL).method == "DELETE"
    assert endpoints.delete_cluster(MODEL).parse(answer("gone"), keep) is None
    listed = endpoints.list_clusters().parse(
        answer([{"modelId": "a/b", "status": "on"}, "odd", {"modelId": "a/c", "inferences": "x"}]),
        keep,
    )
    assert [c.model_id for c in listed] == ["a/b"]
    assert endpoints.list_clusters().parse(answer(None), keep) == []
    assert endpoints.request_model(MODEL).path == f"/models/v2/request/{MODEL}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": None, "timeout_minutes": None, "status": None}, "needs capacity"),
        ({"capacity": None, "timeout_minutes": 2000, "status": None}, "1 to 1440"),
        ({"capacity": None, "timeout_minutes": True, "status": None}, "1 to 1440"),
        ({"capacity": None, "timeout_minutes": None, "status": "sideways"}, "'on' or 'off'"),
    ],
)
def test_update_cluster_refuses_bad_changes_before_any_call(
    kwargs: dict[str, Any], message: str
) -> None:
    driver = PlanDriver(endpoints.update_cluster(MODEL, **kwargs))
    with pytest.raises(ValueError, match=message):
        driver.next_call()


def redact(text: str) -> str:
    return text.replace(KEY, "***")


def drive(plan: endpoints.Plan[Any], *results: Any) -> tuple[list[Call[Any]], Any]:
    """Run a plan against scripted results (an exception is handed in as a failure)."""
    driver = PlanDriver(plan)
    calls: list[Call[Any]] = []
    scripted = list(results)
    while (call := driver.next_call()) is not None:
        calls.append(call)
        outcome = scripted.pop(0)
        if isinstance(outcome, BytezError):
            driver.fail(outcome)
        else:
            driver.reply(call.parse(outcome, redact))
    assert not scripted, "the plan stopped before using every scripted answer"
    return calls, driver.result


def test_update_cluster_uses_the_answer_or_reads_the_cluster_back() -> None:
    cluster = {"modelId": MODEL, "status": "on"}
    calls, status = drive(endpoints.update_cluster(MODEL, None, 5, "off"), answer(cluster))
    assert [c.method for c in calls] == ["PATCH"]
    assert json.loads(calls[0].content or b"") == {"timeout": 5, "status": "off"}
    assert status.model_id == MODEL
    calls, status = drive(
        endpoints.update_cluster(MODEL, Capacity.fixed(1), None, None),
        answer("updated"),
        answer(cluster),
    )
    assert [c.method for c in calls] == ["PATCH", "GET"]
    assert status.model_id == MODEL


CATALOGUE = [
    {"modelId": "a/chat", "task": "chat"},
    {"modelId": "a/gen", "task": "text-generation"},
    {"task": "chat"},  # no id: skipped
    "odd",
]


def test_list_models_filters_on_the_server_and_here() -> None:
    calls, models = drive(endpoints.list_models("chat", None), answer(CATALOGUE))
    assert calls[0].params == {"task": "chat"}
    assert [m.model_id for m in models] == ["a/chat"]  # the server ignored the filter
    calls, models = drive(endpoints.list_models(None, "a/gen"), answer(CATALOGUE))
    assert calls[0].params == {"modelId": "a/gen"}
    assert [m.model_id for m in models] == ["a/gen"]
    calls, models = drive(endpoints.list_models(None, None), answer(CATALOGUE))
    assert calls[0].params is None
    assert len(models) == 2


def test_list_models_falls_back_to_the_whole_catalogue_on_a_refused_filter() -> None:
    refused = BytezInvalidRequestError("unknown filter", status_code=400)
    calls, models = drive(endpoints.list_models("chat", None), refused, answer(CATALOGUE))
    assert [c.params for c in calls] == [{"task": "chat"}, None]
    assert [m.model_id for m in models] == ["a/chat"]


@pytest.mark.parametrize(
    "error",
    [
        BytezAuthenticationError("no", status_code=401),
        BytezRateLimitError("slow down", status_code=429),
        BytezConnectionError("down"),  # no status: the server said nothing
    ],
)
def test_list_models_does_not_fall_back_when_the_whole_catalogue_would_fail_too(
    error: BytezError,
) -> None:
    with pytest.raises(type(error)):
        drive(endpoints.list_models("chat", None), error)


def test_list_models_without_filter_never_falls_back() -> None:
    with pytest.raises(BytezInvalidRequestError):
        drive(endpoints.list_models(None, None), BytezInvalidRequestError("x", status_code=400))


def test_unexpected_answers_are_non_retryable_api_errors() -> None:
    for call in (endpoints.list_tasks(), endpoints.list_clusters()):
        with pytest.raises(BytezAPIError, match="expected a list") as info:
            call.parse(answer({"not": "a list"}), keep)
        assert info.value.is_retryable is False
    with pytest.raises(BytezAPIError, match="expected a list"):
        drive(endpoints.list_models(None, None), answer("nope"))
    with pytest.raises(BytezAPIError, match="expected an object"):
        endpoints.get_cluster(MODEL).parse(answer(["x"]), keep)
    tasks = endpoints.list_tasks().parse(answer(["chat", {"task": "ner"}, 5, {"x": 1}]), keep)
    assert tasks == ["chat", "ner"]


# ---------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("plain", "plain"),
        ({"role": "assistant", "content": "whole"}, "whole"),
        ({"role": "assistant", "content": [{"type": "text", "text": "a"}, "b"]}, "ab"),
        ({"content": [{"type": "image", "url": "u"}, {"type": "text", "text": "t"}]}, "t"),
        ([{"generated_text": "legacy"}], "legacy"),
        ([{"summary_text": "short"}], "short"),
        ([{"translation_text": "Hallo"}], "Hallo"),
        ({"text": "keyed"}, "keyed"),
        ([{"generated_text": "first"}, {"generated_text": "second"}], "first"),
        (["first", "second"], "first"),
        ({"generated_text": ["not", "text"], "text": "fallback"}, "fallback"),
    ],
)
def test_text_of_output_accepts_every_vintage(output: Any, expected: str) -> None:
    assert text_of_output(output, MODEL) == expected


@pytest.mark.parametrize("output", [[0.1, 0.2], 5, None, {}, [], {"content": 5}, [[]]])
def test_text_of_output_refuses_non_text(output: Any) -> None:
    with pytest.raises(BytezAPIError, match=r"Expected a text stream, got a JSON \w+ output; hint"):
        text_of_output(output, MODEL, expected="a text stream", hint="hint")


def test_text_of_output_names_the_whole_outputs_type() -> None:
    with pytest.raises(BytezAPIError, match="got a JSON list output") as info:
        text_of_output([0.1, 0.2], MODEL)
    assert info.value.model_id == MODEL
    assert info.value.is_retryable is False


@pytest.mark.parametrize(
    ("output", "content"),
    [
        ({"role": "assistant", "content": "hi"}, "hi"),
        ([{"generated_text": [{"role": "user", "content": "q"}, {"content": "a"}]}], "a"),
        ([{"generated_text": "legacy"}], "legacy"),
        ({"generated_text": []}, []),
        ("bare", "bare"),
        ({"role": "assistant"}, None),
        ([{"type": "text", "text": "x"}], None),  # a block list is no message: its .content
    ],
)
def test_chat_content_unwraps_every_vintage(output: Any, content: Any) -> None:
    assert chat_content(output) == content


def test_content_text() -> None:
    assert content_text("x") == "x"
    assert content_text([{"type": "text", "text": "a"}, {"type": "image"}, "b"]) == "ab"
    assert content_text([{"type": "text", "text": 5}]) == ""
    assert content_text([1]) is None
    assert content_text(None) is None


@given(st.lists(st.text(max_size=5), max_size=5))
@settings(max_examples=50, deadline=None)
def test_text_of_a_message_is_its_blocks_joined(texts: list[str]) -> None:
    blocks = [{"type": "text", "text": t} for t in texts]
    assert text_of_output({"role": "assistant", "content": blocks}) == "".join(texts)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([1, 2], [1.0, 2.0]),
        ([[1, 2]], [1.0, 2.0]),
        ([[1, 3], [3, 5]], [2.0, 4.0]),
        ([[[1, 3], [3, 5]]], [2.0, 4.0]),
        ({"embedding": [1, 2]}, [1.0, 2.0]),
        ({"embeddings": [[1, 2]]}, [1.0, 2.0]),
    ],
)
def test_embedding_vector_shapes(output: Any, expected: list[float]) -> None:
    assert embedding_vector(output, MODEL) == expected


@pytest.mark.parametrize(
    "output", [[], [True, 1.0], [[1, 2], [3]], [float("nan")], "text", {"vector": [1]}, [[[]]]]
)
def test_embedding_vector_refuses_other_shapes(output: Any) -> None:
    with pytest.raises(BytezAPIError) as info:
        embedding_vector(output, MODEL)
    assert info.value.is_retryable is False


_LONG = [0.25] * 768


@pytest.mark.parametrize(
    "output",
    [
        [*_LONG, True],
        [*_LONG, "0.5"],
        [*_LONG, None],
        [*_LONG, float("inf")],
        [float("-inf"), *_LONG],
        [*_LONG[:300], float("nan"), *_LONG[300:]],
        [float("inf"), float("-inf")],
        [[*_LONG, False], _LONG],
        [_LONG, [*_LONG[:-1], float("nan")]],
    ],
    ids=["bool", "str", "none", "inf", "-inf", "nan", "inf-inf", "token-bool", "token-nan"],
)
def test_long_embedding_vectors_are_checked_item_by_item(output: Any) -> None:
    with pytest.raises(BytezAPIError):
        embedding_vector(output, MODEL)


class _Float(float):
    pass


def test_embedding_vector_keeps_finite_extremes_and_number_subclasses() -> None:
    # The sum of these overflows; every item is finite all the same.
    assert embedding_vector([1e308, 1e308], MODEL) == [1e308, 1e308]
    assert embedding_vector([_Float(0.5), 1], MODEL) == [0.5, 1.0]
    vector = embedding_vector([*_LONG, 3], MODEL)
    assert vector == [*_LONG, 3.0]
    assert all(type(v) is float for v in vector)


# ------------------------------------------------------------------------ retry loop


def busy(status: int = 503, retry_after: float | None = None) -> BytezError:
    error = BytezAPIError("busy", status_code=status, retryable=True)
    error.retry_after = retry_after
    return error


def test_retry_loop_waits_calls_back_and_gives_up_after_the_attempts() -> None:
    policy = protocol.RetryPolicy(max_retries=2, max_wait=60.0, jitter=0.0)
    seen: list[tuple[int, float, float, BaseException | None]] = []

    def record(state: tenacity.RetryCallState) -> None:
        assert state.next_action is not None
        assert state.outcome is not None
        error = state.outcome.exception()
        seen.append((state.attempt_number, state.next_action.sleep, state.idle_for, error))

    first, second, third = busy(), busy(retry_after=7.0), busy()
    loop = RetryLoop(policy, "POST /x", (record, None, record))
    assert loop.after_failure(first) == 0.5  # initial backoff
    assert loop.after_failure(second) == 7.0  # the server's Retry-After
    assert loop.after_failure(third) is None  # 3 attempts used
    assert seen == [
        (1, 0.5, 0.5, first),
        (1, 0.5, 0.5, first),
        (2, 7.0, 7.5, second),
        (2, 7.0, 7.5, second),
    ]
    state = loop.state
    assert state.attempt_number == 3
    assert state.outcome is not None
    assert state.outcome.exception() is third
    assert isinstance(state.retry_object, tenacity.Retrying)
    assert state.retry_object.statistics["attempt_number"] == 3


def test_retry_loop_caps_the_wait_and_stops_on_a_non_retryable_error() -> None:
    policy = protocol.RetryPolicy(max_retries=5, max_wait=2.0)
    loop = RetryLoop(policy, "GET /y", retrying=tenacity.AsyncRetrying)
    assert isinstance(loop.state.retry_object, tenacity.AsyncRetrying)
    assert 1.0 <= (loop.after_failure(busy(429, retry_after=1.0)) or 0) <= 2.0  # jitter, capped
    assert loop.after_failure(BytezAPIError("bad", retryable=False)) is None


def test_retry_loop_fails_at_once_when_the_server_wait_does_not_fit() -> None:
    # Changed behaviour: a wait beyond max_retry_wait used to be shortened and retried.
    policy = protocol.RetryPolicy(max_retries=5, max_wait=2.0)
    too_long = busy(429, retry_after=30.0)
    assert RetryLoop(policy, "GET /y").after_failure(too_long) is None
    assert "asked to wait 30 s, longer than max_retry_wait=2 s" in str(too_long)
    past_deadline = busy(429, retry_after=1.5)
    assert RetryLoop(policy, "GET /y").after_failure(past_deadline, remaining=1.0) is None
    assert "asked to wait 1.5 s, longer than the 1 s left" in str(past_deadline)
    backoff = busy(502)
    assert RetryLoop(policy, "GET /y").after_failure(backoff, remaining=0.1) is None
    assert "would pass the call's timeout" in str(backoff)
    # What fits is waited, leaving time for the attempt.
    wait = RetryLoop(policy, "GET /y").after_failure(busy(429, retry_after=0.5), remaining=1.0)
    assert wait is not None
    assert 0.5 <= wait <= 0.75


def test_retry_loop_logs_each_retry(caplog: pytest.LogCaptureFixture) -> None:
    loop = RetryLoop(protocol.RetryPolicy(max_retries=1, jitter=0.0), "POST /models/v2/a/b")
    with caplog.at_level(logging.WARNING, logger="langchain_bytez"):
        loop.after_failure(busy(502))
    assert caplog.messages == [
        "Bytez POST /models/v2/a/b failed (attempt 1 of 2): BytezAPIError (HTTP 502); "
        "retrying in 0.50 s"
    ]


def core(**kwargs: Any) -> ClientCore:
    kwargs.setdefault("max_retries", 2)
    return ClientCore(
        KEY,
        base_url="https://api.test",
        timeout=None,
        max_retry_wait=60.0,
        default_headers=None,
        provider_key=None,
        on_retry=None,
        injected=False,
        **kwargs,
    )


def test_no_retry_loop_without_retries_or_for_a_final_error() -> None:
    assert core(max_retries=0)._retry_loop(busy(), "x", None, tenacity.Retrying) is None
    final = BytezAuthenticationError("no", status_code=401)
    assert core()._retry_loop(final, "x", None, tenacity.Retrying) is None
    assert core()._retry_loop(busy(), "x", None, tenacity.Retrying) is not None


# ----------------------------------------------------------------------- stream core


def stream_core() -> StreamCore:
    path, content = endpoints.stream_body(MODEL, {"text": "x"})
    return StreamCore(core(), MODEL, path, content, httpx.Timeout(5.0), None)


def test_stream_core_decodes_keeps_the_transcript_and_raises_the_in_band_error() -> None:
    stream = stream_core()
    pieces = [stream._decode(chunk) for chunk in (b"Hello ", b"w\xc3", b"\xa9rld")]
    assert pieces == ["Hello ", "w", "\u00e9rld"]  # the split character comes out whole
    assert stream._decode(f"Error: CUDA out of memory {KEY}".encode()) == ""  # held
    assert not stream._finished
    assert stream._decode(None) == ""
    assert stream._finished
    assert stream.text == "Hello w\u00e9rld"
    with pytest.raises(BytezStreamError, match="CUDA out of memory") as info:
        stream._raise_in_band()
    assert KEY not in str(info.value)
    assert info.value.delivered_text == "Hello w\u00e9rld"


def test_stream_core_text_that_mentions_error_is_text() -> None:
    stream = stream_core()
    assert stream._decode(b"Error: none") == ""  # held: it could be the failure
    assert stream._decode(b", all good") == "Error: none, all good"
    assert stream._decode(None) == ""
    stream._raise_in_band()  # nothing raised
    assert stream.text == "Error: none, all good"


def json_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def test_stream_core_reads_a_json_answer_as_text_or_error() -> None:
    stream = stream_core()
    body = json.dumps({"error": None, "output": {"role": "assistant", "content": "all"}})
    stream._prefetch_json(body.encode(), json_response(body.encode()))
    assert stream._take_prefetched() == "all"
    assert stream.text == "all"
    failing = json.dumps({"error": f"bad key {KEY}", "output": None}).encode()
    with pytest.raises(BytezAPIError, match="bad key") as info:
        stream_core()._prefetch_json(failing, json_response(failing))
    assert KEY not in str(info.value)
    plain = stream_core()
    plain._prefetch_json(b"just text", json_response(b"just text"))  # mislabelled
    assert plain._take_prefetched() == "just text"
    with pytest.raises(BytezStreamError, match="boom"):
        stream_core()._prefetch_json(b"Error: boom", json_response(b"Error: boom"))


def test_stream_core_broken_stream_error_keeps_the_cause_without_secrets() -> None:
    stream = stream_core()
    stream._decode(b"partial")
    error = stream._broken(httpx.ReadError("peer reset"))
    assert isinstance(error, BytezStreamError)
    assert error.delivered_text == "partial"
    assert isinstance(error.cause, httpx.ReadError)
    leaky = stream._broken(httpx.ReadError(f"reset by {KEY}"))
    assert KEY not in str(leaky)
    assert leaky.cause is None  # a cause carrying the key is dropped


def test_stream_core_can_be_iterated_once_and_not_after_close() -> None:
    stream = stream_core()
    stream._begin_iteration()
    with pytest.raises(RuntimeError, match="only be iterated once"):
        stream._begin_iteration()
    closed = stream_core()
    closed._closed = True
    with pytest.raises(RuntimeError, match="closed"):
        closed._check_openable()
