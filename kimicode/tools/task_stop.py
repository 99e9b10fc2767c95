"""The ``task_stop`` tool: end a background task and everything it started."""

from __future__ import annotations

from typing import Any, ClassVar

from kimicode.tools.args import reports_errors
from kimicode.tools.base import ToolContext, ToolResult
from kimicode.tools.params import Str, ToolParams
from kimicode.tools.task_tool import TaskTool


class TaskStopParams(ToolParams):
    task_id: Str


class TaskStopTool(TaskTool):
    name: ClassVar[str] = "task_stop"
    description: ClassVar[str] = "Stop a background task and what it started."
    params: ClassVar[type[TaskStopParams]] = TaskStopParams

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        task = await self.manager(ctx).stop(TaskStopParams.parse(args).task_id)
        output = task.unread()
        if output and not output.endswith("\n"):
            output += "\n"
        return ToolResult(output + task.status())

    def summary(self, args: dict[str, Any]) -> str:
        return f"task_stop {args.get('task_id', '')}"
