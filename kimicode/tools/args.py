"""Checking the arguments a model sends, and turning problems into results the model can read."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult

_T = TypeVar("_T", bound=Tool)
RunFn = Callable[[_T, dict[str, Any], ToolContext], Coroutine[Any, Any, ToolResult]]


def reports_errors(run: RunFn[_T]) -> RunFn[_T]:
    """Wrap ``run`` so a ToolError becomes an error result instead of an exception."""

    @functools.wraps(run)
    async def wrapper(self: _T, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            return await run(self, args, ctx)
        except ToolError as e:
            return ToolResult(text=f"Error: {e}", is_error=True)

    return wrapper


def require_str(args: dict[str, Any], key: str, *, allow_empty: bool = True) -> str:
    value = args.get(key)
    if value is None:
        raise ToolError(f"missing required parameter '{key}'")
    if not isinstance(value, str):
        raise ToolError(f"parameter '{key}' must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise ToolError(f"parameter '{key}' is empty")
    return value


def optional_str(args: dict[str, Any], key: str, default: str = "") -> str:
    value = args.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ToolError(f"parameter '{key}' must be a string, got {type(value).__name__}")
    return value


def _as_int(value: Any, key: str) -> int:
    # bool is an int subclass; true/false for a number is a mistake worth naming.
    if isinstance(value, bool):
        raise ToolError(f"parameter '{key}' must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())  # some models quote numbers
    raise ToolError(f"parameter '{key}' must be an integer, got {value!r}")


def require_int(args: dict[str, Any], key: str) -> int:
    if args.get(key) is None:
        raise ToolError(f"missing required parameter '{key}'")
    return _as_int(args[key], key)


def optional_int(args: dict[str, Any], key: str, default: int) -> int:
    if args.get(key) is None:
        return default
    return _as_int(args[key], key)


def optional_bool(args: dict[str, Any], key: str, default: bool = False) -> bool:
    value = args.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ToolError(f"parameter '{key}' must be true or false, got {value!r}")


def optional_int_pair(args: dict[str, Any], key: str) -> tuple[int, int] | None:
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ToolError(f"parameter '{key}' must be a list of two integers [start, end], got {value!r}")
    return _as_int(value[0], key), _as_int(value[1], key)
