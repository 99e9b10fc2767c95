"""/diff in the editor: each file this session changed, opened in VS Code's, Cursor's or Zed's diff view.

Their launchers take two files (``code --diff OLD NEW``, ``cursor --diff``, ``zed --diff``). The "old"
side is rebuilt from the session's unified diff and the file as it is now (the diff applied in reverse),
so it works the same over git checkpoints and plain backups; the copies live in
``KIMICODE_HOME/diffs/<session-id>/`` and the right side is the real file, editable in place.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kimicode.agent.prompt import git_root
from kimicode.frontends.repl.terminal import EDITOR_LABELS, Terminal

MAX_FILES = 10
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass
class FileDiff:
    old_name: str | None  # None: the session created the file
    new_name: str | None  # None: the session deleted it
    hunks: list[tuple[int, int, list[str]]] = field(default_factory=list)  # (new start, new count, lines)
    binary: bool = False

    @property
    def name(self) -> str:
        return self.new_name or self.old_name or "?"


def diff_launcher(terminal: Terminal) -> list[str] | None:
    """``[launcher, "--diff"]`` for the editor around this terminal, when its launcher is on PATH."""
    for command in terminal.editor_commands():
        found = shutil.which(command)
        if found:
            return [found, "--diff"]
    return None


def parse_unified(diff: str) -> list[FileDiff]:
    files: list[FileDiff] = []
    current: FileDiff | None = None
    lines = diff.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            current = FileDiff(_side(line[4:]), _side(lines[index + 1][4:]))
            files.append(current)
            index += 2
            continue
        if line.startswith(("Binary files ", "Binary file ")):
            files.append(FileDiff(None, line.split(" ")[2].removeprefix("b/"), binary=True))
        elif current is not None and (hunk := _HUNK.match(line)):
            current.hunks.append((int(hunk.group(1)), int(hunk.group(2) or 1), []))
        elif current is not None and current.hunks and line[:1] in (" ", "-", "+", "\\"):
            current.hunks[-1][2].append(line)
        index += 1
    return files


def _side(name: str) -> str | None:
    name = name.strip()
    if name == "/dev/null":
        return None
    return name[2:] if name.startswith(("a/", "b/")) else name


def original_text(current: str, change: FileDiff) -> str | None:
    """The file before the session: the diff applied in reverse to ``current``; None if they disagree."""
    lines = re.split(r"(?<=\n)", current) if current else []
    if lines and lines[-1] == "":
        lines.pop()
    old: list[str] = []
    position = 0
    last_side = ""
    for start, count, body in change.hunks:
        begin = start - 1 if count else start
        if begin < position or begin > len(lines):
            return None
        old.extend(lines[position:begin])
        position = begin
        for line in body:
            tag, text = line[:1], line[1:] + "\n"
            if tag == "\\":  # "\ No newline at end of file" belongs to the line before it
                if last_side in (" ", "-") and old:
                    old[-1] = old[-1].removesuffix("\n")
                continue
            last_side = tag
            if tag in (" ", "+"):
                if position >= len(lines) or lines[position].removesuffix("\n") != text.removesuffix("\n"):
                    return None
                position += 1
            if tag in (" ", "-"):
                old.append(text)
    old.extend(lines[position:])
    return "".join(old)


def show_in_editor(diff: str, terminal: Terminal, workspace: Path, folder: Path, say: Callable[[str], None]) -> bool:
    """Open ``diff`` in the diff view of the editor this terminal belongs to and ``say`` what was opened;
    False (nothing said) when there is no such editor or no file could be opened."""
    launcher = diff_launcher(terminal)
    if launcher is None:
        return False
    opened, skipped = open_diffs(diff, launcher, workspace, folder)
    if not opened:
        return False
    label = EDITOR_LABELS.get(terminal.editor or "", "the editor")
    say(f"opened {len(opened)} file(s) in {label}'s diff view: {', '.join(opened)}")
    if skipped:
        say(f"not opened: {', '.join(skipped)} (/diff text prints every change here)")
    return True


def open_diffs(diff: str, launcher: list[str], workspace: Path, folder: Path) -> tuple[list[str], list[str]]:
    """Open each changed file's diff view; returns (names opened, names that could not be)."""
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    roots = [workspace] + ([root] if (root := git_root(workspace)) and root != workspace else [])
    opened: list[str] = []
    skipped: list[str] = []
    for change in parse_unified(diff):
        if change.binary or len(opened) >= MAX_FILES:
            skipped.append(change.name)
            continue
        current = _locate(change.name, roots) if change.new_name else None
        try:
            now = _read(current) if current else ""
        except OSError:
            skipped.append(change.name)
            continue
        before = "" if change.old_name is None else original_text(now, change)
        if before is None:
            skipped.append(change.name)
            continue
        left = _write(folder / "before" / _inside(change.name), before)
        right = current if current is not None else _write(folder / "deleted" / _inside(change.name), "")
        try:
            subprocess.Popen(
                [*launcher, str(left), str(right)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            skipped.append(change.name)
            continue
        opened.append(change.name)
    return opened, skipped


def _locate(name: str, roots: list[Path]) -> Path | None:
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for root in roots:
        if (root / candidate).is_file():
            return root / candidate
    return None


def _inside(name: str) -> Path:
    """``name`` as a relative path that stays inside the copies' folder (an absolute path, as plain
    backups name files outside the workspace, or ``..`` must not make a copy land on a real file)."""
    parts = [part for part in Path(name).parts if part not in ("..", ".") and not Path(part).anchor]
    return Path(*parts) if parts else Path("unnamed")


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace", newline="") as file:  # CRLF stays CRLF
        return file.read()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return path
