"""One editor session: the shared run assembly (runtime, MCP servers, agent) driven by ACP requests.

A session's parts live in a task of their own for the session's whole life (MCP servers enter and leave
their contexts in one task). A prompt runs the agent in a child task, so ``session/cancel`` can cancel
the turn — the running command is killed with it — and the prompt still answers, with ``cancelled``.
Every event of the turn becomes a ``session/update`` (updates.py); approvals become
``session/request_permission`` (approvals.py) and their answers go into the same policy as the REPL's.
What the editor may choose (modes, approvals, model, slash commands) is described in options.py.

Invariants:
- At most one turn runs in a session; modes, approvals and the model change only between turns.
- A prompt always answers: with a stop reason, ``cancelled`` after session/cancel, or one error.
- The events of a turn reach the editor in the order they happened, through one sender task, and a slow
  editor never holds the run back; a finished turn waits at most FLUSH_TIMEOUT for them to be sent.
- The runtime the assembly made is closed by the assembly; one a mode switch made is closed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp import RequestError
from acp import helpers as h
from acp.schema import ClientCapabilities, ConfigOptionUpdate, StopReason

from kimicode.agent import events as ev
from kimicode.agent.loop import Agent
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.runtime import Runtime
from kimicode.config import Config
from kimicode.frontends.acp import approvals, outcomes
from kimicode.frontends.acp.custom import announce_commands, use_custom_command
from kimicode.frontends.acp.editor import EditorFiles, EditorTerminals
from kimicode.frontends.acp.elicit import send_questions_to_editor
from kimicode.frontends.acp.options import (
    ACP_MODES,
    PLAN,
    STANCE_INFO,
    config_options,
    current_mode,
    slash_command,
)
from kimicode.frontends.acp.prompt import prompt_input
from kimicode.frontends.acp.toolcalls import replay
from kimicode.frontends.acp.updates import TurnUpdates
from kimicode.frontends.common.media import MediaError
from kimicode.frontends.common.sessions import OpenedSession
from kimicode.mcp.server_config import McpServerConfig
from kimicode.tools.base import Tool

if TYPE_CHECKING:
    from kimicode.tools.propose_plan import PlanReview

log = logging.getLogger("kimicode.acp")

# How long a finished or cancelled turn waits for its last updates to reach the editor (seconds).
FLUSH_TIMEOUT = 5.0
STOP_REASONS: dict[str, StopReason] = {
    "success": "end_turn",
    "error_max_steps": "max_turn_requests",
    "interrupted": "cancelled",
}


class AcpSession:
    """One session of an editor's: its run, its turns, and what the editor is told about them."""

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
        self.updates = TurnUpdates(
            self.send, self.files, self.terminals, config.work_dir, self._current_tools,
            failed=lambda key: outcomes.record_failed(opened.session, key),
        )
        self.files.shown = self.updates.on_screen
        self.runtime: Runtime
        self.agent: Agent
        self.mcp: Any = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._owner: asyncio.Task[None] | None = None
        self._turn: asyncio.Task[ev.RunResult | None] | None = None
        self._cancelled = False
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
                send_questions_to_editor(self.mcp, self.conn, self.id, self.updates, self.notify)
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

    @property
    def workspace(self) -> Path:
        return self.config.work_dir

    def _current_tools(self) -> dict[str, Tool]:
        return self.agent.current_tools()

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

    async def _show_terminal(self, key: str, terminal: str) -> None:
        """A command running in the editor's terminal: the call shows it while it runs."""
        await self.send(h.update_tool_call(key, status="in_progress", content=[h.tool_terminal_ref(terminal)]))

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
        await announce_commands(self)  # kimicode's, the user's own and the MCP servers' prompts
        for text in self._notices:
            await self.send(h.update_agent_message_text(f"_kimicode: {text}_\n\n"))
        self._notices.clear()

    async def replay(self) -> None:
        failed = outcomes.failed_calls(self.opened.session.path)
        for update in replay(self.opened.history, self.agent.current_tools(), self.config.work_dir, failed):
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

    # -- questions to the user (approvals.py) ----------------------------------------------------------

    async def approve(self, request: ev.ApprovalRequest) -> ApprovalDecision:
        return await approvals.approve(self, request)

    async def review_plan(self, plan: str) -> PlanReview:
        return await approvals.review_plan(self, plan)

    # -- a turn --------------------------------------------------------------------------------------

    async def prompt(self, blocks: list[Any]) -> StopReason:
        if self._turn is not None and not self._turn.done():
            raise RequestError.invalid_request({"details": "a turn is already running in this session"})
        try:
            text, images = await prompt_input(self.config, blocks, self.files, self.agent.client.profile)
        except MediaError as exc:
            raise RequestError.invalid_params({"prompt": str(exc)}) from None
        command = slash_command(text)
        if command is not None:
            await self._command(*command)
            return "end_turn"
        used = await use_custom_command(self, text, images)  # the text itself, or the command it names
        if used is None:
            return "end_turn"
        prompt, images = used
        self._cancelled = False
        self._turn = asyncio.create_task(self._consume(prompt, images))
        try:
            result = await self._turn
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if self._cancelled and this is not None and not this.cancelling():
                await self.updates.end_open_calls("cancelled by the user")
                return "cancelled"
            self._turn.cancel()
            raise
        finally:
            self._turn = None
        await self.updates.end_open_calls("the turn ended before this call finished")
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
                return
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
            await self.updates.forward(event)

    async def _outcome(self, result: ev.RunResult | None) -> StopReason:
        if result is None:
            raise RequestError.internal_error({"details": "the turn ended without a result"})
        if result.subtype == "error":
            if result.extra.get("error_kind") == "auth":
                raise RequestError(-32000, f"the endpoint rejected the API key: {result.result}", {"details": result.result})
            raise RequestError(-32603, result.result, {"details": result.result})
        if result.submitted and result.result:
            await self.send(h.update_agent_message_text(f"\n\n{result.result}"))
        return STOP_REASONS.get(result.subtype, "end_turn")

    # -- slash commands ------------------------------------------------------------------------------

    async def _command(self, name: str, arg: str) -> None:
        async def say(text: str) -> None:
            await self.send(h.update_agent_message_text(text))

        if name == "compact":
            try:
                event = await self.agent.compact()
            except Exception as exc:  # noqa: BLE001 - any failure to compact is one line to the user; the session goes on
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
            from kimicode.llm.prices import prices_known

            totals = self.agent.totals
            await say(
                f"{totals.prompt_tokens:,} input tokens ({totals.cached_tokens:,} cached), "
                f"{totals.completion_tokens:,} output tokens, {totals.tool_calls} tool call{'s' * (totals.tool_calls != 1)}"
                + (f", ${totals.cost:.4f}." if prices_known(self.config) else ".")
            )
