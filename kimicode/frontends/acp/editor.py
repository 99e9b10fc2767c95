"""The tools' files and commands, served by the editor when it offers them (client capabilities).

``EditorFiles`` reads through ``fs/read_text_file`` (the editor's buffers, unsaved changes included) and
writes through ``fs/write_text_file`` (the edit shows up in the editor); it also keeps what each call
wrote, so the call's diff can be shown. ``EditorTerminals`` runs ``bash`` commands in ``terminal/*``
terminals the user watches in the editor. The policy has decided before any of this runs, and a command
is handed over already wrapped in the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kimicode.security.childenv import WITHHELD
from kimicode.tools.base import CURRENT_TOOL_CALL, MAX_OUTPUT_CHARS, ToolError, ToolResult

log = logging.getLogger("kimicode.acp")

# What the editor keeps of a command's output (its tail), as the local bash tool keeps about as much.
TERMINAL_OUTPUT_BYTES = MAX_OUTPUT_CHARS


def call_key(agent: str, call_id: str) -> str:
    """A tool call's id in the protocol: a sub-agent's calls are prefixed, their ids are only theirs."""
    return f"{agent}/{call_id}" if agent else call_id


def current_call_key() -> str:
    agent, call_id = CURRENT_TOOL_CALL.get()
    return call_key(agent, call_id)


@dataclass
class Written:
    """What one call wrote to one file: shown as the call's diff."""

    path: Path
    before: str | None
    after: str


class EditorFiles:
    """The ``EditorFiles`` hook of the tools' context for one session (see kimicode.tools.base)."""

    def __init__(self, conn: Any, session_id: str, root: Path, read: bool, write: bool) -> None:
        self.conn = conn
        self.session_id = session_id
        self.root = root
        self.read = read
        self.write = write
        self.written: dict[str, list[Written]] = {}  # call key -> its writes, in order
        # Until the editor shows call KEY (set by the session): a call's fs request never comes first.
        self.shown: Callable[[str], Awaitable[None]] | None = None

    async def _after_announcement(self) -> None:
        key = current_call_key()
        if key and self.shown is not None:  # outside a call (a prompt's resource link) nothing is announced
            await self.shown(key)

    def _held(self, path: Path) -> bool:
        """Files of the editor's project: the workspace, not its .git (sub-agents' worktrees live there)."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return False
        return not relative.parts or relative.parts[0] != ".git"

    async def read_text(self, path: Path) -> str | None:
        if not self.read or not self._held(path):
            return None
        from acp import RequestError

        await self._after_announcement()
        try:
            response = await self.conn.read_text_file(session_id=self.session_id, path=str(path))
        except (RequestError, ConnectionError) as exc:  # the disk read reports what is wrong, in its words
            log.info("fs/read_text_file %s failed: %s", path, exc)
            return None
        return str(response.content)

    async def write_text(self, path: Path, text: str, before: str | None) -> bool:
        self.written.setdefault(current_call_key(), []).append(Written(path, before, text))
        if not self.write or not self._held(path):
            return False
        from acp import RequestError

        await self._after_announcement()
        try:
            await self.conn.write_text_file(session_id=self.session_id, path=str(path), content=text)
        except (RequestError, ConnectionError) as exc:
            raise ToolError(f"the editor could not write {path}: {exc}") from None
        return True

    async def current_text(self, path: Path) -> str | None:
        """The file's text as the model would read it now (editor first), or None when it cannot be read."""
        text = await self.read_text(path)
        if text is not None:
            return text
        from kimicode.tools.fileio import read_text_file

        try:
            return await asyncio.to_thread(lambda: read_text_file(path).text)
        except ToolError:
            return None


Notify = Callable[[str, str], Awaitable[None]]  # (call key, terminal id): show the terminal in that call


class EditorTerminals:
    """The ``EditorCommands`` hook: ``bash`` commands run in the editor's terminals."""

    def __init__(self, conn: Any, session_id: str, show: Notify) -> None:
        self.conn = conn
        self.session_id = session_id
        self.show = show
        self.used: dict[str, str] = {}  # call key -> terminal id

    async def run_command(self, argv: list[str], cwd: Path, env: dict[str, str], timeout: int) -> ToolResult | None:
        from acp.schema import EnvVariable

        from kimicode.tools.bash import exit_line

        key = current_call_key()
        variables = [EnvVariable(name=name, value=value) for name, value in env.items()]
        # The editor's terminal has the editor's environment: the model's keys are blanked there too.
        variables += [EnvVariable(name=name, value="") for name in WITHHELD if name not in env]
        creating = asyncio.ensure_future(
            self.conn.create_terminal(
                session_id=self.session_id,
                command=argv[0],
                args=argv[1:],
                env=variables,
                cwd=str(cwd),
                output_byte_limit=TERMINAL_OUTPUT_BYTES,
            )
        )
        try:
            created = await asyncio.shield(creating)
        except asyncio.CancelledError:  # the editor may be starting it already: when it has, kill it
            with contextlib.suppress(Exception):
                late = await asyncio.wait_for(creating, 5)
                await self._kill(late.terminal_id)
                await self._release(late.terminal_id)
            raise
        terminal = created.terminal_id
        self.used[key] = terminal
        timed_out = False
        try:
            # Inside the try: a cancel that comes while the editor is told must still kill the command.
            await self.show(key, terminal)
            try:
                async with asyncio.timeout(timeout):
                    exited = await self.conn.wait_for_terminal_exit(session_id=self.session_id, terminal_id=terminal)
            except TimeoutError:
                timed_out = True
                await self._kill(terminal)
                exited = None
            output = await self.conn.terminal_output(session_id=self.session_id, terminal_id=terminal)
        except asyncio.CancelledError:
            # The turn was cancelled: the command must not outlive it.
            await self._kill(terminal)
            await self._release(terminal)
            raise
        await self._release(terminal)
        text = str(output.output)
        if text and not text.endswith("\n"):
            text += "\n"
        if output.truncated:
            text = f"[the editor kept only the last {TERMINAL_OUTPUT_BYTES} bytes of the output]\n{text}"
        if timed_out:
            return ToolResult(f"{text}[timed out after {timeout}s; the command was killed]", is_error=True)
        status = exited if exited is not None else output.exit_status
        code = getattr(status, "exit_code", None)
        signal_name = getattr(status, "signal", None)
        if code is None and signal_name:
            return ToolResult(f"{text}[exit code: unknown (killed by {signal_name})]")
        return ToolResult(f"{text}{exit_line(code)}")

    async def _kill(self, terminal: str) -> None:
        with contextlib.suppress(Exception):
            await self.conn.kill_terminal(session_id=self.session_id, terminal_id=terminal)

    async def _release(self, terminal: str) -> None:
        with contextlib.suppress(Exception):
            await self.conn.release_terminal(session_id=self.session_id, terminal_id=terminal)
