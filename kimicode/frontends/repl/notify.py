"""A terminal notification when a long turn ends or stops to ask for an approval.

"Long" is ``notify_after`` seconds (config.toml, default 20; 0 turns notifications off), so a quick
question never pings, while a user who went to another window hears back. The sequence is the one the
terminal shows as a desktop notification (OSC 9 or OSC 777, see terminal.py), else the bell; terminals
show notifications only while their window or tab is in the background.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kimicode.frontends.repl.terminal import Terminal, notification_sequence

TITLE = "kimicode"


class Notifier:
    def __init__(self, terminal: Terminal, after_seconds: float, write: Callable[[str], None]) -> None:
        self.kind = terminal.notification
        self.enabled = terminal.tty and after_seconds > 0
        self.after = after_seconds
        self._write = write
        self._started: float | None = None
        self.clock = time.monotonic
        # Told the message when a long turn ends (the Notification hook); an approval fires it in the core.
        self.on_idle: Callable[[str], None] | None = None

    def turn_started(self) -> None:
        self._started = self.clock()

    def _long(self) -> bool:
        return self.enabled and self._started is not None and self.clock() - self._started >= self.after

    def turn_ended(self, summary: str) -> None:
        if self._long():
            elapsed = self.clock() - (self._started or 0.0)
            body = f"done after {_duration(elapsed)}" + (f": {summary}" if summary else "")
            self._send(body)
            if self.on_idle is not None:
                self.on_idle(body)
        self._started = None

    def turn_cancelled(self) -> None:
        self._started = None

    def approval_needed(self, what: str) -> None:
        if self._long():
            self._send(f"waiting for your approval: {what}")

    def _send(self, body: str) -> None:
        try:
            self._write(notification_sequence(self.kind, TITLE, body))
        except (OSError, ValueError):
            pass  # the terminal went away; nothing to tell


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
