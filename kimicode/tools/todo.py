"""The ``todo`` tool: the model's task list for multi-step work, replaced whole on every call.

The list belongs to one conversation (each Agent has its own ``TodoList``); the loop notices a new version
after the call and tells the front ends (``TodoUpdate``), which show it, and the session log keeps it.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.params import ToolParams, checked_by
from kimicode.tools.todo_list import TodoList as TodoList

Status = Literal["pending", "in_progress", "done"]
STATUSES: tuple[str, ...] = get_args(Status)
MAX_ITEMS = 50
MAX_CONTENT_CHARS = 300


def parse_items(value: Any) -> list[dict[str, str]]:
    """The items of a call, checked; a malformed one is an error naming its index."""
    if not isinstance(value, list):
        raise ToolError("'items' must be a list of {content, status} objects (the whole list, [] to clear it)")
    if len(value) > MAX_ITEMS:
        raise ToolError(f"'items' has {len(value)} entries; keep the list to {MAX_ITEMS} or fewer")
    items: list[dict[str, str]] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ToolError(f"items[{index}] must be an object with 'content' and 'status'")
        content, status = entry.get("content"), entry.get("status")
        if not isinstance(content, str) or not content.strip():
            raise ToolError(f"items[{index}] has no 'content': say what the step is")
        if status not in STATUSES:
            raise ToolError(f"items[{index}].status must be one of {', '.join(STATUSES)}, got {status!r}")
        items.append({"content": " ".join(content.split())[:MAX_CONTENT_CHARS], "status": status})
    return items


def todo_summary(items: list[dict[str, str]]) -> str:
    """One line: how many are done and which one is in progress."""
    done = sum(item["status"] == "done" for item in items)
    current = next((item["content"] for item in items if item["status"] == "in_progress"), "")
    line = f"{done}/{len(items)} done"
    return f"{line}; in progress: {current}" if current else line


class TodoItem(ToolParams):
    content: str
    status: Status


class TodoParams(ToolParams):
    items: Annotated[list[TodoItem], checked_by(parse_items)]


class TodoTool(Tool):
    name: ClassVar[str] = "todo"
    description: ClassVar[str] = "Replace your task list (the whole list each call)."
    params: ClassVar[type[TodoParams]] = TodoParams
    # It changes nothing outside the conversation: never asked, allowed in plan mode.
    read_only: ClassVar[bool] = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            items = [item.model_dump() for item in TodoParams.parse(args).items]
        except ToolError as exc:
            return ToolResult(f"Error: {exc}", is_error=True)
        if ctx.todo is None:
            return ToolResult("Error: there is no todo list in this run", is_error=True)
        ctx.todo.replace(items)
        if not items:
            return ToolResult("Todo list cleared.")
        return ToolResult(f"Todo list saved: {todo_summary(items)}.")

    def summary(self, args: dict[str, Any]) -> str:
        items = args.get("items")
        return f"todo ({len(items)} item{'s' * (len(items) != 1)})" if isinstance(items, list) else "todo"
