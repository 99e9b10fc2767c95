"""Choosing the session a run writes to (new, `-C` last, `-r ID`) and binding it to an Agent.

Shared by the REPL and headless: both log every message as it is appended, so a killed process loses at
most the reply in flight, and both resume the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.agent.callbacks import Approver
from kimicode.agent.loop import Agent
from kimicode.agent.runtime import Runtime
from kimicode.config import Config
from kimicode.llm.messages import Message, system_message
from kimicode.session.listing import SessionInfo
from kimicode.session.store import Session, SessionInUse, SessionNotFound, SessionStore

__all__ = [
    "OpenedSession",
    "SessionInUse",
    "SessionNotFound",
    "bind_agent",
    "describe_sessions",
    "fork_notice",
    "fork_of",
    "fork_session",
    "new_session",
    "open_session",
    "session_store",
]


@dataclass
class OpenedSession:
    session: Session
    history: list[Message] = field(default_factory=list)  # empty for a new session
    warnings: list[str] = field(default_factory=list)
    todo: list[dict[str, str]] = field(default_factory=list)  # the model's last todo list in it

    @property
    def resumed(self) -> bool:
        return bool(self.history)


def session_store(config: Config) -> SessionStore:
    return SessionStore(config.home)


def open_session(config: Config, continue_last: bool = False, resume_id: str | None = None) -> OpenedSession:
    """The session to use, locked for this process. Raises SessionNotFound (one-line message) for an
    unknown or ambiguous id, and SessionInUse when another kimicode has it (see ``fork_session``)."""
    store = session_store(config)
    session: Session | None = None
    if resume_id:
        session = store.open(resume_id, config.work_dir)
    elif continue_last:
        session = store.latest(config.work_dir)
    if session is None:
        return new_session(config)
    session.lock()
    loaded = session.load_messages()
    return OpenedSession(session, loaded.messages, loaded.warnings, loaded.todo)


def new_session(config: Config) -> OpenedSession:
    session = session_store(config).create(config.work_dir, config.model, config.mode)
    session.lock()  # nobody else can know its id yet; held so that a `-C` elsewhere sees it is in use
    return OpenedSession(session)


def fork_session(config: Config, busy: SessionInUse) -> OpenedSession:
    """Continue a session another process is using in a new one that starts with the same history."""
    return fork_of(config, busy.session)


def fork_of(config: Config, source: Session) -> OpenedSession:
    """A new session (locked for this process) that starts with everything ``source`` logged so far."""
    session = session_store(config).fork(source, config.model, config.mode)
    loaded = session.load_messages()
    return OpenedSession(session, loaded.messages, loaded.warnings, loaded.todo)


def fork_notice(busy: SessionInUse, fork: Session) -> str:
    return f"{busy}; continuing in new session {fork.id} with its history"


def fresh_history(history: list[Message], system_prompt: str) -> list[Message]:
    """A resumed history with today's system prompt (tools, skills and project files may have changed)."""
    if not history:
        return []
    if history[0].get("role") == "system":
        return [system_message(system_prompt), *history[1:]]
    return [system_message(system_prompt), *history]


def bind_agent(runtime: Runtime, opened: OpenedSession, approver: Approver, **overrides: Any) -> Agent:
    """An agent that continues ``opened``'s history and todo list, appends every new message (and todo list)
    to its log, and keeps its background tasks' logs in the session's folder."""
    session = opened.session
    if runtime.ctx.tasks is not None:
        runtime.ctx.tasks.log_dir = session_folder(session)
    settings: dict[str, Any] = {
        "messages": fresh_history(opened.history, runtime.system_prompt),
        "on_message": _deferred_logger(session),
        "on_compacted": lambda outcome: session.append_compaction(outcome.summary, outcome.replaced_count),
        "on_todo": session.append_todo,
        "todo_items": opened.todo,
    }
    settings.update(overrides)
    return runtime.agent(approver, **settings)


def session_folder(session: Session) -> Path:
    """Where a session keeps files beside its log (background task logs): ``<id>/`` next to ``<id>.jsonl``."""
    return session.path.with_suffix("")


def _deferred_logger(session: Session) -> Callable[[Message], None]:
    """Log messages, holding a lone system message back until something follows it: a REPL opened and
    closed without a word leaves no empty session for `-C` to pick up."""
    held: list[Message] = []

    def log(message: Message) -> None:
        if message.get("role") == "system" and not session.path.exists():
            held[:] = [message]
            return
        for earlier in held:
            session.append_message(earlier)
        held.clear()
        session.append_message(message)

    return log


def describe_sessions(infos: list[SessionInfo], limit: int = 20) -> list[str]:
    """One line per session, newest first: id, last write, messages, title."""
    lines = []
    for info in infos[:limit]:
        when = info.updated.astimezone().strftime("%Y-%m-%d %H:%M")
        lines.append(f"{info.id}  {when}  {info.message_count:>4} msgs  {info.title or '(no messages)'}")
    return lines
