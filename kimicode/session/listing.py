"""What ``kimicode sessions`` shows of a session file, read without replaying it.

Invariants:
- Listing never raises on a damaged or vanishing file: an unreadable file is left out, a bad line is passed
  over.
- The title is the last one set with /title, else the first user text without the files attached to it,
  cut to TITLE_CHARS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kimicode import jsontext
from kimicode.llm.messages import message_text
from kimicode.session.records import HEADER_PREFIX, MESSAGE_PREFIX, TITLE_PREFIX

TITLE_CHARS = 60
# Where a message's attached files begin (kimicode.frontends.common.media.file_block): a title ends there.
ATTACHMENT_OPENING = '<file path="'


@dataclass
class SessionInfo:
    id: str
    workspace: str
    created: datetime
    updated: datetime
    title: str  # set with /title, else the first user text (up to 60 characters)
    message_count: int
    path: Path


def session_info(path: Path) -> SessionInfo | None:
    try:
        stat = path.stat()
        data = path.read_bytes()
    except OSError:
        return None
    header: dict[str, Any] = {}
    title = ""
    set_title = ""
    count = 0
    for raw in data.split(b"\n"):
        if raw.startswith(MESSAGE_PREFIX):
            count += 1
            if not title:
                title = _title_of(raw)
        elif raw.startswith(TITLE_PREFIX):
            try:
                set_title = str(jsontext.loads(raw).get("title", "")) or set_title
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                pass
        elif not header and raw.startswith(HEADER_PREFIX):
            try:
                header = jsontext.loads(raw)
            except json.JSONDecodeError:
                header = {}
    updated = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
    try:
        created = datetime.fromisoformat(str(header["created"]))
    except (KeyError, ValueError):
        created = updated
    return SessionInfo(
        id=path.stem,
        workspace=str(header.get("workspace", "")),
        created=created,
        updated=updated,
        title=set_title or title,
        message_count=count,
        path=path,
    )


def _title_of(raw: bytes) -> str:
    try:
        message = jsontext.loads(raw).get("message", {})
    except json.JSONDecodeError:
        return ""
    if message.get("role") != "user":
        return ""
    content = message.get("content")
    if isinstance(content, list):  # the typed text is the last part; earlier ones are attached context
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        message = {"content": texts[-1] if texts else ""}
    typed = message_text(message)
    text = " ".join(typed.split("\n\n" + ATTACHMENT_OPENING, 1)[0].split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
