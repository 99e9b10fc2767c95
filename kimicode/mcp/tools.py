"""An MCP server's tools as kimicode tools: names the model APIs accept, calls routed to their server.

Invariants:
- A tool's name is ``mcp__<server>__<tool>`` in [A-Za-z0-9_-], at most MAX_TOOL_NAME characters; a name
  cut to fit ends in a digest of the whole, so two long names stay apart.
- A tool only carries what its server said about it (description, schema, read-only hint); every call
  goes through the caller (the manager), which turns each failure into a result naming the server.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from kimicode.mcp.server import RemoteTool
from kimicode.tools.base import CURRENT_TOOL_CALL, Tool, ToolContext, ToolResult

# Called with (progress, total, message) for each progress notification of a call.
OnProgress = Callable[[float, "float | None", "str | None"], Awaitable[None]]

__all__ = ["MAX_TOOL_NAME", "McpTool", "ToolCaller", "make_tool", "mcp_tool_name", "sanitize_name"]

MAX_TOOL_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class ToolCaller(Protocol):
    """What a tool needs of the manager: a way to call its remote tool."""

    async def call_tool(
        self, server: str, tool: str, args: dict[str, Any], on_progress: OnProgress | None = None
    ) -> ToolResult: ...


def sanitize_name(text: str) -> str:
    return _UNSAFE.sub("_", text) or "_"


def mcp_tool_name(server: str, tool: str) -> str:
    """``mcp__<server>__<tool>`` limited to the characters and length model APIs accept."""
    name = f"mcp__{sanitize_name(server)}__{sanitize_name(tool)}"
    if len(name) <= MAX_TOOL_NAME:
        return name
    import hashlib

    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_TOOL_NAME - 9]}_{digest}"


class McpTool(Tool):
    """A tool served by an MCP server; concrete subclasses are made per remote tool (see ``_make_tool``)."""

    server_name: str = ""
    remote_name: str = ""

    def __init__(self, manager: ToolCaller) -> None:
        self._manager = manager

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await self._manager.call_tool(self.server_name, self.remote_name, args, progress_events())

    def summary(self, args: dict[str, Any]) -> str:
        return f"{self.server_name}:{self.remote_name}"


def progress_events() -> OnProgress:
    """Progress of the call running in this task, as ``ToolProgress`` events of the agent running it."""
    from kimicode.agent import events as ev
    from kimicode.agent.callbacks import CURRENT_EMIT

    emit = CURRENT_EMIT.get()
    agent, call_id = CURRENT_TOOL_CALL.get()

    async def report(progress: float, total: float | None, message: str | None) -> None:
        if emit is not None and call_id:
            emit(ev.ToolProgress(call_id, progress, total, message or "", agent))

    return report


def make_tool(manager: ToolCaller, server: str, remote: RemoteTool) -> McpTool:
    name = mcp_tool_name(server, remote.name)
    cls = type(
        f"McpTool_{name}",
        (McpTool,),
        {
            "name": name,
            "description": remote.description or f"Tool '{remote.name}' of MCP server '{server}'.",
            "parameters": remote.input_schema or {"type": "object", "properties": {}},
            "read_only": remote.read_only,
            "server_name": server,
            "remote_name": remote.name,
        },
    )
    return cls(manager)
