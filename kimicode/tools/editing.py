"""What ``strreplace`` and ``insert`` share: the file parameter, and opening that file for an edit."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import Field

from kimicode.tools.base import ToolContext, ToolError
from kimicode.tools.fileio import TextFile, load_text
from kimicode.tools.params import Str, ToolParams
from kimicode.tools.safeopen import lstat_target


class EditParams(ToolParams):
    path: Str = Field(description="File to edit, relative to the workspace or absolute.")


@contextlib.asynccontextmanager
async def editing(ctx: ToolContext, path: Path) -> AsyncIterator[TextFile]:
    """An existing file's text, its lock held until the edit is saved (``strreplace``, ``insert``).

    A directory is refused by name before it is read: "is a directory" says more than a failed open."""
    async with ctx.file_locks.lock(path):
        found = lstat_target(path)
        if found is not None and stat.S_ISDIR(found.st_mode):
            raise ToolError(f"{path} is a directory; give a file path")
        yield await load_text(ctx, path)
