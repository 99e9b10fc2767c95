"""The ``task_stop`` tool: end a background task and everything it started."""

from __future__ import annotations

from typing import Any, ClassVar

from kimicode.tools.args import reports_errors, require_str
from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult


class TaskStopTool(Tool):
    name: ClassVar[str] = "task_stop"
    description: ClassVar[str] = "Stop a background task and what it started."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"task_id": {"type": "string"}},
        "required": ["task_id"],
    }
    # It only ends what an approved call started, so it never needs approval of its own.
    read_only: ClassVar[bool] = True

    def offered(self, ctx: ToolContext, stance: str) -> bool:
        return ctx.tasks is not None and bool(ctx.tasks.tasks)  # from the session's first background task on

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if ctx.tasks is None:
            raise ToolError("background tasks are not available in this run")
        task = await ctx.tasks.stop(require_str(args, "task_id"))
        output = task.unread()
        if output and not output.endswith("\n"):
            output += "\n"
        return ToolResult(output + task.status())

    def summary(self, args: dict[str, Any]) -> str:
        return f"task_stop {args.get('task_id', '')}"
