"""What every tool shares: the Tool shape, its result, its context, and the output-size rules."""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kimicode.tools.result import MAX_OUTPUT_CHARS as MAX_OUTPUT_CHARS
from kimicode.tools.result import ToolError as ToolError
from kimicode.tools.result import ToolResult as ToolResult

if TYPE_CHECKING:
    from kimicode.security.sandbox import Sandbox
    from kimicode.tools.background import TaskManager
    from kimicode.tools.params import ToolParams
    from kimicode.tools.plan_review import PlanReviewer
    from kimicode.tools.todo_list import TodoList

# fetch: its max_chars (default 20 000, DESIGN.md B.9) goes up to this; what it downloads stops here.
FETCH_MAX_CHARS = 100_000
FETCH_MAX_DOWNLOAD_BYTES = 10 * 1024 * 1024
# One line of numbered output around an edit longer than this is cut: a minified file can be one 10 MB line.
MAX_LINE_CHARS = 2_000


# The tool call running in this task, as (agent id, call id): set by the agent loop for each call, so a
# front end's hook (an editor showing a command's terminal, an edit's diff) knows which call it serves.
CURRENT_TOOL_CALL: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "kimicode_tool_call", default=("", "")
)


class EditorFiles(Protocol):
    """Where the file tools read and write text when an editor holds the files (ACP's ``fs/*``): what the
    user sees in unsaved buffers is what the model reads, and edits land in the editor.

    The tools still check the path themselves (regular file, size, read-only) and the policy has decided
    before the call runs; this only replaces the bytes' source and destination."""

    async def read_text(self, path: Path) -> str | None:
        """The file's current text, or None to read it from disk."""
        ...

    async def write_text(self, path: Path, text: str, before: str | None) -> bool:
        """Write ``text`` (``before``: the text it replaces, None for a new file); False to write the disk."""
        ...


class EditorCommands(Protocol):
    """Where ``bash`` runs a command when an editor offers terminals (ACP's ``terminal/*``)."""

    async def run_command(self, argv: list[str], cwd: Path, env: dict[str, str], timeout: int) -> ToolResult | None:
        """Run ``argv`` (already wrapped in the sandbox) to its end; None to run it locally. Cancelling
        the call must kill the command."""
        ...


# Set by the agent loop for each call that names a path: judges again, on the real path of what a file tool
# actually opened, the decision made on the path as written (a link swapped in between must not carry the
# call somewhere else). Raises ToolError when the opened file is not what was decided on.
OPENED_CHECK: contextvars.ContextVar[Callable[[Path], None] | None] = contextvars.ContextVar(
    "kimicode_opened_check", default=None
)


def check_opened(real: Path) -> None:
    check = OPENED_CHECK.get()
    if check is not None:
        check(real)


class FileLocks:
    """One asyncio lock per resolved path, so concurrent edits (several calls, sub-agents) never interleave."""

    def __init__(self) -> None:
        self._locks: dict[Path, asyncio.Lock] = {}

    def lock(self, path: Path) -> asyncio.Lock:
        return self._locks.setdefault(path, asyncio.Lock())


@dataclass
class ToolContext:
    workspace: Path
    file_locks: FileLocks = field(default_factory=FileLocks)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for commands
    # Digests of images this conversation has already been shown (digest -> label), so an identical
    # capture is named instead of sent again. Each Agent (conversation) starts its own.
    shown_images: dict[str, str] = field(default_factory=dict)
    # Where the model's commands run contained (None or mode "off": they run as they are).
    sandbox: Sandbox | None = None
    # Set by a front end that runs inside an editor (ACP): file text and commands go through it.
    files: EditorFiles | None = None
    commands: EditorCommands | None = None
    # The session's background tasks (bash background, task_output, task_stop); None: not offered here.
    tasks: TaskManager | None = None
    # This conversation's todo list (each Agent starts its own).
    todo: TodoList | None = None
    # Asks the user about a proposed plan (plan mode); None: nobody to ask, the plan ends the run.
    review_plan: PlanReviewer | None = None

    def resolve(self, path: str) -> Path:
        """Relative paths resolve against the workspace; ``~`` is expanded."""
        if not path or not path.strip():
            raise ToolError("path is empty: give a file or directory path")
        refuse_impossible_path(path)
        try:
            p = Path(path.strip()).expanduser()
        except RuntimeError:  # "~name" for a user this machine does not know
            raise ToolError(f"{path!r} cannot be a path: no user's home is named by {path.split('/')[0]!r}") from None
        if not p.is_absolute():
            p = self.workspace / p
        return Path(_normalize(p))


def refuse_impossible_path(path: str) -> None:
    """Raise ToolError for text no file can be named by: a NUL byte, or characters the file system's
    encoding cannot hold (a lone surrogate). Said here once, before any os call would raise ValueError."""
    if "\0" in path:
        raise ToolError(f"{path!r} cannot be a path: it contains a NUL byte; give the path without it")
    try:
        os.fsencode(path)
    except UnicodeEncodeError as e:
        raise ToolError(
            f"{path!r} cannot be a path: {e.object[e.start:e.end]!r} is not a character a file name can hold"
        ) from None


def _normalize(p: Path) -> str:
    return os.path.normpath(str(p))


class Tool:
    """A tool the model can call. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]
    description: ClassVar[str]
    # The arguments as a typed model (kimicode.tools.params): a built-in tool sets ``params`` and its
    # ``parameters``, the JSON schema the model reads, is made from it. An MCP tool sets the server's schema.
    params: ClassVar[type[ToolParams]]
    parameters: ClassVar[dict[str, Any]]
    # Read-only tools never need approval.
    read_only: ClassVar[bool] = False
    # A provider's builtin (Moonshot's $web_search): the endpoint runs it, and the call's arguments go back
    # unchanged as its result instead of running anything here.
    echoes_arguments: ClassVar[bool] = False
    # Offered only while the approval stance is "plan" (the plan hand-over).
    plan_only: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "params" in cls.__dict__ and "parameters" not in cls.__dict__:
            from kimicode.tools.params import json_schema

            cls.parameters = json_schema(cls.params)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def offered(self, ctx: ToolContext, stance: str) -> bool:
        """Whether the model is shown this tool now: some appear only once they can be of use, which keeps
        every request until then smaller."""
        return not self.plan_only or stance == "plan"

    def summary(self, args: dict[str, Any]) -> str:
        """One short line naming what a call does (path or command), for UIs and approvals."""
        for key in ("command", "path", "target"):
            if isinstance(args.get(key), str):
                return f"{self.name} {args[key]}"
        return self.name


def truncate_middle(text: str, limit: int = MAX_OUTPUT_CHARS, hint: str = "") -> str:
    """Keep the head and the tail of a long text with a note of what was left out."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 5
    tail = limit - head
    omitted = len(text) - head - tail
    note = f"\n[... {omitted} characters elided{'; ' + hint if hint else ''} ...]\n"
    return text[:head] + note + text[-tail:]


def clip_line(line: str, limit: int = MAX_LINE_CHARS, around: int | None = None) -> str:
    """``line`` cut to about ``limit`` characters with a marker naming how many were left out.

    ``around``: an offset in the line to keep in view (where an edit happened); else the line's start is kept.
    """
    if len(line) <= limit:
        return line
    if around is None or around < limit // 2:
        return f"{line[:limit]} [... {len(line) - limit} characters cut ...]"
    start = min(around - limit // 2, len(line) - limit)
    end = start + limit
    after = f" [... {len(line) - end} characters cut ...]" if end < len(line) else ""
    return f"[... {start} characters cut ...] {line[start:end]}{after}"
