"""Working alongside the agent: what the REPL shows above its prompt while a turn runs, and the output path.

The prompt stays on screen during a turn. Above it, redrawn on every change (prompt-toolkit's prompt
message, so it always sits right above the input): the line being streamed (only whole lines go to the
scrollback, so the prompt is never drawn in the middle of one), the todo list (Ctrl-T folds it to one
line), the background tasks still running, the messages queued for the end of the turn and those sent into
it (Ctrl-S) that the model has not seen yet. Everything the renderer prints reaches the terminal through
``live_output``: a stdout proxy that erases the prompt, writes, and draws the prompt again below.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from kimicode.tools.todo import todo_summary

if TYPE_CHECKING:
    from kimicode.tools.background import BackgroundTask

Fragments = list[tuple[str, str]]
# Seconds the proxy gathers output before one repaint: streamed text is drawn in ~20 batches a second.
OUTPUT_BATCH_S = 0.05
MAX_TODO_LINES = 12
MARKS = {"done": "✓", "in_progress": "▶", "pending": "☐"}
STANCE_LABELS = {"ask": "ask", "auto-edit": "auto-edit", "plan": "plan mode"}


class LiveStdout:
    """sys.stdout while the REPL runs: with a prompt on screen (the main one or a question), writes are
    gathered for ``OUTPUT_BATCH_S`` and written above it in one go (prompt-toolkit erases the prompt, the
    text is written, the prompt is drawn again below); with no prompt they are written at once, in order;
    while a prompt is closing they wait for it to be gone. Escape sequences pass unchanged (rich's colours,
    the swarm board's cursor moves). Only the event loop's thread writes here; a write from elsewhere goes
    straight through."""

    def __init__(self, real: TextIO) -> None:
        self._real = real
        self._pending: list[str] = []
        self._handle: asyncio.TimerHandle | None = None

    @staticmethod
    def _prompt() -> Any:
        from prompt_toolkit.application.current import get_app_session

        return get_app_session().app  # whichever prompt runs now, in any task's context

    def write(self, data: str) -> int:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        app = self._prompt() if loop is not None else None
        if app is None or not app.is_running:
            self._write_pending()
            self._real.write(data)
            return len(data)
        self._pending.append(data)
        if self._handle is None:
            self._handle = loop.call_later(OUTPUT_BATCH_S, self._write_above)  # type: ignore[union-attr]
        return len(data)

    def flush(self) -> None:
        if not self._pending:
            self._real.flush()

    def _write_pending(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._real.write(text)
            self._real.flush()

    def _write_above(self) -> None:
        self._handle = None
        if not self._pending:
            return
        app = self._prompt()
        if app is None or not app.is_running:
            self._write_pending()
            return
        if app.is_done:  # closing: its last drawing is still on screen; write once it is gone
            self._handle = asyncio.get_running_loop().call_later(0.01, self._write_above)
            return
        from prompt_toolkit.application import run_in_terminal

        text = "".join(self._pending)
        self._pending.clear()

        def write() -> None:
            self._real.write(text)
            self._real.flush()

        run_in_terminal(write, in_executor=False)

    def close(self) -> None:
        self._write_pending()

    def fileno(self) -> int:
        return self._real.fileno()

    def isatty(self) -> bool:
        return self._real.isatty()

    @property
    def encoding(self) -> str:
        return getattr(self._real, "encoding", "utf-8")

    @property
    def errors(self) -> str:
        return getattr(self._real, "errors", "strict")


def terminal_output() -> Any:
    """A prompt-toolkit output that draws straight on the terminal, for a question asked during a turn.

    Left to itself prompt-toolkit would write through sys.stdout, the proxy above, which holds writes back
    and hands them to ``run_in_terminal``: the question's cursor-position request would then reach the
    terminal while the keyboard is in cooked mode and its answer (``ESC[16;9R``) be echoed on screen."""
    from prompt_toolkit.output.defaults import create_output

    out = sys.stdout
    return create_output(stdout=out._real if isinstance(out, LiveStdout) else out)


@contextlib.contextmanager
def live_output() -> Iterator[None]:
    """sys.stdout goes above the running prompt for the length of the block."""
    original = sys.stdout
    proxy = LiveStdout(original)
    sys.stdout = proxy
    try:
        yield
    finally:
        proxy.close()
        sys.stdout = original


class LiveArea:
    def __init__(self) -> None:
        self.todo: list[dict[str, str]] = []
        self.todo_expanded = True
        self.queue: list[str] = []  # typed during the turn, sent when it ends (Up takes the last one back)
        self.turn_started: float | None = None

    # -- what is shown above the prompt --------------------------------------------------------------

    def fragments(
        self, *, partial: tuple[str, str], steering: list[str], tasks: list[BackgroundTask], width: int
    ) -> Fragments:
        out: Fragments = []
        kind, text = partial
        if text:
            out.append(("italic fg:ansibrightblack" if kind == "thinking" else "", text + "\n"))
        out += self._todo_lines(width)
        if tasks:
            names = " · ".join(f"{t.id} {_clip(t.command, 30)}" for t in tasks[:3])
            more = f" · +{len(tasks) - 3}" if len(tasks) > 3 else ""
            out.append(("fg:ansicyan", _clip(f"  ⚙ {len(tasks)} background task{'s' * (len(tasks) != 1)}: {names}{more} (/tasks)", width) + "\n"))
        for message in self.queue:
            out.append(("fg:ansiyellow", _clip(f"  ⏳ queued: {_one_line(message)}", width) + "\n"))
        for message in steering:
            out.append(("fg:ansimagenta", _clip(f"  ↳ to the running turn: {_one_line(message)}", width) + "\n"))
        return out

    def _todo_lines(self, width: int) -> Fragments:
        items = self.todo
        if not items or all(item["status"] == "done" for item in items):
            return []
        if not self.todo_expanded:
            return [("fg:ansibrightblack", _clip(f"  todo {todo_summary(items)} (Ctrl-T shows all)", width) + "\n")]
        lines: Fragments = [("bold", f"  todo {sum(i['status'] == 'done' for i in items)}/{len(items)}\n")]
        for item in items[:MAX_TODO_LINES]:
            style = {"done": "fg:ansibrightblack strike", "in_progress": "bold fg:ansigreen"}.get(item["status"], "")
            lines.append((style, _clip(f"  {MARKS.get(item['status'], '?')} {item['content']}", width) + "\n"))
        if len(items) > MAX_TODO_LINES:
            lines.append(("fg:ansibrightblack", f"    … {len(items) - MAX_TODO_LINES} more\n"))
        return lines

    # -- the bottom line while a turn runs -----------------------------------------------------------

    def running_toolbar(self, stance: str, can_background: bool) -> str:
        seconds = int(time.monotonic() - self.turn_started) if self.turn_started else 0
        keys = ["Esc cancels", "Enter queues", "Ctrl-S sends now"]
        if can_background:
            keys.append("Ctrl-B backgrounds the command")
        return f" ● working {seconds}s · " + " · ".join(keys) + f" · {STANCE_LABELS.get(stance, stance)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, width: int) -> str:
    width = max(width - 1, 20)
    return text if len(text) <= width else text[: width - 1] + "…"
