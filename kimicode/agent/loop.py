"""The agent loop: task → model reply → tool calls → results → … until submit, a final answer or a limit.

The loop prints nothing. It emits events (kimicode.agent.events) that front ends render, and asks for
approvals through the one callback it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.agent import events as ev
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.context import DEFAULT_COMPACT_THRESHOLD, CompactionResult, should_compact
from kimicode.llm.client import ChatClient, ContextOverflowError, LLMError, Reply, ToolCallRequest
from kimicode.llm.messages import Image, Message, assistant_message, system_message, tool_messages, user_message
from kimicode.security.policy import Decision, Policy
from kimicode.tools.base import CURRENT_TOOL_CALL, OPENED_CHECK, Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.todo import TodoList
from kimicode.tools.validate import ArgumentError, validate_args

if TYPE_CHECKING:
    from kimicode.tools.background import BackgroundTask

Approver = Callable[[ev.ApprovalRequest], Awaitable[ApprovalDecision]]
Emit = Callable[[ev.Event], None]
# Asked before each tool call with the tool's name: None lets it run, a text refuses it (shared budgets).
ToolGate = Callable[[str], str | None]

# Set by a running agent for the tools it calls: where events go, and which step of the run this is.
# Tools that run agents of their own (spawn_agents) forward events and account steps through these.
CURRENT_EMIT: contextvars.ContextVar[Emit | None] = contextvars.ContextVar("kimicode_emit", default=None)
CURRENT_STEP: contextvars.ContextVar[int] = contextvars.ContextVar("kimicode_step", default=0)

# The same call (tool + arguments) this many times in one run gets a note asking for another approach.
REPEAT_WARNING_AT = 3
# Tokens kept free for the reply when the context is nearly full.
MIN_REPLY_TOKENS = 1024

# A reply with nothing in it, or one the endpoint cut at the output limit, gets one more request with
# one of these notes; a second in a row ends the run as an error instead of passing for an answer.
EMPTY_REPLY_NOTE = (
    "Your last reply was empty: no text and no tool call. Continue the task: call a tool, or give your "
    "final answer as text."
)
LENGTH_REPLY_NOTE = (
    'Your last reply was cut off at the output limit (finish_reason "length") and was discarded, tool calls '
    "included. Reply again, shorter: keep reasoning and text brief, and split large file contents over "
    "several smaller tool calls (createfile with the first part, then insert the rest)."
)


# Said to the model when the approval stance enters or leaves plan mode (policy.py decides what runs).
PLAN_MODE_ON_NOTE = (
    "[Plan mode is on] The user wants a plan before any change. Do not edit files or run commands that change "
    "anything (they are refused). Read what you need (view, read-only commands, screenshot), then call "
    "propose_plan with a concise plan: the steps, the files involved, how you will verify. The user accepts, "
    "edits or rejects it."
)
PLAN_MODE_OFF_NOTE = "[Plan mode is off] You may change files and run commands again (they may ask the user first)."
PLAN_REFUSAL = (
    "This {name} call was not run: you are in plan mode, where nothing may change. Keep to reading (view, "
    "read-only commands, screenshot) and call propose_plan with your plan; the work starts once the user "
    "accepts it."
)


async def refuse_all(request: ev.ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(False, "actions that need approval are not allowed in this run")


@dataclass
class RunTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    tool_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.prompt_tokens,
            "output_tokens": self.completion_tokens,
            "cached_input_tokens": self.cached_tokens,
            "cost_usd": round(self.cost, 6),
            "tool_calls": self.tool_calls,
        }


@dataclass
class Agent:
    client: ChatClient
    tools: dict[str, Tool]
    ctx: ToolContext
    system_prompt: str
    approver: Approver = refuse_all
    policy: Policy = field(default_factory=Policy)
    max_steps: int = 100
    thinking: bool = True
    session_id: str = ""
    agent_id: str = ""  # "" for the main agent
    messages: list[Message] = field(default_factory=list)
    # Called with every message appended to the history (the session log).
    on_message: Callable[[Message], None] | None = None
    # Called before a tool writes the file at this path (undo backups).
    before_write: Callable[[Path], None] | None = None
    totals: RunTotals = field(default_factory=RunTotals)
    # Checked before every tool call; see ToolGate.
    tool_gate: ToolGate | None = None
    # Called with the run's result just before Done is emitted (adds accounting to result.extra).
    on_done: Callable[[ev.RunResult], None] | None = None
    # Share of the context window at which older history is summarised before the next request.
    compact_threshold: float = DEFAULT_COMPACT_THRESHOLD
    # Called after the history was compacted (the session log records it).
    on_compacted: Callable[[CompactionResult], None] | None = None
    # Tools that can appear during the run (MCP servers that finish starting later); asked on every step.
    extra_tools: Callable[[], list[Tool]] | None = None
    # Called with the whole todo list each time the model rewrites it (the session log records it).
    on_todo: Callable[[list[dict[str, str]]], None] | None = None
    # The todo list this conversation starts with (a resumed session's last one).
    todo_items: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # One conversation, one record of the pictures it was shown and one todo list (sub-agents and /new
        # start empty); everything else in the context (workspace, file locks, background tasks) stays shared.
        todo = TodoList()
        todo.items = [dict(item) for item in self.todo_items]
        self.ctx = replace(self.ctx, shown_images={}, todo=todo)
        self._todo_version = todo.version
        self._approval_lock = asyncio.Lock()
        self._seen_calls: Counter[str] = Counter()
        self._last_answer: dict[str, int] = {}
        # Messages the user sent into the running turn, delivered before the next request (``steer``).
        self._steering: list[str] = []
        self._planning_said = False  # the history's last word on plan mode is that it is on
        self.running = False
        self._recount()
        if not self.messages:
            self._append(system_message(self.system_prompt))

    def _recount(self) -> None:
        """Start the context estimate afresh from the history (no server count yet)."""
        self._context_tokens = 0
        self._unsent_chars = sum(_approx_chars(m) for m in self.messages)

    def _append(self, message: Message) -> None:
        self.messages.append(message)
        self._unsent_chars += _approx_chars(message)
        if self.on_message:
            self.on_message(message)

    def current_tools(self) -> dict[str, Tool]:
        """The fixed tools the model is offered now (the plan hand-over only in plan mode, the task tools once
        there is a task: ``Tool.offered``) plus whatever ``extra_tools`` offers; a fixed tool keeps its name."""
        stance = self.policy.stance
        merged = {name: tool for name, tool in self.tools.items() if tool.offered(self.ctx, stance)}
        if self.extra_tools is not None:
            for tool in self.extra_tools():
                merged.setdefault(tool.name, tool)
        return merged

    # -- the user speaking into a running turn -------------------------------------------------------

    def steer(self, text: str) -> None:
        """Send ``text`` into the running turn: the model sees it before its next request (``Steered`` is
        emitted then). A turn that was about to end goes on so that it is heard."""
        if text.strip():
            self._steering.append(text)

    @property
    def steering(self) -> list[str]:
        """Messages sent with ``steer`` and not delivered yet."""
        return list(self._steering)

    def take_steering(self) -> list[str]:
        """Withdraw the undelivered messages (a cancelled turn gives them back to the front end)."""
        taken, self._steering = self._steering, []
        return taken

    def _before_request(self, emit: Emit) -> None:
        """What the model must know before this step's request: a change of stance, the user's new words."""
        planning = self.policy.stance == "plan"
        if planning != self._planning_said:
            self._planning_said = planning
            self._append(user_message(PLAN_MODE_ON_NOTE if planning else PLAN_MODE_OFF_NOTE))
        while self._steering:
            text = self._steering.pop(0)
            self._append(user_message(text))
            emit(ev.Steered(text, self.agent_id))

    def _emit_todo(self, emit: Emit) -> None:
        todo = self.ctx.todo
        if todo is None or todo.version == self._todo_version:
            return
        self._todo_version = todo.version
        items = todo.snapshot()
        emit(ev.TodoUpdate(items, self.agent_id))
        if self.on_todo:
            self.on_todo(items)

    def tool_schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self.current_tools().values()]

    @property
    def context_tokens(self) -> int:
        """Tokens the next request will carry: the last reported count plus what was added since."""
        return self._context_tokens + self._unsent_chars // 4

    async def run(
        self, task: str, images: list[Image] | None = None, parts: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[ev.Event]:
        """Run one task; yields events, the last one always ``Done``. Closing the iterator cancels the run.

        ``images`` and other content ``parts`` (e.g. an uploaded video) go into the task's user message.
        """
        queue: asyncio.Queue[ev.Event] = asyncio.Queue()
        driver = asyncio.create_task(self.drive(task, queue.put_nowait, images, parts))
        getter: asyncio.Future[ev.Event] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, driver}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    event = getter.result()
                    yield event
                    if isinstance(event, ev.Done):
                        return
                    continue
                getter.cancel()
                driver.result()  # the driver died without Done: re-raise its exception
                while not queue.empty():
                    event = queue.get_nowait()
                    yield event
                    if isinstance(event, ev.Done):
                        return
                return
        finally:
            if getter is not None and not getter.done():
                getter.cancel()  # a cancelled wait leaves it pending otherwise
            if not driver.done():
                driver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await driver

    async def drive(
        self, task: str, emit: Emit, images: list[Image] | None = None, parts: list[dict[str, Any]] | None = None
    ) -> None:
        """Run one task, handing every event to ``emit`` the moment it happens (``Done`` last); cancelling
        the caller cancels the run. For a front end that must not lose an event a cancel cuts off (``run``
        hands events over only as fast as they are read)."""
        await self._drive(user_message(task, images, parts), emit)

    async def _drive(self, task: Message, emit: Emit) -> None:
        started = time.monotonic()
        CURRENT_EMIT.set(emit)
        self._append(task)
        steps = 0
        last_text = ""
        retried_unusable = False  # the previous reply was empty or cut off and was asked again
        self.running = True
        # The main agent reports the session's background tasks as they change (sub-agents share them).
        tasks = self.ctx.tasks
        unsubscribe = tasks.subscribe(lambda t: emit(task_event(t))) if tasks is not None and not self.agent_id else None
        try:
            while True:
                if steps >= self.max_steps:
                    result = ev.RunResult(
                        "error_max_steps",
                        last_text or f"stopped after the step limit ({self.max_steps} steps)",
                        submitted=False,
                        num_steps=steps,
                    )
                    break
                steps += 1
                CURRENT_STEP.set(steps)
                emit(ev.StepStart(steps, self.agent_id))
                self._before_request(emit)
                reply = await self._ask_model(emit)
                problem = _unusable(reply)
                if problem:
                    # Not appended: an empty assistant message is rejected by some endpoints, and a cut
                    # reply's last tool call has broken arguments. The history stays valid either way.
                    if retried_unusable:
                        message = f"{problem} twice in a row; stopped"
                        emit(ev.Error(message, agent=self.agent_id))
                        result = ev.RunResult("error", message, submitted=False, num_steps=steps)
                        break
                    retried_unusable = True
                    emit(ev.Error(f"{problem}; asking it once more", True, self.agent_id))
                    note = LENGTH_REPLY_NOTE if reply.finish_reason == "length" else EMPTY_REPLY_NOTE
                    self._append(user_message(note))
                    continue
                retried_unusable = False
                last_text = reply.content or last_text
                self._append(
                    assistant_message(reply.content, [c.wire() for c in reply.tool_calls], reply.reasoning)
                )
                if not reply.tool_calls:
                    if self._steering:
                        continue  # the user spoke while the model answered: the turn goes on to hear it
                    result = ev.RunResult("success", reply.content, submitted=False, num_steps=steps)
                    break
                outcomes = await self._run_calls(reply.tool_calls, emit)
                submitted = next((r for r in outcomes if r.submitted and not r.is_error), None)
                if submitted is not None and not self._steering:
                    result = ev.RunResult("success", submitted.text, submitted=True, num_steps=steps)
                    break
        except LLMError as err:
            emit(ev.Error(err.message, agent=self.agent_id))
            result = ev.RunResult("error", err.message, submitted=False, num_steps=steps)
            if err.kind:  # "auth", "connection": what a script reading the result can act on
                result.extra["error_kind"] = err.kind
        finally:
            self.running = False
            if unsubscribe is not None:
                unsubscribe()
        result.usage = self.totals.as_dict()
        result.duration_ms = int((time.monotonic() - started) * 1000)
        if self.on_done:
            self.on_done(result)
        emit(ev.Done(result))

    async def compact(self, emit: Emit | None = None, instruction: str = "") -> ev.Compacted | None:
        """Summarise older history now (keeping what ``instruction`` asks for); None when there was nothing
        old enough to summarise."""
        from kimicode.agent.compaction import compact_history

        outcome = await compact_history(self.client, self.messages, self.session_id, instruction)
        if not outcome.replaced_count:
            return None
        self.messages[:] = outcome.messages
        self._recount()
        self.ctx.shown_images.clear()  # the summary dropped the pictures: an identical capture is news again
        if self.on_compacted:
            self.on_compacted(outcome)
        event = ev.Compacted(outcome.tokens_before, outcome.tokens_after, outcome.summary)
        if emit:
            emit(event)
        return event

    async def _ask_model(self, emit: Emit) -> Reply:
        from kimicode.agent.context import CompactionError

        if should_compact(self.context_tokens, self.client.profile.context_window, self.compact_threshold):
            try:
                await self.compact(emit)
            except (LLMError, CompactionError) as err:  # carry on uncompacted; the overflow path retries
                emit(ev.Error(f"could not compact the history: {getattr(err, 'message', err)}", agent=self.agent_id))
        try:
            return await self._ask_model_once(emit)
        except ContextOverflowError as err:
            if err.prompt_tokens:  # the endpoint's count beats the estimate
                self._context_tokens, self._unsent_chars = err.prompt_tokens, 0
            if err.limit and err.prompt_tokens and err.prompt_tokens + MIN_REPLY_TOKENS < err.limit:
                # The prompt fits; only the room asked for the reply did not. Ask again within the
                # window the endpoint stated (the client now knows it) before summarising anything.
                try:
                    return await self._ask_model_once(emit)
                except ContextOverflowError:
                    pass
            try:
                compacted = await self.compact(emit)
            except CompactionError:
                compacted = None
            if compacted is None:
                raise
            return await self._ask_model_once(emit)

    async def _ask_model_once(self, emit: Emit) -> Reply:
        await self.client.ready()  # the endpoint may report a window the profile does not know
        profile = self.client.profile
        schemas = self.tool_schemas()
        # Until the endpoint has counted a request, the tool schemas' share of the window is estimated too:
        # on a small window, asking for more reply room than is left gets the request refused.
        unmeasured = 0 if self._context_tokens else len(json.dumps(schemas)) // 4
        room = profile.context_window - self.context_tokens - unmeasured
        max_tokens = min(profile.max_output_tokens, max(room - 256, MIN_REPLY_TOKENS))
        agent = self.agent_id
        reply = await self.client.complete(
            self.messages,
            schemas,
            thinking=self.thinking,
            max_tokens=max_tokens,
            session_id=self.session_id,
            on_text=lambda text: emit(ev.TextDelta(text, agent)),
            on_thinking=lambda text: emit(ev.ThinkingDelta(text, agent)),
            on_retry=lambda why, delay: emit(ev.Error(f"{why}; retrying in {delay:.1f}s" if delay else why, True, agent)),
        )
        usage = reply.usage
        cost = profile.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        self.totals.prompt_tokens += usage.prompt_tokens
        self.totals.completion_tokens += usage.completion_tokens
        self.totals.cached_tokens += usage.cached_tokens
        self.totals.cost += cost
        if usage.prompt_tokens:
            self._context_tokens = usage.prompt_tokens + usage.completion_tokens
            self._unsent_chars = 0
        emit(
            ev.Usage(
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                cost,
                self.totals.cost,
                self.context_tokens,
                profile.context_window,
                agent,
            )
        )
        return reply

    async def _run_calls(self, calls: list[ToolCallRequest], emit: Emit) -> list[ToolResult]:
        """Run one reply's tool calls concurrently; results join the history in the calls' order."""
        prepared = [self._prepare(call) for call in calls]
        for call, tool, args, _ in prepared:
            emit(ev.ToolCallStart(call.id, call.name, args, _summary(call, tool, args), self.agent_id))
        tasks = [asyncio.ensure_future(self._execute(call, tool, args, error, emit)) for call, tool, args, error in prepared]
        try:
            results = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            for call, *_ in prepared:  # keep the history valid for the next turn
                for message in tool_messages(call.id, "Interrupted by the user before this call finished."):
                    self._append(message)
            raise
        for (call, *_), result in zip(prepared, results):
            for message in tool_messages(call.id, result.text, result.images):
                self._append(message)
        return list(results)

    def _prepare(self, call: ToolCallRequest) -> tuple[ToolCallRequest, Tool | None, dict[str, Any], str]:
        tools = self.current_tools()
        tool = tools.get(call.name)
        if tool is None:
            known = ", ".join(tools)
            return call, None, {}, f"Unknown tool '{call.name}'. Available tools: {known}."
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return call, tool, {}, (
                f"The arguments of this {call.name} call are not valid JSON ({exc.msg} at character {exc.pos}); "
                "it was not run. Send the call again with complete, valid JSON arguments."
            )
        if not isinstance(args, dict):
            return call, tool, {}, f"The arguments of a {call.name} call must be a JSON object; it was not run."
        try:
            args = validate_args(tool.parameters, args)
        except ArgumentError as exc:
            return call, tool, args, f"Invalid arguments for {call.name}: {exc}. The call was not run."
        return call, tool, args, ""

    async def _execute(
        self, call: ToolCallRequest, tool: Tool | None, args: dict[str, Any], error: str, emit: Emit
    ) -> ToolResult:
        CURRENT_TOOL_CALL.set((self.agent_id, call.id))  # this call's own task: hooks see which call they serve
        try:
            result = await self._checked_run(call, tool, args, error, emit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Whatever a call raises (the policy reading a path the OS refuses, a tool's own bug) is this
            # call's failure, told to the model; the run goes on. Nothing ran unless the tool had started.
            result = ToolResult(
                f"This {call.name} call failed unexpectedly: {type(exc).__name__}: {exc}. "
                "Check its arguments, or do it another way.",
                is_error=True,
            )
        emit(ev.ToolCallEnd(call.id, call.name, result, self.agent_id))
        return result

    async def _checked_run(
        self, call: ToolCallRequest, tool: Tool | None, args: dict[str, Any], error: str, emit: Emit
    ) -> ToolResult:
        """The call's result: its error as prepared, a gate's refusal, or the approved run with a note on
        repeats."""
        refusal = self.tool_gate(call.name) if self.tool_gate and tool is not None and not error else None
        if tool is None or error:
            result = ToolResult(error, is_error=True)
        elif refusal is not None:
            result = ToolResult(refusal, is_error=True)
        else:
            result = await self._approved_run(call, tool, args, emit)
            self.totals.tool_calls += 1
            signature = call.name + json.dumps(args, sort_keys=True, ensure_ascii=False)
            self._seen_calls[signature] += 1
            repeats = self._seen_calls[signature]
            # A call whose answer moved on (a background task's output, a page that changed) is not a loop.
            answer = hash(result.text)
            same = self._last_answer.get(signature, answer) == answer
            self._last_answer[signature] = answer
            if repeats >= REPEAT_WARNING_AT and same and not result.submitted:
                result.text += (
                    f"\n\nNote: you have made this exact {call.name} call {repeats} times in this task; "
                    "its result will not change. Try a different approach."
                )
            self._emit_todo(emit)
        return result

    async def _approved_run(self, call: ToolCallRequest, tool: Tool, args: dict[str, Any], emit: Emit) -> ToolResult:
        decision = self.policy.decide(tool, args, self.ctx)
        if decision.action == "ask":
            async with self._approval_lock:  # one question at a time, in call order
                decision = self.policy.decide(tool, args, self.ctx)  # an earlier answer may cover it now
                if decision.action == "ask":
                    remembers = ", ".join(self.policy.rule_texts(tool, args, self.ctx)) if decision.rememberable else ""
                    request = ev.ApprovalRequest(
                        call.id, call.name, args, tool.summary(args), decision.reason, self.agent_id,
                        decision.rememberable, remembers,
                    )
                    emit(request)
                    answer = await self.approver(request)
                    if not answer.approved:
                        why = f" Reason: {answer.feedback}" if answer.feedback else ""
                        return ToolResult(f"The user did not approve this {call.name} call; it was not run.{why}", is_error=True)
                    if decision.rememberable and answer.always:
                        self._keep_rule(tool, args, emit)
                    elif decision.rememberable and answer.remember:
                        self.policy.remember(tool, args, self.ctx)
        if decision.action == "deny":
            return self._refuse(call, tool, args, decision, emit)
        if self.before_write and not tool.read_only and isinstance(args.get("path"), str):
            with contextlib.suppress(ToolError, OSError):
                self.before_write(self.ctx.resolve(args["path"]))
        if tool.echoes_arguments:
            return ToolResult(call.arguments)
        ctx = self.ctx
        if decision.read_only_everything and ctx.sandbox is not None and ctx.sandbox.active:
            # Allowed only because it reads: the sandbox holds the workspace read-only too.
            ctx = replace(ctx, sandbox=replace(ctx.sandbox, read_only_everything=True))
        # Set in this call's own task, and for every call, so a check never outlives the call it serves.
        OPENED_CHECK.set(self._opened_check(tool, args, decision) if isinstance(args.get("path"), str) else None)
        try:
            return await tool.run(args, ctx)
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in one tool must not end the session
            return ToolResult(f"{call.name} failed unexpectedly: {type(exc).__name__}: {exc}", is_error=True)

    def _opened_check(self, tool: Tool, args: dict[str, Any], decided: Decision) -> Callable[[Path], None]:
        """The decision made again on the real path of what the tool opened: it must allow that file as the
        first decision allowed the path (a link swapped in since then must not lead anywhere else)."""

        def check(real: Path) -> None:
            again = self.policy.decide(tool, {**args, "path": str(real)}, self.ctx)
            same = again.action == "allow" or (again.action == decided.action == "ask" and again.reason == decided.reason)
            if not same:
                raise ToolError(
                    f"{args['path']} leads to {real} now, which is not what was decided on ({again.reason}); "
                    f"nothing was read or written"
                )

        return check

    def _refuse(self, call: ToolCallRequest, tool: Tool, args: dict[str, Any], decision: Decision, emit: Emit) -> ToolResult:
        emit(ev.Refused(call.id, call.name, tool.summary(args), decision.reason, self.agent_id))
        if decision.planning:
            return ToolResult(PLAN_REFUSAL.format(name=call.name), is_error=True)
        return ToolResult(
            f"This {call.name} call was refused and not run: {decision.reason}. It is not approved in this run; "
            "do what you can without it, and tell the user what they would have to run or allow.",
            is_error=True,
        )

    def _keep_rule(self, tool: Tool, args: dict[str, Any], emit: Emit) -> None:
        try:
            self.policy.keep_rule(tool, args, self.ctx)
        except Exception as exc:  # the call was approved; a rule that cannot be saved still covers this session
            self.policy.remember(tool, args, self.ctx)
            emit(ev.Error(f"could not save the rule for this project: {exc}", agent=self.agent_id))


def task_event(task: BackgroundTask) -> ev.TaskUpdate:
    return ev.TaskUpdate(
        task.id, task.command, task.state, task.exit_code, task.last_line, ports=list(task.ports)  # type: ignore[arg-type]
    )


def _summary(call: ToolCallRequest, tool: Tool | None, args: dict[str, Any]) -> str:
    """The call's one-line description; its name when the tool cannot describe these arguments."""
    if tool is None:
        return call.name
    try:
        return tool.summary(args)
    except Exception:  # the call itself then fails in _execute, where the model is told why
        return call.name


def _unusable(reply: Reply) -> str:
    """Why ``reply`` cannot count as an answer ("" when it can): cut off at the output limit, or empty."""
    if reply.finish_reason == "length":
        return 'the model\'s reply was cut off at the output limit (finish_reason "length")'
    if not reply.content.strip() and not reply.tool_calls:
        return "the model returned an empty reply (no text and no tool call)"
    return ""


def _approx_chars(message: Message) -> int:
    """Characters a message adds to the prompt; an image counts as its token budget, not its base64."""
    content = message.get("content")
    if isinstance(content, list):
        total = 0
        for part in content:
            total += len(part.get("text", "")) if part.get("type") == "text" else 4 * 1000
        return total + 16
    size = len(content) if isinstance(content, str) else 0
    for call in message.get("tool_calls") or []:
        size += len(call["function"]["arguments"]) + 40
    return size + len(message.get("reasoning_content", "")) + 16
