"""Drive the real interactive kimicode inside tmux and read what the terminal shows (``capture-pane``).

tmux is a real terminal: it answers the prompt's cursor-position requests itself, at once, as the
terminals people use do, and its screen is what a person would see, wrapping and all.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.replpty import pty_env

_names = itertools.count()


class TmuxRepl:
    def __init__(
        self, home: Path, cwd: Path, base_url: str, *args: str, columns: int = 80, lines: int = 30
    ) -> None:
        self.socket = f"kimicode-test-{os.getpid()}-{next(_names)}"
        env = pty_env(home, base_url, COLUMNS=str(columns), LINES=str(lines))
        env.pop("TMUX", None)
        self._run(
            "new-session", "-d", "-s", "t", "-x", str(columns), "-y", str(lines),
            "--", sys.executable, "-m", "kimicode", *args, env=env, cwd=cwd,
        )
        self._run("set-option", "-t", "t", "remain-on-exit", "on")

    def _run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=30,
        )
        if done.returncode != 0:
            raise AssertionError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> list[str]:
        """The visible rows, as the terminal draws them."""
        return self._run("capture-pane", "-p", "-t", "t").rstrip("\n").split("\n")

    def history(self) -> str:
        """Scrollback and screen together."""
        return self._run("capture-pane", "-p", "-J", "-S", "-", "-t", "t")

    def wait_for(self, condition: Callable[[list[str]], bool], timeout: float = 20.0, what: str = "") -> list[str]:
        """Poll the screen until ``condition`` holds; fails with the last screen."""
        deadline = time.monotonic() + timeout
        rows = self.screen()
        while not condition(rows):
            if time.monotonic() > deadline:
                shown = "\n".join(rows)
                raise AssertionError(f"screen never showed {what or 'the expected state'}:\n{shown}")
            time.sleep(0.01)
            rows = self.screen()
        return rows

    def wait_text(self, text: str, timeout: float = 20.0) -> list[str]:
        return self.wait_for(lambda rows: text in "\n".join(rows), timeout, repr(text))

    def type(self, text: str) -> None:
        self._run("send-keys", "-t", "t", "-l", text)

    def key(self, *names: str) -> None:
        self._run("send-keys", "-t", "t", *names)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
