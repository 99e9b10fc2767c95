"""The ``strreplace`` tool: replace text that occurs exactly once, or change nothing and say why."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field

from kimicode.tools.args import reports_errors
from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.editing import EditParams, editing
from kimicode.tools.filewrite import save_text
from kimicode.tools.params import Str
from kimicode.tools.snippets import snippet

# Naming every match of a very common string helps nobody.
MAX_LISTED_MATCHES = 20


class StrReplaceParams(EditParams):
    old_str: Str = Field(description="Exact text to replace; must occur once.")
    new_str: Str = Field(description="Replacement text (may be empty to delete).")


class StrReplaceTool(Tool):
    name: ClassVar[str] = "strreplace"
    description: ClassVar[str] = (
        "Replace old_str with new_str in a file. old_str must match exactly one place, character for "
        "character (indentation too); include enough surrounding lines to make it unique. Returns the "
        "edited region with line numbers."
    )
    params: ClassVar[type[StrReplaceParams]] = StrReplaceParams

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given = StrReplaceParams.parse(args)
        path = ctx.resolve(given.path)
        # The file's text is normalised to "\n", so the model's text must be too.
        old_str = given.old_str.replace("\r\n", "\n")
        new_str = given.new_str.replace("\r\n", "\n")
        if not old_str:
            raise ToolError("old_str is empty; give the exact text to replace (use insert to add new lines)")
        async with editing(ctx, path) as original:
            text = original.text
            starts = match_starts(text, old_str)
            if not starts:
                raise ToolError(_no_match_message(text, old_str, path))
            if len(starts) > 1:
                raise ToolError(_many_matches_message(text, starts, path))
            start = starts[0]
            if old_str == new_str:
                return ToolResult(text=f"No change: old_str and new_str are the same in {path}.")
            edited = text[:start] + new_str + text[start + len(old_str) :]
            await save_text(ctx, path, edited, original, (start, len(old_str), len(new_str)))
        first_line = line_of(text, start)
        last_line = first_line + new_str.count("\n")
        return ToolResult(
            text=f"Edited {path}. The edited region:\n{snippet(edited, first_line, last_line, focus=start)}"
        )


def match_starts(text: str, needle: str) -> list[int]:
    """Start offsets of every occurrence, overlapping ones included (so "aa" in "aaa" is ambiguous)."""
    starts: list[int] = []
    at = text.find(needle)
    while at != -1:
        starts.append(at)
        at = text.find(needle, at + 1)
    return starts


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _many_matches_message(text: str, starts: list[int], path: object) -> str:
    lines = [line_of(text, s) for s in starts[:MAX_LISTED_MATCHES]]
    listed = ", ".join(str(n) for n in lines)
    if len(starts) > MAX_LISTED_MATCHES:
        listed += f", … ({len(starts)} in all)"
    return (
        f"old_str occurs {len(starts)} times in {path} (at lines {listed}); nothing was changed. "
        f"Include more surrounding lines in old_str so it matches exactly one place"
    )


def _no_match_message(text: str, old_str: str, path: object) -> str:
    message = f"old_str was not found in {path}; nothing was changed."
    loose = _whitespace_insensitive_lines(text, old_str)
    if loose:
        where = ", ".join(str(n) for n in loose[:MAX_LISTED_MATCHES])
        message += (
            f" It does match at line(s) {where} if whitespace is ignored: view those lines and copy "
            f"the exact indentation, tabs and spacing"
        )
    else:
        message += " View the file and copy the exact current text (it may have changed since you saw it)"
    return message


def _whitespace_insensitive_lines(text: str, old_str: str) -> list[int]:
    words = old_str.split()
    if not words:
        return []
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    return [line_of(text, m.start()) for m in pattern.finditer(text)]
