"""Going back to where a turn began: the ``mark`` an undo provider gave at the turn's start (kept in the
session log as a ``checkpoint`` record) restored on disk.

A git mark names a checkpoint commit; a backups mark names a backup folder and the last backup turn made
before the turn began, and going back undoes every backup turn after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kimicode.vcs.undo import UndoReport


class MarkError(RuntimeError):
    """The point cannot be restored (no checkpoint, or it is gone); the message is one line."""


def restore_mark(mark: Mapping[str, Any], workspace: Path, kimicode_home: Path, before_label: str = "") -> UndoReport:
    """Put the files back as they were at ``mark``. With ``before_label`` (git only), the present state is
    first kept as a checkpoint of the session ``before_label`` names, so /undo there takes the rewind back."""
    from kimicode.vcs.backups import FileBackups
    from kimicode.vcs.checkpoints import CheckpointError, Checkpoints

    commit = mark.get("git")
    if isinstance(commit, str) and commit:
        try:
            checkpoints = Checkpoints(workspace, before_label or "rewind")
            if before_label:
                checkpoints.begin_turn("before rewind")
            return checkpoints.restore_commit(commit)
        except CheckpointError as exc:
            raise MarkError(str(exc)) from None
    folder, turn = mark.get("backups"), mark.get("turn")
    if isinstance(folder, str) and folder and str(turn).isdigit() and "/" not in folder and folder not in (".", ".."):
        return FileBackups(kimicode_home, folder, workspace=workspace).undo_after(int(str(turn)))
    raise MarkError("no file checkpoint was taken before that message")
