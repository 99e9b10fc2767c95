"""Asking the user to approve an action, and holding a question back until what led to it is on screen.

The agent's events reach the screen through the turn's event loop, while its questions (an approval, the
plan review) arrive through callbacks that can overtake them: ``OnScreen`` lets a question wait for the
event it belongs to (keyed by call id) before it is asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.agent.policy import ApprovalDecision

if TYPE_CHECKING:
    from kimicode.agent import events as ev
    from kimicode.frontends.repl.notify import Notifier
    from kimicode.frontends.repl.render import Renderer

APPROVAL_ANSWERS = {
    "once": "approved once",
    "session": "approved for this session",
    "always": "approved; kept as a rule for this project (/permissions lists it)",
    "reject": "rejected",
    "cancel": "cancelled",
}


class OnScreen:
    """Events by key: ``shown`` when the event is on screen, ``until_shown`` waits for it (once)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def shown(self, key: str) -> None:
        self._events.setdefault(key, asyncio.Event()).set()

    async def until_shown(self, key: str) -> None:
        await self._events.setdefault(key, asyncio.Event()).wait()
        self._events.pop(key, None)


async def ask_approval(
    request: ev.ApprovalRequest,
    renderer: Renderer,
    notifier: Notifier,
    ask_line: Callable[[str], Awaitable[str]],
    cancel_turn: Callable[[], None],
    workspace: Path | None = None,
) -> ApprovalDecision:
    """One approval question below the transcript: once, for the session, always (a rule), or no (and why)."""
    from kimicode.frontends.repl.input import APPROVAL_KEYS, ask_choice

    renderer.close_stream()
    notifier.approval_needed(request.summary)
    who = f"[{request.agent}] " if request.agent else ""
    renderer.info(f"? {who}{request.summary} — {request.reason}", "yellow bold")
    from kimicode.frontends.repl.diff_view import EditDiff

    diff = EditDiff.for_request(request, workspace) if workspace is not None else None
    if diff is not None:
        diff.show(renderer)
    if request.rememberable:
        if request.remembers:  # what "a" and "!" would store, so the user sees what they allow
            renderer.dim(f"  [a] and [!] allow: {request.remembers}")
        question = "  [y] yes once  [a] yes for this session  [!] always (save a rule for this project)  [n] no  › "
        keys = APPROVAL_KEYS
    else:  # protected paths, leaving the sandbox, an ask rule: each call is its own question
        question = "  [y] yes once  [n] no, tell the model why  › "
        keys = {key: answer for key, answer in APPROVAL_KEYS.items() if answer not in ("session", "always")}
    answer = await ask_choice(question, {**keys, "d": "expand"} if diff is not None and diff.folded else keys)
    if answer == "expand" and diff is not None:
        diff.show_rest(renderer)
        answer = await ask_choice(question, keys)
    renderer.dim(f"  → {APPROVAL_ANSWERS.get(answer, answer)}")
    if answer == "once":
        return ApprovalDecision(True)
    if answer == "session":
        return ApprovalDecision(True, remember=True)
    if answer == "always":
        return ApprovalDecision(True, remember=True, always=True)
    if answer == "cancel":
        cancel_turn()
        return ApprovalDecision(False, "The user interrupted the turn.")
    try:
        reason = (await ask_line("  reason (Enter to skip) › ")).strip()
    except (EOFError, KeyboardInterrupt):
        reason = ""
    return ApprovalDecision(False, reason)
