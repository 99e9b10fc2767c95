"""Sessions as append-only JSONL files that survive a crash.

Layout: ``KIMICODE_HOME/sessions/<workspace-hash>/<session-id>.jsonl``. The first line is a header record,
then one record per line: ``message`` (a wire dict), ``compaction``, ``title`` (set by /title; the last one
counts), ``usage``, ``meta``... Each record is
written with a single ``os.write`` of one complete line, so a ``kill -9`` loses at most the record being
written; a cut last line is skipped on load with a warning.

A session belongs to the process using it: ``Session.lock`` takes an advisory ``flock`` on a sibling
``<session-id>.lock`` file (the OS drops it when the process exits or dies), and a second process that
wants the same session gets ``SessionInUse`` and continues in a fork (``SessionStore.fork``) instead of
interleaving its records with the first one's. Where ``fcntl`` does not exist (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kimicode import __version__
from kimicode.llm.messages import Message, is_tool_image_carrier, message_text, summary_message
from kimicode.security.redact import redact_obj, register_environment

try:
    import fcntl
except ImportError:  # Windows: no flock; sessions are used unlocked there
    fcntl = None  # type: ignore[assignment]

RECORD_HEADER = "session"
RECORD_MESSAGE = "message"
RECORD_COMPACTION = "compaction"
RECORD_TITLE = "title"
RECORD_TODO = "todo"  # the model's todo list, whole, each time it changes; the last one is restored

_MESSAGE_PREFIX = b'{"type":"message"'
_TITLE_PREFIX = b'{"type":"title"'

INTERRUPTED_TOOL_RESULT = (
    "[interrupted] The session stopped before this tool call finished; its result is unknown. "
    "Check the current state before relying on it."
)
TITLE_CHARS = 60
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


@dataclass
class SessionInfo:
    id: str
    workspace: str
    created: datetime
    updated: datetime
    title: str  # set with /title, else the first user text (up to 60 characters)
    message_count: int
    path: Path


@dataclass
class LoadedSession:
    messages: list[Message]
    warnings: list[str] = field(default_factory=list)
    todo: list[dict[str, str]] = field(default_factory=list)  # the last todo list recorded


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

    def transcript(self) -> list[Message]:
        """Every message ever logged, in order: compaction summarises the history the model gets, but the
        log keeps what was said (for /export)."""
        messages: list[Message] = []
        for _lineno, record in _read_records(self.path, []):
            if record.get("type") == RECORD_MESSAGE and isinstance(record.get("message"), dict):
                messages.append(record["message"])
        return messages

    def load_messages(self) -> LoadedSession:
        """Replay the log into a history that is valid to send: compactions applied, damage repaired."""
        messages: list[Message] = []
        warnings: list[str] = []
        todo: list[dict[str, str]] = []
        for lineno, record in _read_records(self.path, warnings):
            kind = record.get("type")
            if kind == RECORD_MESSAGE and isinstance(record.get("message"), dict):
                messages.append(record["message"])
            elif kind == RECORD_COMPACTION:
                messages = _apply_compaction(messages, record, lineno, warnings)
            elif kind == RECORD_TODO and isinstance(record.get("items"), list):
                todo = [item for item in record["items"] if _todo_item(item)]
        return LoadedSession(_repair_tool_calls(messages, warnings), warnings, todo)

    def append_todo(self, items: list[dict[str, str]]) -> None:
        self.append_record(RECORD_TODO, items=items)

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def lock(self) -> None:
        """Take the session for this process; raises SessionInUse when another process has it."""
        if fcntl is None or self._lock_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                pid = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise SessionInUse(self, pid) from None
                return  # a file system without locks: carry on unlocked rather than refuse to work
            # The holder removes the file as it lets go; a lock taken on that removed file guards nothing.
            try:
                if os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)  # still held: anyone who opened it re-checks and starts over
        os.close(self._lock_fd)
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
        line = json.dumps(redact_obj(record), ensure_ascii=False, separators=(",", ":"))
        self._write_bytes(line.encode("utf-8") + b"\n")

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
            header = json.dumps(self.header, ensure_ascii=False, separators=(",", ":"))
            os.write(fd, header.encode("utf-8") + b"\n")
        elif not _ends_with_newline(self.path, size):
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
        records = _whole_records(source.path)
        if records:
            session._write_bytes(b"".join(record + b"\n" for record in records))
        return session

    def open(self, session_id: str, workspace: Path | str) -> Session:
        """Open a session of this workspace by id or unique id prefix."""
        ws = str(Path(workspace).expanduser().resolve())
        path = self._find(session_id, ws)
        header = _read_header(path) or {"type": RECORD_HEADER, "id": path.stem, "workspace": ws}
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
        infos = [info for p in paths if (info := _session_info(p)) is not None]
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


def _todo_item(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("content"), str) and isinstance(item.get("status"), str)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _whole_records(path: Path) -> list[bytes]:
    """The record lines after the header, without a last line still being written (or cut off)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # whatever follows the last newline is not a whole record yet
    if lines and lines[0].startswith(b'{"type":"session"'):
        lines = lines[1:]
    return [line for line in lines if line.strip()]


def _read_records(path: Path, warnings: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
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


def _read_header(path: Path) -> dict[str, Any] | None:
    with open(path, "rb") as f:
        first = f.readline()
    try:
        record = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("type") == RECORD_HEADER else None


def _session_info(path: Path) -> SessionInfo | None:
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
        if raw.startswith(_MESSAGE_PREFIX):
            count += 1
            if not title:
                title = _title_of(raw)
        elif raw.startswith(_TITLE_PREFIX):
            try:
                set_title = str(json.loads(raw).get("title", "")) or set_title
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                pass
        elif not header and raw.startswith(b'{"type":"session"'):
            try:
                header = json.loads(raw)
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
        message = json.loads(raw).get("message", {})
    except json.JSONDecodeError:
        return ""
    if message.get("role") != "user":
        return ""
    content = message.get("content")
    if isinstance(content, list):  # the typed text is the last part; earlier ones are attached context
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        message = {"content": texts[-1] if texts else ""}
    text = " ".join(message_text(message).split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _apply_compaction(
    messages: list[Message], record: dict[str, Any], lineno: int, warnings: list[str]
) -> list[Message]:
    replaces = record.get("replaces")
    summary = record.get("summary")
    if not isinstance(replaces, int) or not isinstance(summary, str) or replaces < 0:
        warnings.append(f"line {lineno}: compaction record without summary/replaces; ignored")
        return messages
    start = 1 if messages and messages[0].get("role") == "system" else 0
    if start + replaces > len(messages):
        warnings.append(f"line {lineno}: compaction replaces more messages than recorded; kept all")
        return messages
    return [*messages[:start], summary_message(summary), *messages[start + replaces :]]



def _repair_tool_calls(messages: list[Message], warnings: list[str]) -> list[Message]:
    """Every assistant tool call gets a result and every tool result has its call, as the API demands.

    A process killed mid-step leaves calls without results; a later resume appends after them, so the
    gap can sit anywhere in the log, not only at its end.
    """
    repaired: list[Message] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        i += 1
        if message.get("role") == "tool":
            warnings.append(f"dropped a tool result with no matching call ({message.get('tool_call_id')})")
            continue
        repaired.append(message)
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not calls:
            continue
        wanted = [c.get("id", "") for c in calls if isinstance(c, dict)]
        answered: set[str] = set()
        block: list[Message] = []
        while i < len(messages) and (messages[i].get("role") == "tool" or is_tool_image_carrier(messages[i])):
            follower = messages[i]
            i += 1
            if follower.get("role") == "tool":
                call_id = follower.get("tool_call_id", "")
                if call_id not in wanted or call_id in answered:
                    warnings.append(f"dropped a tool result with no matching call ({call_id})")
                    continue
                answered.add(call_id)
            block.append(follower)
        missing = [call_id for call_id in wanted if call_id not in answered]
        tool_count = sum(1 for m in block if m.get("role") == "tool")
        # Results must come before any image-carrying user message that follows them.
        insert_at = _position_after_nth_tool(block, tool_count)
        block[insert_at:insert_at] = [
            {"role": "tool", "tool_call_id": call_id, "content": INTERRUPTED_TOOL_RESULT} for call_id in missing
        ]
        if missing:
            warnings.append(f"{len(missing)} tool call(s) had no result (interrupted); marked as interrupted")
        repaired.extend(block)
    return repaired


def _position_after_nth_tool(block: list[Message], n: int) -> int:
    if n == 0:
        return 0
    seen = 0
    for index, message in enumerate(block):
        if message.get("role") == "tool":
            seen += 1
            if seen == n:
                return index + 1
    return len(block)
