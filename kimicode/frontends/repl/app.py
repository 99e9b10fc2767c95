"""The interactive REPL: prompt-toolkit input, rich output, approvals, Ctrl-C, slash commands, sessions.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.agent import events as ev
from kimicode.agent.loop import Agent
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.runtime import Runtime, build_runtime
from kimicode.config import Config
from kimicode.llm.messages import Image
from kimicode.frontends.repl import commands
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
    from kimicode.mcp.manager import McpManager

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
PROMPT = "› "
# @path mentions: attached when the path names a file no larger than this.
MAX_ATTACH_BYTES = 256 * 1024
MENTION = re.compile(r"(?<!\S)@(\S+)")
BACKGROUND_IMPORTS = ("openai",)
APPROVAL_ANSWERS = {
    "once": "approved once",
    "session": "approved for this session",
    "always": "approved; kept as a rule for this project (/permissions lists it)",
    "reject": "rejected",
    "cancel": "cancelled",
}


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
        asyncio.get_running_loop().call_later(0.1, threading.Thread(target=_warm_imports, daemon=True).start)
        from kimicode.agent.mcp_run import running_mcp

        self._offer_mcp_import()
        try:
            async with running_mcp(self.config, self.renderer.warn) as mcp:
                self.mcp = mcp
                self._extra = {"extra_tools": mcp.tools} if mcp is not None else {}
                if mcp is not None:
                    self._rebind()
                if task:
                    await self.run_turn(task)
                return await self._loop()
        finally:
            from kimicode.vision.browser import close_session_browsers

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
        self.runtime = build_runtime(self.config, session_id=self.opened.session.id, model=model)
        self.agent = bind_agent(self.runtime, self.opened, self.approve)
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
        answer = await ask_choice(
            f"  [f] fork: continue in a new session with its history  [q] {otherwise}  › ", {"f": "fork", "q": "quit"}
        )
        if answer != "fork":
            return None
        forked = fork_session(self.config, busy)
        self.renderer.dim(f"  → continuing in new session {forked.session.id} (forked from {busy.session.id})")
        return forked

    def _attach_undo(self) -> None:
        from kimicode.vcs.checkpoints import make_undo_provider

        if self._undo is None:
            self._undo = make_undo_provider(self.config.work_dir, self.config.home, self.opened.session.id)
        self.agent.before_write = self._undo.before_write

    def _banner(self) -> None:
        session = self.opened.session
        state = f"resumed session {session.id} ({len(self.opened.history)} messages)" if self.opened.resumed else f"session {session.id}"
        self.renderer.info(f"kimicode · {self.config.model} · {self.config.work_dir}", "bold")
        self.renderer.dim(f"{state} · /help for commands · Enter sends, Alt-Enter or Ctrl-J for a new line")
        from kimicode.security.sandbox import unavailable_notice

        notice = unavailable_notice(self.runtime.ctx.sandbox)
        if notice:
            self.renderer.warn(notice)

    # -- the prompt ----------------------------------------------------------------------------------

    def _make_prompt(self) -> Any:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        from kimicode.frontends.repl.input import main_key_bindings, MentionCompleter

        self.config.home.mkdir(parents=True, exist_ok=True)
        return PromptSession(
            PROMPT,
            multiline=True,
            key_bindings=main_key_bindings(),
            history=FileHistory(str(self.config.home / "history")),
            completer=MentionCompleter(self.config.work_dir, lambda: sorted(commands.COMMANDS)),
            complete_while_typing=True,
            bottom_toolbar=self.toolbar,
            enable_history_search=False,
        )

    def toolbar(self) -> str:
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
        return " " + " · ".join(parts)

    async def _loop(self) -> int:
        interrupts = 0
        while not self.want_exit:
            try:
                text = await self._prompt.prompt_async(handle_sigint=False)
            except KeyboardInterrupt:  # Ctrl-C on an empty prompt
                interrupts += 1
                if interrupts >= 2:
                    break
                self.renderer.dim("(Ctrl-C again or Ctrl-D to exit)")
                continue
            except EOFError:
                break
            interrupts = 0
            text = text.strip()
            if not text:
                continue
            parsed = commands.parse(text)
            if parsed is not None:
                await self._command(*parsed)
                continue
            await self.run_turn(text)
        self.opened.session.close()
        self.renderer.dim(f"session saved: resume with kimicode -r {self.opened.session.id} (or -C)")
        return EXIT_OK

    async def _command(self, name: str, arg: str) -> None:
        command = commands.COMMANDS.get(name)
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
        try:
            await self._turn
        except asyncio.CancelledError:
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
                self.renderer.event(event)
                if isinstance(event, ev.ApprovalRequest):
                    self._shown.setdefault(event.call_id, asyncio.Event()).set()
                if isinstance(event, ev.Done):
                    self._report(event.result)
        finally:
            await run.aclose()

    def _report(self, result: ev.RunResult) -> None:
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
        async with self._asking:
            board = self.renderer.board
            with board.held() if board is not None else contextlib.nullcontext():
                return await self._ask_approval(request)

    async def _ask_approval(self, request: ev.ApprovalRequest) -> ApprovalDecision:
        from kimicode.frontends.repl.input import APPROVAL_KEYS, ask_choice

        self.renderer.close_stream()
        who = f"[{request.agent}] " if request.agent else ""
        self.renderer.info(f"? {who}{request.summary} — {request.reason}", "yellow bold")
        if request.rememberable:
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

    def new_session(self) -> None:
        from kimicode.frontends.common.sessions import new_session

        self.opened.session.close()
        self.opened = new_session(self.config)
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
        self.opened.session.close()
        self.opened = opened
        self._rebind()
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

    async def set_mode(self, mode: str) -> None:
        """Switch mode: rebuild the tools and system prompt for it (DESIGN.md B.7), keeping the history."""
        from kimicode.frontends.common.sessions import fresh_history

        old = self.agent
        self.config.mode = mode
        previous = self.runtime
        model = previous.model.for_model(self.config) if previous.model is not None else None
        self.runtime = build_runtime(self.config, session_id=self.opened.session.id, model=model)
        await previous.aclose()
        self.agent = self.runtime.agent(
            self.approve,
            messages=fresh_history(old.messages, self.runtime.system_prompt),
            on_message=old.on_message,
            on_compacted=old.on_compacted,
            policy=old.policy,
            thinking=self.config.thinking,
            totals=old.totals,
            **self._extra,
        )
        self.agent.before_write = self._undo.before_write

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
        """Another model at the same endpoint: a new client (what is known about the endpoint carries
        over), the old one's connections closed."""
        from kimicode.llm.client import ChatClient
        from kimicode.llm.setup import model_setup

        self.config.model = name
        previous = self.runtime.client
        model = self.runtime.model.for_model(self.config) if self.runtime.model else model_setup(self.config)
        self.runtime.model = model
        self.runtime.client = ChatClient(self.config, model.profile, model.endpoint, model.store)
        self.agent.client = self.runtime.client
        if self.runtime.swarm is not None:  # sub-agents ask the orchestrator's model
            self.runtime.swarm.client = self.runtime.client
        await previous.aclose()

    async def compact_now(self) -> None:
        self.renderer.dim("compacting…")
        try:
            event = await self.agent.compact(self.renderer.event)
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
    from kimicode.frontends.common.media import is_image_path

    blocks: list[str] = []
    attached: list[str] = []
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".,;:!?)")
        path = (workspace / name).resolve()
        if name in attached or not path.is_file() or path.stat().st_size > MAX_ATTACH_BYTES or is_image_path(path):
            continue
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        attached.append(name)
        blocks.append(f'<file path="{name}">\n{content.rstrip()}\n</file>')
    if not blocks:
        return text, []
    return text + "\n\n" + "\n\n".join(blocks), attached

