"""What ``task_output`` and ``task_stop`` share."""

from __future__ import annotations

from typing import ClassVar

from kimicode.tools.background import TaskManager
from kimicode.tools.base import Tool, ToolContext, ToolError


class TaskTool(Tool):
    """What task_output and task_stop share: offered from the session's first task on, and the manager."""

    # They read a task, or end what an approved call started: never a question of their own.
    read_only: ClassVar[bool] = True

    def offered(self, ctx: ToolContext, stance: str) -> bool:
        return ctx.tasks is not None and bool(ctx.tasks.tasks)

    @staticmethod
    def manager(ctx: ToolContext) -> TaskManager:
        if ctx.tasks is None:
            raise ToolError("background tasks are not available in this run")
        return ctx.tasks
