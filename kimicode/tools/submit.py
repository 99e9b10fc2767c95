"""The ``submit`` tool: end the task with a summary and, in a git work tree, the change set."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from kimicode.tools.args import reports_errors
from kimicode.tools.base import Tool, ToolContext, ToolResult, truncate_middle
from kimicode.tools.params import Str, ToolParams

# The change set is for reading at a glance; a huge status is clipped.
MAX_CHANGESET_CHARS = 4000
GIT_TIMEOUT_S = 20


class SubmitParams(ToolParams):
    summary: Str | None = Field(None, description="What was done and how it was verified.")


class SubmitTool(Tool):
    name: ClassVar[str] = "submit"
    description: ClassVar[str] = (
        "Finish the task. Call it once the work is done and checked; summary says what you changed "
        "and how you verified it."
    )
    params: ClassVar[type[SubmitParams]] = SubmitParams
    read_only: ClassVar[bool] = True

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        text = (SubmitParams.parse(args).summary or "").strip() or "Task submitted."
        changes = await git_change_set(ctx.workspace)
        if changes is not None:
            text += "\n\n" + changes
        return ToolResult(text=text, submitted=True)


async def git_change_set(workspace: Path) -> str | None:
    """`git status --porcelain` and `git diff --stat HEAD`, or None outside a git work tree."""
    from kimicode.vcs.git import check_repository
    from kimicode.vcs.layout import GitRefused

    try:
        layout = check_repository(workspace)
    except GitRefused as exc:
        return f"Changes: not listed ({exc})."
    # Found by kimicode, git runs pinned to that work tree with the workspace inside it: no need to ask git.
    if layout is None:
        inside = await _git(workspace, "rev-parse", "--is-inside-work-tree")
        if inside is None or inside.strip() != "true":
            return None
    status = await _git(workspace, "status", "--porcelain")
    if status is None:
        return None
    if not status.strip():
        return "Changes: none (the git work tree is clean)."
    # Untracked files alone are nowhere in a diff against HEAD; a repository without commits has no HEAD to
    # diff against. Either way the status alone says enough.
    lines = status.rstrip("\n").split("\n")
    stat = None if all(line.startswith("?? ") for line in lines) else await _git(workspace, "diff", "--stat", "HEAD")
    parts = ["Changes (git status --porcelain):", status.rstrip()]
    if stat and stat.strip():
        parts += ["", "git diff --stat HEAD:", stat.rstrip()]
    return truncate_middle("\n".join(parts), MAX_CHANGESET_CHARS)


async def _git(workspace: Path, *args: str) -> str | None:
    """git's stdout, or None if git is missing, fails or takes longer than GIT_TIMEOUT_S."""
    from kimicode.vcs.git import git_output_async

    return await git_output_async(*args, cwd=workspace, timeout=GIT_TIMEOUT_S)  # hardened: no pager, no prompt
