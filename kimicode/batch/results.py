"""OUT/: one folder per task and results.jsonl, the record of every finished task.

results.jsonl is rewritten whole (temporary file, fsync, rename) for each finished task, so a crash or a
kill -9 leaves either the old or the new file, never a cut line; the driver is its only writer. Whatever
is in it is done: a rerun skips those ids and reruns every other one (an interrupted task left no line).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from kimicode.tools.filewrite import fsync_directory

RESULTS = "results.jsonl"


class ResultsFile:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out / RESULTS
        self.records: list[dict[str, Any]] = read_results(self.path)
        # add() may run in threads: one at a time, so each rewrite holds every record added before it and the
        # last rename is the fullest file.
        self._lock = threading.Lock()

    @property
    def finished(self) -> set[str]:
        return {str(r.get("id")) for r in self.records}

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._add(record)

    def _add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)
        fd, tmp = tempfile.mkstemp(dir=self.out, prefix=".results-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_directory(self.out)


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # written by hand or by something else: not ours to judge
        if isinstance(record, dict) and record.get("id"):
            records.append(record)
    return records


def fresh_task_dir(out: Path, task_id: str) -> Path:
    """OUT/<id>/, emptied: what an interrupted earlier attempt left there is not this run's."""
    folder = out / task_id
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
