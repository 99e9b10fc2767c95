"""The agent loop: task → model reply → tool calls → results → … until submit, a final answer or a limit.

The loop prints nothing. It emits events (kimicode.agent.events) that front ends render, and asks for
approvals through the one callback it is given. What it calls lives next door: asking the model is
``_ask_model`` below, running tool calls is kimicode.agent.calls, what it says to the model is
kimicode.agent.notes, what a run used is kimicode.agent.accounting.

Invariants:
- Every run ends with exactly one ``Done``, emitted last; ``Done.result.usage`` holds the run's totals.
- The history is always valid to send: every assistant tool call is followed by one result per call (an
  interrupted call gets one too), and an empty or cut-off reply is never appended.
- Every message enters the history through ``_append``, so the session log (``on_message``) and the context
  estimate see each one exactly once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.agent import events as ev
from kimicode.agent import notes
from kimicode.agent.accounting import MIN_REPLY_TOKENS, ContextMeter, RunTotals, reply_budget
from kimicode.agent.callbacks import CURRENT_EMIT, CURRENT_STEP, Approver, Emit, ToolGate, refuse_all
from kimicode.agent.calls import ToolCalls
from kimicode.agent.context import DEFAULT_COMPACT_THRESHOLD, CompactionResult, should_compact
from kimicode.agent.folding import Folder
from kimicode.agent.stream import pulled
from kimicode.llm.client import ChatClient, ContextOverflowError, LLMError, Reply
from kimicode.llm.messages import Image, Message, assistant_message, system_message, tool_messages, user_message
from kimicode.security.policy import Policy
from kimicode.tools.base import Tool, ToolContext
from kimicode.tools.todo import TodoList

if TYPE_CHECKING:
    from kimicode.extensions.hooks import Hooks
    from kimicode.tools.background import BackgroundTask

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
    # The run's hooks (kimicode.extensions.hooks); fired here and by the tool calls.
    hooks: Hooks | None = None

    def __post_init__(self) -> None:
        # One conversation, one record of the pictures it was shown and one todo list (sub-agents and /new
        # start empty); everything else in the context (workspace, file locks, background tasks) stays shared.
        todo = TodoList()
        todo.items = [dict(item) for item in self.todo_items]
        self.ctx = replace(self.ctx, shown_images={}, todo=todo)
        self._todo_version = todo.version
        self._calls = ToolCalls(self)
        # Messages the user sent into the running turn, delivered before the next request (``steer``).
        self._steering: list[str] = []
        self._planning_said = False  # the history's last word on plan mode is that it is on
        self.running = False
        self._meter = ContextMeter(self.messages)
        self._folder = Folder()  # what is sent of old tool results (the history keeps them whole)
        if not self.messages:
            self._append(system_message(self.system_prompt))

    # -- the loop --------------------------------------------------------------------------------------

    def run(
        self, task: str, images: list[Image] | None = None, parts: list[dict[str, Any]] | None = None
    ) -> AsyncGenerator[ev.Event, None]:
        """Run one task; yields events, the last one always ``Done``. Closing the iterator cancels the run.

        ``images`` and other content ``parts`` (e.g. an uploaded video) go into the task's user message.
        """
        return pulled(lambda emit: self.drive(task, emit, images, parts))

    async def drive(
        self, task: str, emit: Emit, images: list[Image] | None = None, parts: list[dict[str, Any]] | None = None
    ) -> None:
        """Run one task, handing every event to ``emit`` the moment it happens (``Done`` last); cancelling
        the caller cancels the run. For a front end that must not lose an event a cancel cuts off (``run``
        hands events over only as fast as they are read)."""
        started = time.monotonic()
        CURRENT_EMIT.set(emit)
        self._stop_continued = False
        if self.hooks is not None and not self.agent_id:
            resumed = any(m.get("role") == "assistant" for m in self.messages)
            task, dropped = await self.hooks.before_prompt(self.session_id, task, resumed, self._hook_teller(emit))
            if dropped:  # a UserPromptSubmit hook refused the prompt: it never reaches the model
                emit(ev.Error(f"prompt blocked by a hook: {dropped}", agent=self.agent_id))
                blocked = ev.RunResult("error", dropped, submitted=False, num_steps=0)
                blocked.usage = self.totals.as_dict()
                emit(ev.Done(blocked))
                return
        self._append(user_message(task, images, parts))
        self.running = True
        # The main agent reports the session's background tasks as they change (sub-agents share them).
        tasks = self.ctx.tasks
        unsubscribe = tasks.subscribe(lambda t: emit(task_event(t))) if tasks is not None and not self.agent_id else None
        try:
            result = await self._steps(emit)
        finally:
            self.running = False
            if unsubscribe is not None:
                unsubscribe()
        result.usage = self.totals.as_dict()
        result.duration_ms = int((time.monotonic() - started) * 1000)
        if self.on_done:
            self.on_done(result)
        emit(ev.Done(result))

    async def _steps(self, emit: Emit) -> ev.RunResult:
        """Step until the model submits, answers without a tool call, fails or runs out of steps."""
        steps = 0
        last_text = ""
        retried_unusable = False  # the previous reply was empty or cut off and was asked again
        try:
            while steps < self.max_steps:
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
                        return ev.RunResult("error", message, submitted=False, num_steps=steps)
                    retried_unusable = True
                    emit(ev.Error(f"{problem}; asking it once more", True, self.agent_id))
                    length = reply.finish_reason == "length"
                    self._append(user_message(notes.LENGTH_REPLY_NOTE if length else notes.EMPTY_REPLY_NOTE))
                    continue
                retried_unusable = False
                last_text = reply.content or last_text
                self._append(assistant_message(reply.content, [c.wire() for c in reply.tool_calls], reply.reasoning))
                if not reply.tool_calls:
                    if self._steering or await self._stop_hooks(reply.content, emit):
                        continue  # the user spoke while the model answered, or a Stop hook wants more
                    return ev.RunResult("success", reply.content, submitted=False, num_steps=steps)
                submitted = await self._run_calls(reply, emit)
                if (halted := self._calls.take_stop()) is not None:  # a PostToolUse hook's continue: false
                    return ev.RunResult("success", halted, submitted=False, num_steps=steps)
                if submitted is not None and not self._steering and not await self._stop_hooks(submitted, emit):
                    return ev.RunResult("success", submitted, submitted=True, num_steps=steps)
        except LLMError as err:
            emit(ev.Error(err.message, agent=self.agent_id))
            result = ev.RunResult("error", err.message, submitted=False, num_steps=steps)
            if err.kind:  # "auth", "connection": what a script reading the result can act on
                result.extra["error_kind"] = err.kind
            return result
        stopped = last_text or f"stopped after the step limit ({self.max_steps} steps)"
        return ev.RunResult("error_max_steps", stopped, submitted=False, num_steps=steps)

    async def _run_calls(self, reply: Reply, emit: Emit) -> str | None:
        """Run the reply's tool calls; their results join the history in the calls' order. Returns the
        summary of a successful submit among them, else None."""
        try:
            results = await self._calls.run(reply.tool_calls, emit)
        except asyncio.CancelledError:  # keep the history valid for the next turn
            for call in reply.tool_calls:
                for message in tool_messages(call.id, notes.INTERRUPTED_CALL):
                    self._append(message)
            raise
        for call, result in zip(reply.tool_calls, results, strict=True):
            for message in tool_messages(call.id, result.text, result.images):
                self._append(message)
        return next((r.text for r in results if r.submitted and not r.is_error), None)

    # -- hooks -------------------------------------------------------------------------------------------

    async def _stop_hooks(self, last: str, emit: Emit) -> bool:
        """Stop (SubagentStop for a sub-agent): True when a hook sends the agent on. Once per turn: the
        second time, the hooks are told (``stop_hook_active``) and the turn ends whatever they answer."""
        if self.hooks is None:
            return False
        already = self._stop_continued
        why = await self.hooks.stop(self.session_id, bool(self.agent_id), already, last, self._hook_teller(emit))
        if not why or already:
            return False
        self._stop_continued = True
        self._append(user_message(why))
        return True

    def _hook_teller(self, emit: Emit) -> Callable[[str], None]:
        return lambda message: emit(ev.Error(message, True, self.agent_id))

    # -- the history -----------------------------------------------------------------------------------

    def _append(self, message: Message) -> None:
        self.messages.append(message)
        self._meter.add(message)
        if self.on_message:
            self.on_message(message)

    def _before_request(self, emit: Emit) -> None:
        """What the model must know before this step's request: a change of stance, the user's new words."""
        planning = self.policy.stance == "plan"
        if planning != self._planning_said:
            self._planning_said = planning
            self._append(user_message(notes.PLAN_MODE_ON_NOTE if planning else notes.PLAN_MODE_OFF_NOTE))
        while self._steering:
            text = self._steering.pop(0)
            self._append(user_message(text))
            emit(ev.Steered(text, self.agent_id))

    @property
    def context_tokens(self) -> int:
        """Tokens the next request will carry: the last reported count plus what was added since."""
        return self._meter.tokens

    async def compact(self, emit: Emit | None = None, instruction: str = "", auto: bool = False) -> ev.Compacted | None:
        """Summarise older history now (keeping what ``instruction`` asks for); None when there was nothing
        old enough to summarise."""
        from kimicode.agent.compaction import compact_history

        if self.hooks is not None and self.hooks.has("PreCompact"):
            trigger = "auto" if auto else "manual"
            fields = {"trigger": trigger, "custom_instructions": instruction}
            await self.hooks.event("PreCompact", self.session_id, fields, self._hook_teller(emit or _ignore), trigger)
        outcome = await compact_history(self.client, self.messages, self.session_id, instruction)
        if not outcome.replaced_count:
            return None
        self.messages[:] = outcome.messages
        self._meter.restart(self.messages)
        self.ctx.shown_images.clear()  # the summary dropped the pictures: an identical capture is news again
        if self.on_compacted:
            self.on_compacted(outcome)
        event = ev.Compacted(outcome.tokens_before, outcome.tokens_after, outcome.summary)
        if emit:
            emit(event)
        return event

    # -- the user speaking into a running turn ---------------------------------------------------------

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

    # -- what the model is offered and told ------------------------------------------------------------

    def current_tools(self) -> dict[str, Tool]:
        """The fixed tools the model is offered now (the plan hand-over only in plan mode, the task tools once
        there is a task: ``Tool.offered``) plus whatever ``extra_tools`` offers; a fixed tool keeps its name."""
        stance = self.policy.stance
        merged = {name: tool for name, tool in self.tools.items() if tool.offered(self.ctx, stance)}
        if self.extra_tools is not None:
            for tool in self.extra_tools():
                merged.setdefault(tool.name, tool)
        return merged

    def tool_schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self.current_tools().values()]

    def report_todo(self, emit: Emit) -> None:
        """Tell the front end and the session log when a tool call changed the todo list."""
        todo = self.ctx.todo
        if todo is None or todo.version == self._todo_version:
            return
        self._todo_version = todo.version
        items = todo.snapshot()
        emit(ev.TodoUpdate(items, self.agent_id))
        if self.on_todo:
            self.on_todo(items)

    # -- asking the model ------------------------------------------------------------------------------

    async def _ask_model(self, emit: Emit) -> Reply:
        """One reply, compacting the history first when it is nearly full, and once more when the endpoint
        says it overflowed."""
        from kimicode.agent.context import CompactionError

        if should_compact(self.context_tokens, self.client.profile.context_window, self.compact_threshold):
            try:
                await self.compact(emit, auto=True)
            except (LLMError, CompactionError) as err:  # carry on uncompacted; the overflow path retries
                emit(ev.Error(f"could not compact the history: {getattr(err, 'message', err)}", agent=self.agent_id))
        try:
            return await self._ask_model_once(emit)
        except ContextOverflowError as err:
            if err.prompt_tokens:  # the endpoint's count beats the estimate
                self._meter.count(err.prompt_tokens)
            if err.limit and err.prompt_tokens and err.prompt_tokens + MIN_REPLY_TOKENS < err.limit:
                # The prompt fits; only the room asked for the reply did not. Ask again within the
                # window the endpoint stated (the client now knows it) before summarising anything.
                try:
                    return await self._ask_model_once(emit)
                except ContextOverflowError:
                    pass
            try:
                compacted = await self.compact(emit, auto=True)
            except CompactionError:
                compacted = None
            if compacted is None:
                raise
            return await self._ask_model_once(emit)

    async def _ask_model_once(self, emit: Emit) -> Reply:
        await self.client.ready()  # the endpoint may report a window the profile does not know
        profile = self.client.profile
        schemas = self.tool_schemas()
        unmeasured = 0 if self._meter.measured else len(json.dumps(schemas)) // 4
        max_tokens = reply_budget(profile.context_window, profile.max_output_tokens, self.context_tokens, unmeasured)
        agent = self.agent_id
        reply = await self.client.complete(
            self._folder.request(self.messages),
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
        self.totals.add(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, cost)
        if usage.prompt_tokens:
            self._meter.count(usage.prompt_tokens + usage.completion_tokens)
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


def task_event(task: BackgroundTask) -> ev.TaskUpdate:
    return ev.TaskUpdate(
        task.id, task.command, task.state, task.exit_code, task.last_line, ports=list(task.ports)  # type: ignore[arg-type]
    )


def _ignore(event: ev.Event) -> None:
    return None


def _unusable(reply: Reply) -> str:
    """Why ``reply`` cannot count as an answer ("" when it can): cut off at the output limit, or empty."""
    if reply.finish_reason == "length":
        return 'the model\'s reply was cut off at the output limit (finish_reason "length")'
    if not reply.content.strip() and not reply.tool_calls:
        return "the model returned an empty reply (no text and no tool call)"
    return ""
