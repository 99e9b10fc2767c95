"""Turning the problems a tool finds into results the model can read (its arguments: params.py)."""

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
