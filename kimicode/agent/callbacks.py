"""What an agent is handed and what it hands its tools: the approval callback, the event sink, the tool gate.

Invariants:
- An agent asks for approvals only through its ``Approver``; ``refuse_all`` (the default) approves nothing.
- ``CURRENT_EMIT`` and ``CURRENT_STEP`` are set by a running agent in its own task, so a tool that runs agents
  of its own (spawn_agents) forwards their events and accounts their steps to the agent that called it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable

from kimicode.agent import events as ev
from kimicode.agent.policy import ApprovalDecision

Approver = Callable[[ev.ApprovalRequest], Awaitable[ApprovalDecision]]
Emit = Callable[[ev.Event], None]
# Asked before each tool call with the tool's name: None lets it run, a text refuses it (shared budgets).
ToolGate = Callable[[str], str | None]

CURRENT_EMIT: contextvars.ContextVar[Emit | None] = contextvars.ContextVar("kimicode_emit", default=None)
CURRENT_STEP: contextvars.ContextVar[int] = contextvars.ContextVar("kimicode_step", default=0)


async def refuse_all(request: ev.ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(False, "actions that need approval are not allowed in this run")
