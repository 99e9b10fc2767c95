"""The interactive REPL: prompt-toolkit input, rich output, approvals, Ctrl-C, slash commands, sessions.

The prompt stays live while a turn runs (kimicode.frontends.repl.live): output is printed above it, Enter
queues a message for the turn's end, Ctrl-S sends it into the running turn, Ctrl-B moves the running
command to the background (kimicode.frontends.repl.live_keys). A question (an approval, a plan to review)
pauses the prompt, keeping what was typed, and brings it back afterwards.

Start-up is kept short: the model client's SDK (openai, ~1 s to import) loads in a background thread once
the prompt is on screen, while the user types.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.agent import events as ev
from kimicode.agent.loop import Agent
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.runtime import Runtime, build_runtime
from kimicode.config import Config
from kimicode.llm.messages import Image
from kimicode.frontends.repl import commands
from kimicode.frontends.repl.catalog import repl_commands
from kimicode.frontends.repl.live import LiveArea
from kimicode.frontends.common.media import MediaError, attach_image_files, attach_video_file, image_mentions, pasted_image_path
from kimicode.frontends.repl.render import Renderer
from kimicode.frontends.common.sessions import (
    OpenedSession,
    SessionInUse,
    SessionNotFound,
    bind_agent,
    describe_sessions,
    fork_session,
    open_session,
)

if TYPE_CHECKING:
    from kimicode.llm.setup import ModelSetup
    from kimicode.mcp.manager import McpManager
    from kimicode.tools.background import BackgroundTask, TaskManager
    from kimicode.tools.propose_plan import PlanReview

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
PROMPT = "› "
MENTION = re.compile(r"(?<!\S)@(\S+)")
BACKGROUND_IMPORTS = ("openai", "git")  # git: GitPython, for the first turn's checkpoint
APPROVAL_ANSWERS = {
    "once": "approved once",
    "session": "approved for this session",
    "always": "approved; kept as a rule for this project (/permissions lists it)",
    "reject": "rejected",
    "cancel": "cancelled",
}
STANCES = ("ask", "auto-edit", "plan")
# The key under which the plan review waits for the propose_plan call to be on screen.
PLAN_SHOWN = "propose_plan"
# What the prompt returns when a question paused it (the text typed so far is kept in the draft).
_PAUSED = object()


def run_repl(config: Config, task: str | None, options: dict[str, Any]) -> int:
    from kimicode.security.orphans import adopt_orphans, end_orphans
    from kimicode.frontends.common.signals import exit_code_for

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
        if repl.warmer is not None and repl.warmer.is_alive():
            # An interpreter that exits while a daemon thread is inside an import can abort (SIGABRT):
            # a quick Ctrl-D right after start-up waits for the import to finish instead.
            repl.warmer.join(timeout=10)
    return exit_code_for(repl.stop_signal) if repl.stop_signal is not None else code


def _warm_imports() -> None:
    for name in BACKGROUND_IMPORTS:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


class Repl:
    def __init__(self, config: Config, options: dict[str, Any]) -> None:
        self.config = config
        self.options = options
        self.renderer = Renderer()
        self.want_exit = False
        self.commands = repl_commands()  # the slash commands (kimicode.frontends.repl.catalog)
        # Media for the next message (--image/--video, or /image and /video).
        self.pending_images: list[Image] = []
        self.pending_parts: list[dict[str, Any]] = []
        self.runtime: Runtime
        self.opened: OpenedSession
        self.agent: Agent
        self._undo: Any = None
        self._turn: asyncio.Task[None] | None = None
        self._prompt: Any = None
        self._extra: dict[str, Any] = {}  # agent overrides, e.g. MCP tools that appear while running
        # Approval questions wait until the events before them are on screen (keyed by call id).
        self._shown: dict[str, asyncio.Event] = {}
        # Sub-agents may ask at the same time; the questions are put one after another.
        self._asking = asyncio.Lock()
        self.mcp: McpManager | None = None  # the MCP servers of this session, when any are configured
        # SIGTERM or SIGHUP received: the turn is cancelled, the session saved, and the REPL ends.
        self.stop_signal: signal.Signals | None = None
        # Imports the model client in the background once the prompt shows (see _warm_imports).
        self.warmer: threading.Thread | None = None
        self._attach_terminal()
        # Working alongside the agent: the area above the prompt, the session's background tasks, the
        # turn that runs while the prompt stays live, and questions that pause the prompt.
        self.live = LiveArea()
        self.tasks: TaskManager = _task_manager()
        self._unsubscribe_tasks = self.tasks.subscribe(self._task_changed)
        self._runner: asyncio.Task[None] | None = None
        self._prompt_active = False
        self._draft: Any = ""
        self._pauses = 0
        self._unpaused: asyncio.Event | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Future[None]] = set()  # earlier sessions' tasks, being stopped

    # -- start-up ------------------------------------------------------------------------------------

    async def main(self, task: str | None) -> int:
        from kimicode.config import user_endpoint
        from kimicode.frontends.repl.setup import needs_key

        flag_base_url = (self.options.get("flags") or {}).get("base_url")
        users_endpoint = user_endpoint(self.config.home, flag=flag_base_url)
        if not self.config.api_key and await needs_key(self.config.base_url, users_endpoint):
            from kimicode.frontends.repl.setup import guided_setup

            try:
                if not await guided_setup(self.config, self.ask_line, flag_base_url):
                    self.renderer.error("no working API key; set KIMI_API_KEY or run kimicode again")
                    return EXIT_USAGE
            except (EOFError, KeyboardInterrupt):
                return EXIT_USAGE
        code = await self._open_first_session()
        if code is not None:
            return code
        self._prompt = self._make_prompt()
        from kimicode.frontends.common.signals import install

        install(self._stop_on_signal, (signal.SIGTERM, signal.SIGHUP))
        try:
            await self._load_media()
        except MediaError as exc:
            self.renderer.error(str(exc))
        if self.options.get("resume") is not None and not str(self.options["resume"]).strip():
            await self.resume(None)
        self._banner()
        self.warmer = threading.Thread(target=_warm_imports, name="warm-imports", daemon=True)
        asyncio.get_running_loop().call_later(0.1, self.warmer.start)
        from kimicode.agent.mcp_run import running_mcp

        self._offer_mcp_import()
        try:
            async with running_mcp(self.config, self.renderer.warn) as mcp:
                self.mcp = mcp
                self._extra = {"extra_tools": mcp.tools} if mcp is not None else {}
                if mcp is not None:
                    self._rebind()
                if task:
                    self.start_turn(task)
                return await self._loop()
        finally:
            from kimicode.vision.browser import close_session_browsers

            await asyncio.gather(self.tasks.close(), *self._closing, return_exceptions=True)  # tasks end with the session
            with contextlib.suppress(Exception):
                await close_session_browsers()
            with contextlib.suppress(Exception):
                await self.runtime.aclose()

    def _offer_mcp_import(self) -> None:
        """First interactive run: offer the MCP servers other agents already use (asked once)."""
        from kimicode.manage.mcp_import import first_run_mcp_offer

        try:
            first_run_mcp_offer(self.config)
        except Exception as exc:  # discovery problems must not keep the REPL from starting
            self.renderer.warn(f"could not look for other agents' MCP servers: {exc}")

    async def _open_first_session(self) -> int | None:
        resume = self.options.get("resume")
        try:
            self.opened = open_session(
                self.config, bool(self.options.get("continue_session")), resume if resume and resume.strip() else None
            )
        except SessionNotFound as exc:
            self.renderer.error(str(exc))
            return EXIT_USAGE
        except SessionInUse as busy:
            forked = await self._fork_or_not(busy, "quit")
            if forked is None:
                return EXIT_OK
            self.opened = forked
        from kimicode.llm.setup import model_setup

        model = model_setup(self.config)  # derived once; /model and /mode reuse the endpoint's part
        for notice in model.notices():
            self.renderer.warn(notice)
        self.runtime = self._build_runtime(model)
        self.agent = bind_agent(self.runtime, self.opened, self.approve)
        self.live.todo = list(self.opened.todo)
        self._attach_undo()
        for warning in self.opened.warnings:
            self.renderer.warn(warning)
        return None

    async def _load_media(self) -> None:
        """--image/--video for the first message; sampling or uploading runs off the event loop."""
        images, video = self.options.get("images") or [], self.options.get("video")
        if images or video:
            from kimicode.frontends.common.media import load_media

            media, parts = await asyncio.to_thread(load_media, self.config, images, video, self.agent.client.profile)
            self.pending_images.extend(media)
            self.pending_parts.extend(parts)

    async def _fork_or_not(self, busy: SessionInUse, otherwise: str) -> OpenedSession | None:
        """Another kimicode writes to that session: offer a fork of it (its history, a new log) instead."""
        from kimicode.frontends.repl.input import ask_choice

        self.renderer.warn(str(busy))
        async with self.paused_prompt():
            answer = await ask_choice(
                f"  [f] fork: continue in a new session with its history  [q] {otherwise}  › ", {"f": "fork", "q": "quit"}
            )
        if answer != "fork":
            return None
        forked = fork_session(self.config, busy)
        self.renderer.dim(f"  → continuing in new session {forked.session.id} (forked from {busy.session.id})")
        return forked

    def _attach_undo(self) -> None:
        from kimicode.vcs.checkpoints import DeferredUndo

        if self._undo is None:
            self._undo = DeferredUndo(self.config.work_dir, self.config.home, self.opened.session.id)
        self.agent.before_write = self._undo.before_write

    def _banner(self) -> None:
        session = self.opened.session
        state = f"resumed session {session.id} ({len(self.opened.history)} messages)" if self.opened.resumed else f"session {session.id}"
        self.renderer.info(f"kimicode · {self.config.model} · {self.config.work_dir}", "bold")
        self.renderer.dim(f"{state} · /help · Enter sends, {self.terminal.newline_hint()}")
        from kimicode.security.sandbox import unavailable_notice

        notice = unavailable_notice(self.runtime.ctx.sandbox)
        if notice:
            self.renderer.warn(notice)

    def _attach_terminal(self) -> None:
        """What the terminal can do (environment variables only: cheap): links, notifications, keys."""
        from kimicode.frontends.repl.links import Linker, choose_format
        from kimicode.frontends.repl.notify import Notifier
        from kimicode.frontends.repl.terminal import detect

        self.terminal = detect()
        pattern = choose_format(self.terminal, self.config.hyperlink_format)
        self.renderer.links = Linker(self.config.work_dir, pattern) if pattern else None
        self.notifier = Notifier(self.terminal, self.config.notify_after, self._write_terminal)

    def _write_terminal(self, sequence: str) -> None:
        self.renderer.console.file.write(sequence)
        self.renderer.console.file.flush()

    # -- the prompt ----------------------------------------------------------------------------------

    def _make_prompt(self) -> Any:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.key_binding import merge_key_bindings

        from kimicode.frontends.repl.history import WorkspaceHistory
        from kimicode.frontends.repl.input import main_key_bindings, MentionCompleter
        from kimicode.frontends.repl.keys import install_sequences, prompt_bindings, prompt_input, prompt_output
        from kimicode.frontends.repl.live_keys import alongside_bindings

        self.config.home.mkdir(parents=True, exist_ok=True)
        install_sequences()  # Shift-Enter as kitty, xterm and the editors' keybinding send it
        self.renderer.on_partial = self._invalidate
        return PromptSession(
            self._prompt_message,
            multiline=True,
            key_bindings=merge_key_bindings([main_key_bindings(), prompt_bindings(self), alongside_bindings(self)]),
            input=prompt_input(),
            output=prompt_output(self.terminal.keyboard_mode),
            history=WorkspaceHistory(self.config.home, self.config.work_dir),
            completer=MentionCompleter(self.config.work_dir, self.commands.slash_names),
            complete_while_typing=True,
            bottom_toolbar=self.toolbar,
            enable_history_search=False,
            # The prompt leaves no copy of itself in the scrollback: a sent message is echoed instead, and a
            # prompt paused for a question comes back below it.
            erase_when_done=True,
        )

    def _prompt_message(self) -> list[tuple[str, str]]:
        width = self.renderer.console.width
        above = self.live.fragments(
            partial=self.renderer.partial(),
            steering=self.agent.steering,
            tasks=self.tasks.running(),
            width=width,
        )
        return [*above, ("", PROMPT)]

    def toolbar(self) -> str:
        if self.turn_running:
            return self.live.running_toolbar(self.agent.policy.stance, self.can_background)
        agent = self.agent
        window = agent.client.profile.context_window or 1
        percent = min(100, round(100 * agent.context_tokens / window))
        parts = [
            self.config.model,
            self.config.mode,
            f"thinking {'on' if agent.thinking else 'off'}",
            f"context {percent}%",
            f"${agent.totals.cost:.4f}",
        ]
        if agent.policy.yolo:
            parts.append("YOLO")
        parts.append({"ask": "ask", "auto-edit": "auto-edit", "plan": "plan mode"}.get(agent.policy.stance, agent.policy.stance))
        return " " + " · ".join(parts)

    async def _loop(self) -> int:
        from kimicode.frontends.repl.live import live_output

        interrupts = 0
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        with live_output():
            self.renderer.hold_partial = True
            try:
                while not self.want_exit:
                    if self._pauses:
                        await self._unpaused.wait()
                        continue
                    self._prompt_active = True
                    try:
                        text = await self._prompt.prompt_async(default=self._draft, handle_sigint=False)
                    except KeyboardInterrupt:  # Ctrl-C on an empty prompt
                        interrupts += 1
                        if interrupts >= 2:
                            break
                        self.renderer.dim("(Ctrl-C again or Ctrl-D to exit)")
                        continue
                    except EOFError:
                        break
                    finally:
                        self._prompt_active = False
                    if text is _PAUSED:
                        continue
                    self._draft = ""
                    interrupts = 0
                    await self._take(text.strip())
                if self.turn_running:
                    self.cancel_running_turn()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await self._runner  # type: ignore[misc]
            finally:
                self.renderer.close_stream()
                self.renderer.hold_partial = False
        self.opened.session.close()
        self.renderer.dim(f"session saved: resume with kimicode -r {self.opened.session.id} (or -C)")
        return EXIT_OK

    async def _take(self, text: str) -> None:
        """What was typed: a command runs (during a turn only those that may), a message starts a turn or,
        during one, waits in the queue for its end."""
        if not text:
            return
        parsed = commands.parse(text)
        if self.turn_running:
            command = self.commands.get(parsed[0]) if parsed else None
            if command is not None and command.while_running:
                self._echo(text)
                await self._command(*parsed)  # type: ignore[misc]
            else:
                self.live.queue.append(text)
            return
        self._echo(text)
        if parsed is not None:
            await self._command(*parsed)
            return
        self.start_turn(text)

    def _echo(self, text: str) -> None:
        """What the user sent, as the scrollback's record of it (the prompt itself leaves none)."""
        for number, line in enumerate(text.splitlines() or [""]):
            self.renderer.info(f"{PROMPT if number == 0 else '  '}{line}", "bold")

    # -- the turn that runs while the prompt stays live ----------------------------------------------

    @property
    def turn_running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    def start_turn(self, text: str) -> None:
        """Run a turn while the prompt stays live; what is queued meanwhile is sent when it ends."""
        self._runner = asyncio.ensure_future(self.run_turn(text))
        self.live.turn_started = time.monotonic()
        self._runner.add_done_callback(self._turn_finished)
        self._tick()

    def _turn_finished(self, runner: asyncio.Task[None]) -> None:
        self.live.turn_started = None
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        # Messages sent into the turn that it never reached (cancelled, a limit): they wait in the queue.
        self.live.queue[:0] = self.agent.take_steering()
        self._invalidate()
        if self.live.queue and not self.want_exit:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._send_queue()))

    async def _send_queue(self) -> None:
        """The turn ended: queued commands run in order, the messages between them go as one turn."""
        while self.live.queue and not self.turn_running and not self.want_exit:
            first = self.live.queue.pop(0)
            parsed = commands.parse(first)
            if parsed is not None:
                self._echo(first)
                await self._command(*parsed)
                continue
            batch = [first]
            while self.live.queue and commands.parse(self.live.queue[0]) is None:
                batch.append(self.live.queue.pop(0))
            text = "\n\n".join(batch)
            self._echo(text)
            self.start_turn(text)

    def _tick(self) -> None:
        """Redraw once a second while a turn runs (its elapsed time on the bottom line)."""
        self._invalidate()
        if self.turn_running:
            self._ticker = asyncio.get_running_loop().call_later(1.0, self._tick)

    def _invalidate(self) -> None:
        app = getattr(self._prompt, "app", None)
        if app is not None and app.is_running:
            app.invalidate()

    def prompt_text(self) -> str:
        app = getattr(self._prompt, "app", None)
        return app.current_buffer.text if app is not None and app.is_running else ""

    def cancel_running_turn(self) -> None:
        self._cancel_turn()

    def steer(self, text: str) -> None:
        """Ctrl-S: the line typed (or, on an empty line, every queued message) goes into the running turn."""
        messages = [text] if text.strip() else self.live.queue[:]
        if not text.strip():
            self.live.queue.clear()
        for message in messages:
            self.agent.steer(message)
        self._invalidate()

    @property
    def can_background(self) -> bool:
        return self.turn_running and self.tasks.has_foreground

    def background_command(self) -> None:
        self.tasks.detach_foreground()

    def cycle_stance(self) -> None:
        policy = self.agent.policy
        policy.stance = STANCES[(STANCES.index(policy.stance) + 1) % len(STANCES)] if policy.stance in STANCES else "ask"
        self.config.stance = policy.stance
        self._invalidate()

    def _task_changed(self, task: BackgroundTask) -> None:
        if task.state in ("done", "failed") and task.ended is not None:
            code = f"exit {task.exit_code}" if task.exit_code is not None else "ended"
            last = f" — {task.last_line}" if task.last_line else ""
            line = f"task {task.id} ({task.command[:60]}) {task.state}, {code}, after {task.runtime:.0f}s{last}"
            if task.state == "failed":
                self.renderer.warn(line)
            else:
                self.renderer.dim(line)
        self._invalidate()

    # -- questions pause the live prompt -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def paused_prompt(self) -> Any:
        """The prompt steps aside (its text kept) while a question is asked below the transcript."""
        self._pauses += 1
        if self._unpaused is not None:
            self._unpaused.clear()
        try:
            while self._prompt_active:
                app = self._prompt.app
                if app.is_running and not app.is_done:
                    from prompt_toolkit.document import Document

                    buffer = app.current_buffer
                    self._draft = Document(buffer.text, buffer.cursor_position)
                    with contextlib.suppress(Exception):  # it may be exiting already
                        app.exit(result=_PAUSED)
                await asyncio.sleep(0.01)
            yield
        finally:
            self._pauses -= 1
            if not self._pauses and self._unpaused is not None:
                self._unpaused.set()

    async def _command(self, name: str, arg: str) -> None:
        command = self.commands.get(name)
        if command is None:
            self.renderer.error(f"unknown command /{name}; /help lists them")
            return
        try:
            await command.handler(self, arg)
        except (KeyboardInterrupt, asyncio.CancelledError):
            self.renderer.dim("cancelled")
        except Exception as exc:  # a failing command must not end the session
            self.renderer.error(f"/{name} failed: {exc}")

    async def ask_line(self, message: str, password: bool = False) -> str:
        from prompt_toolkit import PromptSession

        async with self.paused_prompt():
            return await PromptSession().prompt_async(message, is_password=password, handle_sigint=False)

    # -- turns ---------------------------------------------------------------------------------------

    async def run_turn(self, text: str) -> None:
        pasted = pasted_image_path(text, self.config.work_dir)
        if pasted is not None:  # a dropped or pasted image file: attach it and wait for the words
            self.attach_images([pasted])
            return
        mentioned = image_mentions(text, self.config.work_dir)
        if mentioned and not self.attach_images(mentioned):
            return
        text, attached = attach_mentions(text, self.config.work_dir)
        for path in attached:
            self.renderer.dim(f"attached {path}")
        images, self.pending_images = self.pending_images, []
        parts, self.pending_parts = self.pending_parts, []
        try:
            await asyncio.to_thread(self._undo.begin_turn, text[:60])
        except Exception as exc:  # no checkpoint is no reason to refuse the turn
            self.renderer.warn(f"no undo checkpoint for this turn: {exc}")
        self._turn = asyncio.ensure_future(self._consume(text, images or None, parts or None))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._cancel_turn)
        self._turn_summary = ""
        self.notifier.turn_started()
        try:
            await self._turn
            self.notifier.turn_ended(self._turn_summary)
        except asyncio.CancelledError:
            self.notifier.turn_cancelled()  # interrupted by the user, who is here: no notification
            self.renderer.close_stream()
            self.renderer.warn("interrupted; the session is intact")
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            self._turn = None
            self.renderer.info("")

    def _stop_on_signal(self, sig: signal.Signals) -> None:
        """SIGTERM/SIGHUP: end like Ctrl-D, cancelling a running turn first (its command's group is killed)."""
        self.stop_signal = sig
        self.want_exit = True
        self._cancel_turn()
        app = getattr(self._prompt, "app", None)
        if app is not None and app.is_running:
            app.exit(exception=EOFError())

    def _cancel_turn(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()

    async def _consume(self, text: str, images: list[Image] | None, parts: list[dict[str, Any]] | None) -> None:
        run = self.agent.run(text, images, parts)
        try:
            async for event in run:
                if isinstance(event, ev.TodoUpdate) and not event.agent:
                    self.live.todo = list(event.items)
                self.renderer.event(event)
                if isinstance(event, (ev.TodoUpdate, ev.Steered, ev.TaskUpdate, ev.ToolCallStart, ev.ToolCallEnd)):
                    self._invalidate()
                if isinstance(event, ev.ApprovalRequest):
                    self._shown.setdefault(event.call_id, asyncio.Event()).set()
                elif isinstance(event, ev.ToolCallStart) and event.name == "propose_plan":
                    self._shown.setdefault(PLAN_SHOWN, asyncio.Event()).set()
                if isinstance(event, ev.Done):
                    self._report(event.result)
        finally:
            await run.aclose()

    _turn_summary = ""  # the first line of the last turn's result, for the notification

    def _report(self, result: ev.RunResult) -> None:
        first = (result.result or "").strip().splitlines()
        self._turn_summary = first[0][:100] if first else ""
        if result.submitted and result.result:
            self.renderer.info(result.result, "bold")
        elif result.subtype == "error_max_steps":
            self.renderer.warn(result.result)
        if self.config.mode == "swarm" and "critical_steps" in result.extra:
            self.renderer.dim(swarm_accounting(result.extra))

    # -- approvals -----------------------------------------------------------------------------------

    async def approve(self, request: ev.ApprovalRequest) -> ApprovalDecision:
        await self._shown.setdefault(request.call_id, asyncio.Event()).wait()
        self._shown.pop(request.call_id, None)
        async with self._asking, self.paused_prompt():
            board = self.renderer.board
            with board.held() if board is not None else contextlib.nullcontext():
                return await self._ask_approval(request)

    async def _ask_approval(self, request: ev.ApprovalRequest) -> ApprovalDecision:
        from kimicode.frontends.repl.input import APPROVAL_KEYS, ask_choice

        self.renderer.close_stream()
        self.notifier.approval_needed(request.summary)
        who = f"[{request.agent}] " if request.agent else ""
        self.renderer.info(f"? {who}{request.summary} — {request.reason}", "yellow bold")
        if request.rememberable:
            if request.remembers:  # what "a" and "!" would store, so the user sees what they allow
                self.renderer.dim(f"  [a] and [!] allow: {request.remembers}")
            question = "  [y] yes once  [a] yes for this session  [!] always (save a rule for this project)  [n] no  › "
            keys = APPROVAL_KEYS
        else:  # protected paths, leaving the sandbox, an ask rule: each call is its own question
            question = "  [y] yes once  [n] no, tell the model why  › "
            keys = {key: answer for key, answer in APPROVAL_KEYS.items() if answer not in ("session", "always")}
        answer = await ask_choice(question, keys)
        self.renderer.dim(f"  → {APPROVAL_ANSWERS.get(answer, answer)}")
        if answer == "once":
            return ApprovalDecision(True)
        if answer == "session":
            return ApprovalDecision(True, remember=True)
        if answer == "always":
            return ApprovalDecision(True, remember=True, always=True)
        if answer == "cancel":
            self._cancel_turn()
            return ApprovalDecision(False, "The user interrupted the turn.")
        try:
            reason = (await self.ask_line("  reason (Enter to skip) › ")).strip()
        except (EOFError, KeyboardInterrupt):
            reason = ""
        return ApprovalDecision(False, reason)

    # -- what commands call --------------------------------------------------------------------------

    def request_exit(self) -> None:
        self.want_exit = True

    def new_session(self) -> None:
        from kimicode.frontends.common.sessions import new_session

        self.switch_to(new_session(self.config))

    def switch_to(self, opened: OpenedSession) -> None:
        """Continue in ``opened`` (the current session is saved and released)."""
        self.opened.session.close()
        self.opened = opened
        self._new_tasks()
        self._rebind()

    async def resume(self, session_id: str | None) -> None:
        from kimicode.frontends.common.sessions import session_store

        if session_id is None:
            infos = session_store(self.config).list(self.config.work_dir)
            if not infos:
                self.renderer.dim("no saved sessions for this workspace")
                return
            for number, line in enumerate(describe_sessions(infos, 15), 1):
                self.renderer.info(f"  {number:>2}) {line}")
            choice = (await self.ask_line("  resume which? (number, Enter to cancel) › ")).strip()
            if not choice.isdigit() or not 1 <= int(choice) <= min(len(infos), 15):
                return
            session_id = infos[int(choice) - 1].id
        try:
            opened = open_session(self.config, resume_id=session_id)
        except SessionNotFound as exc:
            self.renderer.error(str(exc))
            return
        except SessionInUse as busy:
            if busy.session.id == self.opened.session.id:
                self.renderer.dim(f"session {busy.session.id} is the one in use here")
                return
            forked = await self._fork_or_not(busy, f"stay in session {self.opened.session.id}")
            if forked is None:
                return
            opened = forked
        self.switch_to(opened)
        for warning in opened.warnings:
            self.renderer.warn(warning)
        self.renderer.dim(f"resumed session {opened.session.id} ({len(opened.history)} messages)")

    def _rebind(self) -> None:
        old = self.agent
        self.runtime.session_id = self.opened.session.id
        self.agent = bind_agent(
            self.runtime, self.opened, self.approve, policy=old.policy, thinking=old.thinking, totals=old.totals, **self._extra
        )
        self.agent.before_write = self._undo.before_write
        self.live.todo = list(self.opened.todo)

    def _build_runtime(self, model: ModelSetup | None = None) -> Runtime:
        """The runtime for the current mode, with this session's background tasks and the plan review."""
        runtime = build_runtime(self.config, session_id=self.opened.session.id, tasks=self.tasks, model=model)
        self._adapt_runtime(runtime)
        return runtime

    def _adapt_runtime(self, runtime: Runtime) -> None:
        runtime.ctx.review_plan = self.review_plan

    def _new_tasks(self) -> None:
        """Another session: the old one's background tasks end with it (they belonged to its conversation)."""
        old = self.tasks
        self._unsubscribe_tasks()
        if old.running():
            self.renderer.dim(f"stopping {len(old.running())} background task(s) of the previous session")
        self._closing.add(asyncio.ensure_future(old.close()))
        self.tasks = _task_manager()
        self._unsubscribe_tasks = self.tasks.subscribe(self._task_changed)
        if self.runtime.ctx.tasks is not None:
            self.runtime.ctx.tasks = self.tasks

    async def review_plan(self, plan: str) -> PlanReview:
        from kimicode.frontends.repl.plan_review import review_plan

        await self._shown.setdefault(PLAN_SHOWN, asyncio.Event()).wait()  # what came before it is on screen
        self._shown.pop(PLAN_SHOWN, None)
        async with self._asking, self.paused_prompt():
            return await review_plan(self, plan)

    async def set_mode(self, mode: str) -> None:
        """Switch mode: rebuild the tools and system prompt for it (DESIGN.md B.7), keeping the history."""
        from kimicode.frontends.common.assembly import rebuilt_for_mode

        self.config.mode = mode
        previous = self.runtime
        model = previous.model.for_model(self.config) if previous.model is not None else None
        self.runtime, self.agent = rebuilt_for_mode(
            self.config,
            self.opened.session.id,
            self.agent,
            self.approve,
            tasks=self.tasks,
            adapt_runtime=self._adapt_runtime,
            model=model,
            **self._extra,
        )
        self.agent.before_write = self._undo.before_write
        await previous.aclose()

    def attach_images(self, paths: list[Path]) -> bool:
        """Encode image files for the next message and say what was attached; False (and one line) on failure."""
        try:
            images = attach_image_files(self.config, paths, self.agent.client.profile)
        except MediaError as exc:
            self.renderer.error(str(exc))
            return False
        self.pending_images.extend(images)
        for image in images:
            self.renderer.dim(f"attached {image.describe()}")
        return True

    def attach_part(self, part: dict[str, Any]) -> None:
        self.pending_parts.append(part)

    async def attach_video(self, path: Path) -> bool:
        try:  # frame sampling (or the upload) runs off the event loop
            frames, parts, line = await asyncio.to_thread(attach_video_file, self.config, path, self.agent.client.profile)
        except MediaError as exc:
            self.renderer.error(str(exc))
            return False
        self.pending_images.extend(frames)
        self.pending_parts.extend(parts)
        self.renderer.dim(f"attached {line}")
        return True

    async def set_model(self, name: str) -> None:
        """Another model at the same endpoint: a new client, the old one's connections closed."""
        self.config.model = name
        previous = self.runtime.switch_model()
        self.agent.client = self.runtime.client
        await previous.aclose()

    async def compact_now(self, instruction: str = "") -> None:
        self.renderer.dim("compacting…")
        try:
            event = await self.agent.compact(self.renderer.event, instruction)
        except Exception as exc:
            self.renderer.error(f"could not compact: {getattr(exc, 'message', exc)}")
            return
        if event is None:
            self.renderer.dim("nothing to compact yet")

    async def undo(self) -> None:
        report = await asyncio.to_thread(self._undo.undo)
        if report.nothing_to_undo:
            self.renderer.dim("nothing to undo")
            return
        for path in report.restored:
            self.renderer.info(f"  restored {path}", "green")
        for path in report.deleted:
            self.renderer.info(f"  removed  {path}", "red")
        label = f" (turn: {report.label})" if report.label else ""
        self.renderer.dim(f"undid the last turn's file changes{label}")

    def session_diff(self) -> str:
        return str(self._undo.diff())

    def open_diff_in_editor(self, diff: str) -> bool:
        """Open ``diff`` in the diff view of the editor this terminal belongs to; False if there is none."""
        from kimicode.frontends.repl.editor_diff import diff_launcher, open_diffs
        from kimicode.frontends.repl.terminal import EDITOR_LABELS

        launcher = diff_launcher(self.terminal)
        if launcher is None:
            return False
        folder = self.config.home / "diffs" / self.opened.session.id
        opened, skipped = open_diffs(diff, launcher, self.config.work_dir, folder)
        if not opened:
            return False
        label = EDITOR_LABELS.get(self.terminal.editor or "", "the editor")
        self.renderer.dim(f"opened {len(opened)} file(s) in {label}'s diff view: {', '.join(opened)}")
        if skipped:
            self.renderer.dim(f"not opened: {', '.join(skipped)} (/diff text prints every change here)")
        return True


def _task_manager() -> TaskManager:
    from kimicode.tools.background import TaskManager

    return TaskManager()


def swarm_accounting(extra: dict[str, Any]) -> str:
    """The end of a swarm turn in one line: critical steps, total steps, tool calls, sub-agents."""
    parts = [
        f"{extra['critical_steps']} critical steps",
        f"{extra.get('total_steps', 0)} total steps",
        f"{extra.get('total_tool_calls', 0)} tool calls",
    ]
    if extra.get("sub_agents"):
        failed = extra.get("sub_agents_failed", 0)
        parts.append(f"{extra['sub_agents']} sub-agents" + (f" ({failed} failed)" if failed else ""))
    return "swarm: " + " · ".join(parts)


def attach_mentions(text: str, workspace: Path) -> tuple[str, list[str]]:
    """Append the content of each ``@path`` that names a readable text file in the workspace.

    Image files are left out: they are attached as images (kimicode.frontends.common.media.image_mentions)."""
    from kimicode.frontends.common.media import MAX_ATTACH_BYTES, file_block, is_image_path, is_secret

    blocks: list[str] = []
    attached: list[str] = []
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".,;:!?)")
        path = (workspace / name).resolve()
        if name in attached or not path.is_file() or path.stat().st_size > MAX_ATTACH_BYTES or is_image_path(path):
            continue
        if is_secret(workspace / name):  # `@notes` linking to ~/.ssh/id_rsa: secrets never go to the model
            continue
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        attached.append(name)
        blocks.append(file_block(name, content))
    if not blocks:
        return text, []
    return text + "\n\n" + "\n\n".join(blocks), attached

