"""What ``BytezLLM``, ``ChatBytez`` and ``BytezEmbeddings`` share: fields, clients, model prep.

[`BytezModelMixin`][langchain_bytez.base.BytezModelMixin] is the single home of

* the connection and model-management fields every Bytez class takes (``model``,
  ``api_key``, ``base_url``, ``timeout``, ``max_retries``, ``concurrency``...);
* the refusal of unknown constructor arguments, with the nearest valid name suggested
  (a typo such as ``temprature=`` must fail loudly, not be dropped);
* the client factory: one pooled [`BytezClient`][langchain_bytez.client.BytezClient] (and
  one [`AsyncBytezClient`][langchain_bytez.client.AsyncBytezClient] per event loop) per
  configuration,
  shared by every instance with the same configuration and created on first use;
* the run preparation: auto-load through the shared
  [`ModelManager`][langchain_bytez.manager.ModelManager] (the account-wide in-flight
  limit is the clients' own, see ``max_concurrent_requests``);
* safe copying and pickling: clients are never copied (they are looked up again), and
  pickles never carry the API key;
* re-exported from [`langchain_bytez.run_helpers`][langchain_bytez.run_helpers], the
  helpers every class needs around a run:
  [`AsyncRetryReporter`][langchain_bytez.base.AsyncRetryReporter] (LangChain's async
  ``on_retry`` as the client's sync hook),
  [`gather_or_cancel`][langchain_bytez.base.gather_or_cancel] (concurrent batches that
  cancel the rest on the first failure) and ``store_signatures``.

Lifetime of the shared clients: each object holds the pooled clients it uses, and the
registry keeps them while any object does, plus a few recently used configurations
(see [`registry`][langchain_bytez.registry]); the rest are closed, and all at interpreter
exit. Async clients are kept per event loop and closed while their loop shuts down,
because an ``httpx.AsyncClient``'s connections belong to the loop that opened them.
Clients built on an injected ``http_client`` / ``http_async_client`` are never shared
and never close the injected client.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from langchain_bytez._version import __version__
from langchain_bytez.client import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    AsyncBytezClient,
    AsyncTransport,
    BytezClient,
)
from langchain_bytez.errors import (
    BytezError,
    BytezNotFoundError,
    InvalidHeaderError,
    MissingAPIKeyError,
)
from langchain_bytez.manager import (
    AsyncProgressOption,
    AutoLoadOptions,
    ModelManager,
    ProgressOption,
)
from langchain_bytez.progress import alangchain_progress_dispatcher, langchain_progress_dispatcher
from langchain_bytez.registry import CLIENTS
from langchain_bytez.run_helpers import AsyncRetryReporter, gather_or_cancel, store_signatures
from langchain_bytez.wire import headers as wire_headers
from langchain_bytez.wire.config import (
    plain_http_warned,
    resolve_async_transport,
    warn_if_plain_http,
)

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "PROVIDER_KEY_ENV",
    "AsyncRetryReporter",
    "BytezModelMixin",
    "gather_or_cancel",
    "store_signatures",
]

_C = TypeVar("_C", BytezClient, AsyncBytezClient)
_P = TypeVar("_P")

PROVIDER_KEY_ENV = "BYTEZ_PROVIDER_KEY"
"""Environment variable read for ``provider_key`` when it is not passed."""

# (base_url, key fingerprint, timeout, max_retries, max_retry_wait, headers,
#  provider-key fingerprint, max_concurrent_requests, max_response_bytes,
#  stream_idle_timeout, async transport)
_ClientKey = tuple[
    str,
    str,
    float | None,
    int,
    float,
    tuple[tuple[str, str], ...],
    str,
    int | None,
    int,
    float | None,
    str,
]
_Own = tuple[_ClientKey, _C]  # an instance's own client and the key it was made for

_MASK = "**********"  # what pydantic shows for a SecretStr


def _secret_from_placeholder(name: str, value: Any) -> Any:
    """The value of a header serialised as a secret placeholder, from its variable.

    LangChain revives only top-level secrets: a header's placeholder comes back from
    ``loads`` as the placeholder itself (``{"lc": 1, "type": "secret", "id": [VAR]}``).
    """
    if not (isinstance(value, dict) and value.get("type") == "secret" and value.get("id")):
        return value
    variable = str(value["id"][0])
    secret = os.environ.get(variable)
    if secret is None:
        msg = (
            f"default_headers[{name!r}] is a secret left out of the serialised object: "
            f"set the {variable} environment variable, or pass default_headers again."
        )
        raise InvalidHeaderError(msg, header=name)
    return secret


def _masked(headers: dict[str, str] | None) -> dict[str, str] | None:
    """``headers`` with credential-like values replaced by a mask."""
    if not headers:
        return headers
    return {k: _MASK if wire_headers.is_secret_header(k) else v for k, v in headers.items()}


def _fingerprint(secret: SecretStr | None) -> str:
    # Registry keys and reprs must identify a key without containing it.
    if secret is None:
        return ""
    return _digest(secret.get_secret_value())


@functools.lru_cache(maxsize=64)
def _digest(value: str) -> str:
    # Every call looks its client up by the key's fingerprint: hashing it once per key
    # saves ~3 us a call. The cache holds what the objects hold already.
    return hashlib.sha256(value.encode()).hexdigest()[:16]


# One pool for every LangChain class (see langchain_bytez.registry).
_REGISTRY = CLIENTS


@dataclass(eq=False)
class _RuntimeState:
    """Per-instance runtime state: never copied, never pickled, ignored by ``==``.

    Holds the clients wrapping an injected httpx client (per instance, never shared),
    each with the configuration key it was made for.
    """

    sync: _Own[BytezClient] | None = None
    async_: _Own[AsyncBytezClient] | None = None
    # The pooled clients last used: held so that the shared pool (which holds clients
    # weakly) keeps them while this object lives, and closes them once it is dropped.
    pooled: BytezClient | None = None
    apooled: AsyncBytezClient | None = None
    unpickled_without_key: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The last client key with what it was made of (see ``_client_key``).
    key_memo: tuple[tuple[Any, ...], _ClientKey] | None = field(default=None, repr=False)

    def __eq__(self, other: object) -> bool:
        # Pydantic compares private attributes in ``==``; caches must not make two
        # identically configured models unequal.
        return isinstance(other, _RuntimeState)

    __hash__ = None  # type: ignore[assignment]


def _current(own: _Own[_C] | None, key: _ClientKey, make: Callable[[], _C]) -> _Own[_C]:
    """An instance's own client for ``key``: the one it has, or a new one if a field changed.

    Fields are plain attributes, so a client made before a change is rebuilt.
    """
    if own is None or own[0] != key:
        return key, make()
    return own


class _ForgettingUnloaded:
    """Make the manager forget a model whose run says it is not (or no longer) loaded.

    A class rather than a generator context manager: it wraps every run, and entering
    and leaving it costs a fraction of a generator's ~2 us.
    """

    __slots__ = ("_manager", "_model_id")

    def __init__(self, manager: ModelManager, model_id: str) -> None:
        self._manager = manager
        self._model_id = model_id

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        # Never suppresses: the run's error propagates.
        if exc is not None and _means_not_loaded(exc):
            self._manager.forget(self._model_id)


def _means_not_loaded(error: BaseException) -> bool:
    """Whether a failed run says the model is not (or no longer) loaded."""
    if isinstance(error, BytezNotFoundError):
        return True
    if isinstance(error, BytezError) and error.status_code == 503:
        text = error.message.lower()
        return "load" in text or "not running" in text or "instance" in text
    return False


class BytezModelMixin(BaseModel):
    """Fields and machinery shared by every Bytez LangChain class.

    Subclasses combine it with a LangChain base class, mixin first
    (``class BytezLLM(BytezModelMixin, LLM)``), and then get the shared fields, the
    unknown-argument check, the client factory (``_sync_client``,
    ``_async_client``), the manager (``_manager``) and the run preparation
    (``_model_session``, ``_amodel_session``).
    """

    model_config = ConfigDict(
        populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=()
    )
    """Pydantic settings: fields accepted by name or alias, arbitrary types allowed.

    ``model`` is also accepted as ``model_id``, injected ``httpx`` clients are allowed,
    and ``model_*`` field names are permitted. The LangChain classes inherit them (their
    LangChain bases, later in the MRO, set none of these otherwise)."""

    model: str = Field(alias="model_id")
    """The Bytez model id, ``org/name`` as on Hugging Face (e.g. ``openai-community/gpt2``).

    Also accepted as ``model_id``."""

    api_key: SecretStr | None = Field(default_factory=secret_from_env(API_KEY_ENV, default=None))
    """Bytez API key; read from ``BYTEZ_API_KEY`` when not passed.

    Checked at the first request (not at construction, so objects can be built and
    serialised without one): a key still missing then is read from ``BYTEZ_API_KEY``
    (also after ``langchain_core.load.loads`` without ``secrets_from_env=True``, or
    unpickling), and if there is none ``MissingAPIKeyError`` is raised. The key
    never appears in ``repr``, serialised output, pickles, tracing or error messages."""

    base_url: str | None = Field(default_factory=from_env(BASE_URL_ENV, default=None))
    """API root; read from ``BYTEZ_BASE_URL``; ``None`` means ``https://api.bytez.com``.

    The form SDKs quote, with the route prefix (``https://api.bytez.com/models/v2``), is
    accepted too and means the same root."""

    timeout: float | None = Field(default=None, gt=0)
    """Each call's total deadline in seconds.

    Everything counts: waiting for a concurrency slot, connecting, the server's time,
    reading the answer and the waits between retries; a stream must end within it too.
    ``None`` (default) allows 10 minutes, sized for cold starts: Bytez holds a request
    open while a model loads, which can take minutes."""

    max_concurrent_requests: int | None = Field(default=None, ge=1)
    """Most model runs (open streams included) in flight to the Bytez account at once.

    Bytez limits concurrent requests per account, across all its models (free tier 1,
    paid 4 to 400), and answers 429 beyond it. One limiter per base URL and key is
    shared by every object, model, thread and event loop of the process. ``None``
    (default) learns the limit: it starts at 4, halves on each 429 and grows back by
    one as runs succeed while it is full. Set it to your account's limit to skip the
    learning, or to your share of it when several processes use one account (each
    process learns on its own from the 429s it gets, so they end up splitting the
    limit, with retries on the way). A call that finds no free slot before its
    ``timeout`` fails with ``BytezConcurrencyTimeoutError``."""

    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """Largest answer read, in bytes counted after decompression (default 64 MiB).

    A stream stops at the same total. Beyond it: ``BytezResponseTooLargeError``."""

    stream_idle_timeout: float | None = Field(default=120.0, gt=0)
    """Longest wait in seconds for a stream's next chunk (``None``: only ``timeout``).

    Beyond it the stream ends with ``BytezStreamTimeoutError`` (its ``delivered_text``
    holds what arrived)."""

    max_retries: int = Field(default=2, ge=0)
    """Retries on rate limits (429), gateway errors (5xx) and connection failures.

    A stream that already delivered text is never retried."""

    max_retry_wait: float = Field(default=60.0, gt=0)
    """Longest wait in seconds before one retry.

    Caps the wait a server asks for (``Retry-After``, ``ratelimit-reset``) and the
    exponential backoff alike."""

    default_headers: dict[str, str] | None = None
    """Extra HTTP headers sent with every request.

    Checked at construction (names must be HTTP tokens, values ASCII text without line
    breaks): a bad header raises ``InvalidHeaderError`` here, not at the first request.
    Values of credential-like headers (names containing ``auth``, ``key``, ``token``,
    ``secret``, ``cookie``, ``password``, ``session``...) are secrets: masked in ``repr``
    and ``model_dump``, serialised by ``dumpd``/``dumps`` as secret placeholders (like
    ``api_key``), removed from error messages, and dropped on a redirect to another
    host."""

    async_transport: AsyncTransport = "auto"
    """Transport of the pooled async client (an injected ``http_async_client`` wins).

    ``"aiohttp"``: ``httpx-aiohttp``'s transport (``pip install
    'langchain-bytez[aiohttp]'``), flat under hundreds of concurrent ``astream``/
    ``abatch`` calls; ``"httpx"``: httpx's own pool; ``"auto"``: aiohttp when installed
    and no proxy variable is set, httpx otherwise."""

    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """An ``httpx.Client`` to send sync requests with (proxies, custom TLS...).

    Not serialised; an instance with one gets its own Bytez client (not pooled), and
    the injected client is never closed by this package."""

    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """An ``httpx.AsyncClient`` to send async requests with; see ``http_client``."""

    auto_load: bool = True
    """Before a model's first run, make sure it has instances (best effort).

    Once per process, shared by concurrent calls. It can never break or alter a run:

    * a cluster that is on is used as it is, whatever its size and timeout; one that is
      loading is waited for; one that is off or failed is left alone;
    * a cluster is created (with ``concurrency`` and ``instance_timeout``) only when the
      model has none; an existing cluster is never resized, re-timed, restarted or
      deleted by a run (only explicit ``load()`` does that);
    * closed-source models (``openai/...``, ``anthropic/...``) get no cluster call;
    * each cluster call is sent once with a 10 s timeout; any failure but 401/402
      (404, 405, 5xx, timeout, odd answer) sends the run anyway, serverless, with one
      warning per model and base URL.

    ``False`` sends runs straight away: Bytez then starts the model with its defaults on
    the first run (serverless behaviour)."""

    concurrency: int = Field(default=1, ge=1)
    """Instances of a cluster auto-load creates (Bytez's ``load({concurrency})``).

    Auto-load uses it only when it *creates* a cluster; an existing cluster keeps its
    own capacity. To resize one, call ``client.model(id).load(concurrency=...)``. How
    many runs are in flight at once is ``max_concurrent_requests``' business."""

    instance_timeout: int = Field(default=300, ge=60, le=86_400)
    """Idle seconds before Bytez shuts a cluster that auto-load *creates* down.

    Sent in whole minutes, 1 to 1440. An existing cluster keeps its own timeout; change
    it with ``client.model(id).load(timeout=...)``."""

    load_progress: bool = False
    """Also print model-loading progress to stderr during auto-load.

    Progress always goes to callbacks as the custom event ``bytez_model_loading``."""

    provider_key: SecretStr | None = Field(
        default_factory=secret_from_env(PROVIDER_KEY_ENV, default=None)
    )
    """Key for closed-source providers (``openai/...``, ``anthropic/...``).

    Sent as the ``provider-key`` header; read from ``BYTEZ_PROVIDER_KEY`` when not
    passed."""

    _runtime: _RuntimeState = PrivateAttr(default_factory=_RuntimeState)

    # Names that are accepted even though they are not fields (none yet; subclasses may
    # extend it for deprecated spellings they translate in their own validators).
    _extra_init_names: ClassVar[frozenset[str]] = frozenset()

    # ------------------------------------------------------------------ validation

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_arguments(cls, data: Any) -> Any:
        """Refuse constructor arguments that are not fields, naming the nearest one."""
        if not isinstance(data, dict):
            return data
        known = set(cls._extra_init_names)
        for name, info in cls.model_fields.items():
            known.add(name)
            if isinstance(info.alias, str):
                known.add(info.alias)
        unknown = [key for key in data if key not in known]
        if not unknown:
            return data
        problems = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{key!r}{hint}")
        message = f"{cls.__name__} got unexpected argument(s): {', '.join(problems)}"
        if "params" in known:
            message += " (model kwargs that are not fields go in params={...})"
        raise ValueError(message)

    @field_validator("default_headers", mode="before")
    @classmethod
    def _check_default_headers(cls, value: Any) -> dict[str, str] | None:
        # The clear error at construction, not a network-looking one at the first call.
        if isinstance(value, dict):
            value = {name: _secret_from_placeholder(name, v) for name, v in value.items()}
        return None if value is None else wire_headers.check_default_headers(value)

    @field_validator("async_transport")
    @classmethod
    def _check_async_transport(cls, value: AsyncTransport) -> AsyncTransport:
        resolve_async_transport(value, DEFAULT_BASE_URL)  # ImportError now, not at a call
        return value

    @model_validator(mode="after")
    def _warn_plain_http(self) -> Self:
        warn_if_plain_http((self.base_url or DEFAULT_BASE_URL).strip())
        return self

    @model_validator(mode="after")
    def _set_bytez_version(self) -> Self:
        # LangChain classes record package versions in metadata for tracing; the
        # mixin also serves classes (embeddings) that have no such method.
        add_version = getattr(self, "_add_version", None)
        if add_version is not None:
            add_version("langchain-bytez", __version__)
        return self

    # ------------------------------------------------------------------ serialisation

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """The import path used by LangChain serialisation: the package class's module.

        A subclass defined elsewhere serialises under the package class it extends
        (``["langchain_bytez", "llms"]`` for a ``BytezLLM`` subclass).

        Returns:
            The module path of the first ``langchain_bytez`` class in the MRO, split.
        """
        home = next(k for k in cls.__mro__ if k.__module__.startswith("langchain_bytez."))
        return home.__module__.split(".")

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Constructor arguments that are secrets, and their environment variables.

        Credential-like ``default_headers`` values are secrets too: ``dumpd`` writes a
        placeholder named ``BYTEZ_HEADER_<NAME>`` (upper case, ``-`` as ``_``), and
        ``loads`` reads the value from that environment variable.
        """
        secrets = {"api_key": API_KEY_ENV, "provider_key": PROVIDER_KEY_ENV}
        for name in self.default_headers or {}:
            if wire_headers.is_secret_header(name):
                env = "BYTEZ_HEADER_" + "".join(c if c.isalnum() else "_" for c in name).upper()
                secrets[f"default_headers.{name}"] = env
        return secrets

    @field_serializer("default_headers")
    def _mask_secret_headers(self, headers: dict[str, str] | None) -> dict[str, str] | None:
        return _masked(headers)

    def __repr_args__(self) -> Any:
        """Fields for ``repr``, credential-like header values masked."""
        for name, value in super().__repr_args__():
            yield name, _masked(value) if name == "default_headers" else value

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Bytez classes serialise with ``dumpd``/``dumps`` (secrets as placeholders).

        Returns:
            ``True``.
        """
        return True

    def __copy__(self) -> Self:
        """Shallow copy sharing configuration; the copy looks its clients up again."""
        copied = super().__copy__()
        copied._reset_runtime_state()
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        """Deep copy; injected httpx clients are shared, never copied.

        Args:
            memo: The ``copy.deepcopy`` memo.

        Returns:
            The copy.
        """
        memo = {} if memo is None else memo
        # Sockets, locks and SSL contexts cannot be copied: the copy shares the
        # injected pools (like a shallow copy would) and builds its own wrappers.
        for shared in (self.http_client, self.http_async_client):
            if shared is not None:
                memo[id(shared)] = shared
        memo[id(self._runtime)] = _RuntimeState()
        copied = super().__deepcopy__(memo)
        copied._reset_runtime_state()
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle state without clients and without secrets.

        Raises:
            TypeError: If an httpx client was injected (it cannot be pickled).

        Returns:
            The state for ``pickle``.
        """
        if self.http_client is not None or self.http_async_client is not None:
            raise TypeError(
                f"{type(self).__name__} with an injected http_client/http_async_client "
                "cannot be pickled; pickle an instance without it and inject it again."
            )
        state = super().__getstate__()
        values = dict(state["__dict__"])
        # The pickle must not carry the keys: they are read again from the environment
        # when the object is unpickled (like langchain's loads(secrets_from_env=True)).
        values["api_key"] = None
        values["provider_key"] = None
        values.pop("_serialized", None)  # LangChain's cached dumpd; rebuilt on demand
        state["__dict__"] = values
        private = dict(state.get("__pydantic_private__") or {})
        private.pop("_runtime", None)
        state["__pydantic_private__"] = private
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Restore a pickle; secrets come back from the environment.

        Args:
            state: What ``__getstate__`` returned.
        """
        super().__setstate__(state)
        self._runtime = _RuntimeState()
        if self.api_key is None:
            self.api_key = secret_from_env(API_KEY_ENV, default=None)()
            self._runtime.unpickled_without_key = self.api_key is None
        if self.provider_key is None:
            self.provider_key = secret_from_env(PROVIDER_KEY_ENV, default=None)()

    def _reset_runtime_state(self) -> None:
        self._runtime = _RuntimeState()
        # BaseLLM caches its dumpd() for callbacks; a copy (maybe with updated fields)
        # must compute its own.
        self.__dict__.pop("_serialized", None)

    # ------------------------------------------------------------------ clients

    def _api_key_now(self) -> SecretStr | None:
        # A key left out at construction (or dropped by langchain's loads() without
        # secrets_from_env=True, or by pickling) is looked up when it is needed.
        if self.api_key is not None:
            return self.api_key
        return secret_from_env(API_KEY_ENV, default=None)()

    def _provider_key_now(self) -> SecretStr | None:
        if self.provider_key is not None:
            return self.provider_key
        return secret_from_env(PROVIDER_KEY_ENV, default=None)()

    def _client_key_inputs(self) -> tuple[Any, ...]:
        """What the client key is made of, as the fields (and environment) hold it now."""
        api_key, provider_key = self.api_key, self.provider_key
        return (
            self.base_url,
            # A key left out is read from the environment at each call.
            api_key if api_key is not None else os.environ.get(API_KEY_ENV),
            provider_key if provider_key is not None else os.environ.get(PROVIDER_KEY_ENV),
            self.timeout,
            self.max_retries,
            self.max_retry_wait,
            self.default_headers,
            self.max_concurrent_requests,
            self.max_response_bytes,
            self.stream_idle_timeout,
            self.async_transport,
        )

    def _client_key(self) -> _ClientKey:
        """The configuration key of this object's clients (kept while its inputs hold).

        Building the key (fingerprints, the environment's keys, sorted headers) costs
        ~10 us; comparing its inputs with the last ones costs well under one. Fields are
        plain attributes and ``default_headers`` a mutable dict, so the inputs are
        compared at every call (the headers against a copy) rather than invalidated on
        assignment.

        Raises:
            MissingAPIKeyError: If no API key was given or found in the environment.
        """
        inputs = self._client_key_inputs()
        state: _RuntimeState = self.__pydantic_private__["_runtime"]  # type: ignore[index]
        memo = state.key_memo
        if memo is not None and memo[0] == inputs:
            return memo[1]
        key = self._new_client_key()
        headers = inputs[6]
        kept = (*inputs[:6], None if headers is None else dict(headers), *inputs[7:])
        state.key_memo = (kept, key)
        return key

    def _new_client_key(self) -> _ClientKey:
        api_key = self._api_key_now()
        if api_key is None:
            hint = (
                " Pickles never carry the key: set it in this process too."
                if self._runtime.unpickled_without_key
                else ""
            )
            raise MissingAPIKeyError(
                f"No Bytez API key: pass api_key=... or set the {API_KEY_ENV} "
                f"environment variable.{hint}"
            )
        headers = tuple(sorted((self.default_headers or {}).items()))
        return (
            (self.base_url or DEFAULT_BASE_URL).rstrip("/"),
            _fingerprint(api_key),
            self.timeout,
            self.max_retries,
            self.max_retry_wait,
            headers,
            _fingerprint(self._provider_key_now()),
            self.max_concurrent_requests,
            self.max_response_bytes,
            self.stream_idle_timeout,
            self.async_transport,
        )

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": self._api_key_now(),
            "base_url": self.base_url or DEFAULT_BASE_URL,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_retry_wait": self.max_retry_wait,
            "default_headers": self.default_headers,
            "provider_key": self._provider_key_now(),
            "max_concurrent_requests": self.max_concurrent_requests,
            "max_response_bytes": self.max_response_bytes,
            "stream_idle_timeout": self.stream_idle_timeout,
        }

    def _sync_client(self) -> BytezClient:
        """The sync client for this configuration, created on first use.

        Raises:
            MissingAPIKeyError: If no API key was given or found in the environment.

        Returns:
            The pooled client, or this instance's own one if ``http_client`` was given.
        """
        key = self._client_key()
        if self.http_client is None:
            client = _REGISTRY.sync_client(key, lambda: self._new_client(BytezClient))
            self.__pydantic_private__["_runtime"].pooled = client  # type: ignore[index]
            return client
        own = self._runtime
        with own.lock:
            own.sync = _current(own.sync, key, self._own_client)
            return own.sync[1]

    def _async_client(self) -> AsyncBytezClient:
        """The async client for this configuration and the running loop.

        Raises:
            MissingAPIKeyError: If no API key was given or found in the environment.

        Returns:
            The pooled client, or this instance's own one if ``http_async_client`` was
            given.
        """
        key = self._client_key()
        transport = self.async_transport
        if self.http_async_client is None:
            aclient = _REGISTRY.async_client(
                key, lambda: self._new_client(AsyncBytezClient, async_transport=transport)
            )
            self.__pydantic_private__["_runtime"].apooled = aclient  # type: ignore[index]
            return aclient
        own = self._runtime
        with own.lock:
            own.async_ = _current(own.async_, key, self._own_async_client)
            return own.async_[1]

    def _own_client(self) -> BytezClient:
        return self._new_client(BytezClient, http_client=self.http_client)

    def _own_async_client(self) -> AsyncBytezClient:
        return self._new_client(AsyncBytezClient, http_client=self.http_async_client)

    def _new_client(self, cls: type[_C], **extra: Any) -> _C:
        with plain_http_warned():  # this object warned at construction
            return cls(**self._client_kwargs(), **extra)

    @staticmethod
    def _manager(client: BytezClient | AsyncBytezClient) -> ModelManager:
        """The model manager shared by every client with the same endpoint and key.

        Args:
            client: A client from ``_sync_client`` or ``_async_client``.

        Returns:
            The shared manager.
        """
        return ModelManager.for_client(client)

    # ------------------------------------------------------------------ run preparation

    def _auto_load(self, progress: _P) -> AutoLoadOptions[_P]:
        """The settings of the implicit auto-load before a run, with its ``progress``."""
        return {
            "concurrency": self.concurrency,
            "timeout": self.instance_timeout,
            "progress": progress,
        }

    def _model_session(
        self,
        client: BytezClient,
        model_id: str,
        run_manager: CallbackManagerForLLMRun | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        """Prepare one run: auto-load the model; forget it if the run says it is not loaded.

        Auto-load is implicit here: see ``auto_load`` and
        [`ensure_available`][langchain_bytez.manager.ModelManager.ensure_available] (it
        never changes an existing cluster and falls back to a serverless run on any
        failure but 401/402). The manager caches a running model, so after the first
        load this costs no request. A run that fails because the model is not loaded
        (any more) makes the manager forget it, so the next run loads it again. Call it
        in the ``with`` statement that wraps the run (the load happens in the call).

        Args:
            client: The sync client the run uses.
            model_id: The model being run.
            run_manager: The run's callback manager (load progress goes there).

        Returns:
            The context to run in; the client takes the account's concurrency slot for
            the run itself.
        """
        manager = self._manager(client)
        if self.auto_load:
            # Callbacks always hear progress (custom event "bytez_model_loading");
            # the console reporter (stderr) only with load_progress=True.
            progress: ProgressOption = self.load_progress
            if run_manager is not None:
                progress = langchain_progress_dispatcher(run_manager, self.load_progress)
            manager.ensure_available(client, model_id, **self._auto_load(progress))
        return _ForgettingUnloaded(manager, model_id)

    @contextlib.asynccontextmanager
    async def _amodel_session(
        self,
        client: AsyncBytezClient,
        model_id: str,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
    ) -> AsyncIterator[None]:
        """Async version of ``_model_session``."""
        manager = self._manager(client)
        if self.auto_load:
            progress: AsyncProgressOption = self.load_progress
            if run_manager is not None:
                progress = alangchain_progress_dispatcher(run_manager, self.load_progress)
            await manager.aensure_available(client, model_id, **self._auto_load(progress))
        with _ForgettingUnloaded(manager, model_id):
            yield  # the client takes the account's concurrency slot for the run
