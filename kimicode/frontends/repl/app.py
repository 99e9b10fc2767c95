"""The interactive REPL: the object that puts its parts together and satisfies what commands may do to it.

The prompt stays live while a turn runs (kimicode.frontends.repl.live): output is printed above it, Enter
queues a message for the turn's end, Ctrl-S sends it into the running turn, Ctrl-B moves the running
command to the background (kimicode.frontends.repl.live_keys). A question (an approval, a plan to review)
pauses the prompt, keeping what was typed, and brings it back afterwards (prompt_loop).

Where each job lives (modules of this package): the open session, its agent, runtime, background tasks
and undo in conversation; choosing a session to resume in session_choice; the prompt in prompt_loop; what
a typed line does in dispatch; one turn in turns; approvals in approvals; what goes with the next message
in next_message; the slash commands in commands (the registry) and catalog (the list), which do to the
REPL only what control.ReplControl offers; what happens once before the first prompt in startup.

Start-up is kept short: the model client's SDK (openai, ~1 s to import) loads in a background thread once
the prompt is on screen, while the user types.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.config import Config
from kimicode.frontends.common.media import MediaError
from kimicode.frontends.common.sessions import OpenedSession, SessionInUse, SessionNotFound, open_session
from kimicode.frontends.repl.approvals import OnScreen, ask_approval
from kimicode.frontends.repl.catalog import repl_commands
from kimicode.frontends.repl.conversation import Conversation
from kimicode.frontends.repl.custom_commands import extensions_notice
from kimicode.frontends.repl.dispatch import Dispatcher
from kimicode.frontends.repl.live import LiveArea
from kimicode.frontends.repl.mcp_prompts import with_resources as mcp_resources
from kimicode.frontends.repl.next_message import NextMessage
from kimicode.frontends.repl.prompt_loop import PROMPT, LivePrompt, build_session, idle_toolbar
from kimicode.frontends.repl.render import Renderer
from kimicode.frontends.repl.startup import attach_terminal, banner, offer_mcp_import
from kimicode.frontends.repl.tasks_command import report_end
from kimicode.frontends.repl.turns import PLAN_SHOWN, TurnRunner

if TYPE_CHECKING:
    from kimicode.agent import events as ev
    from kimicode.agent.loop import Agent
    from kimicode.agent.policy import ApprovalDecision
    from kimicode.agent.runtime import Runtime
    from kimicode.mcp.elicit import Answer, Question
    from kimicode.mcp.manager import McpManager
    from kimicode.session.rewind import UserTurn
    from kimicode.tools.background import BackgroundTask, TaskManager
    from kimicode.tools.propose_plan import PlanReview

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
BACKGROUND_IMPORTS = ("git",)  # GitPython, for the first turn's checkpoint (the model client's SDK comes first)
STANCES = ("ask", "auto-edit", "plan")


def run_repl(config: Config, task: str | None, options: dict[str, Any]) -> int:
    from kimicode.frontends.common.quick_exit import release_watches
    from kimicode.frontends.common.signals import exit_code_for
    from kimicode.security.orphans import adopt_orphans, end_orphans

    adopt_orphans()  # what an unsandboxed command leaves running ends with the session
    repl = Repl(config, options)
    try:
        code = asyncio.run(repl.main(task))
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except OSError:  # the terminal went away (SIGHUP): the session is saved already
        if repl.stop_signal is None:
            raise
        code = EXIT_INTERRUPTED
    finally:
        end_orphans()
        release_watches()
        if repl.warmer is not None and repl.warmer.is_alive():
            # An interpreter that exits while a daemon thread is inside an import can abort (SIGABRT):
            # a quick Ctrl-D right after start-up waits for the import to finish instead.
            repl.warmer.join(timeout=10)
    return exit_code_for(repl.stop_signal) if repl.stop_signal is not None else code


def _warm_imports() -> None:
    with contextlib.suppress(Exception):
        from kimicode.llm.client import load_sdk

        load_sdk()  # with the type packages a chat client never reads deferred (llm/sdk_import.py)
    for name in BACKGROUND_IMPORTS:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


class Repl:
    """Satisfies kimicode.frontends.repl.control.ReplControl (what commands and keys may do)."""

    def __init__(self, config: Config, options: dict[str, Any]) -> None:
        self.config = config
        self.options = options
        self.renderer = Renderer()
        self.want_exit = False
        self.commands = repl_commands(config, lambda: self.mcp)  # with the MCP prompts as servers connect
        self.mcp: McpManager | None = None  # the MCP servers of this session, when any are configured
        # SIGTERM or SIGHUP received: the turn is cancelled, the session saved, and the REPL ends.
        self.stop_signal: signal.Signals | None = None
        # Imports the model client in the background once the prompt shows (see _warm_imports).
        self.warmer: threading.Thread | None = None
        self.terminal, self.notifier = attach_terminal(config, self.renderer)
        # Working alongside the agent: the area above the prompt, the prompt that stays live, the turn
        # that runs meanwhile, and questions that pause the prompt (one at a time: sub-agents may ask together).
        self.live = LiveArea()
        self.prompt = LivePrompt()
        self._on_screen = OnScreen()  # questions wait until the events before them are on screen
        self._asking = asyncio.Lock()
        self.conversation = Conversation(config, self.renderer, self.live, self.approve, self.review_plan, self._task_changed)
        self.notifier.on_idle = self.conversation.notify_hooks
        self.next_message = NextMessage(config, self.renderer, lambda: self.agent.client.profile)
        self.turns = TurnRunner(config, self.renderer, self.notifier, self.live, self._on_screen, self.prompt.invalidate)
        self.dispatch = Dispatcher(self, self.commands, self.start_turn, lambda: self.want_exit)

    # -- start-up ------------------------------------------------------------------------------------

    async def main(self, task: str | None) -> int:
        from kimicode.frontends.repl.setup import key_ready

        flag_base_url = (self.options.get("flags") or {}).get("base_url")
        if not await key_ready(self.config, self.ask_line, flag_base_url, self.renderer.error):
            return EXIT_USAGE
        code = await self._open_first_session()
        if code is not None:
            return code
        self.renderer.on_partial = self.prompt.invalidate
        self.prompt.session = build_session(self, self._prompt_message, self.toolbar, self.commands.slash_names)
        from kimicode.frontends.common.signals import install

        install(self._stop_on_signal, (signal.SIGTERM, signal.SIGHUP))
        try:
            await self.next_message.load(self.options.get("images") or [], self.options.get("video"))
        except MediaError as exc:
            self.renderer.error(str(exc))
        picked = self.options.get("resume") is not None and not str(self.options["resume"]).strip()
        if picked:
            await self.resume(None)  # (shows the chosen session's last turns itself)
        banner(self.config, self.opened, self.terminal, self.runtime.ctx.sandbox, self.renderer, past=not picked)
        extensions_notice(self.config, self.commands, self.renderer, len(self.runtime.hooks or ()))
        for problem in self.runtime.instruction_problems:
            self.renderer.warn(problem)
        self.warmer = threading.Thread(target=_warm_imports, name="warm-imports", daemon=True)
        asyncio.get_running_loop().call_later(0.1, self.warmer.start)
        from kimicode.agent.mcp_run import running_mcp

        offer_mcp_import(self.config, self.renderer)
        try:
            async with running_mcp(self.config, self.renderer.warn) as mcp:
                self.mcp = mcp
                if mcp is not None:
                    mcp.requests.asker = self.answer_server  # a server's question asks the user
                self.conversation.use_mcp(mcp)
                if task:
                    self.start_turn(task)
                return await self._loop()
        finally:
            await self.conversation.close()

    async def _open_first_session(self) -> int | None:
        resume = self.options.get("resume")
        try:
            opened = open_session(
                self.config, bool(self.options.get("continue_session")), resume if resume and resume.strip() else None
            )
        except SessionNotFound as exc:
            self.renderer.error(str(exc))
            return EXIT_USAGE
        except SessionInUse as busy:
            forked = await self._fork_or_not(busy, "quit")
            if forked is None:
                return EXIT_OK
            opened = forked
        from kimicode.llm.setup import model_setup

        model = model_setup(self.config)  # derived once; /model and /mode reuse the endpoint's part
        for notice in model.notices():
            self.renderer.warn(notice)
        self.conversation.start(opened, model)
        for warning in opened.warnings:
            self.renderer.warn(warning)
        return None

    async def _fork_or_not(self, busy: SessionInUse, otherwise: str) -> OpenedSession | None:
        from kimicode.frontends.repl.session_choice import offer_fork

        return await offer_fork(self.config, self.renderer, self.prompt.paused, busy, otherwise)

    # -- the prompt ----------------------------------------------------------------------------------

    def _prompt_message(self) -> list[tuple[str, str]]:
        above = self.live.fragments(
            partial=self.renderer.partial(),
            steering=self.agent.steering,
            tasks=self.tasks.running(),
            width=self.renderer.console.width,
        )
        return [*above, ("", PROMPT)]

    def toolbar(self) -> str:
        if self.turn_running:
            return self.live.running_toolbar(self.agent.policy.stance, self.can_background)
        return idle_toolbar(self.config, self.agent)

    async def _loop(self) -> int:
        from kimicode.frontends.repl.live import live_output

        with live_output():
            self.renderer.hold_partial = True
            try:
                await self.prompt.read(
                    lambda: not self.want_exit,
                    self.dispatch.take,
                    lambda: self.renderer.dim("(Ctrl-C again or Ctrl-D to exit)"),
                )
                await self.turns.wind_down()
            finally:
                self.renderer.close_stream()
                self.renderer.hold_partial = False
        self.opened.session.close()
        self.renderer.dim(f"session saved: resume with kimicode -r {self.opened.session.id} (or -C)")
        return EXIT_OK

    async def ask_line(self, message: str, password: bool = False) -> str:
        return await self.prompt.ask_line(message, password)

    def prompt_text(self) -> str:
        return self.prompt.text()

    # -- the turn that runs while the prompt stays live ----------------------------------------------

    @property
    def turn_running(self) -> bool:
        return self.turns.running

    def start_turn(self, text: str) -> None:
        """Run a turn while the prompt stays live; what is queued meanwhile is sent when it ends."""
        self.turns.start(self.run_turn(text), self._turn_ended)

    def _turn_ended(self) -> None:
        # Messages sent into the turn that it never reached (cancelled, a limit): they wait in the queue.
        self.live.queue[:0] = self.agent.take_steering()
        self.prompt.invalidate()
        if self.live.queue and not self.want_exit:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.dispatch.send_queue()))

    async def run_turn(self, text: str) -> None:
        with_resources = await mcp_resources(text, self.mcp, self.renderer)  # @SERVER:URI mentions attached
        message = self.next_message.compose(with_resources) if with_resources is not None else None
        if message is None:
            return
        text, images, parts = message
        try:
            await asyncio.to_thread(self.conversation.begin_turn, text[:60])
        except Exception as exc:  # noqa: BLE001 - no checkpoint is no reason to refuse the turn
            self.renderer.warn(f"no undo checkpoint for this turn: {exc}")
        await self.turns.run(self.agent, text, images, parts)

    def cancel_running_turn(self) -> None:
        self.turns.cancel()

    def _stop_on_signal(self, sig: signal.Signals) -> None:
        """SIGTERM/SIGHUP: end like Ctrl-D, cancelling a running turn first (its command's group is killed)."""
        self.stop_signal = sig
        self.want_exit = True
        self.turns.cancel()
        self.prompt.end()

    def steer(self, text: str) -> None:
        """Ctrl-S: the line typed (or, on an empty line, every queued message) goes into the running turn."""
        messages = [text] if text.strip() else self.live.queue[:]
        if not text.strip():
            self.live.queue.clear()
        for message in messages:
            self.agent.steer(message)
        self.prompt.invalidate()

    @property
    def can_background(self) -> bool:
        return self.turn_running and self.tasks.has_foreground

    def background_command(self) -> None:
        self.tasks.detach_foreground()

    def cycle_stance(self) -> None:
        policy = self.agent.policy
        policy.stance = STANCES[(STANCES.index(policy.stance) + 1) % len(STANCES)] if policy.stance in STANCES else "ask"
        self.config.stance = policy.stance
        self.prompt.invalidate()

    def _task_changed(self, task: BackgroundTask) -> None:
        report_end(task, self.renderer)
        self.prompt.invalidate()

    # -- questions the agent asks --------------------------------------------------------------------

    async def approve(self, request: ev.ApprovalRequest) -> ApprovalDecision:
        await self._on_screen.until_shown(request.call_id)
        async with self._asking, self.prompt.paused():
            board = self.renderer.board
            with board.held() if board is not None else contextlib.nullcontext():
                return await ask_approval(
                    request, self.renderer, self.notifier, self.ask_line, self.turns.cancel, self.config.work_dir
                )

    async def answer_server(self, question: Question) -> Answer:
        from kimicode.mcp.elicit import ask_in_lines

        async with self._asking, self.prompt.paused():
            self.renderer.close_stream()
            return await ask_in_lines(question, lambda line: self.renderer.info(line, "yellow"), self.ask_line)

    async def review_plan(self, plan: str) -> PlanReview:
        from kimicode.frontends.repl.plan_review import review_plan

        await self._on_screen.until_shown(PLAN_SHOWN)  # what came before it is on screen
        async with self._asking, self.prompt.paused():
            return await review_plan(self, plan)

    # -- what commands may do (kimicode.frontends.repl.control.ReplControl) -------------------------

    @property
    def agent(self) -> Agent:
        return self.conversation.agent

    @property
    def runtime(self) -> Runtime:
        return self.conversation.runtime

    @property
    def opened(self) -> OpenedSession:
        return self.conversation.opened

    @property
    def tasks(self) -> TaskManager:
        return self.conversation.tasks

    def request_exit(self) -> None:
        self.want_exit = True

    def new_session(self) -> None:
        self.conversation.new_session()

    def switch_to(self, opened: OpenedSession) -> None:
        self.conversation.switch_to(opened)

    async def resume(self, session_id: str | None) -> None:
        from kimicode.frontends.repl.session_choice import resume_session

        await resume_session(self, session_id, self._fork_or_not)

    async def set_mode(self, mode: str) -> None:
        await self.conversation.set_mode(mode)

    async def set_model(self, name: str) -> None:
        await self.conversation.set_model(name)

    async def compact_now(self, instruction: str = "") -> None:
        await self.conversation.compact_now(instruction)

    async def undo(self) -> None:
        await self.conversation.undo_last_turn()

    async def rewind_to(self, turn: UserTurn, conversation: bool, files: bool) -> None:
        await self.conversation.rewind(turn, conversation, files)

    def prefill_prompt(self, text: str) -> None:
        self.prompt.prefill(text)

    def session_diff(self) -> str:
        return str(self.conversation.undo.diff())

    def open_diff_in_editor(self, diff: str) -> bool:
        from kimicode.frontends.repl.editor_diff import show_in_editor

        folder = self.config.home / "diffs" / self.opened.session.id
        return show_in_editor(diff, self.terminal, self.config.work_dir, folder, self.renderer.dim)

    def attach_images(self, paths: list[Path]) -> bool:
        return self.next_message.attach_images(paths)

    async def attach_video(self, path: Path) -> bool:
        return await self.next_message.attach_video(path)

    def attach_part(self, part: dict[str, Any]) -> None:
        self.next_message.parts.append(part)
