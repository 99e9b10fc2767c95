"""Reviewing the plan the model proposes in plan mode: accept (asking first, or auto-edit), edit, or reject.

The plan is printed as markdown into the transcript, then one key decides. Accepting switches the approval
stance (the answer says which) and the work starts in the same turn; editing opens the plan in a multi-line
editor (Alt-Enter or Esc Enter accepts it, Ctrl-X Ctrl-E opens $EDITOR); rejecting asks what should change,
and the model stays in plan mode with that reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.tools.propose_plan import PlanReview

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl

PLAN_KEYS = {"a": "auto-edit", "y": "ask", "enter": "ask", "e": "edit", "n": "reject", "escape": "reject"}
QUESTION = "  [y] accept, ask before changes  [a] accept, auto-edit  [e] edit the plan  [n] keep planning  › "
ACCEPTED = {"ask": "accepted; edits and commands ask first", "auto-edit": "accepted; file edits run without asking (auto-edit)"}


async def review_plan(repl: ReplControl, plan: str) -> PlanReview:
    from kimicode.frontends.repl.input import ask_choice

    renderer = repl.renderer
    renderer.close_stream()
    renderer.info("◆ the plan", "bold cyan")
    renderer.markdown(plan)
    current = plan
    while True:
        answer = await ask_choice(QUESTION, PLAN_KEYS)
        if answer == "edit":
            edited = await _edit(current)
            if edited is not None and edited.strip():
                current = edited
                renderer.info("◆ the plan, as you edited it", "bold cyan")
                renderer.markdown(current)
            continue
        if answer == "cancel":
            repl.cancel_running_turn()
            return PlanReview(False, current, feedback="The user interrupted the turn.")
        if answer == "reject":
            renderer.dim("  → keep planning")
            try:
                reason = (await repl.ask_line("  what should change? (Enter to skip) › ")).strip()
            except (EOFError, KeyboardInterrupt):
                reason = ""
            return PlanReview(False, current, feedback=reason)
        renderer.dim(f"  → {ACCEPTED[answer]}")
        repl.agent.policy.stance = answer
        repl.config.stance = answer
        return PlanReview(True, current, stance="yolo" if repl.agent.policy.yolo else answer)


async def _edit(plan: str) -> str | None:
    """The plan in a multi-line editor; None when the edit is abandoned (Ctrl-C)."""
    from prompt_toolkit import PromptSession

    from kimicode.frontends.repl.live import terminal_output

    session: PromptSession[str] = PromptSession(
        "  ", output=terminal_output(), multiline=True, enable_open_in_editor=True, erase_when_done=True, bottom_toolbar=" Alt-Enter or Esc Enter: done · Ctrl-X Ctrl-E: $EDITOR · Ctrl-C: keep it as it was"
    )
    try:
        return await session.prompt_async(default=plan, handle_sigint=False)
    except (EOFError, KeyboardInterrupt):
        return None
