"""Prompt history per workspace: Up walks what was typed in this folder, then the older shared history.

New entries go to ``KIMICODE_HOME/histories/<workspace-hash>`` (the hash sessions use; the file's first
line names the folder). ``KIMICODE_HOME/history``, the single file every workspace shared before, is read
after them and never written again, so nothing typed earlier is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit.history import FileHistory, History

from kimicode.session.store import workspace_hash

LEGACY_NAME = "history"
FOLDER_NAME = "histories"


def history_path(home: Path, workspace: Path) -> Path:
    return home / FOLDER_NAME / workspace_hash(workspace)


class WorkspaceHistory(History):
    def __init__(self, home: Path, workspace: Path) -> None:
        super().__init__()
        self.path = history_path(home, workspace)
        self.legacy = home / LEGACY_NAME
        self._workspace = workspace

    def load_history_strings(self) -> Iterable[str]:
        # Newest first, as prompt-toolkit expects: this workspace's entries, then the shared old file's.
        if self.path.is_file():
            yield from FileHistory(str(self.path)).load_history_strings()
        if self.legacy.is_file():
            yield from FileHistory(str(self.legacy)).load_history_strings()

    def store_string(self, string: str) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"# kimicode prompt history of {self._workspace}\n", encoding="utf-8")
        FileHistory(str(self.path)).store_string(string)
