"""The events the core emits; every front end (REPL, headless, ACP) consumes only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kimicode.tools.base import ToolResult


@dataclass
class TextDelta:
    text: str
    agent: str = ""  # "" for the main agent; a sub-agent's id otherwise


@dataclass
class ThinkingDelta:
    text: str
    agent: str = ""


@dataclass
class StepStart:
    step: int
    agent: str = ""


@dataclass
class ToolCallStart:
    call_id: str
    name: str
    args: dict[str, Any]
    summary: str  # one line: "bash pytest -q", "strreplace src/app.py"
    agent: str = ""


@dataclass
class ToolCallRunning:
    """The call passed every check (policy, approval, gate) and its tool starts now."""

    call_id: str
    name: str
    agent: str = ""


@dataclass
class ToolProgress:
    """A running call reported how far it got (an MCP server's progress notification)."""

    call_id: str
    progress: float
    total: float | None = None
    message: str = ""
    agent: str = ""

    def describe(self) -> str:
        """How far the call got, in one short line: "3/10 copying b.txt", "7 uploading"."""

        def number(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else f"{value:g}"

        done = f"{number(self.progress)}/{number(self.total)}" if self.total else number(self.progress)
        return f"{done} {self.message}".strip()


@dataclass
class ToolCallEnd:
    call_id: str
    name: str
    result: ToolResult
    agent: str = ""


@dataclass
class ApprovalRequest:
    call_id: str
    tool: str
    args: dict[str, Any]
    summary: str
    reason: str = ""  # why it asks, e.g. "writes outside the workspace"
    agent: str = ""
    # False: only "yes once" or "no" make sense (protected paths, leaving the sandbox, an ask rule).
    rememberable: bool = True
    # The allow rules a "yes for this session" / "always" answer stores, as the question shows them.
    remembers: str = ""


@dataclass
class Refused:
    """A call the policy refused without asking (a deny rule, a secret path, a headless run's stance)."""

    call_id: str
    tool: str
    summary: str
    reason: str
    agent: str = ""


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: float  # USD for this step
    total_cost: float  # USD so far in this run
    context_tokens: int  # tokens the last request carried (for "context used %")
    context_window: int
    agent: str = ""


@dataclass
class SubAgentUpdate:
    agent: str
    role: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    steps: int = 0
    last_tool: str = ""
    result: str = ""


@dataclass
class Compacted:
    tokens_before: int
    tokens_after: int
    summary: str = ""


@dataclass
class TodoUpdate:
    """The model rewrote its todo list (the whole list: each item has ``content`` and ``status``)."""

    items: list[dict[str, str]]
    agent: str = ""


@dataclass
class TaskUpdate:
    """A background task started, printed a line, began listening on a port, or ended."""

    task_id: str
    command: str
    state: Literal["running", "done", "failed", "stopped"]
    exit_code: int | None = None
    last_line: str = ""
    agent: str = ""
    ports: list[int] = field(default_factory=list)  # loopback ports reachable from this machine


@dataclass
class Steered:
    """A message the user sent into the running turn reached the model (before this step's request)."""

    text: str
    agent: str = ""


@dataclass
class Error:
    message: str
    retrying: bool = False  # True: a transient failure the client is retrying
    agent: str = ""


@dataclass
class RunResult:
    subtype: Literal["success", "error_max_steps", "error", "interrupted"]
    result: str
    submitted: bool
    num_steps: int
    usage: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. critical_steps, mode

    @property
    def is_error(self) -> bool:
        return self.subtype != "success"


@dataclass
class Done:
    result: RunResult


Event = (
    TextDelta
    | ThinkingDelta
    | StepStart
    | ToolCallStart
    | ToolCallRunning
    | ToolProgress
    | ToolCallEnd
    | ApprovalRequest
    | Refused
    | Usage
    | SubAgentUpdate
    | Compacted
    | TodoUpdate
    | TaskUpdate
    | Steered
    | Error
    | Done
)
