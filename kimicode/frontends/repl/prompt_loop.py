"""The main prompt: read what the user types, keep it live while a turn runs, step aside for a question.

A question (an approval, the plan review, ``ask_line``) pauses the prompt: what was typed so far is kept as
a draft, the prompt leaves the screen, the question is asked below the transcript, and the prompt comes
back with the draft once no question is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kimicode.frontends.repl.live import STANCE_LABELS

if TYPE_CHECKING:
    from kimicode.agent.loop import Agent
    from kimicode.config import Config
    from kimicode.frontends.repl.control import ReplControl

PROMPT = "› "
# What the prompt returns when a question paused it (the text typed so far is kept in the draft).
_PAUSED = object()


class LivePrompt:
    def __init__(self) -> None:
        self.session: Any = None  # the PromptSession, once the REPL's session is open (build_session)
        self._active = False
        self._draft: Any = ""
        self._pauses = 0
        self._unpaused: asyncio.Event | None = None

    @property
    def _app(self) -> Any:
        return getattr(self.session, "app", None)

    def invalidate(self) -> None:
        app = self._app
        if app is not None and app.is_running:
            app.invalidate()

    def text(self) -> str:
        app = self._app
        return app.current_buffer.text if app is not None and app.is_running else ""

    def prefill(self, text: str) -> None:
        """The next prompt starts with ``text`` (a rewind puts the message back to edit)."""
        self._draft = text

    def end(self) -> None:
        """Leave the prompt as Ctrl-D does (a signal asks the REPL to end)."""
        app = self._app
        if app is not None and app.is_running:
            app.exit(exception=EOFError())

    async def read(
        self, keep_going: Callable[[], bool], take: Callable[[str], Awaitable[None]], on_ctrl_c: Callable[[], None]
    ) -> None:
        """Hand each line typed to ``take`` until ``keep_going`` says no, Ctrl-D, or Ctrl-C twice on an empty line."""
        interrupts = 0
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        while keep_going():
            if self._pauses:
                await self._unpaused.wait()
                continue
            self._active = True
            try:
                text = await self.session.prompt_async(default=self._draft, handle_sigint=False)
            except KeyboardInterrupt:  # Ctrl-C on an empty prompt
                interrupts += 1
                if interrupts >= 2:
                    break
                on_ctrl_c()
                continue
            except EOFError:
                break
            finally:
                self._active = False
            if text is _PAUSED:
                continue
            self._draft = ""
            interrupts = 0
            await take(text.strip())

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """The prompt steps aside (its text kept) while a question is asked below the transcript."""
        self._pauses += 1
        if self._unpaused is not None:
            self._unpaused.clear()
        try:
            while self._active:
                app = self.session.app
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

    async def ask_line(self, message: str, password: bool = False) -> str:
        from prompt_toolkit import PromptSession

        from kimicode.frontends.repl.live import terminal_output

        async with self.paused():
            answer: str = await PromptSession(output=terminal_output()).prompt_async(message, is_password=password, handle_sigint=False)
            return answer


def build_session(
    repl: ReplControl,
    message: Callable[[], list[tuple[str, str]]],
    toolbar: Callable[[], str],
    command_names: Callable[[], list[str]],
) -> Any:
    """The PromptSession: multi-line, the REPL's keys, @path and /command completion, the status line."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import merge_key_bindings

    from kimicode.frontends.repl.history import WorkspaceHistory
    from kimicode.frontends.repl.input import MentionCompleter, main_key_bindings
    from kimicode.frontends.repl.keys import install_sequences, prompt_bindings, prompt_input, prompt_output
    from kimicode.frontends.repl.live_keys import alongside_bindings
    from kimicode.frontends.repl.mcp_prompts import resource_mentions

    config = repl.config
    config.home.mkdir(parents=True, exist_ok=True)
    install_sequences()  # Shift-Enter as kitty, xterm and the editors' keybinding send it
    return PromptSession(
        message,  # type: ignore[arg-type]  # prompt-toolkit calls it; its stubs want the formatted text itself
        multiline=True,
        key_bindings=merge_key_bindings([main_key_bindings(), prompt_bindings(repl), alongside_bindings(repl)]),
        input=prompt_input(),
        output=prompt_output(repl.terminal.keyboard_mode),
        history=WorkspaceHistory(config.home, config.work_dir),
        completer=MentionCompleter(config.work_dir, command_names, lambda: resource_mentions(repl.mcp)),
        complete_while_typing=True,
        bottom_toolbar=toolbar,
        enable_history_search=False,
        # The prompt leaves no copy of itself in the scrollback: a sent message is echoed instead, and a
        # prompt paused for a question comes back below it.
        erase_when_done=True,
    )


def idle_toolbar(config: Config, agent: Agent) -> str:
    """The bottom line between turns: model, mode, thinking, context used, cost, approval stance."""
    window = agent.client.profile.context_window or 1
    percent = min(100, round(100 * agent.context_tokens / window))
    parts = [
        config.model,
        config.mode,
        f"thinking {'on' if agent.thinking else 'off'}",
        f"context {percent}%",
    ]
    from kimicode.llm.prices import prices_known

    if prices_known(config):  # elsewhere a dollar figure would be a guess
        parts.append(f"${agent.totals.cost:.4f}")
    if agent.policy.yolo:
        parts.append("YOLO")
    parts.append(STANCE_LABELS.get(agent.policy.stance, agent.policy.stance))
    return " " + " · ".join(parts)
