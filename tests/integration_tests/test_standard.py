"""LangChain's standard integration tests, run against the local Bytez-compatible server.

One server is started for the module (models load once, not once per test) and the
classes are pointed at it the way users configure the package: through the
``BYTEZ_BASE_URL`` / ``BYTEZ_API_KEY`` environment variables, set around every test.

Capabilities are declared as ChatBytez and the served model have them; every skip comes
from one of these declarations, never from a limit of the local server (langchain-tests
forbids overriding standard tests except to xfail them, so the skip texts are its own):

* "Test requires tool calling." / "Test requires tool choice." / "Test requires tool
  calling support." / "Test requires structured output." / "Test requires json mode
  support.": in the plain text, vision and audio classes only. ChatBytez's tool calling
  and structured output are prompt-based (the Bytez chat route has no ``tools`` field),
  so they need a model that follows tool prompts: the local server's tool model, which
  ``TestChatBytezToolsIntegration`` runs every one of these tests against;
* "Not implemented." (usage metadata): Bytez reports no token counts, only inference
  time and cost headers;
* "Model does not support PDF inputs." / "... image tool message." / "... PDF tool
  message." / "... Anthropic inputs.": Bytez content blocks are text, image, audio and
  video only; files cannot be sent, and a tool result is rendered as user text;
* "Model does not support image message." / "... audio inputs.": true of the text
  models (the vision and audio classes run those tests);
* "VCR not set up.": the VCR benchmark replays cassettes of the real API; none are
  recorded (that needs a real key).

"""

from __future__ import annotations

import io
import struct
import wave
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.embeddings import BytezEmbeddings
from langchain_bytez.pytest_plugin import TEST_API_KEY
from langchain_bytez.server import LocalBytezServer

TOOL_MODEL = "Qwen/Qwen2.5-7B-Instruct"


@pytest.fixture(scope="module")
def standard_server() -> Iterator[LocalBytezServer]:
    # No cold-start delay: the standard tests check behaviour, not load handling
    # (tests/integration_tests/test_manager_integration.py covers loading).
    with LocalBytezServer(api_keys={TEST_API_KEY}, load_delay=0.0) as server:
        yield server


@pytest.fixture(autouse=True)
def _bytez_env(standard_server: LocalBytezServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTEZ_BASE_URL", standard_server.url)
    monkeypatch.setenv("BYTEZ_API_KEY", TEST_API_KEY)


def _png() -> bytes:
    """A valid 8x8 RGB PNG, generated (the standard tests would download one)."""
    width = height = 8
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 32, y * 32, 128)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _wav() -> bytes:
    """A valid 0.1 s mono WAV of silence, generated."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


@pytest.fixture
def _offline_media(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve the media the standard tests download with ``httpx.get`` locally."""

    def fake_get(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
        content = _wav() if url.endswith(".wav") else _png()
        return httpx.Response(200, content=content, request=httpx.Request("GET", url))

    monkeypatch.setattr("langchain_tests.integration_tests.chat_models.httpx.get", fake_get)
    # Only read by the audio download helper (to identify it to wikimedia.org); nothing
    # is downloaded here, but unset it warns.
    monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "langchain-bytez-tests (offline)")


class TestChatBytezIntegration(ChatModelIntegrationTests):
    """A text chat model (``chat`` task); tool calling is tested on the tool model below."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatBytez

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "Qwen/Qwen2.5-0.5B-Instruct"}

    @property
    def model_override_value(self) -> str:
        return "meta-llama/Llama-3.2-1B-Instruct"

    @property
    def has_tool_calling(self) -> bool:
        # Prompt-based: this small model's fake does not follow tool prompts (the tool
        # model class below runs the tool tests).
        return False

    @property
    def has_structured_output(self) -> bool:
        # Prompt-based too (tool call or JSON answer): see the tool model class below.
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        # Bytez reports no token counts (only inference time and cost headers).
        return False


@pytest.mark.usefixtures("_offline_media")
class TestChatBytezVisionIntegration(TestChatBytezIntegration):
    """An ``image-text-to-text`` model: image input by base64 and by URL."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "Qwen/Qwen2-VL-2B-Instruct"}

    @property
    def model_override_value(self) -> str:
        return "Qwen/Qwen2.5-0.5B-Instruct"

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        # Bytez takes {"type": "image", "url": ...} and fetches the image itself.
        return True


@pytest.mark.usefixtures("_offline_media")
class TestChatBytezAudioIntegration(TestChatBytezIntegration):
    """An ``audio-text-to-text`` model: audio input as base64 (LangChain and OpenAI forms)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "Qwen/Qwen2-Audio-7B-Instruct"}

    @property
    def model_override_value(self) -> str:
        return "Qwen/Qwen2.5-0.5B-Instruct"

    @property
    def supports_audio_inputs(self) -> bool:
        return True


class TestBytezEmbeddingsIntegration(EmbeddingsIntegrationTests):
    """A flat-vector embedding model."""

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return BytezEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "sentence-transformers/all-MiniLM-L6-v2", "concurrency": 4}


class TestBytezEmbeddingsPerTokenIntegration(TestBytezEmbeddingsIntegration):
    """A per-token feature-extraction model (output mean-pooled)."""

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "google-bert/bert-base-uncased", "concurrency": 4}


class TestChatBytezToolsIntegration(TestChatBytezIntegration):
    """An instruct model trained for tool use: the prompt-based tool protocol end to end.

    The server's tool model reads the tool schemas from the system text and calls a tool
    (in its own Hermes ``<tool_call>`` form), answers with a tool result once one is in
    the conversation, and answers JSON when the prompt carries a JSON schema.
    """

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": TOOL_MODEL}

    @property
    def model_override_value(self) -> str:
        return "Qwen/Qwen2.5-0.5B-Instruct"

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True
