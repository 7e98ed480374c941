"""LangChain integration for Bytez: open models behind one HTTP API.

The LangChain classes (``BytezLLM``, ``ChatBytez``, ``BytezEmbeddings``), the typed
HTTP client, the model manager and the catalogue / instance loaders. The local
Bytez-compatible server lives in ``langchain_bytez.server`` and is not imported here.
"""

from langchain_bytez._version import __version__
from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.client import (
    AsyncBytezClient,
    AsyncTextStream,
    BytezClient,
    TextStream,
)
from langchain_bytez.embeddings import BytezEmbeddings
from langchain_bytez.errors import (
    BytezAPIError,
    BytezAuthenticationError,
    BytezConcurrencyTimeoutError,
    BytezConnectionError,
    BytezError,
    BytezInvalidRequestError,
    BytezModelLoadError,
    BytezNotFoundError,
    BytezPaymentRequiredError,
    BytezRateLimitError,
    BytezResponseTooLargeError,
    BytezStreamError,
    BytezStreamTimeoutError,
    BytezTimeoutError,
    InvalidHeaderError,
    InvalidModelIdError,
    MissingAPIKeyError,
)
from langchain_bytez.llms import BytezLLM
from langchain_bytez.loaders import (
    BytezCatalogLoader,
    BytezInstanceLoader,
    alist_instances,
    alist_models,
    alist_tasks,
    arequest_model,
    list_instances,
    list_models,
    list_tasks,
    request_model,
)
from langchain_bytez.manager import (
    AsyncModelHandle,
    LoadProgress,
    ModelHandle,
    ModelManager,
)
from langchain_bytez.types import (
    Capacity,
    ClusterState,
    ClusterStatus,
    ModelInfo,
    ResponseMeta,
    RunResult,
)

__all__ = [
    "AsyncBytezClient",
    "AsyncModelHandle",
    "AsyncTextStream",
    "BytezAPIError",
    "BytezAuthenticationError",
    "BytezCatalogLoader",
    "BytezClient",
    "BytezConcurrencyTimeoutError",
    "BytezConnectionError",
    "BytezEmbeddings",
    "BytezError",
    "BytezInstanceLoader",
    "BytezInvalidRequestError",
    "BytezLLM",
    "BytezModelLoadError",
    "BytezNotFoundError",
    "BytezPaymentRequiredError",
    "BytezRateLimitError",
    "BytezResponseTooLargeError",
    "BytezStreamError",
    "BytezStreamTimeoutError",
    "BytezTimeoutError",
    "Capacity",
    "ChatBytez",
    "ClusterState",
    "ClusterStatus",
    "InvalidHeaderError",
    "InvalidModelIdError",
    "LoadProgress",
    "MissingAPIKeyError",
    "ModelHandle",
    "ModelInfo",
    "ModelManager",
    "ResponseMeta",
    "RunResult",
    "TextStream",
    "__version__",
    "alist_instances",
    "alist_models",
    "alist_tasks",
    "arequest_model",
    "list_instances",
    "list_models",
    "list_tasks",
    "request_model",
]
