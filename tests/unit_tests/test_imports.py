"""The public surface: exactly these names, each importable from the package root."""

import langchain_bytez

EXPECTED_ALL = {
    "AsyncBytezClient",
    "AsyncModelHandle",
    "AsyncTextStream",
    "BytezAPIError",
    "BytezAuthenticationError",
    "BytezConcurrencyTimeoutError",
    "BytezCatalogLoader",
    "BytezClient",
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
}


def test_all_is_exact() -> None:
    assert set(langchain_bytez.__all__) == EXPECTED_ALL
    assert len(langchain_bytez.__all__) == len(EXPECTED_ALL)


def test_every_name_resolves() -> None:
    for name in langchain_bytez.__all__:
        assert getattr(langchain_bytez, name) is not None


def test_importing_the_package_does_not_import_the_server() -> None:
    import subprocess
    import sys

    code = "import sys, langchain_bytez; print('langchain_bytez.server' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_matches_metadata() -> None:
    from importlib.metadata import version

    assert langchain_bytez.__version__ == version("langchain-bytez")


def test_every_public_error_is_exported() -> None:
    from langchain_bytez import errors

    assert set(errors.__all__) <= set(langchain_bytez.__all__)
    assert langchain_bytez.BytezStreamTimeoutError is errors.BytezStreamTimeoutError
