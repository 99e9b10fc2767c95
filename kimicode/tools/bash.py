"""The ``bash`` tool: run a command in the workspace, bounded in time and in memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from kimicode.security.childenv import command_env as child_env
from kimicode.security.orphans import command_mark
from kimicode.tools.args import reports_errors
from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.child_watch import watch_children
from kimicode.tools.params import UNLISTED, Flag, Int, Str, ToolParams, checked_by, json_schema
from kimicode.tools.process import (
    DRAIN_GRACE_S,
    KILL_GRACE_S,
    BoundedOutput,
    CommandProcess,
    PipeReading,
    exit_line,
    kill_group,
)

if TYPE_CHECKING:
    from kimicode.security.sandbox_session import SandboxedCommand
    from kimicode.tools.background import TaskManager

DEFAULT_TIMEOUT_S = 120
# A command moved to the background: how long its output may be quiet, and at most waited for, before the
# result is written (what came before the move belongs in it).
CATCH_UP_QUIET_S = 0.03
CATCH_UP_MAX_S = 0.3


def command_env(ctx: ToolContext) -> dict[str, str]:
    # Without the model's API keys (security/childenv.py); ctx.env carries what the user passes on purpose.
    env = child_env(ctx.env)
    if ctx.sandbox is not None:
        env.update(ctx.sandbox.env())
    # Pagers would wait for a keypress on a closed stdin.
    env["PAGER"] = "cat"
    env["GIT_PAGER"] = "cat"
    env.update(command_mark())  # what the command starts ends with kimicode, even killed (watchdog.py)
    return env


def _reason(value: object) -> str:
    if not isinstance(value, str):
        raise ToolError("parameter 'escalate' must be a string: the reason the command needs to leave the sandbox")
    return value


Reason = Annotated[str, checked_by(_reason)]


class BashParams(ToolParams):
    command: Str = Field(description="The bash command to run.")
    timeout: Int = Field(DEFAULT_TIMEOUT_S, description="Seconds before it and its children are killed (default 120).")
    escalate: Reason | None = Field(
        None, description="Why it must leave the sandbox (network, writes outside, a lasting server); asks the user."
    )
    # Not offered without background tasks, yet read: asking for one there is told it is not available.
    background: Annotated[Flag | None, UNLISTED] = None


class BackgroundBashParams(ToolParams):
    """Agent and swarm modes: shorter words, and the background switch."""

    command: Str
    timeout: Int = Field(DEFAULT_TIMEOUT_S, description="Seconds (default 120); then it moves to the background.")
    background: Flag | None = None
    escalate: Reason | None = Field(None, description="Why it must leave the sandbox (network, writes outside); asks the user.")


class BashTool(Tool):
    """``background=True`` (agent and swarm modes) adds the ``background`` parameter and moves a command
    still running at its timeout to the background; without it (the SWE toolset) such a command is killed."""

    name: ClassVar[str] = "bash"
    description: ClassVar[str] = (
        "Run `bash -c` in the workspace; returns merged output and exit code. No stdin; long output "
        "keeps head and tail. Sandboxed: no network, writes only in the workspace and $TMPDIR; background jobs "
        "end with the command."
    )
    params: ClassVar[type[BashParams] | type[BackgroundBashParams]] = BashParams
    BACKGROUND_DESCRIPTION: ClassVar[str] = (
        "Run `bash -c` in the workspace; returns merged output and exit code. No stdin; long output "
        "keeps head and tail. Sandboxed: no network, writes only in the workspace and $TMPDIR. "
        "background: true for servers and watchers (returns a task id)."
    )

    def __init__(self, background: bool = False) -> None:
        self.background = background
        if background:
            self.description = self.BACKGROUND_DESCRIPTION  # type: ignore[misc]
            self.params = BackgroundBashParams  # type: ignore[misc]
            self.parameters = json_schema(BackgroundBashParams)  # type: ignore[misc]

    def summary(self, args: dict[str, Any]) -> str:
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            return self.name
        first = command.strip().splitlines()[0]
        more = " …" if len(first) > 80 or "\n" in command.strip() else ""
        escalate = args.get("escalate")
        why = f" [outside the sandbox: {escalate.strip()[:80]}]" if isinstance(escalate, str) and escalate.strip() else ""
        where = " [background]" if args.get("background") is True else ""
        return f"{self.name} {first[:80]}{more}{where}{why}"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        # What git would run, before and after: a change is reported and ends kimicode's own git there.
        from kimicode.vcs.gitreuse import taken
        from kimicode.vcs.gitwatch import note

        before = await taken(ctx.workspace)  # (reused, with no thread, while the kernel reports no change)
        result = await self._run(args, ctx)
        note_text = note(ctx.workspace, before, await taken(ctx.workspace))
        if note_text:
            result.text = f"{result.text}{'' if result.text.endswith(chr(10)) else chr(10)}{note_text}"
        return result

    @reports_errors
    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given = self.params.parse(args)
        command, timeout, escalate, background = given.command, given.timeout, given.escalate, given.background
        if not command.strip():
            raise ToolError("parameter 'command' is empty: give a bash command to run")
        if timeout <= 0:
            raise ToolError(f"timeout must be a positive number of seconds, got {timeout}")
        if not ctx.workspace.is_dir():
            raise ToolError(f"workspace {ctx.workspace} is not a directory")
        sandboxed = ctx.sandbox is not None and ctx.sandbox.active and not (escalate or "").strip()
        tasks = ctx.tasks if self.background else None
        if background:
            return await _start_background(command, sandboxed, ctx, tasks)
        argv = ["bash", "-c", command]
        if sandboxed and ctx.commands is None:
            session = await _in_session_sandbox(argv, ctx)
            if session is not None:
                return await _supervise(session[0], session[1], timeout, command, sandboxed, tasks)
        if sandboxed:
            argv = ctx.sandbox.wrap(argv, ctx.workspace)  # type: ignore[union-attr]
        if ctx.commands is not None:  # an editor's terminal, where the user watches it (ACP)
            delegated = await ctx.commands.run_command(argv, ctx.workspace, command_env(ctx), timeout)
            if delegated is not None:
                return delegated
        proc, read_fd = await spawn(argv, ctx)
        return await _supervise(proc, read_fd, timeout, command, sandboxed, tasks)


async def spawn(argv: list[str], ctx: ToolContext) -> tuple[asyncio.subprocess.Process, int]:
    """Start ``argv`` in the workspace, its own process group, stdout and stderr on one pipe we read."""
    # Our own pipe, not asyncio's PIPE: asyncio's Process.wait() also waits for its pipes to close,
    # which a background job (`server &`) holding the pipe would stretch until the timeout.
    watch_children()  # its exit comes with the loop's events, not from a thread started for it
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
    return proc, read_fd


async def _in_session_sandbox(argv: list[str], ctx: ToolContext) -> tuple[SandboxedCommand, int] | None:
    """The command started in the session's long-lived sandbox (sandbox_session.py); None where there is
    none, and the command gets a bubblewrap of its own."""
    from kimicode.security.sandbox_session import start_command

    try:
        return await start_command(ctx.sandbox, argv, ctx.workspace, command_env(ctx))  # type: ignore[arg-type]
    except ValueError as e:  # a NUL byte in the command
        raise ToolError(f"cannot start {argv[0]}: {e}") from None
    except OSError:  # (out of descriptors or processes: a bubblewrap of its own says why, if it fails too)
        return None


async def _start_background(command: str, sandboxed: bool, ctx: ToolContext, tasks: TaskManager | None) -> ToolResult:
    if tasks is None:
        raise ToolError("background tasks are not available in this run; run the command in the foreground")
    refusal = tasks.refusal()
    if refusal:
        raise ToolError(f"not started: {refusal}")
    argv = ["bash", "-c", command]
    bridge_socket = None
    if sandboxed:
        from kimicode.security.portbridge import relay_argv

        # The relay inside the sandbox lets the host reach the ports the task listens on (portbridge.py).
        bridge_socket = ctx.sandbox.temp_dir / f"bridge-{secrets.token_hex(6)}.sock"  # type: ignore[union-attr]
        argv = ctx.sandbox.wrap(relay_argv(bridge_socket, argv), ctx.workspace)  # type: ignore[union-attr]
    proc, read_fd = await spawn(argv, ctx)
    task = tasks.launch(proc, read_fd, command, sandboxed=sandboxed, bridge_socket=bridge_socket)
    await tasks.settle(task)
    output = task.unread()
    head = f"task {task.id} started in the background" if task.running else f"task {task.id} ended at once"
    text = f"{head}.\n{output}{'' if not output or output.endswith(chr(10)) else chr(10)}{task.status()}"
    if task.running:
        text += f'\ntask_output("{task.id}") shows what it prints; task_stop("{task.id}") ends it.'
    return ToolResult(text, is_error=task.state == "failed")


async def _caught_up(output: BoundedOutput, reader: asyncio.Future[None]) -> None:
    """Let the reader take in what the command wrote before it was moved (a loaded machine may not have
    read it yet), so that the result shows it rather than only the task's log: until nothing new came for
    CATCH_UP_QUIET_S, at most CATCH_UP_MAX_S."""
    deadline = time.monotonic() + CATCH_UP_MAX_S
    seen = -1
    while output.total != seen and not reader.done() and time.monotonic() < deadline:
        seen = output.total
        await asyncio.sleep(CATCH_UP_QUIET_S)


async def _supervise(
    proc: asyncio.subprocess.Process | SandboxedCommand,
    read_fd: int,
    timeout: int,
    command: str,
    sandboxed: bool,
    tasks: TaskManager | None,
) -> ToolResult:
    if isinstance(proc, asyncio.subprocess.Process):
        return await _supervised(proc, read_fd, timeout, command, sandboxed, tasks)
    try:
        return await _supervised(proc, read_fd, timeout, command, sandboxed, tasks)
    finally:
        proc.finish()  # a session sandbox: reused after a command that ended on its own, else ended


async def _supervised(
    proc: asyncio.subprocess.Process | SandboxedCommand,
    read_fd: int,
    timeout: int,
    command: str,
    sandboxed: bool,
    tasks: TaskManager | None,
) -> ToolResult:
    started = time.monotonic()
    output = BoundedOutput()
    try:
        reader = PipeReading(read_fd, output)
    except OSError as exc:  # the loop cannot watch the pipe (out of memory for it): nothing may run unread
        _kill(proc)
        raise ToolError(f"reading the command's output failed: {exc}") from None
    # A session sandbox's command hands over its own end (one loop turn from its reply to here); that
    # future is never cancelled here: finish() decides what becomes of a command that did not end.
    own_waiter = isinstance(proc, asyncio.subprocess.Process)
    waiter: asyncio.Future[int] = asyncio.ensure_future(proc.wait()) if own_waiter else proc.ended  # type: ignore[union-attr]
    timed_out = False
    pipe_left_open = False
    moved = ""  # "timeout" or "user": the command goes on in the background
    with tasks.foreground() if tasks is not None else contextlib.nullcontext(None) as detach:
        try:
            done = await _first_done(waiter, detach, timeout, None if own_waiter else proc)  # type: ignore[arg-type]
            if waiter in done:
                if not reader.done():  # usually read to its end already: no wait, no timer
                    drained, _ = await asyncio.wait({reader}, timeout=DRAIN_GRACE_S)
                    pipe_left_open = not drained
            elif tasks is not None and not tasks.refusal():
                moved = "user" if detach in done else "timeout"
                if not isinstance(proc, asyncio.subprocess.Process):
                    proc.detached = True  # its sandbox goes with it to the background
            else:
                timed_out = True
                _kill(proc)
                await _reap(proc, reader)
        except asyncio.CancelledError:
            # The user interrupted the turn: nothing the command started may outlive it.
            _kill(proc)
            try:
                await _reap(proc, reader)
            except asyncio.CancelledError:
                pass  # interrupted again while waiting: the group is already killed
            raise
        finally:
            if own_waiter and not waiter.done():
                waiter.cancel()
            if not moved and not reader.done():
                reader.cancel()  # closes the pipe now
    if not moved and not reader.cancelled() and reader.exception() is not None:
        raise ToolError(f"reading the command's output failed: {reader.exception()}")
    if moved:
        await _caught_up(output, reader)

    text = output.render()
    if text and not text.endswith("\n"):
        text += "\n"
    if moved:
        assert tasks is not None
        task = tasks.adopt(proc, reader, output, command, sandboxed=sandboxed, why=moved, started=started)
        return ToolResult(text=text + moved_note(task.id, moved, timeout, sandboxed) + "\n" + task.status())
    if timed_out:
        return ToolResult(text=f"{text}[timed out after {timeout}s; process group killed]", is_error=True)
    notes = ""
    if pipe_left_open:
        notes = (
            "[note: a background process still holds the output pipe; its later output is not shown. "
            "Redirect background jobs: `cmd > log 2>&1 &`]\n"
        )
    return ToolResult(text=f"{text}{notes}{exit_line(proc.returncode)}")


async def _first_done(
    waiter: asyncio.Future[int], detach: asyncio.Future[Any] | None, timeout: float, session: SandboxedCommand | None
) -> set[asyncio.Future[Any]]:
    """Which of ``waiter`` and ``detach`` are done once the first of them is, or the timeout passed. A
    session sandbox's command calls back in the loop turn that reads its end: the caller goes on in the
    next turn (asyncio.wait would take one more)."""
    watched: set[asyncio.Future[Any]] = {waiter} | ({detach} if detach is not None else set())
    if session is None:
        done, _ = await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return done
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()

    def wake(*_: object) -> None:
        if not first.done():
            first.set_result(None)

    timer = loop.call_later(timeout, wake)
    session.on_end = wake
    if detach is not None:
        detach.add_done_callback(wake)
    if waiter.done():
        wake()
    try:
        await first
    finally:
        timer.cancel()
        session.on_end = None
        if detach is not None:
            detach.remove_done_callback(wake)
    return {future for future in watched if future.done()}


def _kill(proc: asyncio.subprocess.Process | SandboxedCommand) -> None:
    if not isinstance(proc, asyncio.subprocess.Process):
        proc.killed = True  # a session sandbox killed with its command is never reused
    kill_group(proc.pid)


def moved_note(task_id: str, why: str, timeout: int, sandboxed: bool) -> str:
    who = f"still running after {timeout}s" if why == "timeout" else "the user moved it"
    note = (
        f'[{who}: it goes on in the background as task {task_id}. task_output("{task_id}") shows what it '
        f'prints next, task_stop("{task_id}") ends it.'
    )
    if sandboxed:
        note += " Its ports are not reachable from this machine: start servers with background: true."
    return note + "]"


async def _reap(proc: CommandProcess, reader: asyncio.Future[None]) -> None:
    """Wait briefly for the killed process to be collected and its pipe to close (no zombies)."""
    waiter = asyncio.ensure_future(proc.wait())
    watched: set[asyncio.Future[Any]] = {waiter, reader}
    try:
        await asyncio.wait(watched, timeout=KILL_GRACE_S)
    finally:
        if not waiter.done():
            waiter.cancel()
