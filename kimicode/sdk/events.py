"""The server's events as typed objects: one dataclass per stream-json ``type`` (DESIGN.md B.5, B.6, B.15).

Every event keeps the object it was made from in ``raw``; a type this version does not know becomes
``Unknown``, so a newer server never breaks an older client.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass
class Event:
    type: ClassVar[str] = ""
    id: int = 0  # the event's SSE id (its place in the session's stream); 0 in-process before it is numbered
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Init(Event):
    type: ClassVar[str] = "system"
    session_id: str = ""
    model: str = ""
    mode: str = ""
    cwd: str = ""
    tools: list[str] = field(default_factory=list)


@dataclass
class UserMessage(Event):
    """A message sent to the session (or steered into its running turn)."""

    type: ClassVar[str] = "user"
    content: str = ""
    agent: str = ""


@dataclass
class History(Event):
    """A resumed session's earlier messages (role and text), sent once when it opens."""

    type: ClassVar[str] = "history"
    messages: list[dict[str, str]] = field(default_factory=list)


@dataclass
class TextDelta(Event):
    type: ClassVar[str] = "text_delta"
    text: str = ""
    agent: str = ""


@dataclass
class ThinkingDelta(Event):
    type: ClassVar[str] = "thinking_delta"
    text: str = ""
    agent: str = ""


@dataclass
class Assistant(Event):
    """A step's whole reply, once it is complete."""

    type: ClassVar[str] = "assistant"
    text: str = ""
    thinking: str = ""
    agent: str = ""


@dataclass
class ToolCallStart(Event):
    type: ClassVar[str] = "tool_use"
    call_id: str = ""
    name: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    agent: str = ""


@dataclass
class ToolCallEnd(Event):
    type: ClassVar[str] = "tool_result"
    call_id: str = ""
    name: str = ""
    is_error: bool = False
    content: str = ""
    agent: str = ""


@dataclass
class ApprovalRequest(Event):
    """A call waiting for ``session.approve(call_id)`` (or ``deny``): nothing runs until it is answered."""

    type: ClassVar[str] = "approval_request"
    call_id: str = ""
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)
    summary: str = ""
    reason: str = ""
    diff: str = ""


@dataclass
class ApprovalResolved(Event):
    type: ClassVar[str] = "approval_resolved"
    call_id: str = ""
    decision: str = ""


@dataclass
class Image(Event):
    """A picture a tool returned (a screenshot), as a data URL."""

    type: ClassVar[str] = "image"
    call_id: str = ""
    label: str = ""
    data_url: str = ""


@dataclass
class Usage(Event):
    type: ClassVar[str] = "usage"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    total_cost: float = 0.0
    agent: str = ""


@dataclass
class TodoUpdate(Event):
    type: ClassVar[str] = "todo"
    items: list[dict[str, str]] = field(default_factory=list)
    agent: str = ""


@dataclass
class TaskUpdate(Event):
    type: ClassVar[str] = "task"
    task_id: str = ""
    command: str = ""
    state: str = ""
    exit_code: int | None = None
    last_line: str = ""


@dataclass
class SubAgentUpdate(Event):
    type: ClassVar[str] = "subagent"
    agent: str = ""
    role: str = ""
    state: str = ""
    steps: int = 0
    result: str = ""


@dataclass
class Refused(Event):
    type: ClassVar[str] = "refused"
    call_id: str = ""
    tool: str = ""
    summary: str = ""
    reason: str = ""


@dataclass
class Compacted(Event):
    type: ClassVar[str] = "compacted"
    tokens_before: int = 0
    tokens_after: int = 0


@dataclass
class Notice(Event):
    type: ClassVar[str] = "notice"
    message: str = ""


@dataclass
class Error(Event):
    type: ClassVar[str] = "error"
    message: str = ""
    retrying: bool = False
    agent: str = ""


@dataclass
class Gap(Event):
    """Events ``start``..``end`` were dropped from the server's buffer before this client read them."""

    type: ClassVar[str] = "gap"
    start: int = 0
    end: int = 0


@dataclass
class Done(Event):
    """The turn's result (the headless ``result`` object): always the last event of a turn."""

    type: ClassVar[str] = "result"
    subtype: str = ""
    is_error: bool = False
    result: str = ""
    session_id: str = ""
    num_steps: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0


@dataclass
class Unknown(Event):
    type: ClassVar[str] = "unknown"


KINDS: dict[str, type[Event]] = {
    kind.type: kind
    for kind in (Init, History, UserMessage, TextDelta, ThinkingDelta, Assistant, ToolCallStart, ToolCallEnd, ApprovalRequest,
                 ApprovalResolved, Image, Usage, TodoUpdate, TaskUpdate, SubAgentUpdate, Refused, Compacted, Notice,
                 Error, Gap, Done)
}
RENAMED = {"id": "call_id", "from": "start", "to": "end"}  # stream-json names that clash with Python's or Event's


def event_from(data: dict[str, Any], event_id: int = 0) -> Event:
    kind = KINDS.get(str(data.get("type")), Unknown)
    known = {f.name for f in fields(kind)} - {"id", "raw"}
    values = {RENAMED.get(k, k): v for k, v in data.items()}
    return kind(id=event_id, raw=data, **{k: v for k, v in values.items() if k in known})
