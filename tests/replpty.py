"""Drive the real interactive kimicode in a pseudo-terminal (pexpect) with a stable terminal setup."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect

from tests.clirun import cli_env

COLUMNS, LINES = 120, 40
# The bottom toolbar is drawn only while the main prompt waits for input.
PROMPT_READY = re.compile(r"context \d+%")
# prompt-toolkit asks where the cursor is (to place the bottom toolbar); a terminal answers, so do we.
CURSOR_POSITION_REQUEST = "\x1b[6n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB0-2]|\x1b[=>]|\r")


# What names the terminal (and the editor around it) the tests run in: left out, so a test sees the same
# plain xterm wherever it runs (inside VS Code, tmux, kitty …); a test that wants one sets it.
TERMINAL_VARIABLES = (
    "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "TMUX", "STY", "TERMINAL_EMULATOR", "LC_TERMINAL",
    "LC_TERMINAL_VERSION", "VTE_VERSION", "KONSOLE_VERSION", "XTERM_VERSION", "ZED_TERM", "FORCE_HYPERLINK",
    "VISUAL", "EDITOR", "SSH_CONNECTION", "SSH_TTY", "GIT_ASKPASS", "DISPLAY", "WAYLAND_DISPLAY",
)
TERMINAL_PREFIXES = ("VSCODE_", "CURSOR_", "KITTY_", "WEZTERM_", "ITERM_", "WT_", "GHOSTTY_", "ALACRITTY_")


def pty_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = cli_env(
        home,
        base_url,
        TERM="xterm-256color",
        COLUMNS=str(COLUMNS),
        LINES=str(LINES),
        NO_COLOR="1",
    )
    for name in list(env):
        if name in TERMINAL_VARIABLES or name.startswith(TERMINAL_PREFIXES):
            del env[name]
    env.update(extra)
    return env


class Repl:
    def __init__(self, home: Path, cwd: Path, base_url: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "kimicode", *args],
            cwd=str(cwd),
            env={**pty_env(home, base_url), **(env or {})},
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(LINES, COLUMNS),
            timeout=20,
        )
        self.transcript = ""

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 20) -> str:
        """Wait for ``pattern`` (a plain string is matched literally); returns the text since the previous
        call up to and including the match, cleaned (the prompt asking where the cursor is, which the live
        prompt does each time it redraws below new output, does not cut it short)."""
        target = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        seen = ""
        try:
            while self.child.expect([target, re.escape(CURSOR_POSITION_REQUEST)], timeout=timeout) == 1:
                seen += clean(str(self.child.before))
                self.child.send("\x1b[1;1R")
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            seen += clean(str(self.child.before))
            self.transcript += seen
            raise AssertionError(f"did not see {target.pattern!r}; screen output so far:\n{seen[-3000:]}") from exc
        seen += clean(str(self.child.before)) + clean(str(self.child.after))
        self.transcript += seen
        return seen

    def wait_prompt(self) -> str:
        return self.expect(PROMPT_READY)

    def send_line(self, text: str) -> None:
        self.child.send(text)
        time.sleep(0.05)  # let prompt-toolkit take the text as typed, not as one paste with the Enter
        self.child.send("\r")

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def wait_exit(self, timeout: float = 20) -> int:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.transcript += clean(str(self.child.before))
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -(self.child.signalstatus or 0))

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


# prompt-toolkit redraws by difference: a character already on screen is stepped over (cursor forward).
CURSOR_FORWARD = re.compile(r"\x1b\[(\d*)C")


def clean(text: str) -> str:
    text = CURSOR_FORWARD.sub(lambda m: " " * int(m.group(1) or 1), text)
    return ANSI.sub("", text)


def processes_with(fragment: str) -> list[int]:
    """Ids of live processes whose command line contains ``fragment``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if fragment in cmdline and state != "Z":
            found.append(int(entry))
    return found


def wait_until(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return bool(condition())  # type: ignore[operator]
