"""The run's hooks: which match an event, the JSON each is handed, and their answers merged.

A hook configured for Claude Code sees Claude Code's tool names and argument names (``Bash``,
``tool_input.file_path``), one configured for Gemini CLI or Codex sees theirs, one configured in kimicode sees
kimicode's; matchers match any of the names, so ``Edit|Write`` matches ``strreplace``, ``insert`` and
``createfile``.

Invariants:
- The hooks of one event run in parallel; the event waits for all of them (each bounded by its timeout).
- Whether a call runs is not decided here: a PreToolUse answer becomes a Decision (``tool_verdict``) that
  the policy weighs with everything else (kimicode.security.policy).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kimicode.extensions.hooks_config import TOOL_EVENTS, HookConfig, HookSpec
from kimicode.extensions.hooks_outcome import HookOutcome, read_run
from kimicode.extensions.hooks_run import run_hook
from kimicode.security.decision import Action, Decision

HOOK_RULE = "hook"
# kimicode's tool → the names other agents' hooks know it by.
CLAUDE_NAMES: dict[str, tuple[str, ...]] = {
    "bash": ("Bash",),
    "createfile": ("Write",),
    "strreplace": ("Edit", "MultiEdit"),
    "insert": ("Edit", "MultiEdit"),
    "view": ("Read",),
    "fetch": ("WebFetch",),
}
GEMINI_NAMES: dict[str, tuple[str, ...]] = {
    "bash": ("run_shell_command",),
    "createfile": ("write_file",),
    "strreplace": ("replace",),
    "insert": ("replace",),
    "view": ("read_file",),
    "fetch": ("web_fetch",),
}
CODEX_NAMES: dict[str, tuple[str, ...]] = {
    "bash": ("Bash",),
    "createfile": ("apply_patch",),
    "strreplace": ("apply_patch",),
    "insert": ("apply_patch",),
}
# Claude Code's argument names for kimicode's (a hook's updatedInput is mapped back).
CLAUDE_ARGS = {"path": "file_path", "old_str": "old_string", "new_str": "new_string"}
_SIMPLE = re.compile(r"[A-Za-z0-9_|]*")

Tell = Callable[[str], None]


def tool_names(tool: str) -> set[str]:
    return {tool, *CLAUDE_NAMES.get(tool, ()), *GEMINI_NAMES.get(tool, ()), *CODEX_NAMES.get(tool, ())}


def matches(matcher: str, names: set[str]) -> bool:
    """Claude Code's matcher: empty or ``*`` is everything, a plain ``A|B`` is exact names, else a regex
    that must match a whole name (a broken one matches nothing)."""
    if matcher in ("", "*"):
        return True
    if _SIMPLE.fullmatch(matcher):
        return bool(names & set(matcher.split("|")))
    try:
        pattern = re.compile(matcher)
    except re.error:
        return False
    return any(pattern.fullmatch(name) for name in names)


def _dialect_name(dialect: str, tool: str) -> str:
    tables = {"claude": CLAUDE_NAMES, "gemini": GEMINI_NAMES, "codex": CODEX_NAMES}
    table = tables.get(dialect, {})
    return table.get(tool, (tool,))[0]


class Hooks:
    """The hooks of one run, fired by the agent loop, the tool calls and the session's start and end."""

    def __init__(self, config: HookConfig, workspace: Path, home: Path) -> None:
        self.specs = config.hooks
        self.problems = config.problems
        self.workspace = workspace.resolve()
        self.home = home
        self._events = {spec.event for spec in self.specs}
        self._started: set[str] = set()  # sessions whose SessionStart was fired
        self._opening: dict[str, asyncio.Future[list[str]]] = {}  # its context, for the session's first prompt

    def carry_over(self, previous: Hooks) -> None:
        """The same session goes on with these hooks (a mode switch rebuilt them): it has started already."""
        self._started |= previous._started
        self._opening.update(previous._opening)

    def __len__(self) -> int:
        return len(self.specs)

    def has(self, event: str) -> bool:
        return event in self._events

    def matching(self, event: str, subject: str = "") -> list[HookSpec]:
        if event not in self._events:
            return []
        names = tool_names(subject) if event in TOOL_EVENTS else {subject}
        return [s for s in self.specs if s.event == event and (not subject or matches(s.matcher, names))]

    def transcript_path(self, session_id: str) -> str:
        from kimicode.session.store import workspace_hash

        if not session_id:
            return ""
        return str(self.home / "sessions" / workspace_hash(self.workspace) / f"{session_id}.jsonl")

    async def fire(
        self, event: str, session_id: str, fields: dict[str, Any] | None = None, subject: str = "",
        tool: str = "", tool_input: dict[str, Any] | None = None,
    ) -> HookOutcome:
        """Run the hooks of ``event`` that match ``subject`` (a tool's name for the tool events), all at
        once; their answers merged. No matching hook: an empty outcome, at no cost."""
        outcome = HookOutcome()
        specs = self.matching(event, tool or subject)
        if not specs:
            return outcome
        base = {
            "session_id": session_id,
            "transcript_path": self.transcript_path(session_id),
            "cwd": str(self.workspace),
            "hook_event_name": event,
            **(fields or {}),
        }

        def payload(spec: HookSpec) -> bytes:
            data = dict(base)
            if tool:
                data["tool_name"] = _dialect_name(spec.dialect, tool)
                data["tool_input"] = self._input_for(spec.dialect, tool_input or {})
            return json.dumps(data, ensure_ascii=False, default=str).encode()

        runs = await asyncio.gather(*(run_hook(spec, payload(spec), self.workspace) for spec in specs))
        for run in runs:
            outcome.merge(read_run(run))
        if outcome.updated_input is not None:
            outcome.updated_input = {_kimicode_arg(k): v for k, v in outcome.updated_input.items()}
        return outcome

    def _input_for(self, dialect: str, args: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments, with Claude Code's names beside kimicode's for a Claude Code hook (its
        ``file_path`` is absolute, as Claude Code gives it)."""
        if dialect != "claude":
            return dict(args)
        shown = dict(args)
        for ours, theirs in CLAUDE_ARGS.items():
            if ours in args:
                value = args[ours]
                if ours == "path" and isinstance(value, str):
                    value = str(self.workspace / Path(value).expanduser())
                shown[theirs] = value
        return shown

    def open_session(self, session_id: str, source: str, tell: Tell) -> None:
        """SessionStart as a session opens (``source``: startup, resume or clear), once per session, run in
        the background (the configuration's problems told first); its context waits for the first prompt."""
        if session_id in self._started:
            return
        self._started.add(session_id)
        self._opening[session_id] = asyncio.ensure_future(self._session_start(session_id, source, tell))

    async def _session_start(self, session_id: str, source: str, tell: Tell) -> list[str]:
        for problem in self.problems:
            tell(f"hooks: {problem}")
        outcome = await self.fire("SessionStart", session_id, {"source": source}, subject=source)
        _tell_all(outcome, tell)
        return outcome.context

    async def session_start(self, session_id: str, resumed: bool, tell: Tell) -> list[str]:
        """The context SessionStart adds to the session's first prompt; fired now if no front end opened it."""
        self.open_session(session_id, "resume" if resumed else "startup", tell)
        opening = self._opening.pop(session_id, None)
        return await opening if opening is not None else []

    async def prompt(self, session_id: str, prompt: str, tell: Tell) -> tuple[str, str]:
        """UserPromptSubmit: (context to add, "") or ("", why the prompt was dropped)."""
        outcome = await self.fire("UserPromptSubmit", session_id, {"prompt": prompt})
        _tell_all(outcome, tell)
        if outcome.blocked or outcome.stop:
            return "", outcome.reason if outcome.blocked else (outcome.stop_reason or "stopped by a hook")
        return "\n\n".join(outcome.context), ""

    async def before_prompt(self, session_id: str, task: str, resumed: bool, tell: Tell) -> tuple[str, str]:
        """SessionStart (once per session) and UserPromptSubmit: the task with the context they add, and
        why it was dropped ("" when it goes on)."""
        context = await self.session_start(session_id, resumed, tell)
        added, dropped = await self.prompt(session_id, task, tell)
        context += [added] if added else []
        return task + "".join(f"\n\n<hook-context>\n{c}\n</hook-context>" for c in context), dropped

    async def stop(self, session_id: str, sub_agent: bool, already: bool, last: str, tell: Tell) -> str:
        """Stop (SubagentStop for a sub-agent): what the model is told to go on, "" to stop."""
        event = "SubagentStop" if sub_agent else "Stop"
        fields = {"stop_hook_active": already, "last_assistant_message": last}
        outcome = await self.fire(event, session_id, fields)
        _tell_all(outcome, tell)
        if not outcome.blocked or outcome.stop:
            return ""
        return f"A Stop hook does not let you finish yet: {outcome.reason}\nDo what it asks, then finish."

    async def before_tool(
        self, session_id: str, tool: str, args: dict[str, Any], tell: Tell
    ) -> tuple[Decision | None, dict[str, Any] | None]:
        """PreToolUse: the hooks' say on the call as a Decision for the policy (None: no say), and the
        arguments a hook rewrote (None: unchanged)."""
        outcome = await self.fire("PreToolUse", session_id, tool=tool, tool_input=args)
        _tell_all(outcome, tell)
        return tool_verdict(outcome), outcome.updated_input

    async def after_tool(
        self, session_id: str, tool: str, args: dict[str, Any], text: str, failed: bool, tell: Tell
    ) -> tuple[str, str | None]:
        """PostToolUse: what the hooks add to the result the model reads ("" for nothing), and why the turn
        stops after this call (``continue: false``; None: it goes on)."""
        response = {"output": text, "success": not failed}
        outcome = await self.fire(
            "PostToolUse", session_id, {"tool_response": response}, tool=tool, tool_input=args
        )
        _tell_all(outcome, tell)
        said = [f"A PostToolUse hook reported: {outcome.reason}"] if outcome.blocked else []
        stop = f"stopped by a PostToolUse hook: {outcome.stop_reason or 'no reason given'}" if outcome.stop else None
        return "\n\n".join([*said, *outcome.context]), stop

    async def event(self, event: str, session_id: str, fields: dict[str, Any], tell: Tell, subject: str = "") -> None:
        """An event nothing waits on for an answer (Notification, PreCompact, SessionEnd)."""
        opening = self._opening.pop(session_id, None) if event == "SessionEnd" else None
        if opening is not None:  # a session that ends before its first prompt: started, then ended
            await asyncio.wait([opening])
        outcome = await self.fire(event, session_id, fields, subject=subject)
        _tell_all(outcome, tell)
        if outcome.blocked:
            tell(f"{event} hook: {outcome.reason}")


def tool_verdict(outcome: HookOutcome) -> Decision | None:
    """A PreToolUse outcome as the policy weighs it: exit 2, ``decision: block``, ``continue: false`` or
    ``permissionDecision: deny`` refuse; ``ask`` asks; ``allow`` allows as far as the policy lets it."""
    if outcome.blocked:
        return Decision(Action.DENY, f"a PreToolUse hook blocked it: {outcome.reason}", HOOK_RULE, False)
    if outcome.stop:
        return Decision(Action.DENY, f"a PreToolUse hook stopped: {outcome.stop_reason or 'no reason given'}",
                        HOOK_RULE, False)
    why = outcome.permission_reason
    if outcome.permission == "deny":
        return Decision(Action.DENY, f"a PreToolUse hook denied it: {why or 'no reason given'}", HOOK_RULE, False)
    if outcome.permission == "ask":
        return Decision(Action.ASK, f"a PreToolUse hook asks first{': ' + why if why else ''}", HOOK_RULE, False)
    if outcome.permission == "allow":
        return Decision(Action.ALLOW, f"allowed by a PreToolUse hook{': ' + why if why else ''}", HOOK_RULE)
    return None


def _kimicode_arg(name: str) -> str:
    for ours, theirs in CLAUDE_ARGS.items():
        if name == theirs:
            return ours
    return name


def _tell_all(outcome: HookOutcome, tell: Tell) -> None:
    for message in outcome.messages:
        tell(message)
