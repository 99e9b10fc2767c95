"""The agent's events during a turn as ACP ``session/update`` notifications: text, thinking, tool calls
(started, with a terminal, ended with their diffs or output), the todo list as the editor's plan.

Invariants:
- A tool call the editor was told about always ends: with its result, or (``end_open_calls``) failed
  with the reason the turn ended before it did. Each failed one is handed to ``failed`` (outcomes.py).
- A question about a call (an approval, a plan review) is asked only once the editor shows that call:
  ``shown_asked`` and ``on_screen`` wait for the events that say so.
- A call is announced ``pending``; it is ``in_progress`` once the core says its tool starts
  (``ToolCallRunning``, asked or not, sub-agents' calls too), or as soon as the user allowed it.
- Sub-agents' tool calls are shown, titled with the agent's name; their text and thinking are not.
- Calls are keyed by ``editor.call_key`` (the agent and its call id), the same key the editor's file and
  terminal bridges record under.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from acp import helpers as h
from acp.schema import PlanEntryStatus, ToolCallStatus

from kimicode.agent import events as ev
from kimicode.frontends.acp.editor import EditorFiles, EditorTerminals, call_key
from kimicode.frontends.acp.toolcalls import diff_contents, result_contents, tool_kind, tool_locations, tool_title
from kimicode.tools.base import Tool

Send = Callable[[Any], Awaitable[None]]
PLAN_STATUSES: dict[str, PlanEntryStatus] = {
    "pending": "pending",
    "in_progress": "in_progress",
    "done": "completed",
    "completed": "completed",
}


def plan_entries(items: list[dict[str, str]]) -> list[Any]:
    """A todo list as the editor's plan: pending, in progress, completed."""
    return [
        h.plan_entry(str(item.get("content", "")), status=PLAN_STATUSES.get(str(item.get("status")), "pending"))
        for item in items
    ]


class TurnUpdates:
    def __init__(
        self,
        send: Send,
        files: EditorFiles,
        terminals: EditorTerminals | None,
        workspace: Path,
        tools: Callable[[], dict[str, Tool]],
        failed: Callable[[str], None] = lambda key: None,
    ) -> None:
        self.send = send
        self.files = files
        self.terminals = terminals
        self.workspace = workspace
        self.tools = tools  # the agent's tools now (a mode switch changes them)
        self.failed = failed  # told each call that ends failed (kept for session/load's replay)
        self._asked: dict[str, asyncio.Event] = {}  # approvals wait until their call is on screen
        self._shown: dict[str, asyncio.Event] = {}  # calls the editor was told about, until they end
        self._open_calls: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (tool, args) until it ends
        self._running: set[str] = set()  # calls the editor was told are in progress

    async def shown_asked(self, key: str) -> None:
        """Until the approval question for call ``key`` may be asked (its call is on the editor's screen)."""
        await self._asked.setdefault(key, asyncio.Event()).wait()
        self._asked.pop(key, None)

    async def on_screen(self, key: str) -> None:
        """Until the editor was told about call ``key``."""
        await self._shown.setdefault(key, asyncio.Event()).wait()

    async def forward(self, event: ev.Event) -> None:
        if isinstance(event, ev.ToolCallRunning):
            key = call_key(event.agent, event.call_id)
            if key in self._open_calls and key not in self._running:  # an allowed question said so already
                self._running.add(key)
                await self.send(h.update_tool_call(key, status="in_progress"))
        elif isinstance(event, ev.TextDelta):
            if not event.agent:
                await self.send(h.update_agent_message_text(event.text))
        elif isinstance(event, ev.ThinkingDelta):
            if not event.agent:
                await self.send(h.update_agent_thought_text(event.text))
        elif isinstance(event, ev.ToolCallStart):
            await self._call_started(event)
        elif isinstance(event, ev.ApprovalRequest):
            self._asked.setdefault(call_key(event.agent, event.call_id), asyncio.Event()).set()
        elif isinstance(event, ev.ToolCallEnd):
            await self._call_ended(event)
        elif isinstance(event, ev.ToolProgress):
            key = call_key(event.agent, event.call_id)
            if key in self._open_calls:  # the call's content is, for now, how far it got
                text = h.text_block(f"progress: {event.describe()}")
                await self.send(h.update_tool_call(key, content=[h.tool_content(text)]))
        elif isinstance(event, ev.TodoUpdate):
            if not event.agent:
                await self.send(h.update_plan(plan_entries(event.items)))
        elif isinstance(event, ev.Error) and event.retrying and not event.agent:
            await self.send(h.update_agent_thought_text(f"\n({event.message})\n"))

    async def _call_started(self, event: ev.ToolCallStart) -> None:
        key = call_key(event.agent, event.call_id)
        self._open_calls[key] = (event.name, event.args)
        title = tool_title(event.name, event.args, self.workspace, self.tools().get(event.name))
        if event.agent:
            title = f"[{event.agent}] {title}"
        await self.send(
            h.start_tool_call(
                key,
                title,
                kind=tool_kind(event.name, event.args),
                status="pending",
                locations=tool_locations(event.name, event.args, self.workspace),
                raw_input=event.args,
            )
        )
        self._shown.setdefault(key, asyncio.Event()).set()

    async def _call_ended(self, event: ev.ToolCallEnd) -> None:
        key = call_key(event.agent, event.call_id)
        self._shown.pop(key, None)
        name, args = self._open_calls.pop(key, (event.name, {}))
        status: ToolCallStatus = "failed" if event.result.is_error else "completed"
        if status == "failed":
            self.failed(key)
        writes = self.files.written.pop(key, [])
        terminal = self.terminals.used.pop(key, None) if self.terminals is not None else None
        if writes:
            diffs, places = diff_contents(writes)
            await self.send(h.update_tool_call(key, status=status, content=diffs, locations=places))
        elif terminal is not None:
            output = {"output": event.result.text}
            await self.send(h.update_tool_call(key, status=status, content=[h.tool_terminal_ref(terminal)], raw_output=output))
        else:
            contents = result_contents(name, tool_kind(name, args), event.result)
            await self.send(h.update_tool_call(key, status=status, content=contents))

    async def end_open_calls(self, why: str) -> None:
        """Every call the editor still shows as running ends, failed, with ``why``."""
        for key in list(self._open_calls):
            self._open_calls.pop(key)
            self.files.written.pop(key, None)
            self.failed(key)
            await self.send(h.update_tool_call(key, status="failed", content=[h.tool_content(h.text_block(why))]))
