"""Ctrl-G: edit the prompt's text in the user's editor and put the result back in the prompt.

The editor is ``$VISUAL``, then ``$EDITOR`` (both may carry arguments, e.g. ``code --wait``); inside an
editor's terminal with neither set, that editor's own launcher waits for the tab to close (``code --wait``,
``cursor --wait``, ``zed --wait``); else Debian's ``editor`` alternative, ``nano``, ``vi`` (Notepad on
Windows).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from kimicode.frontends.repl.terminal import EDITOR_LABELS, Terminal

FALLBACK_EDITORS = ("notepad",) if sys.platform == "win32" else ("editor", "nano", "vi")


class EditorError(Exception):
    """The editor could not be run (or failed); the message is one line and the prompt keeps its text."""


def editor_command(terminal: Terminal, env: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """The command to run (the file name is appended) and a short name for it."""
    env = os.environ if env is None else env
    for variable in ("VISUAL", "EDITOR"):
        value = env.get(variable, "").strip()
        if value:
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                raise EditorError(f"${variable} is not a valid command ({exc}): {value}") from None
            return argv, f"${variable} ({argv[0]})"
    for launcher in terminal.editor_commands():
        found = shutil.which(launcher)
        if found:
            return [found, "--wait"], EDITOR_LABELS.get(terminal.editor or "", launcher)
    for fallback in FALLBACK_EDITORS:
        found = shutil.which(fallback)
        if found:
            return [found], fallback
    raise EditorError("no editor found: set VISUAL or EDITOR (for example EDITOR=\"code --wait\")")


def edit_text(text: str, argv: list[str], folder: Path | None = None) -> str:
    """Open ``text`` in the editor, wait for it to exit, and return the file's new content."""
    handle, name = tempfile.mkstemp(prefix="kimicode-prompt-", suffix=".md", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            code = subprocess.call([*argv, str(path)])
        except OSError as exc:
            raise EditorError(f"cannot start {argv[0]}: {exc.strerror or exc}; the prompt is unchanged") from None
        if code != 0:
            raise EditorError(f"{Path(argv[0]).name} exited with status {code}; the prompt is unchanged")
        edited = path.read_text(encoding="utf-8", errors="replace")
    finally:
        path.unlink(missing_ok=True)
    # Editors end the file with a newline; a prompt that ends in one would send a blank last line.
    return edited[:-1] if edited.endswith("\n") else edited
