"""One session of the server's: the shared run assembly (runtime, MCP servers, agent) driven over HTTP.

Like an ACP session (frontends/acp/session.py), its parts live in a task of their own for the session's
life, and a turn runs in a child task, so ``cancel`` ends the turn and kills the command it runs. Every
event of a turn becomes one or more stream-json objects (frontends/common/stream_json.py, plus ``text_delta`` /
``thinking_delta`` while the reply streams and ``image`` for a tool's picture) in the session's EventLog.

Invariants:
- At most one turn runs in a session; mode and model change only between turns.
- A question the policy asks goes to the clients as ``approval_request`` and the call waits for an answer
  over HTTP (or the turn's cancel): nobody watching is never a yes.
- Every turn ends with exactly one ``result`` object, a cancelled one included; calls a cancel cut off
  get their ``tool_result`` (an error) first.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
from typing import Any

from kimicode.agent import events as ev
from kimicode.agent.loop import Agent
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.runtime import Runtime
from kimicode.config import MODES, Config
from kimicode.frontends.common.sessions import OpenedSession
from kimicode.frontends.common.stream_json import StreamJson, init_object, result_object
from kimicode.frontends.web.eventlog import EventLog
from kimicode.llm.messages import Image
from kimicode.security.redact import redact_obj
from kimicode.tools.plan_review import PlanReview

log = logging.getLogger("kimicode.web")

DECISIONS = ("allow", "allow_session", "deny")
PLAN = "plan"
_DATA_URL = re.compile(r"data:(image/[a-z0-9.+-]+);base64,(.*)", re.S | re.I)


class SessionError(Exception):
    """A request this session cannot take now: ``status`` is the HTTP answer (400, 404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WebSession:
    def __init__(self, config: Config, opened: OpenedSession, events: EventLog | None = None) -> None:
        from kimicode.vcs.checkpoints import DeferredUndo

        self.config = config
        self.opened = opened
        self.id = opened.session.id
        self.events = events or EventLog()
        self.undo = DeferredUndo(config.work_dir, config.home, self.id)
        self.json = StreamJson(self.config)
        self.runtime: Runtime
        self.agent: Agent
        self.mcp: Any = None
        self._first_runtime: Runtime
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._owner: asyncio.Task[None] | None = None
        self._turn: asyncio.Task[None] | None = None
        self._pending: dict[str, tuple[asyncio.Future[str], dict[str, Any]]] = {}
        self._open_calls: dict[tuple[str, str], str] = {}  # (agent, call id) -> tool name, started and not ended
        firsts = [m.get("content") for m in opened.history if m.get("role") == "user"]
        self.title = _title(firsts[0] if firsts and isinstance(firsts[0], str) else "")

    def _publish(self, event: dict[str, Any]) -> None:
        # The stream's one filter: every string is redacted before it leaves (a key split across two
        # text_delta pieces is the exception: the whole ``assistant`` message that follows is redacted whole).
        self.events.publish(redact_obj(event))

    # -- life -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._owner = asyncio.create_task(self._own(), name=f"web-session-{self.id}")
        await asyncio.shield(self._ready)
        self._publish(init_object(self.config, self.id, list(self.agent.current_tools())))
        if self.opened.history:  # a resumed session: what was said so far, for a client that shows it
            from kimicode.llm.messages import message_text

            said = [(m.get("role"), message_text(m)) for m in self.opened.history]
            shown = [{"role": role, "text": text} for role, text in said if role in ("user", "assistant") and text.strip()]
            self._publish({"type": "history", "messages": shown})

    async def _own(self) -> None:
        from kimicode.frontends.common.assembly import assembled_run

        try:
            async with assembled_run(
                self.config, self.opened, self.approve, report=self.notice, headless=False, mcp_wait=0,
                adapt_runtime=self._adapt, before_write=self.undo.before_write,
            ) as run:
                self.runtime, self.agent, self.mcp = run.runtime, run.agent, run.mcp
                self._first_runtime = run.runtime
                self._ready.set_result(None)
                await self._closing.wait()
                if self.runtime is not run.runtime:  # a mode switch made this one: it is closed here
                    await self.runtime.aclose()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            if not isinstance(exc, (asyncio.CancelledError, Exception)):
                raise
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("session %s ended with an error", self.id)
        finally:
            self.opened.session.close()
            self.events.close()

    def _adapt(self, runtime: Runtime) -> None:
        runtime.ctx.review_plan = self.review_plan

    def notice(self, text: str) -> None:
        log.info("session %s: %s", self.id, text)
        self._publish({"type": "notice", "message": text})

    async def close(self) -> None:
        self.cancel()
        if self._turn is not None:
            with contextlib.suppress(BaseException):
                await self._turn
        self._closing.set()
        if self._owner is not None:
            with contextlib.suppress(BaseException):
                await self._owner

    @property
    def running(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace": str(self.config.work_dir),
            "title": self.title,
            "mode": PLAN if self.agent.policy.stance == PLAN else self.config.mode,
            "model": self.config.model,
            "running": self.running,
            "open": True,
            "last_event_id": self.events.last_id,
            "readers": self.events.readers,
            "pending_approvals": [event for _, event in self._pending.values()],
            "todo": self.agent.ctx.todo.snapshot() if self.agent.ctx.todo is not None else [],
        }

    # -- a turn ---------------------------------------------------------------------------------------

    def images_of(self, urls: list[Any]) -> list[Image]:
        from kimicode.frontends.common.media import MediaError, attach_image_bytes

        images: list[Image] = []
        for index, url in enumerate(urls):
            match = _DATA_URL.fullmatch(url.strip()) if isinstance(url, str) else None
            if match is None:
                raise SessionError(400, f"image {index + 1} is not a data URL (data:image/...;base64,...)")
            try:
                data = base64.b64decode(match.group(2), validate=False)
                images.append(attach_image_bytes(self.config, data, self.runtime.client.profile, f"image {index + 1}"))
            except (binascii.Error, MediaError) as exc:
                raise SessionError(400, f"image {index + 1}: {exc}") from None
        return images

    def send(self, text: str, images: list[Image]) -> int:
        """Start a turn; returns the id of its first event (the client's ``after`` to follow it)."""
        if self.running:
            raise SessionError(409, "a turn is already running in this session: steer it, or cancel it first")
        if not text.strip() and not images:
            raise SessionError(400, "the message is empty")
        first = self.events.last_id + 1
        self.title = self.title or _title(text)
        self._publish({"type": "user", "content": text, "agent": "", "images": len(images)})
        self._turn = asyncio.create_task(self._run(text, images), name=f"web-turn-{self.id}")
        return first

    async def _run(self, text: str, images: list[Image]) -> None:
        with contextlib.suppress(Exception):  # no checkpoint only means no undo for this turn
            await asyncio.to_thread(self.undo.begin_turn, text[:60])
        try:
            await self.agent.drive(text, self._emit, images or None)
        except asyncio.CancelledError:
            self._end_open_calls("cancelled by the user")
            result = ev.RunResult("interrupted", "cancelled by the user", submitted=False, num_steps=0)
            result.usage = self.agent.totals.as_dict()
            result.extra["error_kind"] = "interrupted"
            self._finish(result)
        except Exception as exc:  # noqa: BLE001 - a bug ends the turn with one error result, the session goes on
            log.exception("session %s: the turn failed", self.id)
            self._end_open_calls("the turn ended with an error")
            self._finish(ev.RunResult("error", f"internal error: {exc}", submitted=False, num_steps=0))

    def _finish(self, result: ev.RunResult) -> None:
        self._publish(result_object(result, self.config, self.id))

    def _emit(self, event: ev.Event) -> None:
        if isinstance(event, ev.Done):
            self._finish(event.result)
            return
        if isinstance(event, ev.ApprovalRequest):
            return  # the approver publishes the question, with its options
        if isinstance(event, (ev.TextDelta, ev.ThinkingDelta)):
            kind = "text_delta" if isinstance(event, ev.TextDelta) else "thinking_delta"
            self._publish({"type": kind, "text": event.text, "agent": event.agent})
        elif isinstance(event, ev.ToolCallStart):
            self._open_calls[(event.agent, event.call_id)] = event.name
        elif isinstance(event, ev.ToolCallEnd):
            self._open_calls.pop((event.agent, event.call_id), None)
        for obj in self.json.convert(event):
            self._publish(obj)
        if isinstance(event, ev.ToolCallEnd):
            for image in event.result.images:
                self._publish({"type": "image", "call_id": event.call_id, "label": image.label, "data_url": image.data_url()})

    def _end_open_calls(self, why: str) -> None:
        for (agent, call_id), name in list(self._open_calls.items()):
            self._publish({"type": "tool_result", "id": call_id, "name": name, "is_error": True, "content": why, "images": [], "agent": agent})
        self._open_calls.clear()

    def steer(self, text: str) -> None:
        if not self.running:
            raise SessionError(409, "no turn is running: send a message instead")
        if not text.strip():
            raise SessionError(400, "the message is empty")
        self.agent.steer(text)

    def cancel(self) -> bool:
        if self.running:
            assert self._turn is not None
            self._turn.cancel()
            return True
        return False

    # -- questions to the user ------------------------------------------------------------------------

    async def _ask(self, call_id: str, event: dict[str, Any]) -> tuple[str, str]:
        event = redact_obj(event)  # as published: what a client listing the open questions sees too
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = (future, event)
        self._publish(event)
        try:
            answer = await future
        except asyncio.CancelledError:  # the turn was cancelled: the question is gone for every client
            self._publish({"type": "approval_resolved", "call_id": call_id, "decision": "cancelled"})
            raise
        finally:
            self._pending.pop(call_id, None)
        decision, _, reason = answer.partition("\n")
        self._publish({"type": "approval_resolved", "call_id": call_id, "decision": decision})
        return decision, reason

    async def approve(self, request: ev.ApprovalRequest) -> ApprovalDecision:
        options = ["allow", "allow_session", "deny"] if request.rememberable else ["allow", "deny"]
        event: dict[str, Any] = {
            "type": "approval_request", "call_id": question_id(request.agent, request.call_id), "tool": request.tool,
            "arguments": request.args, "options": options, "summary": request.summary,
            "reason": request.reason, "agent": request.agent, "remembers": request.remembers,
        }
        diff = await asyncio.to_thread(self._preview, request)
        if diff:
            event["diff"] = diff
        decision, reason = await self._ask(event["call_id"], event)
        if decision == "deny":
            return ApprovalDecision(False, reason)
        return ApprovalDecision(True, remember=decision == "allow_session")

    def _preview(self, request: ev.ApprovalRequest) -> str:
        """The diff an edit waiting for approval would make, so the user sees what they allow."""
        import difflib

        from kimicode.tools.base import ToolError
        from kimicode.tools.edit_preview import preview_edit
        from kimicode.tools.fileio import read_text_file

        if not isinstance(request.args.get("path"), str):
            return ""
        try:
            path = self.agent.ctx.resolve(request.args["path"])
            like = read_text_file(path) if path.is_file() else None
        except (ToolError, OSError):
            return ""
        texts = preview_edit(request.tool, request.args, like)
        if texts is None:
            return ""
        before, after = texts
        name = request.args["path"]
        lines = difflib.unified_diff((before or "").splitlines(True), after.splitlines(True), f"a/{name}", f"b/{name}")
        return "".join(lines)

    async def review_plan(self, plan: str) -> PlanReview:
        from kimicode.tools.base import CURRENT_TOOL_CALL

        call_id = question_id(*CURRENT_TOOL_CALL.get())
        event = {
            "type": "approval_request", "call_id": call_id, "tool": "propose_plan", "arguments": {"plan": plan},
            "options": list(DECISIONS), "summary": "Ready to start on this plan?", "reason": "plan review", "agent": "",
        }
        decision, reason = await self._ask(call_id, event)
        if decision == "deny":
            return PlanReview(False, plan, feedback=reason or "The user wants to keep planning.")
        stance = "auto-edit" if decision == "allow_session" else "ask"
        self.agent.policy.stance = stance
        return PlanReview(True, plan, stance=stance)

    def answer(self, call_id: str, decision: str, reason: str = "") -> None:
        if decision not in DECISIONS:
            raise SessionError(400, f"decision must be one of {', '.join(DECISIONS)}")
        pending = self._pending.get(call_id)
        if pending is None:
            raise SessionError(404, f"no question is waiting for call {call_id!r}")
        future, event = pending
        if decision not in event["options"]:
            raise SessionError(400, f"this question takes one of {', '.join(event['options'])}")
        if not future.done():
            future.set_result(f"{decision}\n{reason}")

    # -- modes and models -----------------------------------------------------------------------------

    async def set_mode(self, mode: str) -> None:
        """One of the four modes (its tools; leaves plan mode), or "plan" (the stance; the tools stay)."""
        from kimicode.frontends.common.assembly import rebuilt_for_mode

        if mode not in (*MODES, PLAN):
            raise SessionError(400, f"unknown mode '{mode}': use one of {', '.join((*MODES, PLAN))}")
        if self.running:
            raise SessionError(409, "a turn is running; switch modes when it has ended")
        if mode == PLAN:
            self.agent.policy.stance = PLAN
            return
        if self.agent.policy.stance == PLAN:
            self.agent.policy.stance = "ask"
        if mode == self.config.mode:
            return
        self.config.mode = mode
        previous = self.runtime
        model = previous.model.for_model(self.config) if previous.model is not None else None
        extra = {"extra_tools": self.mcp.tools} if self.mcp is not None else {}
        self.runtime, self.agent = rebuilt_for_mode(
            self.config, self.id, self.agent, self.approve, adapt_runtime=self._adapt,
            tasks=previous.ctx.tasks, model=model, before_write=self.undo.before_write, **extra,
        )
        if previous is not self._first_runtime:
            await previous.aclose()

    async def set_model(self, name: str) -> None:
        if not name.strip():
            raise SessionError(400, "give a model name")
        if self.running:
            raise SessionError(409, "a turn is running; switch models when it has ended")
        self.config.model = name.strip()
        previous = self.runtime.switch_model()
        self.agent.client = self.runtime.client
        if previous is not self._first_runtime.client:
            await previous.aclose()

    # -- what it did ----------------------------------------------------------------------------------

    def transcript(self) -> list[Any]:
        return redact_obj(list(self.agent.messages))

    def changes(self) -> dict[str, Any]:
        """The files this session changed and the diff from their state before its first write."""
        try:
            diff = self.undo.diff()
        except Exception as exc:  # noqa: BLE001 - no checkpoint store here: say so, the session goes on
            return {"files": [], "diff": "", "error": str(exc)}
        files = sorted({line[6:] for line in diff.splitlines() if line.startswith("+++ b/")} |
                       {line[6:] for line in diff.splitlines() if line.startswith("--- a/")})
        return {"files": files, "diff": redact_obj(diff)}


def _title(text: str) -> str:
    return " ".join(text.split())[:60]


def question_id(agent: str, call_id: str) -> str:
    """A question's id: the call's own for the main agent; sub-agents number their calls alike, so theirs
    carry the agent's id too."""
    return f"{agent}/{call_id}" if agent else call_id
