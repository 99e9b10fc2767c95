"""The ``task_output`` tool: what a background task printed since the last look, and its state."""

from __future__ import annotations

from typing import Any, ClassVar

from kimicode.tools.args import reports_errors
from kimicode.tools.background import MAX_WAIT_S
from kimicode.tools.base import ToolContext, ToolError, ToolResult
from kimicode.tools.params import Int, Str, ToolParams
from kimicode.tools.task_tool import TaskTool


class TaskOutputParams(ToolParams):
    task_id: Str
    wait_seconds: Int = 0


class TaskOutputTool(TaskTool):
    name: ClassVar[str] = "task_output"
    description: ClassVar[str] = "New output and state of a background task; wait_seconds waits for it to end."
    params: ClassVar[type[TaskOutputParams]] = TaskOutputParams

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given = TaskOutputParams.parse(args)
        task = self.manager(ctx).get(given.task_id)
        wait = given.wait_seconds
        if wait < 0:
            raise ToolError(f"wait_seconds must be 0 or more, got {wait}")
        await task.wait(min(wait, MAX_WAIT_S))
        output = task.unread() or "(no new output)\n"
        if not output.endswith("\n"):
            output += "\n"
        return ToolResult(output + task.status())

    def summary(self, args: dict[str, Any]) -> str:
        wait = args.get("wait_seconds")
        return f"task_output {args.get('task_id', '')}" + (f" (wait {wait}s)" if wait else "")
