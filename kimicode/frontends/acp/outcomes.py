"""Which tool calls of a session the editor was shown as failed, kept in the session's log so that
``session/load`` replays each call in the state it ended in.

The conversation keeps only a call's result text; whether the call failed (an error, a refusal, a
cancel) is a record of its own in the log, ``{"type": "call_failed", "call": KEY}``, keyed as the
protocol names the call (editor.call_key). Readers of the log skip record types they do not know.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from kimicode.session.store import Session

log = logging.getLogger("kimicode.acp")

RECORD_CALL_FAILED = "call_failed"
_MARK = RECORD_CALL_FAILED.encode()


def record_failed(session: Session, key: str) -> None:
    try:
        session.append_record(RECORD_CALL_FAILED, call=key)
    except OSError as exc:  # only the replay's state is lost; the session goes on
        log.info("session %s: could not record that %s failed: %s", session.id, key, exc)


def failed_calls(path: Path) -> set[str]:
    """The keys of the calls recorded as failed in the session log at ``path``."""
    try:
        data = path.read_bytes()
    except OSError:
        return set()
    failed: set[str] = set()
    for line in data.splitlines():
        if _MARK not in line:  # most lines are messages: skip them without parsing
            continue
        try:
            record = json.loads(line)
        except ValueError:  # a line cut off when a process was killed
            continue
        if isinstance(record, dict) and record.get("type") == RECORD_CALL_FAILED and isinstance(record.get("call"), str):
            failed.add(record["call"])
    return failed
