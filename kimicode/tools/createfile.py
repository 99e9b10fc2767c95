"""The ``createfile`` tool: write a new file (parents created), or replace one on purpose."""

from __future__ import annotations

import stat
from typing import Any, ClassVar

from pydantic import Field

from kimicode.tools.args import reports_errors
from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.fileio import BinaryFileError, TextFile, count_lines, load_text
from kimicode.tools.filewrite import save_text
from kimicode.tools.params import Flag, Str, ToolParams
from kimicode.tools.safeopen import lstat_target


class CreateFileParams(ToolParams):
    path: Str = Field(description="File to create, relative to the workspace or absolute.")
    content: Str = Field(description="The whole content of the file.")
    overwrite: Flag = Field(False, description="Replace the file if it exists (default false).")


class CreateFileTool(Tool):
    name: ClassVar[str] = "createfile"
    description: ClassVar[str] = (
        "Create a file with the given content; missing parent directories are created. An existing "
        "file is refused unless overwrite is true; to change part of a file use strreplace or insert."
    )
    params: ClassVar[type[CreateFileParams]] = CreateFileParams

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given = CreateFileParams.parse(args)
        path = ctx.resolve(given.path)
        content, overwrite = given.content, given.overwrite
        async with ctx.file_locks.lock(path):
            found = lstat_target(path)
            if found is not None and stat.S_ISDIR(found.st_mode):
                raise ToolError(f"{path} is a directory; give a file path")
            existed = found is not None
            like: TextFile | None = None
            if existed:
                if not overwrite:
                    raise ToolError(
                        f"{path} already exists; edit it with strreplace or insert, "
                        f"or call createfile with overwrite=true to replace it"
                    )
                try:
                    like = await load_text(ctx, path)  # keep its encoding, line endings and mode
                except BinaryFileError:
                    like = None
            # Missing parents are made by the write, below the directory the policy judged.
            await save_text(ctx, path, content, like, make_parents=True)
        verb = "Overwrote" if existed else "Created"
        return ToolResult(text=f"{verb} {path} ({count_lines(content)} lines).")
