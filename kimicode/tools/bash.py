"""The ``bash`` tool: run a command in the workspace, bounded in time and in memory."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any, ClassVar

from kimicode.security.childenv import command_env as child_env
from kimicode.tools.args import optional_int, reports_errors, require_str
from kimicode.tools.base import MAX_OUTPUT_CHARS, Tool, ToolContext, ToolError, ToolResult

DEFAULT_TIMEOUT_S = 120
READ_CHUNK_BYTES = 64 * 1024
# Room kept for the elision note and the exit-code line inside MAX_OUTPUT_CHARS.
_NOTES_RESERVE = 400
HEAD_BYTES = MAX_OUTPUT_CHARS * 2 // 5
TAIL_BYTES = MAX_OUTPUT_CHARS - HEAD_BYTES - _NOTES_RESERVE
# After the shell exits, how long to wait for output still in the pipe. Longer means a background job
# that inherited the pipe (`server &`) is holding it open; we stop reading rather than hang.
DRAIN_GRACE_S = 1.0
# After SIGKILL, how long to wait for the process to be reaped and the pipe to close.
KILL_GRACE_S = 2.0


class BoundedOutput:
    """Keeps the first ``head_limit`` and the last ``tail_limit`` bytes of a stream of any length."""

    def __init__(self, head_limit: int = HEAD_BYTES, tail_limit: int = TAIL_BYTES) -> None:
        self.head_limit = head_limit
        self.tail_limit = tail_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        if len(chunk) >= self.tail_limit:
            self.tail = bytearray(chunk[-self.tail_limit :])
        else:
            self.tail += chunk
            excess = len(self.tail) - self.tail_limit
            if excess > 0:
                del self.tail[:excess]

    def render(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        elided = self.total - len(self.head) - len(self.tail)
        if elided <= 0:
            return head + self.tail.decode("utf-8", errors="replace")
        tail = bytes(self.tail)
        # The cut may split a UTF-8 character; drop its continuation bytes rather than show junk.
        skip = 0
        while skip < min(3, len(tail)) and 0x80 <= tail[skip] <= 0xBF:
            skip += 1
        note = (
            f"\n[... {elided} bytes of output elided ({self.total} in all); "
            f"redirect the output to a file and grep it to see the rest ...]\n"
        )
        return head + note + tail[skip:].decode("utf-8", errors="replace")


def command_env(ctx: ToolContext) -> dict[str, str]:
    # Without the model's API keys (security/childenv.py); ctx.env carries what the user passes on purpose.
    env = child_env(ctx.env)
    if ctx.sandbox is not None:
        env.update(ctx.sandbox.env())
    # Pagers would wait for a keypress on a closed stdin.
    env["PAGER"] = "cat"
    env["GIT_PAGER"] = "cat"
    return env


def kill_group(pgid: int) -> None:
    """SIGKILL every process in the group, grandchildren included."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


class BashTool(Tool):
    name: ClassVar[str] = "bash"
    description: ClassVar[str] = (
        "Run `bash -c` in the workspace; returns merged output and exit code. No stdin; long output "
        "keeps head and tail. Sandboxed: no network, writes only in the workspace and $TMPDIR; background jobs "
        "end with the command."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The bash command to run."},
            "timeout": {
                "type": "integer",
                "description": "Seconds before it and its children are killed (default 120).",
                "default": DEFAULT_TIMEOUT_S,
            },
            "escalate": {
                "type": "string",
                "description": "Why it must leave the sandbox (network, writes outside, a lasting server); asks the user.",
            },
        },
        "required": ["command"],
    }

    def summary(self, args: dict[str, Any]) -> str:
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            return self.name
        first = command.strip().splitlines()[0]
        more = " …" if len(first) > 80 or "\n" in command.strip() else ""
        escalate = args.get("escalate")
        why = f" [outside the sandbox: {escalate.strip()[:80]}]" if isinstance(escalate, str) and escalate.strip() else ""
        return f"{self.name} {first[:80]}{more}{why}"

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        command = require_str(args, "command")
        if not command.strip():
            raise ToolError("parameter 'command' is empty: give a bash command to run")
        timeout = optional_int(args, "timeout", DEFAULT_TIMEOUT_S)
        if timeout <= 0:
            raise ToolError(f"timeout must be a positive number of seconds, got {timeout}")
        if not ctx.workspace.is_dir():
            raise ToolError(f"workspace {ctx.workspace} is not a directory")
        escalate = args.get("escalate")
        if escalate is not None and not isinstance(escalate, str):
            raise ToolError("parameter 'escalate' must be a string: the reason the command needs to leave the sandbox")
        argv = ["bash", "-c", command]
        if ctx.sandbox is not None and not (escalate or "").strip():
            argv = ctx.sandbox.wrap(argv, ctx.workspace)
        if ctx.commands is not None:  # an editor's terminal, where the user watches it (ACP)
            delegated = await ctx.commands.run_command(argv, ctx.workspace, command_env(ctx), timeout)
            if delegated is not None:
                return delegated
        # Our own pipe, not asyncio's PIPE: asyncio's Process.wait() also waits for its pipes to close,
        # which a background job (`server &`) holding the pipe would stretch until the timeout.
        read_fd, write_fd = os.pipe()
        try:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=ctx.workspace,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=write_fd,
                    stderr=write_fd,
                    start_new_session=True,  # its own process group, so a kill reaches every descendant
                    env=command_env(ctx),
                )
            finally:
                os.close(write_fd)
        except (OSError, ValueError) as e:  # ValueError: a NUL byte in the command
            os.close(read_fd)
            raise ToolError(f"cannot start {argv[0]}: {getattr(e, 'strerror', None) or e}") from None
        return await _supervise(proc, read_fd, timeout)


async def _pump(read_fd: int, output: BoundedOutput) -> None:
    """Read the pipe to its end; closes ``read_fd``."""
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(limit=READ_CHUNK_BYTES)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0)
    )
    try:
        while True:
            chunk = await stream.read(READ_CHUNK_BYTES)
            if not chunk:
                return
            output.feed(chunk)
    finally:
        transport.close()


async def _supervise(proc: asyncio.subprocess.Process, read_fd: int, timeout: int) -> ToolResult:
    output = BoundedOutput()
    reader = asyncio.ensure_future(_pump(read_fd, output))
    timed_out = False
    pipe_left_open = False
    try:
        try:
            async with asyncio.timeout(timeout):
                await proc.wait()
                done, _ = await asyncio.wait({reader}, timeout=DRAIN_GRACE_S)
                pipe_left_open = not done
        except TimeoutError:
            timed_out = True
            kill_group(proc.pid)
            await _reap(proc, reader)
    except asyncio.CancelledError:
        # The user interrupted the turn: nothing the command started may outlive it.
        kill_group(proc.pid)
        try:
            await _reap(proc, reader)
        except asyncio.CancelledError:
            pass  # interrupted again while waiting: the group is already killed
        raise
    finally:
        if not reader.done():
            reader.cancel()
            try:
                await reader  # let it close the pipe
            except (asyncio.CancelledError, Exception):
                pass
    if not reader.cancelled() and reader.exception() is not None:
        raise ToolError(f"reading the command's output failed: {reader.exception()}")

    text = output.render()
    if text and not text.endswith("\n"):
        text += "\n"
    if timed_out:
        return ToolResult(text=f"{text}[timed out after {timeout}s; process group killed]", is_error=True)
    notes = ""
    if pipe_left_open:
        notes = (
            "[note: a background process still holds the output pipe; its later output is not shown. "
            "Redirect background jobs: `cmd > log 2>&1 &`]\n"
        )
    return ToolResult(text=f"{text}{notes}{exit_line(proc.returncode)}")


async def _reap(proc: asyncio.subprocess.Process, reader: asyncio.Future[None]) -> None:
    """Wait briefly for the killed process to be collected and its pipe to close (no zombies)."""
    waiter = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({waiter, reader}, timeout=KILL_GRACE_S)
    finally:
        if not waiter.done():
            waiter.cancel()


def exit_line(returncode: int | None) -> str:
    if returncode is None:
        return "[exit code: unknown]"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"[exit code: {128 - returncode} (killed by {name})]"
    return f"[exit code: {returncode}]"
