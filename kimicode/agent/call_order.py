"""Which of one reply's calls wait for earlier ones. Calls run concurrently (two commands can meet), but a
reply that writes a file and then edits or reads it means "in this order" — the str_replace_editor semantics
the file tools keep: a file tool's call waits for the earlier calls whose path is the same, below or above
its own. Paths are compared as written (normalised against the workspace, links not followed); commands are
never ordered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kimicode.tools.base import ToolContext, ToolError

FILE_TOOLS = frozenset({"createfile", "strreplace", "insert", "view"})


def touched_path(tool: str, args: dict[str, Any], ctx: ToolContext) -> Path | None:
    """The path a file tool's call works on (None: not a file tool, or no usable path)."""
    value = args.get("path")
    if tool not in FILE_TOOLS or not isinstance(value, str):
        return None
    try:
        return ctx.resolve(value)
    except ToolError:
        return None


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def earlier_overlapping(paths: list[Path | None]) -> list[list[int]]:
    """For each call, the indices of the earlier calls it waits for."""
    waits: list[list[int]] = []
    for i, path in enumerate(paths):
        waits.append([] if path is None else [j for j, other in enumerate(paths[:i]) if other and _overlap(path, other)])
    return waits
