"""`kimicode acp`: the protocol's agent methods, on stdio, for as long as the editor keeps the pipe open.

Speaks ACP version 1 (``acp.PROTOCOL_VERSION`` of the agent-client-protocol SDK). Logs go to
``KIMICODE_HOME/logs/acp.log``; stdout carries protocol messages only (see stdio.py).

Invariants:
- Every request is answered, with a response or one ``RequestError`` whose message a user can act on
  (no key: ACP's auth-required code, so the editor offers its auth methods); never a traceback.
- A session's workspace is the editor's ``cwd``, absolute and an existing directory, and its settings are
  loaded from there as for any run (an untrusted folder's own settings are ignored, and the user is told).
- When the connection ends, every open session is closed (their turns cancelled, their commands killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acp import PROTOCOL_VERSION, RequestError
from acp.helpers import update_current_mode
from acp.schema import (
    AgentCapabilities,
    AuthenticateResponse,
    AuthMethodAgent,
    ClientCapabilities,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionCapabilities,
    SessionInfo,
    SessionListCapabilities,
    SetSessionConfigOptionResponse,
    SetSessionModeResponse,
)

from kimicode import __version__
from kimicode.config import NO_KEY, Config, ConfigError, kimicode_home, load_config
from kimicode.frontends.acp.options import config_options, current_mode, session_modes
from kimicode.frontends.acp.session import AcpSession
from kimicode.frontends.common.logfile import log_to_file
from kimicode.mcp.server_config import McpServerConfig

log = logging.getLogger("kimicode.acp")

AUTH_METHOD = "kimi-api-key"
SESSIONS_PAGE = 50
AUTH_REQUIRED = -32000  # ACP's code: the client offers the authMethods


def _auth_error(config: Config) -> RequestError:
    message = NO_KEY.format(home=config.home)
    return RequestError(AUTH_REQUIRED, f"Authentication required: {message}", {"details": message})


def _ignored_line(config: Config) -> str:
    return (
        f"this folder is not trusted, so its own settings were ignored: {'; '.join(config.ignored_project_settings)} "
        "(to use them, run `kimicode trust` in it and start a new session)"
    )


def workspace_of(cwd: str) -> Path:
    """The session's workspace from the editor's ``cwd``: absolute and an existing directory."""
    path = Path(cwd)
    if not path.is_absolute():
        raise RequestError.invalid_params({"cwd": f"cwd must be an absolute path, got {cwd!r}"})
    if not path.is_dir():
        raise RequestError.invalid_params({"cwd": f"{cwd} is not a directory"})
    return path


def mcp_servers_from_client(servers: Sequence[Any] | None) -> list[McpServerConfig]:
    """The servers an editor passes (stdio, http, sse), in kimicode's form."""
    converted: list[McpServerConfig] = []
    for server in servers or []:
        kind = getattr(server, "type", None)
        if kind in ("http", "sse"):
            headers = {header.name: header.value for header in server.headers or []}
            converted.append(McpServerConfig(server.name, kind, url=server.url, headers=headers, source="editor"))
        elif getattr(server, "command", None):
            env = {variable.name: variable.value for variable in server.env or []}
            converted.append(
                McpServerConfig(server.name, "stdio", command=server.command, args=list(server.args or []), env=env, source="editor")
            )
        else:
            log.info("MCP server %s of type %s not supported; skipped", getattr(server, "name", "?"), kind)
    return converted


class KimicodeAgent:
    """The agent side of the protocol; one per connection, any number of sessions."""

    def __init__(self, flags: dict[str, Any]) -> None:
        self.flags = flags
        self.conn: Any = None
        self.client = ClientCapabilities()
        self.sessions: dict[str, AcpSession] = {}

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    # -- connection --------------------------------------------------------------------------------

    async def initialize(
        self, protocol_version: int, client_capabilities: ClientCapabilities | None = None, client_info: Any = None, **_: Any
    ) -> InitializeResponse:
        self.client = client_capabilities or ClientCapabilities()
        log.info("initialize: client %s, protocol %s, capabilities %s", client_info, protocol_version, self.client)
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,  # the one version this agent speaks, whatever was asked
            agent_capabilities=AgentCapabilities(
                load_session=True,
                prompt_capabilities=PromptCapabilities(image=True, audio=False, embedded_context=True),
                mcp_capabilities=McpCapabilities(http=True, sse=True),
                session_capabilities=SessionCapabilities(list=SessionListCapabilities()),
            ),
            auth_methods=[
                AuthMethodAgent(
                    id=AUTH_METHOD,
                    name="Moonshot API key",
                    description=(
                        "Set KIMI_API_KEY in the agent's environment (the editor's agent settings), or run "
                        "`kimicode` once in a terminal to save a key in ~/.kimicode/config.toml"
                    ),
                )
            ],
            agent_info=Implementation(name="kimicode", title="kimicode", version=__version__),
        )

    async def authenticate(self, method_id: str, **_: Any) -> AuthenticateResponse:
        if method_id != AUTH_METHOD:
            raise RequestError.invalid_params({"methodId": f"unknown method '{method_id}': use {AUTH_METHOD}"})
        config = self._config(Path.cwd())  # a key saved meanwhile (kimicode in a terminal) counts now
        if not config.api_key:
            raise _auth_error(config)
        return AuthenticateResponse()

    # -- sessions ------------------------------------------------------------------------------------

    def _config(self, work_dir: Path) -> Config:
        try:
            return load_config(work_dir=work_dir, flags=self.flags)
        except ConfigError as exc:
            raise RequestError(-32603, str(exc), {"details": str(exc)}) from None

    def _session(self, session_id: str) -> AcpSession:
        session = self.sessions.get(session_id)
        if session is None:
            raise RequestError.invalid_params({"sessionId": f"no open session {session_id!r}; create or load one"})
        return session

    async def _open(self, config: Config, opened: Any, mcp_servers: Any) -> AcpSession:
        session = AcpSession(self.conn, self.client, config, opened, mcp_servers_from_client(mcp_servers))
        try:
            await session.start()
        except Exception as exc:
            opened.session.close()
            log.exception("session %s did not start", opened.session.id)
            raise RequestError(-32603, f"the session did not start: {exc}", {"details": str(exc)}) from None
        self.sessions[session.id] = session
        if config.ignored_project_settings:
            session.notify(_ignored_line(config))
        from kimicode.security.sandbox import unavailable_notice

        notice = unavailable_notice(session.runtime.ctx.sandbox)
        if notice:
            session.notify(notice)
        for warning in opened.warnings:
            session.notify(f"session {session.id}: {warning}")
        return session

    async def new_session(self, cwd: str, mcp_servers: Any = None, **_: Any) -> NewSessionResponse:
        from kimicode.frontends.common.sessions import new_session

        config = self._config(workspace_of(cwd))
        if not config.api_key:
            raise _auth_error(config)
        session = await self._open(config, new_session(config), mcp_servers)
        asyncio.get_running_loop().create_task(session.announce())  # sent after this response
        return NewSessionResponse(
            session_id=session.id, modes=session_modes(config.mode), config_options=config_options(config)
        )

    async def load_session(self, cwd: str, session_id: str, mcp_servers: Any = None, **_: Any) -> LoadSessionResponse:
        from kimicode.frontends.common.sessions import SessionInUse, SessionNotFound, open_session

        config = self._config(workspace_of(cwd))
        if not config.api_key:
            raise _auth_error(config)
        if session_id in self.sessions:  # loaded again in this connection: start it afresh
            await self.sessions.pop(session_id).close()
        try:
            opened = open_session(config, resume_id=session_id)
        except SessionNotFound as exc:
            raise RequestError.invalid_params({"sessionId": str(exc)}) from None
        except SessionInUse as busy:
            raise RequestError(-32603, f"{busy}; close it there, or start a new session", {"details": str(busy)}) from None
        if opened.session.id != session_id:  # an id prefix matched another session
            opened.session.close()
            raise RequestError.invalid_params({"sessionId": f"no session {session_id!r} in {cwd}"})
        session = await self._open(config, opened, mcp_servers)
        await session.replay()
        asyncio.get_running_loop().create_task(session.announce())
        return LoadSessionResponse(modes=session_modes(config.mode), config_options=config_options(config))

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None, **_: Any) -> ListSessionsResponse:
        from kimicode.session.store import SessionStore

        start = int(cursor) if cursor and cursor.isdigit() else 0
        infos = SessionStore(kimicode_home()).list(cwd)
        page = infos[start : start + SESSIONS_PAGE]
        more = start + SESSIONS_PAGE < len(infos)
        return ListSessionsResponse(
            sessions=[
                SessionInfo(session_id=info.id, cwd=info.workspace, title=info.title or None, updated_at=info.updated.isoformat())
                for info in page
            ],
            next_cursor=str(start + SESSIONS_PAGE) if more else None,
        )

    async def set_session_mode(self, mode_id: str, session_id: str, **_: Any) -> SetSessionModeResponse:
        session = self._session(session_id)
        await session.set_mode(mode_id)
        await session.options_changed()
        return SetSessionModeResponse()

    async def set_config_option(self, config_id: str, session_id: str, value: Any, **_: Any) -> SetSessionConfigOptionResponse:
        session = self._session(session_id)
        if config_id == "mode":
            await session.set_mode(str(value))
        elif config_id == "approvals":
            session.set_stance(str(value))
        elif config_id == "model":
            await session.set_model(str(value))
        else:
            raise RequestError.invalid_params({"configId": f"unknown option '{config_id}': use mode, approvals or model"})
        if config_id in ("mode", "approvals"):
            await session.send(update_current_mode(current_mode(session.config, session.stance)))
        return SetSessionConfigOptionResponse(config_options=config_options(session.config, session.stance))

    # -- turns ---------------------------------------------------------------------------------------

    async def prompt(self, prompt: list[Any], session_id: str, **_: Any) -> PromptResponse:
        session = self._session(session_id)
        return PromptResponse(stop_reason=await session.prompt(prompt))

    async def cancel(self, session_id: str, **_: Any) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            session.cancel()

    async def close_all(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):
                await session.close()


async def _serve(agent: KimicodeAgent, in_fd: int, out_fd: int) -> None:
    from acp.agent.connection import AgentSideConnection

    from kimicode.frontends.acp.stdio import JsonRpcLines, open_streams

    reader, writer = await open_streams(in_fd, out_fd)
    # The SDK's Agent protocol lists every method, the optional and unstable ones too, while its router
    # looks each one up by name: an agent that leaves some out is what the SDK itself expects.
    connection = AgentSideConnection(agent, JsonRpcLines(reader, writer), listening=False)  # type: ignore[arg-type]
    try:
        await connection.listen()
    finally:
        await agent.close_all()
        await connection.close()


# Imported in the background at start-up, so the first prompt does not wait for them (the model
# client's SDK takes about a second).
WARM_IMPORTS = ("kimicode.llm.client", "kimicode.security.shell")


def _warm_imports() -> None:
    import importlib

    with contextlib.suppress(Exception):
        from kimicode.llm.client import load_sdk

        load_sdk()  # with the type packages a chat client never reads deferred (llm/sdk_import.py)
    for name in WARM_IMPORTS:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):  # its HTTP transport loads on the first client made: make one
        import openai

        openai.AsyncOpenAI(api_key="warm-up", base_url="http://127.0.0.1:9/v1")


def run_acp(flags: dict[str, Any]) -> int:
    """Serve the protocol on stdio until the editor closes it; returns the exit code."""
    import threading

    from kimicode.frontends.acp.stdio import claim_stdio
    from kimicode.frontends.common.signals import cancel_on_signals, exit_code_for
    from kimicode.security.orphans import adopt_orphans, end_orphans

    in_fd, out_fd = claim_stdio()
    log_to_file(kimicode_home(), "acp.log", bool(flags.get("debug")))
    log.info("kimicode %s acp started (protocol %s)", __version__, PROTOCOL_VERSION)
    adopt_orphans()  # what an unsandboxed command leaves running ends with the agent
    warmer = threading.Thread(target=_warm_imports, name="warm-imports", daemon=True)
    warmer.start()
    received: list[Any] = []  # an editor that quits may send SIGTERM: running commands end, sessions close
    try:
        asyncio.run(cancel_on_signals(_serve(KimicodeAgent(flags), in_fd, out_fd), received))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return exit_code_for(received[0]) if received else 130
    except Exception:
        log.exception("the connection failed")
        sys.stderr.write("kimicode acp: the connection failed; see the log in KIMICODE_HOME/logs/acp.log\n")
        return 1
    finally:
        end_orphans()
        # An interpreter that exits while a daemon thread is inside an import can abort: let it finish.
        warmer.join(timeout=10)
        log.info("kimicode acp stopped")
    return 0
