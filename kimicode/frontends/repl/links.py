"""File paths in the REPL's output as OSC 8 hyperlinks the terminal (or the editor around it) opens.

A path becomes a link only when it names a file that exists (relative paths against the workspace), so
prose like "e.g." or a version number never turns into a dead link. The link target depends on who opens
it (see ``hyperlink_format`` in config.toml):

| format            | target                                   | used by default in            |
|-------------------|------------------------------------------|-------------------------------|
| `vscode`          | `vscode://file/abs/path:LINE:COL`        | VS Code (local)               |
| `vscode-insiders` | `vscode-insiders://file/abs/path:LINE`   | VS Code Insiders              |
| `cursor`          | `cursor://file/abs/path:LINE:COL`        | Cursor                        |
| `windsurf`        | `windsurf://file/abs/path:LINE:COL`      | Windsurf                      |
| `zed`             | `zed://file/abs/path:LINE:COL`           | Zed                           |
| `kitty`           | `file://HOST/abs/path#LINE`              | kitty (its open-actions read the fragment) |
| `file`            | `file://HOST/abs/path`                   | every other terminal with OSC 8 |
| `none`            | no links                                 | terminals without OSC 8, NO_COLOR, not a tty |

A custom format is a string with ``{path}``, ``{line}``, ``{column}`` and ``{host}`` (as ripgrep's
``--hyperlink-format``). VS Code takes ``file://`` URIs with a host for a network share, hence its own
scheme; Ghostty refuses ``file://`` without a host. Over SSH the editor schemes would open a path on the
wrong machine, so editors' terminals get no links there and detect the plain ``path:line`` text themselves.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import urllib.parse
from pathlib import Path

from rich.style import Style
from rich.text import Text

from kimicode.frontends.repl.terminal import VSCODE_FAMILY, Terminal

FORMATS = {
    "vscode": "vscode://file{path}:{line}:{column}",
    "vscode-insiders": "vscode-insiders://file{path}:{line}:{column}",
    "cursor": "cursor://file{path}:{line}:{column}",
    "windsurf": "windsurf://file{path}:{line}:{column}",
    "vscodium": "vscodium://file{path}:{line}:{column}",
    "zed": "zed://file{path}:{line}:{column}",
    "kitty": "file://{host}{path}#{line}",
    "file": "file://{host}{path}",
}
# A path-like token: a run of path characters holding a slash or a file extension, then :LINE[:COL].
# (Patterns are compiled on first use: the REPL starts without paying for them.)
_CANDIDATE = (
    r"(?<![\w./~:@+-])(?P<path>~?[\w./@+-]*(?:/[\w.@+-]+|\.[A-Za-z0-9_]{1,12}))"
    r"(?::(?P<line>\d{1,7})(?::(?P<col>\d{1,5}))?)?"
)
_HUNK = r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@"
_CACHE_LIMIT = 4096


def choose_format(terminal: Terminal, setting: str = "auto") -> str:
    """The link pattern for this terminal ("" = no links)."""
    setting = (setting or "auto").strip()
    if setting == "none" or not terminal.hyperlinks:
        return ""
    if setting != "auto":
        return FORMATS.get(setting, setting if "{path}" in setting else "")
    if terminal.name in VSCODE_FAMILY or terminal.name == "zed":
        return "" if terminal.remote else FORMATS[terminal.name]
    if terminal.name == "kitty":
        return FORMATS["kitty"]
    return FORMATS["file"]


class Linker:
    """Adds OSC 8 link styles to rich Text: paths that exist become links to the file (and line)."""

    def __init__(self, workspace: Path, pattern: str) -> None:
        self.workspace = workspace
        self.pattern = pattern
        self._host = socket.gethostname() if "{host}" in pattern else ""
        self._files: dict[str, Path | None] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.pattern)

    def uri(self, path: Path, line: int | None = None, column: int | None = None) -> str:
        posix = path.as_posix()
        if sys.platform == "win32" and not posix.startswith("/"):
            posix = "/" + posix  # C:/x -> /C:/x, as file URIs and editor schemes spell a drive
        quoted = urllib.parse.quote(posix, safe="/:@+-._~")
        target = self.pattern
        if line is None:
            # Drop the position parts the pattern would otherwise fill with nothing.
            target = re.sub(r"(:\{line\}(:\{column\})?|#\{line\})", "", target)
        return target.format(path=quoted, line=line or 1, column=column or 1, host=self._host)

    def file(self, name: str) -> Path | None:
        """The existing regular file ``name`` refers to (absolute, ``~``, or relative to the workspace)."""
        if name in self._files:
            return self._files[name]
        found: Path | None = None
        try:
            candidate = Path(name).expanduser()
            if not candidate.is_absolute():
                candidate = self.workspace / candidate
            if candidate.is_file():
                found = Path(os.path.normpath(candidate))
        except (OSError, ValueError):
            found = None
        if len(self._files) >= _CACHE_LIMIT:
            self._files.clear()
        self._files[name] = found
        return found

    def forget(self) -> None:
        """Files may have been created or deleted (after a tool call): look again next time."""
        self._files.clear()

    def decorate(self, text: Text, line_hint: int | None = None) -> Text:
        """Link every existing file path in ``text`` (in place); ``line_hint`` for a path given without one."""
        if not self.pattern:
            return text
        plain = text.plain
        if "/" not in plain and "." not in plain:
            return text
        for match in re.finditer(_CANDIDATE, plain):
            name = match.group("path").rstrip(".")
            if not name or name in (".", ".."):
                continue
            path = self.file(name)
            if path is None:
                continue
            line = int(match.group("line")) if match.group("line") else line_hint
            column = int(match.group("col")) if match.group("col") else None
            end = match.end() if match.group("line") else match.start() + len(name)
            text.stylize(Style(link=self.uri(path, line, column)), match.start(), end)
        return text

    def link_diff_line(self, text: Text, current: Path | None) -> Path | None:
        """A unified-diff line: ``+++ b/path`` links its file, ``@@ … +N @@`` links the file at line N.

        Returns the file the following hunks belong to."""
        if not self.pattern:
            return current
        plain = text.plain
        if plain.startswith(("+++ ", "--- ")):
            name = plain[4:].strip()
            if name.startswith(("a/", "b/")):
                name = name[2:]
            path = self.file(name) if name != "/dev/null" else None
            if path is not None:
                text.stylize(Style(link=self.uri(path)), 4, len(plain))
            return path if plain.startswith("+++ ") else (path or current)
        hunk = re.match(_HUNK, plain)
        if hunk and current is not None:
            text.stylize(Style(link=self.uri(current, int(hunk.group(1)))), 0, hunk.end())
        return current
