"""results.jsonl written from threads (the local pool writes it off its event loop): no finished task is lost."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from kimicode.batch import results
from kimicode.batch.results import ResultsFile, read_results


def test_a_write_that_overtakes_another_cannot_leave_the_older_file_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first write is held just before its rename while a second task's write runs: the second must wait for
    it, or the first rename, coming last, would put back a file without the second line."""
    file = ResultsFile(tmp_path)
    replace = os.replace
    second = threading.Thread(target=file.add, args=({"id": "t02", "status": "done"},))

    def held_replace(src: Any, dst: Any) -> None:
        monkeypatch.setattr(results.os, "replace", replace)  # only the first write is held
        second.start()
        second.join(timeout=1)  # returns at once if nothing makes the second write wait for this one
        replace(src, dst)

    monkeypatch.setattr(results.os, "replace", held_replace)
    file.add({"id": "t01", "status": "done"})
    second.join()
    assert [r["id"] for r in read_results(tmp_path / results.RESULTS)] == ["t01", "t02"]
