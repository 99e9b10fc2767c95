"""Sub-agents' tools, each run holding one of the swarm's tool slots.

Every spawned sub-agent runs at once and the endpoint's limiter bounds how many talk to the model; what it
does not bound is the tools. Fifty sub-agents each starting a compile or a test run on a two-core machine
would all crawl, so a tool run waits for one of ``swarm_concurrency`` slots (what the swarm allowed before
the model's width was the limiter's). Only the run itself holds a slot: approval and the policy's decision
come before it, so a sub-agent waiting for the user holds none.

Invariants: a bounded tool is the same tool to the policy, the schema and the summary (everything is
delegated); a slot is released however the run ends (result, error, cancellation).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kimicode.tools.base import Tool, ToolContext, ToolResult

_DELEGATED = ("name", "description", "params", "parameters", "read_only", "echoes_arguments", "plan_only")


class BoundedTool(Tool):
    """``tool`` whose runs each hold one of ``slots``."""

    def __init__(self, tool: Tool, slots: asyncio.Semaphore) -> None:
        self.inner = tool
        self.slots = slots
        for attribute in _DELEGATED:  # instance values shadow the class defaults Tool declares
            if hasattr(tool, attribute):
                setattr(self, attribute, getattr(tool, attribute))

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for what this wrapper does not have itself: the tool's own helpers and state.
        if attribute in ("inner", "slots"):
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        async with self.slots:
            return await self.inner.run(args, ctx)

    def schema(self) -> dict[str, Any]:
        return self.inner.schema()

    def offered(self, ctx: ToolContext, stance: str) -> bool:
        return self.inner.offered(ctx, stance)

    def summary(self, args: dict[str, Any]) -> str:
        return self.inner.summary(args)


def bound_tools(tools: dict[str, Tool], slots: asyncio.Semaphore) -> dict[str, Tool]:
    """The same tools by name, each run holding one of ``slots``."""
    return {name: BoundedTool(tool, slots) for name, tool in tools.items()}
