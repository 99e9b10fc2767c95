"""What every undo mechanism offers the loop and the REPL, whatever it is built on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass
class UndoReport:
    """What an undo changed, paths relative to the workspace (absolute when outside it)."""

    restored: list[str] = field(default_factory=list)  # modified files put back, deleted files brought back
    deleted: list[str] = field(default_factory=list)  # files created since the checkpoint, removed
    label: str = ""  # the checkpoint that was restored ("" when there was nothing to undo)

    @property
    def nothing_to_undo(self) -> bool:
        return not self.restored and not self.deleted


class UndoProvider(Protocol):
    """Checkpoints taken as the session goes, so a turn's file changes can be taken back."""

    def begin_turn(self, label: str = "") -> None:
        """Called before each turn (git: snapshot the workspace; backups: open a new backup set)."""

    def before_write(self, path: Path) -> None:
        """Called before a tool writes ``path`` (backups: copy it; git: nothing, the snapshot has it)."""

    def undo(self) -> UndoReport:
        """Put the workspace back as it was before the last turn that changed files."""

    def mark(self) -> dict[str, str]:
        """Where the last ``begin_turn`` left things (a session ``checkpoint`` record keeps it; a rewind goes
        back to it through kimicode.vcs.marks); {} when there is no such point."""

    def diff(self) -> str:
        """Unified diff of everything the session changed (new files included)."""
