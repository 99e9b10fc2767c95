"""What the hooks of one event answered, read on Claude Code's contract and merged into one outcome.

Per hook: exit 0 goes on (stdout is shown, or for UserPromptSubmit/SessionStart added as context; a JSON
object on stdout is a structured answer), exit 2 blocks (its stderr is the reason), any other exit is an
error line that blocks nothing. Merged: any block blocks, deny beats ask beats allow, every context and
message is kept in the hooks' order, the first ``updatedInput`` wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kimicode.extensions.hooks_run import HookRun

BLOCK_EXIT = 2
# Events whose plain stdout is context for the model rather than a line for the user.
CONTEXT_EVENTS = ("UserPromptSubmit", "SessionStart")
_PERMISSION_ORDER = {"": 0, "allow": 1, "ask": 2, "deny": 3}


@dataclass
class HookOutcome:
    blocked: bool = False
    reasons: list[str] = field(default_factory=list)  # why it was blocked (exit 2's stderr, "reason")
    permission: str = ""  # PreToolUse: "allow" | "ask" | "deny" | "" (no say)
    permission_reason: str = ""
    context: list[str] = field(default_factory=list)  # for the model
    updated_input: dict[str, Any] | None = None
    stop: bool = False  # "continue": false
    stop_reason: str = ""
    messages: list[str] = field(default_factory=list)  # for the user

    @property
    def reason(self) -> str:
        return "\n".join(r for r in self.reasons if r) or "blocked by a hook"

    def merge(self, other: HookOutcome) -> None:
        self.blocked = self.blocked or other.blocked
        self.reasons += other.reasons
        if _PERMISSION_ORDER[other.permission] > _PERMISSION_ORDER[self.permission]:
            self.permission, self.permission_reason = other.permission, other.permission_reason
        self.context += other.context
        if self.updated_input is None:
            self.updated_input = other.updated_input
        if other.stop and not self.stop:
            self.stop, self.stop_reason = True, other.stop_reason
        self.messages += other.messages


def _name(run: HookRun) -> str:
    command = run.spec.command.strip().splitlines()[0] if run.spec.command.strip() else ""
    return f"{run.spec.event} hook `{command[:80]}` ({run.spec.source})"


def read_run(run: HookRun) -> HookOutcome:
    """One hook's answer."""
    out = HookOutcome()
    if run.failed_to_start:
        out.messages.append(f"{_name(run)} could not start: {run.failed_to_start}")
        return out
    if run.timed_out:
        out.messages.append(f"{_name(run)} was stopped after its timeout of {run.spec.timeout:g}s")
        return out
    if run.exit_code == BLOCK_EXIT:
        out.blocked = True
        out.reasons.append(run.stderr.strip() or f"blocked by {_name(run)}")
        return out
    if run.exit_code != 0:
        detail = run.stderr.strip().splitlines()[0] if run.stderr.strip() else "no message"
        out.messages.append(f"{_name(run)} failed (exit {run.exit_code}): {detail}")
        return out
    answer = _json_object(run.stdout)
    if answer is None:
        text = run.stdout.strip()
        if text:
            (out.context if run.spec.event in CONTEXT_EVENTS else out.messages).append(text)
        return out
    _read_answer(answer, run.spec.event, out)
    return out


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _read_answer(answer: dict[str, Any], event: str, out: HookOutcome) -> None:
    specific = answer.get("hookSpecificOutput")
    specific = specific if isinstance(specific, dict) else {}
    if answer.get("continue") is False:
        out.stop, out.stop_reason = True, _text(answer.get("stopReason"))
    decision = answer.get("decision")
    reason = _text(answer.get("reason"))
    if decision in ("block", "deny"):  # "deny": Gemini CLI's spelling
        out.blocked = True
        out.reasons.append(reason)
    elif decision in ("approve", "allow") and event == "PreToolUse":  # the older spelling of permissionDecision
        out.permission, out.permission_reason = "allow", reason
    permission = specific.get("permissionDecision")
    if permission in ("allow", "ask", "deny"):
        out.permission, out.permission_reason = permission, _text(specific.get("permissionDecisionReason"))
    context = _text(specific.get("additionalContext")) or _text(answer.get("additionalContext"))
    if context:
        out.context.append(context)
    updated = specific.get("updatedInput", answer.get("updatedInput"))
    if isinstance(updated, dict):
        out.updated_input = updated
    message = _text(answer.get("systemMessage"))
    if message:
        out.messages.append(message)
