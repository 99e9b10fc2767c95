"""The open session and what runs it: its agent and runtime, its background tasks, its undo checkpoints.

Switching session (``/clear``, ``/resume``, ``/fork``), mode or model replaces some of these and keeps the
rest: the policy (with what was approved for the session), thinking and the token totals stay with the
agent across a switch; background tasks belong to a session's conversation and end with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kimicode.agent.runtime import Runtime, build_runtime
from kimicode.frontends.common.sessions import OpenedSession, bind_agent

if TYPE_CHECKING:
    from kimicode.agent.loop import Agent, Approver
    from kimicode.config import Config
    from kimicode.frontends.repl.live import LiveArea
    from kimicode.frontends.repl.render import Renderer
    from kimicode.llm.setup import ModelSetup
    from kimicode.mcp.manager import McpManager
    from kimicode.session.rewind import UserTurn
    from kimicode.tools.background import BackgroundTask, TaskManager
    from kimicode.tools.propose_plan import PlanReview
    from kimicode.vcs.checkpoints import DeferredUndo
    from kimicode.vcs.undo import UndoReport


class Conversation:
    def __init__(
        self,
        config: Config,
        renderer: Renderer,
        live: LiveArea,
        approve: Approver,
        review_plan: Callable[[str], Awaitable[PlanReview]],
        task_changed: Callable[[BackgroundTask], None],
    ) -> None:
        self._config = config
        self._renderer = renderer
        self._live = live
        self._approve = approve
        self._review_plan = review_plan
        self._task_changed = task_changed
        self.tasks: TaskManager = _task_manager()
        self._unsubscribe_tasks = self.tasks.subscribe(task_changed)
        self._closing: set[asyncio.Future[None]] = set()  # earlier sessions' tasks, being stopped
        self._extra: dict[str, Any] = {}  # agent overrides, e.g. MCP tools that appear while running
        self._undo: DeferredUndo | None = None
        self.runtime: Runtime
        self.opened: OpenedSession
        self.agent: Agent

    @property
    def undo(self) -> DeferredUndo:
        assert self._undo is not None, "the conversation is not started"
        return self._undo

    def start(self, opened: OpenedSession, model: ModelSetup) -> None:
        """The first session: its runtime (the model's setup derived once; /model and /mode reuse it) and agent."""
        from kimicode.vcs.checkpoints import DeferredUndo

        self.opened = opened
        self.runtime = build_runtime(self._config, session_id=opened.session.id, tasks=self.tasks, model=model)
        self._adapt_runtime(self.runtime)
        self.agent = bind_agent(self.runtime, opened, self._approve)
        self._live.todo = list(opened.todo)
        self._undo = DeferredUndo(self._config.work_dir, self._config.home, opened.session.id)
        self.agent.before_write = self._undo.before_write
        self._open_hooks("resume" if opened.resumed else "startup")

    def use_mcp(self, mcp: McpManager | None) -> None:
        """The session's MCP servers are up: their tools join the agent's."""
        self._extra = {"extra_tools": mcp.tools} if mcp is not None else {}
        if mcp is not None:
            self._rebind()

    def new_session(self) -> None:
        from kimicode.frontends.common.sessions import new_session

        self.switch_to(new_session(self._config), "clear")

    def switch_to(self, opened: OpenedSession, source: str = "resume") -> None:
        """Continue in ``opened`` (the current session is saved and released); ``source``: SessionStart's."""
        self.opened.session.close()
        self.opened = opened
        self._new_tasks()
        self._rebind()
        self._open_hooks(source)

    def notify_hooks(self, message: str) -> None:
        """A long turn ended while the user may be away: the Notification hook, which nobody waits on."""
        hooks = self.runtime.hooks
        if hooks is None or not hooks.has("Notification"):
            return
        fields = {"message": message, "notification_type": "idle_prompt"}
        notice = asyncio.ensure_future(hooks.event("Notification", self.opened.session.id, fields, self._renderer.warn))
        self._closing.add(notice)  # kept until done, and awaited on close
        notice.add_done_callback(self._closing.discard)

    def _open_hooks(self, source: str) -> None:
        if self.runtime.hooks is not None:
            self.runtime.hooks.open_session(self.opened.session.id, source, self._renderer.warn)

    async def set_mode(self, mode: str) -> None:
        """Switch mode: rebuild the tools and system prompt for it (DESIGN.md B.7), keeping the history."""
        from kimicode.frontends.common.assembly import rebuilt_for_mode

        self._config.mode = mode
        previous = self.runtime
        model = previous.model.for_model(self._config) if previous.model is not None else None
        self.runtime, self.agent = rebuilt_for_mode(
            self._config,
            self.opened.session.id,
            self.agent,
            self._approve,
            tasks=self.tasks,
            adapt_runtime=self._adapt_runtime,
            model=model,
            **self._extra,
        )
        self.agent.before_write = self.undo.before_write
        await previous.aclose()

    async def set_model(self, name: str) -> None:
        """Another model at the same endpoint: a new client, the old one's connections closed."""
        self._config.model = name
        previous = self.runtime.switch_model()
        self.agent.client = self.runtime.client
        await previous.aclose()

    async def compact_now(self, instruction: str = "") -> None:
        self._renderer.dim("compacting…")
        try:
            event = await self.agent.compact(self._renderer.event, instruction)
        except Exception as exc:  # noqa: BLE001 - a failed compaction is one line; the session goes on
            self._renderer.error(f"could not compact: {getattr(exc, 'message', exc)}")
            return
        if event is None:
            self._renderer.dim("nothing to compact yet")

    def begin_turn(self, label: str) -> None:
        """A turn begins (in a worker thread): checkpoint the files, and note where in the log, so a rewind
        to this message can put them back."""
        from kimicode.session.records import RECORD_CHECKPOINT

        self.undo.begin_turn(label)
        mark = self.undo.mark()
        if mark:
            self.opened.session.append_record(RECORD_CHECKPOINT, **mark)

    async def rewind(self, turn: UserTurn, conversation: bool, files: bool) -> None:
        """Back to just before ``turn``'s message: the files first (the present kept as a checkpoint, so
        /undo takes the rewind back), then the conversation as a fork of this session."""
        from kimicode.frontends.common.sessions import session_store
        from kimicode.session.rewind import fork_before
        from kimicode.vcs.marks import restore_mark

        if files and turn.checkpoint is None:
            self._renderer.warn(f"no file checkpoint was taken before message {turn.number}; files left as they are")
        elif files and turn.checkpoint is not None:
            mark = turn.checkpoint

            def restore() -> UndoReport:
                self.undo.begin_turn("before rewind")
                return restore_mark(mark, self._config.work_dir, self._config.home)

            try:
                report = await asyncio.to_thread(restore)
            except Exception as exc:  # noqa: BLE001 - a failed restore is one line; the conversation is untouched
                self._renderer.error(f"files not restored: {exc}")
                return
            self._show_report(report)
            self._renderer.dim(f"files restored to before message {turn.number}")
        if conversation:
            source = self.opened.session
            fork = fork_before(session_store(self._config), source, turn, self._config.model, self._config.mode)
            loaded = fork.load_messages()
            self.switch_to(OpenedSession(fork, loaded.messages, loaded.warnings, loaded.todo))
            self._renderer.dim(
                f"conversation rewound to before message {turn.number}: new session {fork.id}"
                f" (session {source.id} is kept as it was)"
            )

    def _show_report(self, report: UndoReport) -> None:
        for path in report.restored:
            self._renderer.info(f"  restored {path}", "green")
        for path in report.deleted:
            self._renderer.info(f"  removed  {path}", "red")

    async def undo_last_turn(self) -> None:
        report = await asyncio.to_thread(self.undo.undo)
        if report.nothing_to_undo:
            self._renderer.dim("nothing to undo")
            return
        self._show_report(report)
        label = f" (turn: {report.label})" if report.label else ""
        self._renderer.dim(f"undid the last turn's file changes{label}")

    async def close(self) -> None:
        """The REPL ends: background tasks (this session's and earlier ones'), browsers and clients go."""
        from kimicode.vision.browser import close_session_browsers

        if self.runtime.hooks is not None:
            await self.runtime.hooks.event("SessionEnd", self.opened.session.id, {"reason": "exit"}, self._renderer.dim)
        await asyncio.gather(self.tasks.close(), *self._closing, return_exceptions=True)  # tasks end with the session
        with contextlib.suppress(Exception):
            await close_session_browsers()
        with contextlib.suppress(Exception):
            await self.runtime.aclose()

    def _rebind(self) -> None:
        old = self.agent
        self.runtime.session_id = self.opened.session.id
        self.agent = bind_agent(
            self.runtime, self.opened, self._approve, policy=old.policy, thinking=old.thinking, totals=old.totals, **self._extra
        )
        self.agent.before_write = self.undo.before_write
        self._live.todo = list(self.opened.todo)

    def _adapt_runtime(self, runtime: Runtime) -> None:
        runtime.ctx.review_plan = self._review_plan

    def _new_tasks(self) -> None:
        """Another session: the old one's background tasks end with it (they belonged to its conversation)."""
        old = self.tasks
        self._unsubscribe_tasks()
        if old.running():
            self._renderer.dim(f"stopping {len(old.running())} background task(s) of the previous session")
        self._closing.add(asyncio.ensure_future(old.close()))
        self.tasks = _task_manager()
        self._unsubscribe_tasks = self.tasks.subscribe(self._task_changed)
        if self.runtime.ctx.tasks is not None:
            self.runtime.ctx.tasks = self.tasks


def _task_manager() -> TaskManager:
    from kimicode.tools.background import TaskManager

    return TaskManager()
