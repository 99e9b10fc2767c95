"""Going back to an earlier user message of a session: which messages there are, and a fork of the session
that ends just before one of them.

Numbering (``kimicode rewind SESSION_ID N`` and the REPL's list): N is the 1-based position of a message the
user wrote, counted over the whole log in order (compactions do not renumber), leaving out what the agent
itself adds as a user message (compaction summaries, plan-mode and empty-reply notes).

Invariants:
- The source session is never written to: the fork is a new session holding the source's record lines up to
  (not including) the chosen message's line, with ``forked_from`` and ``rewound_to`` in its header.
- A message's checkpoint is the last ``checkpoint`` record between the previous user message and it (the
  REPL writes one when a turn begins); a message sent into a running turn has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kimicode import jsontext
from kimicode.agent import notes
from kimicode.llm.messages import SUMMARY_PREFIX, Message, message_text
from kimicode.session.records import RECORD_CHECKPOINT, RECORD_MESSAGE, whole_records

if TYPE_CHECKING:
    from kimicode.session.store import Session, SessionStore

_AGENT_NOTES = frozenset(
    {notes.EMPTY_REPLY_NOTE, notes.LENGTH_REPLY_NOTE, notes.PLAN_MODE_ON_NOTE, notes.PLAN_MODE_OFF_NOTE}
)
# What ``@path`` appended to the typed text: the prompt gets the mention back, not the file.
_ATTACHED_FILES = re.compile(r'\n\n<file path="[^"]*">.*\Z', re.DOTALL)


@dataclass(frozen=True)
class UserTurn:
    number: int  # 1-based (see the module docstring)
    text: str  # as typed: attached file contents left out
    record_index: int  # position among the session's record lines (header not counted)
    checkpoint: dict[str, Any] | None  # the mark taken when its turn began, if any


def typed_by_user(message: Any) -> bool:
    """A user message the user wrote (not a summary or a note the agent added)."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return False
    text = message_text(message)
    return not text.startswith(SUMMARY_PREFIX) and text not in _AGENT_NOTES


def typed_text(message: Message) -> str:
    return _ATTACHED_FILES.sub("", message_text(message))


def user_turns(session: Session) -> list[UserTurn]:
    """Every user message of the session's log, oldest first."""
    turns: list[UserTurn] = []
    checkpoint: dict[str, Any] | None = None
    for index, raw in enumerate(whole_records(session.path)):
        try:
            record = jsontext.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(record, dict):
            continue
        if record.get("type") == RECORD_CHECKPOINT:
            checkpoint = {k: v for k, v in record.items() if k != "type"}
        elif record.get("type") == RECORD_MESSAGE and typed_by_user(record.get("message")):
            turns.append(UserTurn(len(turns) + 1, typed_text(record["message"]), index, checkpoint))
            checkpoint = None
    return turns


def fork_before(store: SessionStore, source: Session, turn: UserTurn, model: str, mode: str) -> Session:
    """A new, locked session holding ``source``'s log up to just before ``turn``'s message."""
    session = store.create(source.workspace, model, mode)
    session.header["forked_from"] = source.id
    session.header["rewound_to"] = turn.number
    session.lock()
    records = whole_records(source.path)[: turn.record_index]
    session._write_bytes(b"".join(record + b"\n" for record in records))  # the header, at least
    return session
