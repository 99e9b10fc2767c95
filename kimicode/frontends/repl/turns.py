"""One turn of the agent: its events shown as they come, Ctrl-C cancelling it (the session stays intact),
its result reported, and a notification when it ends while the user looks elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from kimicode.agent import events as ev
from kimicode.frontends.repl.context_view import ContextWatch
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.agent.loop import Agent
    from kimicode.config import Config
    from kimicode.frontends.repl.approvals import OnScreen
    from kimicode.frontends.repl.live import LiveArea
    from kimicode.frontends.repl.notify import Notifier
    from kimicode.frontends.repl.render import Renderer
    from kimicode.llm.messages import Image

# The key under which the plan review waits for the propose_plan call to be on screen.
PLAN_SHOWN = "propose_plan"
# Events that change what is drawn above the prompt.
_REDRAWN = (ev.TodoUpdate, ev.Steered, ev.TaskUpdate, ev.ToolCallStart, ev.ToolCallEnd)


class TurnRunner:
    def __init__(
        self,
        config: Config,
        renderer: Renderer,
        notifier: Notifier,
        live: LiveArea,
        on_screen: OnScreen,
        redraw: Callable[[], None],
    ) -> None:
        self._config = config
        self._renderer = renderer
        self._notifier = notifier
        self._live = live
        self._on_screen = on_screen
        self._redraw = redraw
        self._turn: asyncio.Task[None] | None = None  # the agent's run, which Ctrl-C cancels
        self._runner: asyncio.Task[None] | None = None  # the whole turn, started while the prompt stays live
        self._ticker: asyncio.TimerHandle | None = None
        self._summary = ""  # the first line of the last turn's result, for the notification
        self._context_watch = ContextWatch()  # the notice before automatic compaction

    # -- a turn that runs while the prompt stays live ---------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    def start(self, turn: Coroutine[Any, Any, None], ended: Callable[[], None]) -> None:
        """Run ``turn`` in the background, redrawing once a second (its elapsed time); ``ended`` follows it."""
        self._runner = asyncio.ensure_future(turn)
        self._live.turn_started = time.monotonic()
        self._runner.add_done_callback(lambda _: self._finished(ended))
        self._tick()

    async def wind_down(self) -> None:
        """The REPL ends: a running turn is cancelled and awaited."""
        if self._runner is not None and self.running:
            self.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner

    def _finished(self, ended: Callable[[], None]) -> None:
        self._live.turn_started = None
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        ended()

    def _tick(self) -> None:
        self._redraw()
        if self.running:
            self._ticker = asyncio.get_running_loop().call_later(1.0, self._tick)

    # -- one turn ---------------------------------------------------------------------------------------

    async def run(self, agent: Agent, text: str, images: list[Image] | None, parts: list[dict[str, Any]] | None) -> None:
        self._turn = asyncio.ensure_future(self._consume(agent, text, images, parts))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.cancel)
        self._summary = ""
        self._notifier.turn_started()
        try:
            await self._turn
            self._notifier.turn_ended(self._summary)
        except asyncio.CancelledError:
            self._notifier.turn_cancelled()  # interrupted by the user, who is here: no notification
            self._renderer.close_stream()
            self._renderer.warn("interrupted; the session is intact")
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            self._turn = None
            self._renderer.info("")

    def cancel(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()

    async def _consume(
        self, agent: Agent, text: str, images: list[Image] | None, parts: list[dict[str, Any]] | None
    ) -> None:
        run = agent.run(text, images, parts)
        try:
            async for event in run:
                if isinstance(event, ev.TodoUpdate) and not event.agent:
                    self._live.todo = list(event.items)
                self._renderer.event(event)
                if (near := self._context_watch.notice(event)) is not None:
                    self._renderer.warn(near)
                if isinstance(event, _REDRAWN):
                    self._redraw()
                if isinstance(event, ev.ApprovalRequest):
                    self._on_screen.shown(event.call_id)
                elif isinstance(event, ev.ToolCallStart) and event.name == "propose_plan":
                    self._on_screen.shown(PLAN_SHOWN)
                if isinstance(event, ev.Done):
                    self._report(event.result)
        finally:
            if isinstance(run, AsyncGenerator):  # closing it cancels the run (and its tool calls)
                await run.aclose()

    def _report(self, result: ev.RunResult) -> None:
        first = (result.result or "").strip().splitlines()
        self._summary = first[0][:100] if first else ""
        if result.submitted and result.result:
            self._renderer.info(result.result, "bold")
        elif result.subtype == "error_max_steps":
            self._renderer.warn(result.result)
        if self._config.mode == "swarm" and "critical_steps" in result.extra:
            self._renderer.dim(swarm_accounting(result.extra))


def swarm_accounting(extra: dict[str, Any]) -> str:
    """The end of a swarm turn in one line: critical steps, total steps, tool calls, sub-agents."""
    parts = [
        f"{extra['critical_steps']} critical steps",
        f"{extra.get('total_steps', 0)} total steps",
        f"{extra.get('total_tool_calls', 0)} tool calls",
    ]
    if extra.get("sub_agents"):
        failed = extra.get("sub_agents_failed", 0)
        parts.append(plural(extra['sub_agents'], 'sub-agent') + (f" ({failed} failed)" if failed else ""))
    return "swarm: " + " · ".join(parts)
