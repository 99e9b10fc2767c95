"""An editor for tests: the ACP SDK's client side driving `kimicode acp` as a subprocess over stdio.

``EditorClient`` records every session update, answers permission requests from a queue of answers,
serves ``fs/*`` from in-memory buffers (what an editor's unsaved buffers hold) when asked to, and runs
``terminal/*`` commands as real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import RequestError, spawn_agent_process
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    CreateTerminalResponse,
    DeniedOutcome,
    FileSystemCapabilities,
    KillTerminalResponse,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

from tests.clirun import cli_env


@dataclass
class Terminal:
    process: asyncio.subprocess.Process
    output: bytearray = field(default_factory=bytearray)
    reader: asyncio.Task[None] | None = None
    killed: bool = False


class EditorClient:
    def __init__(self, *, fs: bool = False, terminal: bool = False) -> None:
        self.fs = fs
        self.terminal = terminal
        self.updates: list[tuple[str, Any]] = []  # (session id, update) in arrival order
        # Everything the agent sent, in arrival order: ("update", update) or (method, path) for fs/*.
        self.received: list[tuple[str, Any]] = []
        self.update_times: list[tuple[float, Any]] = []
        self.permission_requests: list[Any] = []
        self.answers: list[str] = []  # option ids to pick, in order; "cancel" answers cancelled
        self.buffers: dict[str, str] = {}  # path -> text the editor holds
        self.reads: list[str] = []
        self.writes: list[tuple[str, str]] = []
        self.terminals: dict[str, Terminal] = {}
        self.created_terminals: list[dict[str, Any]] = []
        self.kills: list[str] = []
        self.permission_asked = asyncio.Event()

    def capabilities(self) -> ClientCapabilities:
        return ClientCapabilities(
            fs=FileSystemCapabilities(read_text_file=self.fs, write_text_file=self.fs), terminal=self.terminal
        )

    # -- what the agent asks of the editor -----------------------------------------------------------

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append((session_id, update))
        self.received.append(("update", update))
        self.update_times.append((asyncio.get_running_loop().time(), update))

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **_: Any) -> RequestPermissionResponse:
        self.permission_requests.append((tool_call, options))
        self.permission_asked.set()
        answer = self.answers.pop(0) if self.answers else "reject"
        if answer == "wait":  # leave the question open (a cancel comes meanwhile)
            await asyncio.sleep(3600)
        if answer == "cancel":
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=answer))

    async def read_text_file(self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **_: Any) -> ReadTextFileResponse:
        self.reads.append(path)
        self.received.append(("fs/read_text_file", path))
        if path in self.buffers:
            return ReadTextFileResponse(content=self.buffers[path])
        try:
            return ReadTextFileResponse(content=Path(path).read_text(encoding="utf-8"))
        except OSError:
            raise RequestError.resource_not_found(path) from None

    async def write_text_file(self, session_id: str, path: str, content: str, **_: Any) -> WriteTextFileResponse:
        self.writes.append((path, content))
        self.received.append(("fs/write_text_file", path))
        self.buffers[path] = content
        return WriteTextFileResponse()

    async def create_terminal(
        self, session_id: str, command: str, args: list[str] | None = None, env: list[Any] | None = None,
        cwd: str | None = None, output_byte_limit: int | None = None, **_: Any,
    ) -> CreateTerminalResponse:
        environment = dict(os.environ)
        environment.update({variable.name: variable.value for variable in env or []})
        self.created_terminals.append({"command": command, "args": list(args or []), "env": environment, "cwd": cwd})
        process = await asyncio.create_subprocess_exec(
            command, *(args or []), cwd=cwd, env=environment, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
        terminal_id = f"term-{len(self.terminals) + 1}"
        terminal = Terminal(process)

        async def pump() -> None:
            assert process.stdout is not None
            while chunk := await process.stdout.read(4096):
                terminal.output += chunk

        terminal.reader = asyncio.create_task(pump())
        self.terminals[terminal_id] = terminal
        return CreateTerminalResponse(terminal_id=terminal_id)

    async def terminal_output(self, session_id: str, terminal_id: str, **_: Any) -> TerminalOutputResponse:
        terminal = self.terminals[terminal_id]
        status = None
        if terminal.process.returncode is not None:
            status = TerminalExitStatus(exit_code=max(terminal.process.returncode, 0))
        return TerminalOutputResponse(output=terminal.output.decode(errors="replace"), truncated=False, exit_status=status)

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str, **_: Any) -> WaitForTerminalExitResponse:
        terminal = self.terminals[terminal_id]
        code = await terminal.process.wait()
        if terminal.reader is not None:
            await terminal.reader
        if code < 0:
            return WaitForTerminalExitResponse(signal=signal.Signals(-code).name)
        return WaitForTerminalExitResponse(exit_code=code)

    async def kill_terminal(self, session_id: str, terminal_id: str, **_: Any) -> KillTerminalResponse:
        self.kills.append(terminal_id)
        terminal = self.terminals[terminal_id]
        terminal.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(terminal.process.pid, signal.SIGKILL)
        return KillTerminalResponse()

    async def release_terminal(self, session_id: str, terminal_id: str, **_: Any) -> ReleaseTerminalResponse:
        terminal = self.terminals[terminal_id]
        if terminal.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(terminal.process.pid, signal.SIGKILL)
        return ReleaseTerminalResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    # An editor that has not implemented ACP's elicitation: kimicode asks through request_permission instead.
    async def create_elicitation(self, message: str, mode: Any, **_: Any) -> Any:
        raise RequestError.method_not_found("elicitation/create")

    async def complete_elicitation(self, elicitation_id: str, **_: Any) -> None:
        raise RequestError.method_not_found("elicitation/complete")

    def on_connect(self, conn: Any) -> None:
        return None

    # -- what tests look at --------------------------------------------------------------------------

    def of_kind(self, kind: str, session_id: str | None = None) -> list[Any]:
        return [u for sid, u in self.updates if u.session_update == kind and (session_id is None or sid == session_id)]

    def agent_text(self, session_id: str | None = None) -> str:
        return "".join(u.content.text for u in self.of_kind("agent_message_chunk", session_id) if u.content.type == "text")

    def tool_updates(self, call_id: str) -> list[Any]:
        return [u for _, u in self.updates if u.session_update in ("tool_call", "tool_call_update") and u.tool_call_id == call_id]


@contextlib.asynccontextmanager
async def running_agent(
    client: EditorClient,
    home: Path,
    cwd: Path,
    base_url: str,
    *args: str,
    observers: list[Any] | None = None,
    env_extra: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Any, asyncio.subprocess.Process]]:
    """``kimicode acp`` started as the editor starts it, initialized; yields (connection, process)."""
    env = cli_env(home, base_url, **(env_extra or {}))
    home.mkdir(parents=True, exist_ok=True)
    stderr = open(home / "acp-stderr.txt", "ab")  # noqa: SIM115 (kept open for the process's life)
    kwargs: dict[str, Any] = {"observers": observers} if observers else {}
    try:
        async with spawn_agent_process(
            client, sys.executable, "-m", "kimicode", "acp", *args, env=env, cwd=cwd,
            transport_kwargs={"stderr": stderr, "limit": 50 * 1024 * 1024}, **kwargs,
        ) as (conn, process):
            await asyncio.wait_for(conn.initialize(protocol_version=1, client_capabilities=client.capabilities()), 60)
            yield conn, process
    finally:
        stderr.close()
