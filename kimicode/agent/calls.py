"""Running one reply's tool calls: parse and check the arguments, ask the gate and the policy (and the user),
run the tool, and turn whatever happens into a result the model reads.

Invariants:
- Every call gets exactly one ToolCallStart and one ToolCallEnd, and a result: a call that cannot run, is
  refused or raises still ends with a result that says why, so the history stays valid to send. Between
  them, a ToolCallRunning says the call passed every check and its tool starts now (only then).
- Whether a call may run is decided by ``Policy.decide`` alone; an approval question is asked one at a time,
  in call order, and the decision is made again under that lock (an earlier answer may cover it).
- A tool that opens a path is checked again on the real path it opened (``OPENED_CHECK``), so a link
  swapped in after the decision leads nowhere else.
- Nothing here appends to the history: the loop does, in the calls' order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kimicode import jsontext
from kimicode.agent import events as ev
from kimicode.agent import notes
from kimicode.agent.accounting import RunTotals
from kimicode.agent.call_order import earlier_overlapping, touched_path
from kimicode.agent.callbacks import Approver, Emit, ToolGate
from kimicode.llm.client import ToolCallRequest
from kimicode.security.policy import Decision, Policy
from kimicode.tools.base import CURRENT_TOOL_CALL, OPENED_CHECK, Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.validate import ArgumentError, validate_args

if TYPE_CHECKING:
    from kimicode.extensions.hooks import Hooks

# The same call (tool + arguments) this many times in one run gets a note asking for another approach.
REPEAT_WARNING_AT = 3


class CallHost(Protocol):
    """What running a call reads from its agent, at the moment of the call (a front end may change these
    between turns: the REPL's undo hook, for one)."""

    @property
    def agent_id(self) -> str: ...
    @property
    def ctx(self) -> ToolContext: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def approver(self) -> Approver: ...
    @property
    def tool_gate(self) -> ToolGate | None: ...
    @property
    def before_write(self) -> Callable[[Path], None] | None: ...
    @property
    def totals(self) -> RunTotals: ...
    @property
    def session_id(self) -> str: ...
    @property
    def hooks(self) -> Hooks | None: ...

    def current_tools(self) -> dict[str, Tool]: ...

    def report_todo(self, emit: Emit) -> None: ...


@dataclass
class Prepared:
    """A call with its tool and checked arguments, or the error that stops it before anything runs."""

    call: ToolCallRequest
    tool: Tool | None
    args: dict[str, Any]
    error: str = ""


class ToolCalls:
    """Runs the tool calls of one agent; remembers what was approved meanwhile and which calls repeat."""

    def __init__(self, host: CallHost) -> None:
        self.host = host
        self._approval_lock = asyncio.Lock()
        self._seen: Counter[str] = Counter()
        self._last_answer: dict[str, int] = {}
        self._notices: set[asyncio.Future[None]] = set()
        self._ran: set[str] = set()  # calls that passed every check and started (PostToolUse follows those)
        self._stop: str | None = None  # why a PostToolUse hook ends the turn after this reply's calls

    def take_stop(self) -> str | None:
        """Why a PostToolUse hook (``continue: false``) ends the turn once the calls ran; None: it goes on."""
        stop, self._stop = self._stop, None
        return stop

    async def run(self, calls: list[ToolCallRequest], emit: Emit) -> list[ToolResult]:
        """Run one reply's calls concurrently; results in the calls' order. Cancelled, every call is."""
        prepared = [self.prepare(call) for call in calls]
        for p in prepared:
            emit(ev.ToolCallStart(p.call.id, p.call.name, p.args, _summary(p), self.host.agent_id))
        ctx = self.host.ctx
        paths = [touched_path(p.call.name, p.args, ctx) if p.tool is not None else None for p in prepared]
        tasks: list[asyncio.Future[ToolResult]] = []
        for p, before in zip(prepared, earlier_overlapping(paths), strict=True):
            waits = [tasks[j] for j in before]
            # Each call in its own task, so what it sets in its context (CURRENT_TOOL_CALL, a sub-agent's
            # own) stays with it.
            tasks.append(asyncio.ensure_future(self._after(waits, p, emit) if waits else self._execute(p, emit)))
        try:
            if len(tasks) == 1:  # the common reply: one call, awaited without gather's extra future and hop
                return [await tasks[0]]
            return list(await asyncio.gather(*tasks))
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise

    async def _after(self, before: list[asyncio.Future[ToolResult]], p: Prepared, emit: Emit) -> ToolResult:
        if before:  # an earlier call on the same path ends first (kimicode.agent.call_order)
            await asyncio.wait(before)
        return await self._execute(p, emit)

    def prepare(self, call: ToolCallRequest) -> Prepared:
        tools = self.host.current_tools()
        tool = tools.get(call.name)
        if tool is None:
            return Prepared(call, None, {}, notes.unknown_tool(call.name, list(tools)))
        try:
            args = jsontext.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return Prepared(call, tool, {}, notes.invalid_json(call.name, exc.msg, exc.pos))
        if not isinstance(args, dict):
            return Prepared(call, tool, {}, notes.not_an_object(call.name))
        try:
            args = validate_args(tool.parameters, args)
        except ArgumentError as exc:
            return Prepared(call, tool, args, notes.invalid_arguments(call.name, exc))
        return Prepared(call, tool, args)

    async def _execute(self, p: Prepared, emit: Emit) -> ToolResult:
        CURRENT_TOOL_CALL.set((self.host.agent_id, p.call.id))  # this call's own task: hooks see which call
        try:
            result = await self._checked_run(p, emit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a call raises is its failure, told to the model
            # (the policy reading a path the OS refuses, a tool's own bug); the run goes on. Nothing ran
            # unless the tool had started.
            result = ToolResult(notes.call_crashed(p.call.name, exc), is_error=True)
        emit(ev.ToolCallEnd(p.call.id, p.call.name, result, self.host.agent_id))
        return result

    async def _checked_run(self, p: Prepared, emit: Emit) -> ToolResult:
        """The call's result: its error as prepared, a gate's refusal, or the approved run with a note on
        repeats."""
        host = self.host
        gate = host.tool_gate
        refusal = gate(p.call.name) if gate and p.tool is not None and not p.error else None
        if p.tool is None or p.error:
            return ToolResult(p.error, is_error=True)
        if refusal is not None:
            return ToolResult(refusal, is_error=True)
        result = await self._approved_run(p.call, p.tool, p.args, emit)
        host.totals.tool_calls += 1
        self._note_repeats(p.call, p.args, result)
        host.report_todo(emit)
        return result

    def _note_repeats(self, call: ToolCallRequest, args: dict[str, Any], result: ToolResult) -> None:
        signature = call.name + json.dumps(args, sort_keys=True, ensure_ascii=False)
        self._seen[signature] += 1
        repeats = self._seen[signature]
        # A call whose answer moved on (a background task's output, a page that changed) is not a loop.
        answer = hash(result.text)
        same = self._last_answer.get(signature, answer) == answer
        self._last_answer[signature] = answer
        if repeats >= REPEAT_WARNING_AT and same and not result.submitted:
            result.text += notes.repeated(call.name, repeats)

    async def _approved_run(self, call: ToolCallRequest, tool: Tool, args: dict[str, Any], emit: Emit) -> ToolResult:
        """The call run as the PreToolUse hooks and the policy decide, and the PostToolUse hooks' word added."""
        hooks, host = self.host.hooks, self.host
        hook: Decision | None = None
        if hooks is not None and hooks.matching("PreToolUse", tool.name):
            hook, rewritten = await hooks.before_tool(host.session_id, tool.name, args, self._teller(emit))
            if rewritten is not None:
                known = tool.parameters.get("properties", {})
                try:  # a hook's updatedInput is checked as the model's arguments are
                    args = validate_args(tool.parameters, {**args, **{k: v for k, v in rewritten.items() if k in known}})
                except ArgumentError as exc:
                    return ToolResult(notes.invalid_arguments(call.name, exc), is_error=True)
        result = await self._decided_run(call, tool, args, emit, hook)
        ran = call.id in self._ran
        self._ran.discard(call.id)
        if ran and hooks is not None and hooks.matching("PostToolUse", tool.name):  # after what ran, only
            said, stop = await hooks.after_tool(
                host.session_id, tool.name, args, result.text, result.is_error, self._teller(emit)
            )
            if said:
                result.text += "\n\n" + said
            if stop is not None and self._stop is None:
                self._stop = stop
                self._teller(emit)(stop)
        return result

    def _decide(self, tool: Tool, args: dict[str, Any], hook: Decision | None) -> Decision:
        """The policy's decision, with the hooks' say when they had one (the plain call otherwise)."""
        policy, ctx = self.host.policy, self.host.ctx
        return policy.decide(tool, args, ctx) if hook is None else policy.decide(tool, args, ctx, hook=hook)

    def _teller(self, emit: Emit) -> Callable[[str], None]:
        return lambda message: emit(ev.Error(message, True, self.host.agent_id))

    async def _decided_run(
        self, call: ToolCallRequest, tool: Tool, args: dict[str, Any], emit: Emit, hook: Decision | None
    ) -> ToolResult:
        host = self.host
        decision = self._decide(tool, args, hook)
        if decision.action == "ask":
            async with self._approval_lock:  # one question at a time, in call order
                decision = self._decide(tool, args, hook)  # an earlier answer may cover it now
                if decision.action == "ask":
                    refusal = await self._ask(call, tool, args, decision, emit)
                    if refusal is not None:
                        return refusal
        if decision.action == "deny":
            return self._refuse(call, tool, args, decision, emit)
        if host.before_write and not tool.read_only and isinstance(args.get("path"), str):
            with contextlib.suppress(ToolError, OSError):
                host.before_write(host.ctx.resolve(args["path"]))
        emit(ev.ToolCallRunning(call.id, call.name, host.agent_id))
        self._ran.add(call.id)
        if tool.echoes_arguments:
            return ToolResult(call.arguments)
        ctx = host.ctx
        if decision.read_only_everything and ctx.sandbox is not None and ctx.sandbox.active:
            # Allowed only because it reads: the sandbox holds the workspace read-only too.
            ctx = replace(ctx, sandbox=replace(ctx.sandbox, read_only_everything=True))
        # Set in this call's own task, and for every call, so a check never outlives the call it serves.
        OPENED_CHECK.set(self._opened_check(tool, args, decision, hook) if isinstance(args.get("path"), str) else None)
        try:
            return await tool.run(args, ctx)
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in one tool must not end the session
            return ToolResult(notes.tool_crashed(call.name, exc), is_error=True)

    async def _ask(
        self, call: ToolCallRequest, tool: Tool, args: dict[str, Any], decision: Decision, emit: Emit
    ) -> ToolResult | None:
        """Ask the user; None when approved (and remember the answer as asked), else the refusal."""
        host = self.host
        remembers = ", ".join(host.policy.rule_texts(tool, args, host.ctx)) if decision.rememberable else ""
        request = ev.ApprovalRequest(
            call.id, call.name, args, tool.summary(args), decision.reason, host.agent_id,
            decision.rememberable, remembers,
        )
        emit(request)
        if host.hooks is not None and host.hooks.has("Notification"):
            notice = {"message": f"kimicode needs your permission to use {call.name}", "notification_type": "permission_prompt"}
            asking = asyncio.ensure_future(host.hooks.event("Notification", host.session_id, notice, self._teller(emit)))
            self._notices.add(asking)  # kept until done: nobody waits on a notification
            asking.add_done_callback(self._notices.discard)
        answer = await host.approver(request)
        if not answer.approved:
            return ToolResult(notes.not_approved(call.name, answer.feedback), is_error=True)
        if decision.rememberable and answer.always:
            self._keep_rule(tool, args, emit)
        elif decision.rememberable and answer.remember:
            host.policy.remember(tool, args, host.ctx)
        return None

    def _opened_check(
        self, tool: Tool, args: dict[str, Any], decided: Decision, hook: Decision | None = None
    ) -> Callable[[Path], None]:
        """The decision made again on the real path of what the tool opened: it must allow that file as the
        first decision allowed the path (a link swapped in since then must not lead anywhere else)."""

        def check(real: Path) -> None:
            again = self._decide(tool, {**args, "path": str(real)}, hook)  # as the call was decided: hooks too
            asked_alike = again.action == decided.action == "ask" and again.reason == decided.reason
            same = again.action == "allow" or asked_alike
            if not same:
                raise ToolError(
                    f"{args['path']} leads to {real} now, which is not what was decided on ({again.reason}); "
                    f"nothing was read or written"
                )

        return check

    def _refuse(
        self, call: ToolCallRequest, tool: Tool, args: dict[str, Any], decision: Decision, emit: Emit
    ) -> ToolResult:
        emit(ev.Refused(call.id, call.name, tool.summary(args), decision.reason, self.host.agent_id))
        if decision.planning:
            return ToolResult(notes.PLAN_REFUSAL.format(name=call.name), is_error=True)
        return ToolResult(notes.refused(call.name, decision.reason), is_error=True)

    def _keep_rule(self, tool: Tool, args: dict[str, Any], emit: Emit) -> None:
        host = self.host
        try:
            host.policy.keep_rule(tool, args, host.ctx)
        except Exception as exc:  # noqa: BLE001 - whatever stops the save (disk, permissions, a bad file)
            # The call was approved; a rule that cannot be saved still covers this session.
            host.policy.remember(tool, args, host.ctx)
            emit(ev.Error(f"could not save the rule for this project: {exc}", agent=host.agent_id))


def _summary(p: Prepared) -> str:
    """The call's one-line description; its name when the tool cannot describe these arguments."""
    if p.tool is None:
        return p.call.name
    try:
        return p.tool.summary(p.args)
    except Exception:  # noqa: BLE001 - the call itself then fails in _execute, where the model is told why
        return p.call.name
