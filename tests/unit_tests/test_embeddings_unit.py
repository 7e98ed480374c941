"""Unit tests of ``BytezEmbeddings`` over ``httpx.MockTransport`` (no server, no network)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.load import dumpd, load

from langchain_bytez.embeddings import BytezEmbeddings, normalize_embedding_output
from langchain_bytez.errors import BytezAPIError
from tests.unit_tests.fake_bytez import FAKE_KEY, URL, FakeBytez

MODEL = "org/embedder"


def vector_of(text: str) -> list[float]:
    """A deterministic, not normalised vector: [len, ord(first), 2]."""
    return [float(len(text)), float(ord(text[0])), 2.0]


def embedding_output(shape: str) -> Any:
    """A fake output function answering ``vector_of(text)`` in one of Bytez's shapes."""

    def output(body: dict[str, Any]) -> Any:
        vector = vector_of(body["text"])
        if shape == "nested":
            return [vector]
        if shape == "per_token":  # mean of the rows is the vector
            return [[[v - 1 for v in vector], [v + 1 for v in vector]]]
        return vector

    return output


def delays_by_text(delays: dict[str, float]) -> Any:
    """A fake delay function: seconds per embedded text (0.01 for the others)."""
    return lambda body: delays.get(body["text"], 0.01)


@pytest.fixture
def fake() -> FakeBytez:
    fake = FakeBytez()
    fake.output = embedding_output("flat")
    fake.delay = delays_by_text({})
    return fake


@pytest.fixture
def make(fake: FakeBytez) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def factory(**kwargs: Any) -> BytezEmbeddings:
        http, ahttp = fake.clients()
        clients.append(http)
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("api_key", FAKE_KEY)
        kwargs.setdefault("base_url", URL)
        kwargs.setdefault("auto_load", False)
        return BytezEmbeddings(http_client=http, http_async_client=ahttp, **kwargs)

    yield factory
    for client in clients:
        client.close()


# ----------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([1, 2.5, -3], [1.0, 2.5, -3.0]),
        ([[1, 2, 3]], [1.0, 2.0, 3.0]),
        ([[[0, 2], [2, 4]]], [1.0, 3.0]),  # per token, batch of one: mean-pooled
        ([[0, 2], [2, 4], [4, 6]], [2.0, 4.0]),  # per token, no batch axis
        ({"embedding": [1, 2]}, [1.0, 2.0]),
        ({"embeddings": [[1, 2]]}, [1.0, 2.0]),
    ],
)
def test_output_shapes_are_normalised(output: Any, expected: list[float]) -> None:
    assert normalize_embedding_output(output, MODEL) == expected


@pytest.mark.parametrize(
    "output",
    [
        None,
        "text",
        [],
        [[]],
        [True, False],
        [[1, 2], [3]],  # ragged per-token rows
        [1.0, float("nan")],
        {"vector": [1, 2]},
        [[[1, 2]], [[3, 4]]],  # a batch of two: not a one-text answer
    ],
)
def test_unknown_shapes_are_clear_errors(output: Any) -> None:
    with pytest.raises(BytezAPIError):
        normalize_embedding_output(output, MODEL)


@pytest.mark.parametrize("shape", ["flat", "nested", "per_token"])
def test_every_wire_shape_gives_the_same_vector(make: Any, fake: FakeBytez, shape: str) -> None:
    fake.output = embedding_output(shape)
    assert make().embed_query("hello") == vector_of("hello")


# ----------------------------------------------------------------------- normalisation


def test_l2_normalisation_is_optional(make: Any) -> None:
    raw = make().embed_query("hello")
    assert raw == vector_of("hello")
    unit = make(normalize=True).embed_query("hello")
    assert math.isclose(math.sqrt(sum(v * v for v in unit)), 1.0)
    norm = math.sqrt(sum(v * v for v in raw))
    assert unit == pytest.approx([v / norm for v in raw])


def test_zero_vector_is_not_divided_by_zero(make: Any, fake: FakeBytez) -> None:
    fake.output = [0.0, 0.0]
    assert make(normalize=True).embed_query("x") == [0.0, 0.0]


# ----------------------------------------------------------------------- order, concurrency


def test_order_is_kept_when_answers_arrive_out_of_order(make: Any, fake: FakeBytez) -> None:
    texts = ["alpha", "b", "charlie", "dd", "echo"]
    fake.delay = delays_by_text({"alpha": 0.15, "b": 0.01, "charlie": 0.1, "dd": 0.0, "echo": 0.05})
    vectors = make(concurrency=5).embed_documents(texts)
    assert vectors == [vector_of(t) for t in texts]
    assert fake.peak_in_flight > 1  # really concurrent


async def test_async_order_is_kept(make: Any, fake: FakeBytez) -> None:
    texts = ["alpha", "b", "charlie", "dd", "echo"]
    fake.delay = delays_by_text({"alpha": 0.15, "b": 0.01, "charlie": 0.1, "dd": 0.0, "echo": 0.05})
    vectors = await make(concurrency=5).aembed_documents(texts)
    assert vectors == [vector_of(t) for t in texts]
    assert fake.peak_in_flight > 1


@pytest.mark.parametrize(
    ("max_concurrency", "concurrency", "bound"), [(8, 3, 3), (2, 8, 2), (8, 1, 1)]
)
def test_concurrency_is_bounded(
    make: Any, fake: FakeBytez, max_concurrency: int, concurrency: int, bound: int
) -> None:
    texts = [f"text {i}" for i in range(12)]
    model = make(max_concurrency=max_concurrency, concurrency=concurrency)
    assert model.embed_documents(texts) == [vector_of(t) for t in texts]
    assert fake.peak_in_flight == bound


@pytest.mark.parametrize(
    ("max_concurrency", "concurrency", "cap", "bound"),
    [(8, 8, 3, 3), (2, 8, 8, 2), (8, 1, 8, 1), (8, 3, 8, 3), (8, 3, 2, 2)],
)
async def test_async_concurrency_is_bounded(
    make: Any, fake: FakeBytez, max_concurrency: int, concurrency: int, cap: int, bound: int
) -> None:
    # As embed_documents: min(max_concurrency, concurrency), and the account-wide limit
    # of runs in flight (max_concurrent_requests). A base URL of its own: the learned
    # account limit is shared process-wide.
    texts = [f"text {i}" for i in range(12)]
    model = make(
        max_concurrency=max_concurrency,
        concurrency=concurrency,
        max_concurrent_requests=cap,
        base_url=f"http://127.0.{concurrency}.{10 + cap + max_concurrency}:9",
    )
    assert await model.aembed_documents(texts) == [vector_of(t) for t in texts]
    assert fake.peak_in_flight == bound


def test_identical_texts_are_sent_once(make: Any, fake: FakeBytez) -> None:
    vectors = make(concurrency=2).embed_documents(["a", "b", "a", "a"])
    assert sorted(fake.texts()) == ["a", "b"]
    assert vectors == [vector_of("a"), vector_of("b"), vector_of("a"), vector_of("a")]
    vectors[0].append(9.0)  # results are independent lists
    assert vectors[2] == vector_of("a")


async def test_async_identical_texts_are_sent_once(make: Any, fake: FakeBytez) -> None:
    vectors = await make(concurrency=2).aembed_documents(["a", "b", "a", "a"])
    assert sorted(fake.texts()) == ["a", "b"]
    assert vectors == [vector_of("a"), vector_of("b"), vector_of("a"), vector_of("a")]
    vectors[0].append(9.0)  # results are independent lists
    assert vectors[2] == vector_of("a")


# ----------------------------------------------------------------------- input rules


async def test_empty_list_sends_nothing(make: Any, fake: FakeBytez) -> None:
    model = make()
    assert model.embed_documents([]) == []
    assert await model.aembed_documents([]) == []
    assert fake.texts() == []


async def test_empty_string_is_refused_before_sending(make: Any, fake: FakeBytez) -> None:
    model = make()
    with pytest.raises(ValueError, match=r"texts\[1\] is an empty string"):
        model.embed_documents(["ok", ""])
    with pytest.raises(ValueError, match="empty string"):
        await model.aembed_query("")
    with pytest.raises(TypeError, match="not a string"):
        model.embed_documents(["ok", 3])  # type: ignore[list-item,unused-ignore]
    assert fake.texts() == []


async def test_a_bare_string_is_refused(make: Any, fake: FakeBytez) -> None:
    embeddings = make()
    with pytest.raises(TypeError, match="embed_query"):
        embeddings.embed_documents("hello")  # type: ignore[arg-type,unused-ignore]
    with pytest.raises(TypeError, match="embed_query"):
        await embeddings.aembed_documents("hello")  # type: ignore[arg-type,unused-ignore]
    assert fake.texts() == []  # not embedded letter by letter


def test_async_query(make: Any) -> None:
    assert asyncio.run(make().aembed_query("hey")) == vector_of("hey")


# ----------------------------------------------------------------------- fields, secrets


def test_fields_and_defaults() -> None:
    embeddings = BytezEmbeddings(model=MODEL)
    assert embeddings.max_concurrency == 8
    assert embeddings.normalize is False
    with pytest.raises(ValueError, match="did you mean 'normalize'"):
        BytezEmbeddings(model=MODEL, normalise=True)


def test_key_never_leaks() -> None:
    embeddings = BytezEmbeddings(model=MODEL, api_key=FAKE_KEY)
    for text in (repr(embeddings), str(embeddings), json.dumps(dumpd(embeddings))):
        assert FAKE_KEY not in text


def test_serialises_and_round_trips_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = BytezEmbeddings(
        model=MODEL, api_key=FAKE_KEY, normalize=True, concurrency=2, max_concurrency=3
    )
    data = dumpd(embeddings)
    assert data["type"] == "constructor"
    assert data["id"] == ["langchain_bytez", "embeddings", "BytezEmbeddings"]
    assert data["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["BYTEZ_API_KEY"]}
    assert FAKE_KEY not in json.dumps(data)
    restored = load(
        data,
        secrets_map={"BYTEZ_API_KEY": FAKE_KEY},
        valid_namespaces=["langchain_bytez"],
        allowed_objects=[BytezEmbeddings],
    )
    assert restored == embeddings
    # Without the secret (no secrets_from_env=True) the key comes from the environment
    # when it is needed, instead of "BYTEZ_API_KEY is missing" while it is set.
    monkeypatch.setenv("BYTEZ_API_KEY", "key-from-env")
    keyless = load(data, valid_namespaces=["langchain_bytez"], allowed_objects=[BytezEmbeddings])
    assert keyless.api_key is None
    assert keyless._client_key()[1] == BytezEmbeddings(model=MODEL)._client_key()[1]
    assert (keyless.normalize, keyless.concurrency, keyless.max_concurrency) == (True, 2, 3)
