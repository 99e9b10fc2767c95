"""Undo outside git: copies of files taken just before a tool writes them.

Layout: ``KIMICODE_HOME/backups/<session-id>/turn-0001/`` with ``manifest.json`` mapping each original
path to its copy (or to null: the file did not exist). A turn's folder is created on its first write, so
turns that change nothing leave no trace and undo always reverts the last turn that did change files.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from kimicode.vcs.undo import UndoReport

_MANIFEST = "manifest.json"


class FileBackups:
    def __init__(self, kimicode_home: Path, session_id: str, workspace: Path | None = None) -> None:
        self.root = Path(kimicode_home) / "backups" / session_id
        self.workspace = Path(workspace).resolve() if workspace else None
        self._turn = self._last_turn_number()
        self._turn_open = False
        self._label = ""

    # -- the UndoProvider protocol -------------------------------------------------------------------

    def begin_turn(self, label: str = "") -> None:
        self._turn_open = False
        self._label = label

    def before_write(self, path: Path) -> None:
        target = Path(os.path.abspath(path))
        if target.is_dir():
            return  # tools write files; a directory is not something to copy
        if not self._turn_open:
            self._turn += 1
            self._turn_open = True
        folder = self._turn_dir(self._turn)
        manifest = _read_manifest(folder)
        key = str(target)
        if key in manifest["files"]:
            return  # the state before the turn is already saved; later writes in this turn don't matter
        entry: dict[str, Any] = {"copy": None, "created_dirs_from": None}
        if target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            copy_name = f"{len(manifest['files']):05d}-{target.name}"
            shutil.copy2(target, folder / copy_name)
            entry["copy"] = copy_name
        else:
            # Remember the outermost folder the write will create, so undo can remove it again.
            missing = target.parent
            outermost: Path | None = None
            while not missing.exists():
                outermost = missing
                missing = missing.parent
            entry["created_dirs_from"] = str(outermost) if outermost else None
        manifest["files"][key] = entry
        manifest["label"] = self._label
        _write_manifest(folder, manifest)

    def undo(self) -> UndoReport:
        turn = self._last_turn_number()
        if turn == 0:
            return UndoReport()
        folder = self._turn_dir(turn)
        manifest = _read_manifest(folder)
        report = UndoReport(label=str(manifest.get("label", "")))
        for original, entry in manifest["files"].items():
            target = Path(original)
            if entry["copy"] is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / entry["copy"], target)
                report.restored.append(self._display(target))
            elif target.exists() or target.is_symlink():
                target.unlink()
                report.deleted.append(self._display(target))
                _remove_created_dirs(target.parent, entry.get("created_dirs_from"))
        shutil.rmtree(folder)
        self._turn = self._last_turn_number()
        self._turn_open = False
        return report

    def mark(self) -> dict[str, str]:
        # Backup turns are numbered as they are made: going back to this point undoes every later one.
        return {"backups": self.root.name, "turn": str(self._last_turn_number())}

    def undo_after(self, turn: int) -> UndoReport:
        """Undo every backup turn made after ``turn``, newest first (a rewind); one report for all."""
        merged = UndoReport()
        while self._last_turn_number() > turn:
            report = self.undo()
            merged.restored += [p for p in report.restored if p not in merged.restored]
            merged.deleted += [p for p in report.deleted if p not in merged.deleted]
            merged.label = report.label
        return merged

    def diff(self) -> str:
        """Each touched file from its state before its first write in this session to now."""
        first_state: dict[str, Path | None] = {}
        for turn in range(1, self._last_turn_number() + 1):
            folder = self._turn_dir(turn)
            for original, entry in _read_manifest(folder)["files"].items():
                if original not in first_state:
                    first_state[original] = folder / entry["copy"] if entry["copy"] else None
        chunks = [_file_diff(Path(p), before, self._display(Path(p))) for p, before in sorted(first_state.items())]
        return "".join(chunks)

    # -- helpers -------------------------------------------------------------------------------------

    def _turn_dir(self, turn: int) -> Path:
        return self.root / f"turn-{turn:04d}"

    def _last_turn_number(self) -> int:
        if not self.root.is_dir():
            return 0
        numbers = [int(p.name[5:]) for p in self.root.glob("turn-*") if p.name[5:].isdigit()]
        return max(numbers, default=0)

    def _display(self, path: Path) -> str:
        if self.workspace and self.workspace in path.parents:
            return str(path.relative_to(self.workspace))
        return str(path)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {"files": {}, "label": ""}


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, folder / _MANIFEST)


def _remove_created_dirs(start: Path, outermost: str | None) -> None:
    if not outermost:
        return
    stop = Path(outermost)
    current = start
    while current == stop or stop in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent


def _read_lines(path: Path | None) -> list[str] | None:
    """The file's lines, [] if absent, None if it is binary."""
    if path is None or not path.is_file():
        return []
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)


def _file_diff(current: Path, before: Path | None, name: str) -> str:
    old, new = _read_lines(before), _read_lines(current)
    if old is None or new is None:
        same = before is not None and current.is_file() and before.read_bytes() == current.read_bytes()
        return "" if same else f"Binary file {name} differs\n"
    from_name = f"a/{name}" if before is not None else "/dev/null"
    to_name = f"b/{name}" if current.exists() else "/dev/null"
    lines = list(difflib.unified_diff(old, new, from_name, to_name))
    # Keep the diff well-formed when a file does not end with a newline.
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
