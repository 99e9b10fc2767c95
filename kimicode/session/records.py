"""The record lines of a session file, as read back: the header, whole records, and damage reported.

Invariants:
- A session file is UTF-8 JSON lines; the first line is the header (``"type":"session"``), then records.
- Whatever follows the last newline is a record still being written (or cut off by a kill): never a record.
- A line that does not parse is skipped with a warning naming the file and line; reading never raises on
  damage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kimicode import jsontext

RECORD_HEADER = "session"
RECORD_MESSAGE = "message"
RECORD_COMPACTION = "compaction"
RECORD_TITLE = "title"
RECORD_TODO = "todo"  # the model's todo list, whole, each time it changes; the last one is restored
# Where the files stood when a turn began (an undo provider's mark: kimicode.vcs.marks), written just before
# the turn's user message; a rewind to that message restores it.
RECORD_CHECKPOINT = "checkpoint"

# How records start as written (compact separators): listing counts and titles without parsing every line.
HEADER_PREFIX = b'{"type":"session"'
MESSAGE_PREFIX = b'{"type":"message"'
TITLE_PREFIX = b'{"type":"title"'


def dumps(record: dict[str, Any]) -> bytes:
    """One record as its line (without the newline): compact, non-ASCII kept as is."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_records(path: Path, warnings: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every readable line, the header included; damage goes to ``warnings``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = jsontext.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            warnings.append(
                f"{path.name} line {lineno}: unreadable (cut off when the process was killed, or corrupt);"
                f" skipped {len(raw)} bytes"
            )
            continue
        if not isinstance(record, dict):
            warnings.append(f"{path.name} line {lineno}: not a record; skipped")
            continue
        yield lineno, record


def whole_records(path: Path) -> list[bytes]:
    """The record lines after the header, without a last line still being written (or cut off)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # whatever follows the last newline is not a whole record yet
    if lines and lines[0].startswith(HEADER_PREFIX):
        lines = lines[1:]
    return [line for line in lines if line.strip()]


def read_header(path: Path) -> dict[str, Any] | None:
    with open(path, "rb") as f:
        first = f.readline()
    try:
        record = jsontext.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("type") == RECORD_HEADER else None


def ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"
