"""Running one hook: its command through the shell, the event's JSON on stdin, its exit code and (bounded)
output back, killed with everything it started when its time is up.

Invariants:
- A hook runs with the user's environment minus the model's keys (security/childenv.py), plus
  ``CLAUDE_PROJECT_DIR``/``KIMICODE_PROJECT_DIR`` (and the plugin root for a plugin's hook).
- It runs in its own process group: at the timeout the whole group is killed, so a hook that forked a
  child does not outlive it; output beyond ``MAX_OUTPUT_BYTES`` per stream is read and thrown away (the hook
  never blocks on a full pipe, and kimicode never holds more).
- A hook that cannot start is an error line, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from kimicode.extensions.hooks_config import HookSpec

MAX_OUTPUT_BYTES = 64 * 1024
SHELL = "/bin/sh"


@dataclass
class HookRun:
    spec: HookSpec
    exit_code: int | None  # None: it did not start, or was killed at its timeout
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    failed_to_start: str = ""


async def _drain(stream: asyncio.StreamReader | None) -> bytes:
    """Everything the stream says, kept up to the cap; the rest read and dropped."""
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        room = MAX_OUTPUT_BYTES - len(kept)
        if room > 0:
            kept += chunk[:room]
    return bytes(kept)


def hook_env(workspace: Path, spec: HookSpec) -> dict[str, str]:
    from kimicode.security.childenv import command_env

    extra = {"CLAUDE_PROJECT_DIR": str(workspace), "KIMICODE_PROJECT_DIR": str(workspace)}
    if spec.plugin_root:
        extra.update(CLAUDE_PLUGIN_ROOT=spec.plugin_root, KIMICODE_PLUGIN_ROOT=spec.plugin_root)
    return command_env(extra)


async def run_hook(spec: HookSpec, payload: bytes, workspace: Path) -> HookRun:
    try:
        proc = await asyncio.create_subprocess_exec(
            SHELL,
            "-c",
            spec.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(workspace),
            env=hook_env(workspace, spec),
            start_new_session=True,
        )
    except OSError as exc:
        return HookRun(spec, None, failed_to_start=str(exc))
    reading = asyncio.gather(_drain(proc.stdout), _drain(proc.stderr), _feed(proc, payload), proc.wait())
    try:
        out, err, _, code = await asyncio.wait_for(asyncio.shield(reading), spec.timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        _kill_group(proc.pid)
        with contextlib.suppress(Exception):  # the pipes close with the group; what it said so far is kept
            await asyncio.wait_for(reading, 5)
        if isinstance(exc, asyncio.CancelledError):
            raise
        return HookRun(spec, None, timed_out=True)
    return HookRun(spec, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


async def _feed(proc: asyncio.subprocess.Process, payload: bytes) -> None:
    """The event on stdin, then EOF; a hook that does not read it is no failure."""
    if proc.stdin is None:
        return
    with contextlib.suppress(OSError, ConnectionError):
        proc.stdin.write(payload)
        await proc.stdin.drain()
    with contextlib.suppress(OSError, ConnectionError):
        proc.stdin.close()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
