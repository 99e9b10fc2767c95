"""One editor session: the shared run assembly (runtime, MCP servers, agent) driven by ACP requests.

A session's parts live in a task of their own for the session's whole life (MCP servers enter and leave
their contexts in one task). A prompt runs the agent in a child task, so ``session/cancel`` can cancel
the turn — the running command is killed with it — and the prompt still answers, with ``cancelled``.
Every event of the turn becomes a ``session/update``; approvals become ``session/request_permission``
and their answers go into the same policy as the REPL's (allow always = the REPL's "a": this session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp import RequestError
from acp import helpers as h
from acp.schema import (
    AllowedOutcome,
    AvailableCommand,
    AvailableCommandInput,
    ClientCapabilities,
    ConfigOptionUpdate,
    PermissionOption,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionMode,
    SessionModeState,
    ToolCallUpdate,
    UnstructuredCommandInput,
)

from kimicode.agent import events as ev
from kimicode.agent.loop import Agent
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.runtime import Runtime
from kimicode.config import MODES, Config
from kimicode.frontends.acp.editor import EditorFiles, EditorTerminals, call_key
from kimicode.frontends.acp.prompt import prompt_input
from kimicode.frontends.acp.toolcalls import (
    EDIT_TOOLS,
    diff_contents,
    replay,
    result_contents,
    tool_kind,
    tool_locations,
    tool_title,
)
from kimicode.frontends.common.media import MediaError
from kimicode.frontends.common.sessions import OpenedSession
from kimicode.mcp.server_config import McpServerConfig

if TYPE_CHECKING:
    from kimicode.tools.propose_plan import PlanReview

log = logging.getLogger("kimicode.acp")

PLAN = "plan"

# What each mode offers (DESIGN.md B.7). A mode added to config.MODES shows up in the editor's mode picker
# by itself; a line here gives it its description.
MODE_INFO = {
    "instant": ("Instant", "No thinking; the SWE tools (bash, view, edits)"),
    "thinking": ("Thinking", "Thinks before it acts; the SWE tools"),
    "agent": ("Agent", "Thinking, the SWE tools, screenshot, skills and MCP tools"),
    "swarm": ("Swarm", "Agent, plus sub-agents that work in parallel (spawn_agents)"),
    PLAN: ("Plan", "Reads and plans, changes nothing; the plan is proposed for approval before any work"),
}
# Editors show one mode picker; plan mode is the policy's stance rather than a set of tools, so picking it
# keeps the current mode's tools and picking a mode again leaves plan mode.
ACP_MODES = (*MODES, PLAN)
# The approval stance (the REPL's Shift-Tab), also offered as an option of its own.
STANCE_INFO = {"ask": "Ask before edits and commands", "auto-edit": "Edit without asking; ask before commands", PLAN: "Plan only"}
# Slash commands that make sense in an editor (its own UI does sessions, undo and diffs).
COMMANDS = {
    "compact": ("Summarise older history now to free context", None),
    "mode": ("Show or switch the mode", "instant, thinking, agent, swarm or plan"),
    "model": ("Show or switch the model", "a model name"),
    "cost": ("Tokens and cost of this session so far", None),
}
# How long a finished or cancelled turn waits for its last updates to reach the editor (seconds).
FLUSH_TIMEOUT = 5.0
STOP_REASONS = {"success": "end_turn", "error_max_steps": "max_turn_requests", "interrupted": "cancelled"}


def _mode_info(mode: str) -> tuple[str, str | None]:
    name, description = MODE_INFO.get(mode, (mode.title(), ""))
    return name, description or None


def current_mode(config: Config, stance: str) -> str:
    """The mode id the editor shows: plan mode while the stance is "plan", else the run's mode."""
    return PLAN if stance == PLAN else config.mode


def session_modes(current: str) -> SessionModeState:
    modes = [SessionMode(id=mode, name=_mode_info(mode)[0], description=_mode_info(mode)[1]) for mode in ACP_MODES]
    return SessionModeState(current_mode_id=current, available_modes=modes)


def config_options(config: Config, stance: str = "ask") -> list[SessionConfigOptionSelect]:
    from kimicode.llm.profiles import known_models

    models = [config.model, *(m for m in known_models() if m != config.model)]
    return [
        SessionConfigOptionSelect(
            type="select",
            id="mode",
            name="Mode",
            category="mode",
            current_value=current_mode(config, stance),
            options=[SessionConfigSelectOption(value=mode, name=_mode_info(mode)[0]) for mode in ACP_MODES],
        ),
        SessionConfigOptionSelect(
            type="select",
            id="approvals",
            name="Approvals",
            current_value=stance,
            options=[SessionConfigSelectOption(value=value, name=name) for value, name in STANCE_INFO.items()],
        ),
        SessionConfigOptionSelect(
            type="select",
            id="model",
            name="Model",
            category="model",
            current_value=config.model,
            options=[SessionConfigSelectOption(value=model, name=model) for model in models],
        ),
    ]


def available_commands() -> list[AvailableCommand]:
    return [
        AvailableCommand(
            name=name,
            description=description,
            input=AvailableCommandInput(UnstructuredCommandInput(hint=hint)) if hint else None,
        )
        for name, (description, hint) in COMMANDS.items()
    ]


def mcp_servers_from_client(servers: Sequence[Any] | None) -> list[McpServerConfig]:
    """The servers an editor passes (stdio, http, sse), in kimicode's form."""
    converted: list[McpServerConfig] = []
    for server in servers or []:
        kind = getattr(server, "type", None)
        if kind in ("http", "sse"):
            headers = {header.name: header.value for header in server.headers or []}
            converted.append(McpServerConfig(server.name, kind, url=server.url, headers=headers, source="editor"))
        elif getattr(server, "command", None):
            env = {variable.name: variable.value for variable in server.env or []}
            converted.append(
                McpServerConfig(server.name, "stdio", command=server.command, args=list(server.args or []), env=env, source="editor")
            )
        else:
            log.info("MCP server %s of type %s not supported; skipped", getattr(server, "name", "?"), kind)
    return converted


class AcpSession:
    def __init__(
        self,
        conn: Any,
        client: ClientCapabilities,
        config: Config,
        opened: OpenedSession,
        client_mcp: list[McpServerConfig],
    ) -> None:
        self.conn = conn
        self.config = config
        self.opened = opened
        self.id = opened.session.id
        self.client_mcp = client_mcp
        fs = client.fs
        self.files = EditorFiles(
            conn, self.id, config.work_dir, bool(fs and fs.read_text_file), bool(fs and fs.write_text_file)
        )
        self.terminals = EditorTerminals(conn, self.id, self._show_terminal) if client.terminal else None
        self.runtime: Runtime
        self.agent: Agent
        self.mcp: Any = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._owner: asyncio.Task[None] | None = None
        self._turn: asyncio.Task[ev.RunResult | None] | None = None
        self._cancelled = False
        self._asked: dict[str, asyncio.Event] = {}  # approvals wait until their call is on screen
        self._shown: dict[str, asyncio.Event] = {}  # calls the editor was told about, until they end
        self._open_calls: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (tool, args) until it ends
        self._notices: list[str] = []
        self._announced = False
        self._first_runtime: Runtime  # the assembly's own: it closes that one when the session ends

    # -- life -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._owner = asyncio.create_task(self._own(), name=f"acp-session-{self.id}")
        await asyncio.shield(self._ready)

    async def _own(self) -> None:
        from kimicode.frontends.common.assembly import assembled_run

        try:
            async with assembled_run(
                self.config,
                self.opened,
                self.approve,
                report=self.notify,
                headless=False,
                mcp_wait=0,  # a prompt waits for them instead (see _wait_for_mcp): session/new answers at once
                extra_mcp=self.client_mcp,
                adapt_runtime=self._adapt,
            ) as run:
                self.runtime, self.agent, self.mcp = run.runtime, run.agent, run.mcp
                self._first_runtime = run.runtime
                self._prepare_client()
                self._ready.set_result(None)
                await self._closing.wait()
                if self.runtime is not run.runtime:  # a mode switch replaced it: its client is this one's own
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

    def _prepare_client(self) -> None:
        """The model client's set-up, off the event loop while the user types (the first prompt is then as
        quick as the others)."""
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.runtime.client.prepare))
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # a failure shows at the request

    def _adapt(self, runtime: Runtime) -> None:
        runtime.ctx.files = self.files
        runtime.ctx.commands = self.terminals
        runtime.ctx.review_plan = self.review_plan

    async def close(self) -> None:
        self.cancel()
        if self._turn is not None:
            with contextlib.suppress(BaseException):
                await self._turn
        self._closing.set()
        if self._owner is not None:
            with contextlib.suppress(BaseException):
                await self._owner

    # -- what the editor is told outside a turn ------------------------------------------------------

    async def send(self, update: Any) -> None:
        try:
            await self.conn.session_update(session_id=self.id, update=update)
        except ConnectionError:
            log.info("session %s: the editor is gone; update dropped", self.id)

    def notify(self, text: str) -> None:
        """A one-line notice for the user (an MCP server failed, settings ignored): said once the editor
        knows the session, as a line of the agent's."""
        log.info("session %s: %s", self.id, text)
        if not self._announced:
            self._notices.append(text)
            return
        asyncio.get_running_loop().create_task(self.send(h.update_agent_message_text(f"_kimicode: {text}_\n\n")))

    async def announce(self) -> None:
        """Right after session/new or session/load answered: commands, then what was noted meanwhile."""
        self._announced = True
        await self.send(h.update_available_commands(available_commands()))
        for text in self._notices:
            await self.send(h.update_agent_message_text(f"_kimicode: {text}_\n\n"))
        self._notices.clear()

    async def replay(self) -> None:
        for update in replay(self.opened.history, self.agent.current_tools(), self.config.work_dir):
            await self.send(update)

    # -- modes and models ----------------------------------------------------------------------------

    @property
    def stance(self) -> str:
        return self.agent.policy.stance

    async def set_mode(self, mode: str) -> None:
        """One of the four modes (its tools; leaves plan mode), or "plan" (the stance; the tools stay)."""
        from kimicode.frontends.common.assembly import rebuilt_for_mode

        if mode not in ACP_MODES:
            raise RequestError.invalid_params({"modeId": f"unknown mode '{mode}': use one of {', '.join(ACP_MODES)}"})
        if self._turn is not None and not self._turn.done():
            raise RequestError.invalid_request({"details": "a turn is running; switch modes when it has ended"})
        if mode == PLAN:
            self.agent.policy.stance = PLAN
            return
        if self.stance == PLAN:
            self.agent.policy.stance = "ask"
        if mode == self.config.mode:
            return
        self.config.mode = mode
        previous = self.runtime
        model = previous.model.for_model(self.config) if previous.model is not None else None
        extra = {"extra_tools": self.mcp.tools} if self.mcp is not None else {}
        self.runtime, self.agent = rebuilt_for_mode(
            self.config,
            self.id,
            self.agent,
            self.approve,
            adapt_runtime=self._adapt,
            tasks=previous.ctx.tasks,  # the session's background tasks carry on
            model=model,
            **extra,
        )
        self._prepare_client()
        if previous is not self._first_runtime:  # the first one is closed with the session's assembly
            await previous.aclose()

    def set_stance(self, stance: str) -> None:
        if stance not in STANCE_INFO:
            raise RequestError.invalid_params({"value": f"unknown approvals '{stance}': use one of {', '.join(STANCE_INFO)}"})
        if self._turn is not None and not self._turn.done():
            raise RequestError.invalid_request({"details": "a turn is running; change approvals when it has ended"})
        self.agent.policy.stance = stance

    async def set_model(self, name: str) -> None:
        """Another model at the same endpoint: a new client (what is known about the endpoint carries over)."""
        if not name.strip():
            raise RequestError.invalid_params({"value": "give a model name"})
        self.config.model = name.strip()
        previous = self.runtime.switch_model()
        self.agent.client = self.runtime.client
        self._prepare_client()
        if previous is not self._first_runtime.client:
            await previous.aclose()

    async def mode_changed(self) -> None:
        await self.send(h.update_current_mode(current_mode(self.config, self.stance)))
        await self.options_changed()

    async def options_changed(self) -> None:
        options = config_options(self.config, self.stance)
        await self.send(ConfigOptionUpdate(session_update="config_option_update", config_options=options))

    # -- plan mode -----------------------------------------------------------------------------------

    async def review_plan(self, plan: str) -> PlanReview:
        """propose_plan's question, as a permission request on its tool call: start asking before edits,
        start with edits allowed, or keep planning."""
        from kimicode.tools.base import CURRENT_TOOL_CALL
        from kimicode.tools.propose_plan import PlanReview

        key = call_key(*CURRENT_TOOL_CALL.get())
        await self._shown.setdefault(key, asyncio.Event()).wait()  # the call is on the editor's screen
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
            response = await self.conn.request_permission(session_id=self.id, tool_call=tool_call, options=options)
        except (RequestError, ConnectionError) as exc:
            log.info("session/request_permission failed: %s", exc)
            return PlanReview(False, plan, feedback="the editor did not answer")
        outcome = response.outcome
        chosen = outcome.option_id if isinstance(outcome, AllowedOutcome) else ""
        if chosen not in ("start_ask", "start_auto_edit"):
            return PlanReview(False, plan, feedback="The user wants to keep planning.")
        stance = "auto-edit" if chosen == "start_auto_edit" else "ask"
        self.agent.policy.stance = stance
        await self.mode_changed()
        return PlanReview(True, plan, stance=stance)

    # -- a turn --------------------------------------------------------------------------------------

    async def prompt(self, blocks: list[Any]) -> str:
        if self._turn is not None and not self._turn.done():
            raise RequestError.invalid_request({"details": "a turn is already running in this session"})
        try:
            text, images = await prompt_input(self.config, blocks, self.files, self.agent.client.profile)
        except MediaError as exc:
            raise RequestError.invalid_params({"prompt": str(exc)}) from None
        command = _slash_command(text)
        if command is not None:
            await self._command(*command)
            return "end_turn"
        self._cancelled = False
        self._turn = asyncio.create_task(self._consume(text, images))
        try:
            result = await self._turn
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if self._cancelled and this is not None and not this.cancelling():
                await self._end_open_calls("cancelled by the user")
                return "cancelled"
            self._turn.cancel()
            raise
        finally:
            self._turn = None
        await self._end_open_calls("the turn ended before this call finished")
        return await self._outcome(result)

    def cancel(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._cancelled = True
            self._turn.cancel()

    async def _wait_for_mcp(self) -> None:
        """Servers still starting get up to mcp_startup_wait before the first request, as in a headless run."""
        if self.mcp is None or all(status.state != "starting" for status in self.mcp.status()):
            return
        if not await self.mcp.wait_ready(self.config.mcp_startup_wait):
            self.notify(f"MCP servers still starting after {self.config.mcp_startup_wait:g} s; their tools join when ready")

    async def _consume(self, text: str, images: list[Any]) -> ev.RunResult | None:
        await self._wait_for_mcp()  # inside the turn: a cancel ends the wait too
        results: list[ev.RunResult] = []
        # Every event goes into the outbox as it happens and a task of its own sends them in order: a slow
        # editor never holds the run back, and a cancel still tells the editor about the call it ended.
        outbox: asyncio.Queue[ev.Event | None] = asyncio.Queue()

        def emit(event: ev.Event) -> None:
            if isinstance(event, ev.Done):
                results.append(event.result)
            else:
                outbox.put_nowait(event)

        sender = asyncio.create_task(self._send_in_order(outbox), name=f"acp-updates-{self.id}")
        try:
            await self.agent.drive(text, emit, images or None)
        finally:
            outbox.put_nowait(None)
            try:
                await asyncio.wait_for(sender, FLUSH_TIMEOUT)
            except asyncio.TimeoutError:
                sender.cancel()
            except asyncio.CancelledError:  # cancelled again while flushing: stop now
                sender.cancel()
                raise
        return results[0] if results else None

    async def _send_in_order(self, outbox: asyncio.Queue[ev.Event | None]) -> None:
        while (event := await outbox.get()) is not None:
            await self._forward(event)

    async def _outcome(self, result: ev.RunResult | None) -> str:
        if result is None:
            raise RequestError.internal_error({"details": "the turn ended without a result"})
        if result.subtype == "error":
            if result.extra.get("error_kind") == "auth":
                raise RequestError(-32000, f"the endpoint rejected the API key: {result.result}", {"details": result.result})
            raise RequestError(-32603, result.result, {"details": result.result})
        if result.submitted and result.result:
            await self.send(h.update_agent_message_text(f"\n\n{result.result}"))
        return STOP_REASONS.get(result.subtype, "end_turn")

    async def _forward(self, event: ev.Event) -> None:
        if isinstance(event, ev.TextDelta):
            if not event.agent:
                await self.send(h.update_agent_message_text(event.text))
        elif isinstance(event, ev.ThinkingDelta):
            if not event.agent:
                await self.send(h.update_agent_thought_text(event.text))
        elif isinstance(event, ev.ToolCallStart):
            await self._call_started(event)
        elif isinstance(event, ev.ApprovalRequest):
            self._asked.setdefault(call_key(event.agent, event.call_id), asyncio.Event()).set()
        elif isinstance(event, ev.ToolCallEnd):
            await self._call_ended(event)
        elif isinstance(event, ev.TodoUpdate):
            if not event.agent:
                await self.send(h.update_plan(plan_entries(event.items)))
        elif isinstance(event, ev.Error) and event.retrying and not event.agent:
            await self.send(h.update_agent_thought_text(f"\n({event.message})\n"))

    async def _call_started(self, event: ev.ToolCallStart) -> None:
        key = call_key(event.agent, event.call_id)
        self._open_calls[key] = (event.name, event.args)
        workspace = self.config.work_dir
        title = tool_title(event.name, event.args, workspace, self.agent.current_tools().get(event.name))
        if event.agent:
            title = f"[{event.agent}] {title}"
        await self.send(
            h.start_tool_call(
                key,
                title,
                kind=tool_kind(event.name, event.args),  # type: ignore[arg-type]
                status="pending",
                locations=tool_locations(event.name, event.args, workspace),
                raw_input=event.args,
            )
        )
        self._shown.setdefault(key, asyncio.Event()).set()

    async def _call_ended(self, event: ev.ToolCallEnd) -> None:
        key = call_key(event.agent, event.call_id)
        self._shown.pop(key, None)
        name, args = self._open_calls.pop(key, (event.name, {}))
        status = "failed" if event.result.is_error else "completed"
        writes = self.files.written.pop(key, [])
        terminal = self.terminals.used.pop(key, None) if self.terminals is not None else None
        if writes:
            diffs, places = diff_contents(writes)
            await self.send(h.update_tool_call(key, status=status, content=diffs, locations=places))
        elif terminal is not None:
            output = {"output": event.result.text}
            await self.send(h.update_tool_call(key, status=status, content=[h.tool_terminal_ref(terminal)], raw_output=output))
        else:
            contents = result_contents(name, tool_kind(name, args), event.result)
            await self.send(h.update_tool_call(key, status=status, content=contents))

    async def _end_open_calls(self, why: str) -> None:
        for key in list(self._open_calls):
            self._open_calls.pop(key)
            self.files.written.pop(key, None)
            await self.send(h.update_tool_call(key, status="failed", content=[h.tool_content(h.text_block(why))]))

    async def _show_terminal(self, key: str, terminal: str) -> None:
        await self.send(h.update_tool_call(key, status="in_progress", content=[h.tool_terminal_ref(terminal)]))

    # -- approvals -----------------------------------------------------------------------------------

    async def approve(self, request: ev.ApprovalRequest) -> ApprovalDecision:
        key = call_key(request.agent, request.call_id)
        await self._asked.setdefault(key, asyncio.Event()).wait()
        self._asked.pop(key, None)
        options = [PermissionOption(option_id="allow_once", name="Allow once", kind="allow_once")]
        if request.rememberable:
            options.append(PermissionOption(option_id="allow_always", name=self._always_label(request), kind="allow_always"))
        options.append(PermissionOption(option_id="reject", name="Reject", kind="reject_once"))
        workspace = self.config.work_dir
        title = tool_title(request.tool, request.args, workspace, self.agent.current_tools().get(request.tool))
        tool_call = ToolCallUpdate(
            tool_call_id=key,
            title=f"{title} — {request.reason}" if request.reason else title,
            kind=tool_kind(request.tool, request.args),  # type: ignore[arg-type]
            status="pending",
            content=await self._preview(request) or None,
            locations=tool_locations(request.tool, request.args, workspace) or None,
            raw_input=request.args,
        )
        try:
            response = await self.conn.request_permission(session_id=self.id, tool_call=tool_call, options=options)
        except (RequestError, ConnectionError) as exc:
            log.info("session/request_permission failed: %s", exc)
            return ApprovalDecision(False, "the editor did not answer the approval question")
        outcome = response.outcome
        chosen = outcome.option_id if isinstance(outcome, AllowedOutcome) else ""
        if chosen not in ("allow_once", "allow_always"):
            why = "The user cancelled the turn." if outcome.outcome == "cancelled" else ""
            return ApprovalDecision(False, why)
        await self.send(h.update_tool_call(key, status="in_progress"))
        return ApprovalDecision(True, remember=chosen == "allow_always")

    def _always_label(self, request: ev.ApprovalRequest) -> str:
        tool = self.agent.current_tools().get(request.tool)
        texts = self.agent.policy.rule_texts(tool, request.args, self.agent.ctx) if tool is not None else []
        what = ", ".join(texts)
        return f"Always allow {what} in this session" if what and len(what) <= 60 else "Always allow in this session"

    async def _preview(self, request: ev.ApprovalRequest) -> list[Any]:
        """The diff an edit waiting for approval would make, so the user sees what they allow."""
        if request.tool not in EDIT_TOOLS or not isinstance(request.args.get("path"), str):
            return []
        from kimicode.tools.base import ToolError

        try:
            path = self.agent.ctx.resolve(request.args["path"])
        except ToolError:
            return []
        before = await self.files.current_text(path) if path.is_file() else None
        after = edited_text(request.tool, request.args, before)
        if after is None:
            return []
        return [h.tool_diff_content(str(path), after, before)]

    # -- slash commands ------------------------------------------------------------------------------

    async def _command(self, name: str, arg: str) -> None:
        say = lambda text: self.send(h.update_agent_message_text(text))  # noqa: E731
        if name == "compact":
            try:
                event = await self.agent.compact()
            except Exception as exc:
                await say(f"Could not compact: {getattr(exc, 'message', exc)}")
                return
            await say("Nothing to compact yet." if event is None else f"Compacted: {event.tokens_before:,} → {event.tokens_after:,} tokens.")
        elif name == "mode":
            if arg:
                await self.set_mode(arg)
                await self.mode_changed()
            tools = ", ".join(self.agent.current_tools())
            await say(f"Mode: {self.config.mode} (thinking {'on' if self.agent.thinking else 'off'}). Tools: {tools}.")
        elif name == "model":
            if arg:
                await self.set_model(arg)
                await self.options_changed()
            await say(f"Model: {self.config.model} at {self.config.base_url}.")
        elif name == "cost":
            totals = self.agent.totals
            await say(
                f"{totals.prompt_tokens:,} input tokens ({totals.cached_tokens:,} cached), "
                f"{totals.completion_tokens:,} output tokens, {totals.tool_calls} tool calls, ${totals.cost:.4f}."
            )


def _slash_command(text: str) -> tuple[str, str] | None:
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    return (head, rest.strip()) if head in COMMANDS else None


def plan_entries(items: list[dict[str, str]]) -> list[Any]:
    """A todo list as the editor's plan: pending, in progress, completed."""
    statuses = {"pending": "pending", "in_progress": "in_progress", "done": "completed", "completed": "completed"}
    return [
        h.plan_entry(str(item.get("content", "")), status=statuses.get(str(item.get("status")), "pending"))  # type: ignore[arg-type]
        for item in items
    ]


def edited_text(tool: str, args: dict[str, Any], before: str | None) -> str | None:
    """The text an edit call would leave (None when it would fail: no unique match, a bad line)."""
    from kimicode.tools.insert import insert_after_line
    from kimicode.tools.strreplace import match_starts

    if tool == "createfile":
        content = args.get("content")
        return content if isinstance(content, str) else None
    if before is None:
        return None
    text = before.replace("\r\n", "\n")
    if tool == "strreplace":
        old, new = args.get("old_str"), args.get("new_str")
        if not isinstance(old, str) or not isinstance(new, str) or not old:
            return None
        starts = match_starts(text, old.replace("\r\n", "\n"))
        if len(starts) != 1:
            return None
        return text[: starts[0]] + new.replace("\r\n", "\n") + text[starts[0] + len(old.replace("\r\n", "\n")) :]
    if tool == "insert":
        line, new = args.get("insert_line"), args.get("new_str")
        if not isinstance(line, int) or not isinstance(new, str) or not new:
            return None
        return insert_after_line(text, line, new.replace("\r\n", "\n"))
    return None


def workspace_of(cwd: str) -> Path:
    """The session's workspace from the editor's ``cwd``: absolute and an existing directory."""
    path = Path(cwd)
    if not path.is_absolute():
        raise RequestError.invalid_params({"cwd": f"cwd must be an absolute path, got {cwd!r}"})
    if not path.is_dir():
        raise RequestError.invalid_params({"cwd": f"{cwd} is not a directory"})
    return path
