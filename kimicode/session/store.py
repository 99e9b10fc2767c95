"""Sessions as append-only JSONL files that survive a crash.

Layout: ``KIMICODE_HOME/sessions/<workspace-hash>/<session-id>.jsonl``. The first line is a header record,
then one record per line: ``message`` (a wire dict), ``compaction``, ``title`` (set by /title; the last one
counts), ``usage``, ``meta``... (kimicode.session.records reads them back, kimicode.session.replay turns them
into a history, kimicode.session.listing into what ``kimicode sessions`` shows).

Invariants:
- Each record is written with a single ``os.write`` of one complete line, so a ``kill -9`` loses at most the
  record being written; a cut last line is skipped on load with a warning, and the next writer starts on a
  fresh line.
- Every record passes the registry of known secrets (kimicode.security.redact) before it reaches the file.
- Nothing touches the disk until the first record is appended.
- A session belongs to the process using it (kimicode.session.lock): a second process that wants the same
  session gets ``SessionInUse`` and continues in a fork (``SessionStore.fork``) instead of interleaving its
  records with the first one's.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kimicode import __version__
from kimicode.llm.messages import Message
from kimicode.security.redact import redact_obj, register_environment
from kimicode.session import lock as session_lock
from kimicode.session.listing import SessionInfo, session_info
from kimicode.session.records import (
    RECORD_COMPACTION,
    RECORD_HEADER,
    RECORD_MESSAGE,
    RECORD_TITLE,
    RECORD_TODO,
    dumps,
    ends_with_newline,
    read_header,
    whole_records,
)
from kimicode.session.replay import LoadedSession, replay, transcript

# A title set with /title may be longer than one taken from the first message.
MAX_SET_TITLE_CHARS = 120


class SessionNotFound(LookupError):
    """No session with that id (or id prefix) for the workspace."""


class SessionInUse(Exception):
    """Another process holds the session; ``pid`` is its process id when it could be read."""

    def __init__(self, session: Session, pid: int | None) -> None:
        self.session = session
        self.pid = pid
        super().__init__(f"session {session.id} is in use by another kimicode{f' (pid {pid})' if pid else ''}")


def workspace_hash(workspace: Path | str) -> str:
    """A short stable name for a workspace directory."""
    resolved = str(Path(workspace).expanduser().resolve())
    return hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:16]


def new_session_id() -> str:
    """Sortable by creation time (UTC, to the second), with a random suffix against collisions."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Session:
    """One conversation's log. Nothing touches the disk until the first record is appended, so a REPL
    opened and closed without a message leaves no empty session behind."""

    def __init__(
        self,
        session_id: str,
        path: Path,
        workspace: str,
        header: dict[str, Any],
        fsync: bool = False,
    ) -> None:
        self.id = session_id
        self.path = path
        self.workspace = workspace
        self.header = header
        self._fsync = fsync
        self._fd: int | None = None
        self._lock_fd: int | None = None
        register_environment()

    @property
    def model(self) -> str:
        return str(self.header.get("model", ""))

    @property
    def mode(self) -> str:
        return str(self.header.get("mode", ""))

    def append_message(self, msg: Message) -> None:
        self._write({"type": RECORD_MESSAGE, "message": msg})

    def append_record(self, type: str, **fields: Any) -> None:
        """Any other record: ``compaction`` (summary, replaces), ``usage``, ``meta``..."""
        if type in (RECORD_HEADER, RECORD_MESSAGE):
            raise ValueError(f"record type {type!r} is reserved; use append_message for messages")
        self._write({"type": type, **fields})

    def append_compaction(self, summary: str, replaces: int) -> None:
        """Record that the first ``replaces`` messages after the system message became one summary."""
        self.append_record(RECORD_COMPACTION, summary=summary, replaces=replaces)

    def set_title(self, title: str) -> str:
        """Name the session (what ``kimicode sessions`` shows); returns the title as stored."""
        title = " ".join(title.split())[:MAX_SET_TITLE_CHARS]
        self.append_record(RECORD_TITLE, title=title)
        return title

    def append_todo(self, items: list[dict[str, str]]) -> None:
        self.append_record(RECORD_TODO, items=items)

    def transcript(self) -> list[Message]:
        """Every message ever logged, in order: compaction summarises the history the model gets, but the
        log keeps what was said (for /export)."""
        return transcript(self.path)

    def load_messages(self) -> LoadedSession:
        """Replay the log into a history that is valid to send: compactions applied, damage repaired."""
        return replay(self.path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def lock(self) -> None:
        """Take the session for this process; raises SessionInUse when another process has it."""
        if self._lock_fd is not None:
            return
        try:
            self._lock_fd = session_lock.take(self.lock_path)
        except session_lock.LockHeld as held:
            raise SessionInUse(self, held.pid) from None

    def unlock(self) -> None:
        if self._lock_fd is None:
            return
        session_lock.release(self._lock_fd, self.lock_path)
        self._lock_fd = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.unlock()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, record: dict[str, Any]) -> None:
        # Every record passes the registry of known secrets: a key kept only in config.toml, an MCP token,
        # or anything key-shaped that a message or tool output carries never reaches the file.
        self._write_bytes(dumps(redact_obj(record)) + b"\n")

    def _write_bytes(self, data: bytes) -> None:
        fd = self._open_for_append()
        # One write call per record: the line lands whole in the page cache or not at all (short of a
        # full disk), so a killed process never leaves half of an earlier record behind.
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if self._fsync:
            os.fsync(fd)

    def _open_for_append(self) -> int:
        if self._fd is not None:
            return self._fd
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fd = fd
        size = os.fstat(fd).st_size
        if size == 0:
            os.write(fd, dumps(self.header) + b"\n")
        elif not ends_with_newline(self.path, size):
            # The previous process died mid-line: start on a fresh line so the cut record stays the only
            # casualty instead of swallowing the next one.
            os.write(fd, b"\n")
        return fd


class SessionStore:
    """Finds, creates and lists the sessions under ``KIMICODE_HOME/sessions``."""

    def __init__(self, kimicode_home: Path, fsync: bool = False) -> None:
        self.root = Path(kimicode_home) / "sessions"
        self._fsync = fsync

    def create(self, workspace: Path | str, model: str, mode: str) -> Session:
        ws = str(Path(workspace).expanduser().resolve())
        session_id = new_session_id()
        header = {
            "type": RECORD_HEADER,
            "id": session_id,
            "workspace": ws,
            "created": _now().isoformat(timespec="milliseconds"),
            "model": model,
            "mode": mode,
            "version": __version__,
        }
        path = self._dir(ws) / f"{session_id}.jsonl"
        return Session(session_id, path, ws, header, fsync=self._fsync)

    def fork(self, source: Session, model: str, mode: str) -> Session:
        """A new, locked session that starts with ``source``'s records and names it in ``forked_from``."""
        session = self.create(source.workspace, model, mode)
        session.header["forked_from"] = source.id
        session.lock()
        records = whole_records(source.path)
        if records:
            session._write_bytes(b"".join(record + b"\n" for record in records))
        return session

    def open(self, session_id: str, workspace: Path | str) -> Session:
        """Open a session of this workspace by id or unique id prefix."""
        ws = str(Path(workspace).expanduser().resolve())
        path = self._find(session_id, ws)
        header = read_header(path) or {"type": RECORD_HEADER, "id": path.stem, "workspace": ws}
        return Session(path.stem, path, ws, header, fsync=self._fsync)

    def latest(self, workspace: Path | str) -> Session | None:
        """The workspace's most recently written session, or None."""
        ws = str(Path(workspace).expanduser().resolve())
        paths = list(self._dir(ws).glob("*.jsonl"))
        if not paths:
            return None
        newest = max(paths, key=lambda p: (p.stat().st_mtime_ns, p.stem))
        return self.open(newest.stem, ws)

    def list(self, workspace: Path | str | None = None) -> list[SessionInfo]:
        """Sessions newest first (by last write), for one workspace or all of them."""
        if workspace is None:
            paths = list(self.root.glob("*/*.jsonl")) if self.root.is_dir() else []
        else:
            paths = list(self._dir(str(Path(workspace).expanduser().resolve())).glob("*.jsonl"))
        infos = [info for p in paths if (info := session_info(p)) is not None]
        infos.sort(key=lambda i: (i.updated, i.id), reverse=True)
        return infos

    def _dir(self, workspace: str) -> Path:
        return self.root / workspace_hash(workspace)

    def _find(self, session_id: str, workspace: str) -> Path:
        directory = self._dir(workspace)
        exact = directory / f"{session_id}.jsonl"
        if exact.is_file():
            return exact
        matches = sorted(directory.glob(f"{glob_escape(session_id)}*.jsonl")) if session_id else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise SessionNotFound(
                f"session id {session_id!r} is ambiguous ({len(matches)} matches); give more characters"
            )
        raise SessionNotFound(
            f"no session {session_id!r} for workspace {workspace}; run `kimicode sessions` to list them"
        )


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
