"""The ``insert`` tool: add lines after a given line of a file."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from kimicode.tools.args import reports_errors
from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.editing import EditParams, editing
from kimicode.tools.fileio import count_lines
from kimicode.tools.filewrite import save_text
from kimicode.tools.params import Int, Str
from kimicode.tools.snippets import snippet


class InsertParams(EditParams):
    insert_line: Int = Field(description="Insert after this line; 0 inserts at the top.")
    new_str: Str = Field(description="The lines to insert.")


class InsertTool(Tool):
    name: ClassVar[str] = "insert"
    description: ClassVar[str] = (
        "Insert new_str as new lines after line insert_line of a file (0 = at the top, the last line's "
        "number = at the end). Returns the edited region with line numbers."
    )
    params: ClassVar[type[InsertParams]] = InsertParams

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given = InsertParams.parse(args)
        path = ctx.resolve(given.path)
        insert_line = given.insert_line
        new_str = given.new_str.replace("\r\n", "\n")
        if not new_str:
            raise ToolError("new_str is empty; nothing to insert")
        async with editing(ctx, path) as original:
            text = original.text
            total = count_lines(text)
            if not 0 <= insert_line <= total:
                raise ToolError(
                    f"insert_line {insert_line} is out of range: {path} has {total} lines; "
                    f"use 0 to insert at the top or {total} to insert at the end"
                )
            edited = insert_after_line(text, insert_line, new_str)
            at = insertion_offset(text, insert_line)
            await save_text(ctx, path, edited, original, (at, 0, len(edited) - len(text)))
        first = insert_line + 1
        last = insert_line + count_lines(new_str)
        return ToolResult(text=f"Inserted {last - first + 1} line(s) into {path}. The edited region:\n"
                          f"{snippet(edited, first, last, focus=at)}")


def insert_after_line(text: str, line: int, new_str: str) -> str:
    """Insert ``new_str`` as whole lines after line ``line`` (1-based; 0 = before the first line)."""
    block = new_str if new_str.endswith("\n") else new_str + "\n"
    if line == 0:
        return block + text
    offset = -1
    for _ in range(line):
        offset = text.find("\n", offset + 1)
        if offset == -1:
            # After the last line, which has no newline: end it first. Keep the file's lack of a
            # final newline only if the inserted text had none either.
            tail = block if new_str.endswith("\n") else new_str
            return text + "\n" + tail
    return text[: offset + 1] + block + text[offset + 1 :]


def insertion_offset(text: str, line: int) -> int:
    """Where ``insert_after_line`` puts the new text: after the line-th newline, or at the very end."""
    offset = 0
    for _ in range(line):
        found = text.find("\n", offset)
        if found == -1:
            return len(text)
        offset = found + 1
    return offset
