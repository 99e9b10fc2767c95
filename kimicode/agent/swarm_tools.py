"""Sub-agents' tools, each run holding one of the swarm's tool slots.

Every spawned sub-agent runs at once and the endpoint's limiter bounds how many talk to the model; what it
does not bound is the tools. Fifty sub-agents each starting a compile or a test run on a two-core machine
would all crawl, so a tool run waits for one of ``swarm_concurrency`` slots (what the swarm allowed before
the model's width was the limiter's). Only the run itself holds a slot: approval and the policy's decision
come before it, so a sub-agent waiting for the user holds none.

Commands are bounded once more: the session keeps at most ``MAX_LIVE`` long-lived sandboxes
(kimicode/security/sandbox_session.py), and a command beyond them starts a bubblewrap of its own (namespaces,
binds: a process start, tens of ms of CPU on the one loop's machine). So a sub-agent's sandboxed command first
takes one of ``MAX_LIVE`` sandbox slots shared by the swarm: twenty sub-agents running ``grep`` at once reuse
the same few sandboxes, one after another, instead of starting twenty. The sandbox slot is taken before the
tool slot, so commands waiting for a sandbox do not keep file edits from running.

Invariants: a bounded tool is the same tool to the policy, the schema and the summary (everything is
delegated); a slot is released however the run ends (result, error, cancellation).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from kimicode.tools.base import Tool, ToolContext, ToolResult

if TYPE_CHECKING:
    from kimicode.security.sandbox import Sandbox

_DELEGATED = ("name", "description", "params", "parameters", "read_only", "echoes_arguments", "plan_only")


class BoundedTool(Tool):
    """``tool`` whose runs each hold one of ``slots`` (and sandboxed commands one of ``sandboxes``)."""

    def __init__(self, tool: Tool, slots: asyncio.Semaphore, sandboxes: asyncio.Semaphore | None = None) -> None:
        self.inner = tool
        self.slots = slots
        self.sandboxes = sandboxes
        for attribute in _DELEGATED:  # instance values shadow the class defaults Tool declares
            if hasattr(tool, attribute):
                setattr(self, attribute, getattr(tool, attribute))

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for what this wrapper does not have itself: the tool's own helpers and state.
        if attribute in ("inner", "slots", "sandboxes"):
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if self.sandboxes is not None and in_session_sandbox(args, ctx):
            async with self.sandboxes, self.slots:
                return await self.inner.run(args, ctx)
        async with self.slots:
            return await self.inner.run(args, ctx)

    def schema(self) -> dict[str, Any]:
        return self.inner.schema()

    def offered(self, ctx: ToolContext, stance: str) -> bool:
        return self.inner.offered(ctx, stance)

    def summary(self, args: dict[str, Any]) -> str:
        return self.inner.summary(args)


def in_session_sandbox(args: dict[str, Any], ctx: ToolContext) -> bool:
    """Whether a bash call runs as a foreground command in the session's sandboxes (scheduling only: where it
    runs and whether it may is bash.py's and the policy's)."""
    if ctx.sandbox is None or ctx.commands is not None or args.get("background") is True:
        return False
    if isinstance(args.get("escalate"), str) and args["escalate"].strip():
        return False  # runs outside the sandbox
    from kimicode.security.sandbox_session import enabled

    return enabled(ctx.sandbox)


def sandbox_slots() -> asyncio.Semaphore:
    """One per long-lived sandbox the session keeps: a swarm's commands queue for those, not for new ones."""
    from kimicode.security.sandbox_session import MAX_LIVE

    return asyncio.Semaphore(MAX_LIVE)


def bound_tools(
    tools: dict[str, Tool], slots: asyncio.Semaphore, sandboxes: asyncio.Semaphore | None = None
) -> dict[str, Tool]:
    """The same tools by name, each run holding one of ``slots``; bash's sandboxed runs one of ``sandboxes``."""
    return {
        name: BoundedTool(tool, slots, sandboxes if name == "bash" else None) for name, tool in tools.items()
    }


def warm_sandboxes(
    ctx: ToolContext, tools: dict[str, Tool], agents: int, slots: asyncio.Semaphore
) -> asyncio.Task[None] | None:
    """Start the session's long-lived sandboxes while the sub-agents' first model turns run, so that their
    first commands find them ready instead of each starting one at the same moment; None when no sub-agent
    could run a sandboxed command. Each start holds one of ``slots`` (the commands' sandbox slots). The caller
    cancels the task when the sub-agents are done."""
    if ctx.sandbox is None or "bash" not in tools:
        return None
    from kimicode.security.sandbox_session import MAX_LIVE, prewarm

    async def warm(sandbox: Sandbox) -> None:
        try:
            await prewarm(sandbox, ctx.workspace, min(agents, MAX_LIVE), slots)
        except (OSError, ValueError):
            pass  # only a head start: each command still gets a sandbox as it always does

    return asyncio.ensure_future(warm(ctx.sandbox))
