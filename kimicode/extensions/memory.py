"""Instructions the user keeps for every project, and the ``#text`` memory lines.

Global instructions: ``KIMICODE_HOME/AGENTS.md`` (``~/.kimicode/AGENTS.md``), then Claude Code's
``~/.claude/CLAUDE.md``, both read when present; the system prompt puts them before the project's own
instructions (kimicode.agent.prompt), so the project's, read later, can narrow them.
"""

from __future__ import annotations

import os
from pathlib import Path

GLOBAL_FILE = "AGENTS.md"
MAX_GLOBAL_CHARS = 12_000  # of each file, as for the project's
MAX_MEMORY_LINE = 2_000


def global_instruction_paths(kimicode_home: Path, user_home: Path | None = None) -> list[Path]:
    """Where global instructions are read from, in the order they go into the prompt."""
    user_home = Path.home() if user_home is None else user_home
    return [kimicode_home / GLOBAL_FILE, user_home / ".claude" / "CLAUDE.md"]


def global_instructions(kimicode_home: Path, user_home: Path | None = None) -> list[tuple[Path, str]]:
    """The global instruction files that exist and say something, each bounded."""
    found: list[tuple[Path, str]] = []
    for path in global_instruction_paths(kimicode_home, user_home):
        try:
            with path.open(encoding="utf-8", errors="replace") as file:
                text = file.read(MAX_GLOBAL_CHARS)
        except OSError:  # absent (the usual case) or unreadable: nothing to add
            continue
        if text.strip():
            found.append((path, text))
    return found


def append_memory(path: Path, text: str, within: Path | None = None) -> str:
    """Append ``text`` as one list item at the end of ``path`` (created if missing); returns the line.
    ``within``: the folder the file must really be in (a project's AGENTS.md linking to ~/.bashrc is not
    written through)."""
    line = " ".join(text.split())[:MAX_MEMORY_LINE]
    if not line:
        raise ValueError("nothing to remember: write the text after #")
    if within is not None and within.resolve() not in path.resolve().parents:
        raise ValueError(f"it leads to {path.resolve()}, outside {within}; nothing was written")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            if size:
                file.seek(size - 1)
            ends_open = size > 0 and file.read(1) != b"\n"
    except FileNotFoundError:
        ends_open = False
    with path.open("a", encoding="utf-8") as file:
        file.write(("\n" if ends_open else "") + f"- {line}\n")
    return f"- {line}"
