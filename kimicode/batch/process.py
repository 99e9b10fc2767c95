"""How a batch task's commands run: its own process group, dying with the driver, output to its log.

Each process gets its own process group (a timeout or a cancel ends the whole group) and dies with the
process that started it (PR_SET_PDEATHSIG), so a killed driver leaves no agent running on behind it. The
agent may instead be a fork of the warm process (kimicode/batch/warm.py); it is then driven the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kimicode.batch.warm import ForkedAgent, WarmPool, agent_prefix, note

LineCallback = Callable[[str], None]
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for a task's process group


async def run_process(
    argv: list[str],
    cwd: Path,
    stdin_text: str | None,
    log: Path,
    on_line: LineCallback,
    env: dict[str, str] | None = None,
    pool: WarmPool | None = None,
) -> tuple[int, str]:
    """Run one command of a task: stderr (and for shell steps stdout) to ``log`` line by line, each line
    also to ``on_line``; returns the exit code and stdout (the agent's json). Cancelling ends its group.
    With ``pool``, the agent (``argv`` starting with ``agent_prefix()``) is forked from the pool."""
    shell_step = argv[0] == "bash"
    proc: asyncio.subprocess.Process | ForkedAgent | None = None
    prefix = agent_prefix()
    if pool is not None and env is not None and argv[: len(prefix)] == prefix:
        why = pool.unfit(env)
        if not why:
            try:
                proc = await pool.spawn(argv[len(prefix) :], cwd, env, stdin_text is not None)
            except OSError as exc:
                why = str(exc)
        if why:
            note(why)
    if proc is None:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE if stdin_text is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if shell_step else asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        if stdin_text is not None and proc.stdin is not None:
            proc.stdin.write(stdin_text.encode("utf-8"))
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
            proc.stdin.close()
        with open(log, "a", encoding="utf-8", errors="replace") as sink:
            if shell_step:
                assert proc.stdout is not None
                await _pump(proc.stdout, sink, on_line)
                stdout = ""
            else:
                assert proc.stdout is not None and proc.stderr is not None
                out_task = asyncio.ensure_future(proc.stdout.read())
                await _pump(proc.stderr, sink, on_line)
                stdout = (await out_task).decode("utf-8", errors="replace")
        return await proc.wait(), stdout
    finally:
        if proc.returncode is None:
            await _end_group(proc)


async def _pump(stream: asyncio.StreamReader, sink: Any, on_line: LineCallback) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace")
        sink.write(line)
        sink.flush()
        if line.strip():
            on_line(line.strip())


async def _end_group(proc: asyncio.subprocess.Process | ForkedAgent) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), wait)
            return
        except TimeoutError:
            continue


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the process that started us dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
