"""The settings of an explicit load, shared by the manager and the model handles.

[`LoadOptions`][langchain_bytez.manager.LoadOptions] and
[`SizedLoadOptions`][langchain_bytez.manager.SizedLoadOptions] type the keyword-only
settings; [`load_spec`][langchain_bytez.lifecycle.options.load_spec] checks them into a
[`LoadSpec`][langchain_bytez.lifecycle.settings.LoadSpec].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypedDict, TypeVar

from langchain_bytez.lifecycle.progress import AsyncProgressOption, ProgressOption
from langchain_bytez.lifecycle.settings import DEFAULT_DEADLINE_SECONDS, LoadSpec
from langchain_bytez.types import Capacity, check_options

__all__ = ["LoadOptions", "SizedLoadOptions", "load_spec"]

_P = TypeVar("_P")


class LoadOptions(TypedDict, Generic[_P], total=False):
    """The keyword-only settings of an explicit load, besides its sizes.

    Attributes:
        capacity: Full capacity (``Capacity`` or ``{"min", "desired", "max"}``) for
            autoscaling; when given it overrides ``concurrency``.
        progress: ``True`` prints progress to stderr (the default, but for
            ``ensure_loaded``: silent); a callable receives
            [`LoadProgress`][langchain_bytez.manager.LoadProgress] events (the async
            methods also take an async callable); ``False``/``None`` is silent.
        deadline: Seconds to wait overall before giving up (default 15 min).
    """

    capacity: Capacity | Mapping[str, int] | None
    progress: _P
    deadline: float


class SizedLoadOptions(LoadOptions[_P], total=False):
    """[`LoadOptions`][langchain_bytez.manager.LoadOptions] and the sizes (``None`` by default).

    Attributes:
        concurrency: Instances to run (``min = desired = max``); ``None`` keeps an
            existing cluster's capacity (a new one gets 1).
        timeout: Idle seconds before shutdown (whole minutes, rounded up, 1-1440);
            ``None`` keeps an existing cluster's timeout (a new one gets 300 s).
    """

    concurrency: int | None
    timeout: float | None


# Short names for the signatures of the manager and the handles.
Load = SizedLoadOptions[ProgressOption]
AsyncLoad = SizedLoadOptions[AsyncProgressOption]


def load_spec(
    concurrency: int | None, timeout: float | None, options: LoadOptions[Any], function: str
) -> LoadSpec:
    """Check a load's settings into its spec.

    Args:
        concurrency: Instances to run, or ``None``.
        timeout: Idle seconds before shutdown, or ``None``.
        options: The keyword-only [`LoadOptions`][langchain_bytez.manager.LoadOptions].
        function: The caller's name, for the error messages.

    Returns:
        The checked spec.

    Raises:
        ValueError: On out-of-range or wrongly typed settings.
        TypeError: On an option ``LoadOptions`` does not name.
    """
    check_options(function, options, LoadOptions)
    deadline = options.get("deadline", DEFAULT_DEADLINE_SECONDS)
    return LoadSpec.build(concurrency, timeout, options.get("capacity"), deadline)
