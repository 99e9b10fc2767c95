"""Questions to the user, as ACP ``session/request_permission``: an action's approval (with the diff an
edit would make) and plan mode's "ready to start on this plan?".

Invariants:
- A question is asked only once its tool call is on the editor's screen (updates.py says when), and
  names the call by the same key.
- An editor that does not answer, or is gone, refuses: the action does not run, the plan is not started.
- "Allow always" is offered only for a request the policy can remember, and means this session only (the
  REPL's "a"); the decision itself is the policy's (agent/policy.py), never made here.
- The preview is computed from the file as the editor holds it; an edit that would fail shows none.
- An allowed call turns ``in_progress`` when the core says it starts (updates.py), not here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from acp import RequestError
from acp import helpers as h
from acp.schema import AllowedOutcome, PermissionOption, ToolCallUpdate

from kimicode.agent import events as ev
from kimicode.agent.policy import ApprovalDecision
from kimicode.frontends.acp.editor import EditorFiles, call_key
from kimicode.frontends.acp.toolcalls import EDIT_TOOLS, tool_kind, tool_locations, tool_title
from kimicode.frontends.acp.updates import TurnUpdates
from kimicode.frontends.common.edits import edited_text

if TYPE_CHECKING:
    from kimicode.agent.loop import Agent
    from kimicode.tools.propose_plan import PlanReview

log = logging.getLogger("kimicode.acp")


class Asking(Protocol):
    """What the questions need of a session (frontends/acp/session.py: ``AcpSession``)."""

    conn: Any
    id: str
    files: EditorFiles
    updates: TurnUpdates

    @property
    def workspace(self) -> Path: ...

    @property
    def agent(self) -> Agent: ...

    async def send(self, update: Any) -> None: ...

    async def mode_changed(self) -> None: ...


async def approve(session: Asking, request: ev.ApprovalRequest) -> ApprovalDecision:
    key = call_key(request.agent, request.call_id)
    await session.updates.shown_asked(key)
    options = [PermissionOption(option_id="allow_once", name="Allow once", kind="allow_once")]
    if request.rememberable:
        options.append(PermissionOption(option_id="allow_always", name=_always_label(session.agent, request), kind="allow_always"))
    options.append(PermissionOption(option_id="reject", name="Reject", kind="reject_once"))
    workspace = session.workspace
    title = tool_title(request.tool, request.args, workspace, session.agent.current_tools().get(request.tool))
    tool_call = ToolCallUpdate(
        tool_call_id=key,
        title=f"{title} — {request.reason}" if request.reason else title,
        kind=tool_kind(request.tool, request.args),
        status="pending",
        content=await _preview(session, request) or None,
        locations=tool_locations(request.tool, request.args, workspace) or None,
        raw_input=request.args,
    )
    try:
        response = await session.conn.request_permission(session_id=session.id, tool_call=tool_call, options=options)
    except (RequestError, ConnectionError) as exc:
        log.info("session/request_permission failed: %s", exc)
        return ApprovalDecision(False, "the editor did not answer the approval question")
    outcome = response.outcome
    chosen = outcome.option_id if isinstance(outcome, AllowedOutcome) else ""
    if chosen not in ("allow_once", "allow_always"):
        why = "The user cancelled the turn." if outcome.outcome == "cancelled" else ""
        return ApprovalDecision(False, why)
    return ApprovalDecision(True, remember=chosen == "allow_always")


def _always_label(agent: Agent, request: ev.ApprovalRequest) -> str:
    tool = agent.current_tools().get(request.tool)
    texts = agent.policy.rule_texts(tool, request.args, agent.ctx) if tool is not None else []
    what = ", ".join(texts)
    return f"Always allow {what} in this session" if what and len(what) <= 60 else "Always allow in this session"


async def _preview(session: Asking, request: ev.ApprovalRequest) -> list[Any]:
    """The diff an edit waiting for approval would make, so the user sees what they allow."""
    if request.tool not in EDIT_TOOLS or not isinstance(request.args.get("path"), str):
        return []
    from kimicode.tools.base import ToolError

    try:
        path = session.agent.ctx.resolve(request.args["path"])
    except ToolError:
        return []
    before = await session.files.current_text(path) if path.is_file() else None
    after = edited_text(request.tool, request.args, before)
    if after is None:
        return []
    return [h.tool_diff_content(str(path), after, before)]


async def review_plan(session: Asking, plan: str) -> PlanReview:
    """propose_plan's question, as a permission request on its tool call: start asking before edits,
    start with edits allowed, or keep planning."""
    from kimicode.tools.base import CURRENT_TOOL_CALL
    from kimicode.tools.propose_plan import PlanReview

    key = call_key(*CURRENT_TOOL_CALL.get())
    await session.updates.on_screen(key)
    options = [
        PermissionOption(option_id="start_ask", name="Yes, and ask before edits", kind="allow_once"),
        PermissionOption(option_id="start_auto_edit", name="Yes, and allow edits", kind="allow_always"),
        PermissionOption(option_id="keep_planning", name="No, keep planning", kind="reject_once"),
    ]
    tool_call = ToolCallUpdate(
        tool_call_id=key,
        title="Ready to start on this plan?",
        kind="switch_mode",
        status="pending",
        content=[h.tool_content(h.text_block(plan))],
    )
    try:
        response = await session.conn.request_permission(session_id=session.id, tool_call=tool_call, options=options)
    except (RequestError, ConnectionError) as exc:
        log.info("session/request_permission failed: %s", exc)
        return PlanReview(False, plan, feedback="the editor did not answer")
    outcome = response.outcome
    chosen = outcome.option_id if isinstance(outcome, AllowedOutcome) else ""
    if chosen not in ("start_ask", "start_auto_edit"):
        return PlanReview(False, plan, feedback="The user wants to keep planning.")
    stance = "auto-edit" if chosen == "start_auto_edit" else "ask"
    session.agent.policy.stance = stance
    await session.mode_changed()
    return PlanReview(True, plan, stance=stance)
