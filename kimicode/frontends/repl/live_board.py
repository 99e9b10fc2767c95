"""The swarm board drawn live under the transcript: a few lines rewritten in place while sub-agents run.

Only the board's own lines are redrawn (cursor up, erase to the end of the screen, write), never the whole
screen, and redraws are coalesced so twenty sub-agents reporting at once cost one repaint. Anything else
that prints first erases the board; the board comes back on the next redraw. When the output is not a
terminal nothing is redrawn: the final board is printed once by ``finish``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import IO

from kimicode.agent.events import SubAgentUpdate, TodoUpdate
from kimicode.frontends.repl.board import SwarmBoard

# Seconds between repaints at most; updates arriving in between are drawn together.
REDRAW_INTERVAL = 0.05
# Lines of the terminal kept free under the board (the cursor line and a margin).
SPARE_LINES = 3
CURSOR_UP = "\x1b[{n}A"
ERASE_DOWN = "\r\x1b[J"


class LiveBoard:
    def __init__(self, out: IO[str], width: int, height: int, live: bool) -> None:
        self.out = out
        self.width = max(width - 1, 20)  # one column spare: a line that fills the row wraps on some terminals
        self.max_rows = max(height - SPARE_LINES - 2, 3)
        self.live = live
        self.board = SwarmBoard()
        self._drawn = 0  # board lines on screen now, just above the cursor
        self._held = False
        self._scheduled: asyncio.TimerHandle | None = None

    def update(self, event: SubAgentUpdate) -> None:
        self.board.update(event)
        self._request_redraw()

    def update_todo(self, event: TodoUpdate) -> None:
        self.board.update_todo(event)
        self._request_redraw()

    def erase(self) -> None:
        """Take the board off the screen (before other output); it is drawn again on the next redraw."""
        if self._drawn:
            self.out.write(CURSOR_UP.format(n=self._drawn) + ERASE_DOWN)
            self.out.flush()
            self._drawn = 0
        self._request_redraw()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No redraws inside (a question is being asked below the transcript)."""
        self.erase()
        self._held = True
        try:
            yield
        finally:
            self._held = False
            self._request_redraw()

    def finish(self) -> list[str]:
        """Draw the final board and leave it in the scrollback; returns its lines."""
        self._cancel_scheduled()
        lines = self.board.lines(self.width, self.max_rows)
        if self.live:
            self._paint(lines)
        else:
            self.out.write("".join(line + "\n" for line in lines))
            self.out.flush()
        self._drawn = 0  # the lines stay: they are part of the transcript now
        self.live = False
        return lines

    def redraw(self) -> None:
        self._scheduled = None
        if self.live and not self._held:
            self._paint(self.board.lines(self.width, self.max_rows))

    def _paint(self, lines: list[str]) -> None:
        # One write: erase what was there and draw the new lines, so the terminal never shows a blank board.
        prefix = CURSOR_UP.format(n=self._drawn) + ERASE_DOWN if self._drawn else ERASE_DOWN
        self.out.write(prefix + "".join(line + "\n" for line in lines))
        self.out.flush()
        self._drawn = len(lines)

    def _request_redraw(self) -> None:
        if not self.live or self._held or self._scheduled is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.redraw()
            return
        self._scheduled = loop.call_later(REDRAW_INTERVAL, self.redraw)

    def _cancel_scheduled(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
