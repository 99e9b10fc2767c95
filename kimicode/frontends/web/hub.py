"""The server's sessions: which workspaces it may open, the sessions open now, and those on disk.

Invariants:
- A session opens only in a workspace under a folder named with ``--workspace`` or one the user trusts
  (``kimicode trust``); any other path is refused with one line, before anything is read or written there.
- Each open session has its own config (loaded from its workspace, as for any run), lock, sandbox and
  event log; one process holds many.
- A session on disk (an earlier run's, or one this server closed) is resumed by id.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from kimicode.config import Config, ConfigError, kimicode_home, load_config
from kimicode.frontends.web.session import SessionError, WebSession


class Hub:
    def __init__(self, flags: dict[str, Any], workspaces: list[Path]) -> None:
        self.flags = flags
        self.workspaces = [path.expanduser().resolve() for path in workspaces]
        self.home = kimicode_home()
        self.sessions: dict[str, WebSession] = {}

    # -- where sessions may run -----------------------------------------------------------------------

    def _config(self, workspace: str) -> Config:
        if not isinstance(workspace, str) or not workspace.strip():
            raise SessionError(400, "give the session's workspace: an absolute path to a folder")
        path = Path(workspace).expanduser()
        if not path.is_absolute():
            raise SessionError(400, f"the workspace must be an absolute path, got {workspace!r}")
        path = path.resolve()
        if not path.is_dir():
            raise SessionError(400, f"{workspace} is not a folder")
        try:
            config = load_config(work_dir=path, flags=self.flags)
        except ConfigError as exc:
            raise SessionError(400, str(exc)) from None
        named = any(path == root or path.is_relative_to(root) for root in self.workspaces)
        if not named and not config.trusted:
            raise SessionError(
                403, f"{path} is not a workspace of this server: start it with --workspace {path}, or run `kimicode trust` there"
            )
        return config

    def allowed(self, workspace: str) -> bool:
        path = Path(workspace)
        return any(path == root or path.is_relative_to(root) for root in self.workspaces)

    # -- sessions -------------------------------------------------------------------------------------

    def get(self, session_id: str) -> WebSession:
        session = self.sessions.get(session_id)
        if session is None:
            raise SessionError(404, f"no open session {session_id!r}: POST /sessions with \"resume\" opens one from disk")
        return session

    async def create(self, workspace: str, resume: str | None = None) -> WebSession:
        from kimicode.frontends.common.sessions import SessionInUse, SessionNotFound, new_session, open_session

        config = await asyncio.to_thread(self._config, workspace)
        if resume is not None:
            if resume in self.sessions:
                return self.sessions[resume]
            try:
                opened = await asyncio.to_thread(open_session, config, False, resume)
            except SessionNotFound as exc:
                raise SessionError(404, str(exc)) from None
            except SessionInUse as busy:
                raise SessionError(409, f"{busy}; fork it, or close it there") from None
        else:
            opened = await asyncio.to_thread(new_session, config)
        return await self._start(config, opened)

    async def fork(self, session_id: str) -> WebSession:
        from kimicode.frontends.common.sessions import fork_of

        source = self.get(session_id)
        config = await asyncio.to_thread(self._config, str(source.config.work_dir))
        opened = await asyncio.to_thread(fork_of, config, source.opened.session)
        return await self._start(config, opened)

    async def _start(self, config: Config, opened: Any) -> WebSession:
        if not config.api_key:
            from kimicode.config import user_endpoint
            from kimicode.llm.endpoint import keyless_ok

            if not keyless_ok(config.base_url, user_endpoint(config.home, flag=self.flags.get("base_url"))):
                opened.session.close()
                raise SessionError(400, f"no API key: set KIMI_API_KEY, or save one with `kimicode` in a terminal (home {config.home})")
        session = WebSession(config, opened)
        try:
            await session.start()
        except Exception as exc:  # noqa: BLE001 - one line to the client; the server goes on
            opened.session.close()
            raise SessionError(500, f"the session did not start: {exc}") from None
        self.sessions[session.id] = session
        if config.ignored_project_settings:
            session.notice("this folder is not trusted, so its own settings were ignored: " + "; ".join(config.ignored_project_settings))
        for warning in opened.warnings:
            session.notice(f"session {session.id}: {warning}")
        return session

    async def delete(self, session_id: str) -> None:
        session = self.get(session_id)
        del self.sessions[session_id]
        await session.close()

    def listing(self) -> list[dict[str, Any]]:
        """The open sessions, then those on disk in this server's workspaces, newest first."""
        from kimicode.session.store import SessionStore

        listed = [session.describe() for session in self.sessions.values()]
        for info in SessionStore(self.home).list(None):
            if info.id in self.sessions or not self.allowed(info.workspace):
                continue
            listed.append({
                "id": info.id, "workspace": info.workspace, "title": info.title, "open": False,
                "updated": info.updated.isoformat(), "messages": info.message_count,
            })
        return listed

    def stored(self, session_id: str) -> dict[str, Any]:
        for item in self.listing():
            if item["id"] == session_id:
                return item
        raise SessionError(404, f"no session {session_id!r}")

    def end_streams(self) -> None:
        """Every reader's event stream ends (the server is stopping)."""
        for session in self.sessions.values():
            session.events.close()

    async def close_all(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):
                await session.close()
