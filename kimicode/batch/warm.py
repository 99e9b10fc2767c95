"""Warm agents for the local pool: each task's ``kimicode -p`` is a fork of one pre-imported process.

A fresh interpreter spends most of a second of CPU importing the agent's run path (the openai SDK above
all) before its first request; on a small machine with many workers that, not the model, bounds a batch.
The zygote (kimicode/batch/zygote.py) pays it once and forks per task; the child is otherwise the process
``python -m kimicode`` would have been (see the invariants there), so results, logs and exit statuses
are the same, and a crash or a hang still takes only its own task.

A fresh process is started instead (and the run says so on stderr, once) when forking is unsafe or
unavailable: not Linux (macOS frameworks do not survive a fork), ``KIMICODE_BATCH_WARM=0``, the warm
process failed to start or has died, or a task's environment differs from the warm process's in what
the interpreter reads only at start (``PYTHON*``, ``LD_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from kimicode.security.childenv import WITHHELD

WARM_ENV = "KIMICODE_BATCH_WARM"  # "0": every task's agent is a fresh process
_START_ONLY = ("PYTHON", "LD_")  # read by the interpreter or the loader at start only
_MESSAGE = 65536


def agent_prefix() -> list[str]:
    """How the agent is started fresh: ``-P`` keeps the working directory (the task's checkout, which
    nobody vouched for) off ``sys.path``, so its ``kimicode/`` or ``openai.py`` is never what is imported."""
    return [sys.executable, "-P", "-m", "kimicode"]


def warm_wanted(env: dict[str, str]) -> str:
    """Why the warm pool is not used here, or ""."""
    if env.get(WARM_ENV, "1") == "0":
        return f"{WARM_ENV}=0"
    if not sys.platform.startswith("linux"):
        return "forking is unsafe on this platform"
    if not hasattr(os, "fork") or not hasattr(socket, "SOCK_SEQPACKET"):
        return "this Python cannot fork"
    return ""


def _start_only(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_START_ONLY)}


class ForkedAgent:
    """A task's agent forked by the zygote, with the parts of asyncio's Process that runner.py uses."""

    def __init__(self, pid: int, chan: socket.socket, first: dict[str, Any]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._chan = chan
        self._ended = asyncio.get_running_loop().create_future()
        if "exit" in first:
            self._end(int(first["exit"]))
        else:
            self._watch = asyncio.ensure_future(self._await_exit())

    async def _await_exit(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            data = await loop.sock_recv(self._chan, _MESSAGE)
        except OSError:
            data = b""
        # No word from the zygote means it died, and with it (PDEATHSIG) this agent.
        self._end(int(json.loads(data).get("exit", -signal.SIGKILL)) if data else -signal.SIGKILL)

    def _end(self, code: int) -> None:
        self.returncode = code
        self._chan.close()
        if not self._ended.done():
            self._ended.set_result(code)

    async def wait(self) -> int:
        return int(await asyncio.shield(self._ended))


class WarmPool:
    """The driver's side of one zygote: start it, ask it for agents, stop it."""

    def __init__(self, proc: subprocess.Popen[bytes], control: socket.socket, env: dict[str, str]) -> None:
        self.proc = proc
        self.control = control
        self.start_env = _start_only(env)
        self.lost = ""  # why the zygote can no longer be used

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path, label: str) -> WarmPool:
        """Start the zygote with ``env`` minus the API keys; raises OSError when it cannot serve. ``label``
        (the batch's checkouts folder) goes on its command line, which its forks share: ``ps`` names the
        batch an agent belongs to."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        start_env = {k: v for k, v in env.items() if k not in WITHHELD}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "kimicode.batch.zygote", str(theirs.fileno()), label],
                pass_fds=(theirs.fileno(),),
                env=start_env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # a failure to start is one line from the driver (note), not a traceback
                start_new_session=True,  # a Ctrl-C at the terminal is the driver's to handle
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        data = await asyncio.get_running_loop().sock_recv(ours, _MESSAGE)
        if not data or "ready" not in json.loads(data):
            ours.close()
            proc.kill()
            proc.wait()
            raise OSError("the warm process did not start")
        return cls(proc, ours, start_env)

    def unfit(self, env: dict[str, str]) -> str:
        """Why a task with ``env`` cannot be a fork of this zygote, or ""."""
        if self.lost:
            return self.lost
        if _start_only(env) != self.start_env:
            return "the task's PYTHON*/LD_* environment differs from the warm process's"
        return ""

    async def spawn(self, args: list[str], cwd: Path, env: dict[str, str], stdin: bool) -> ForkedAgent:
        """Fork ``kimicode ARGS`` in ``cwd`` with ``env``: pipes for stdout and stderr, stdin if asked."""
        loop = asyncio.get_running_loop()
        chan, chan_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        in_r, in_w = os.pipe() if stdin else (os.open(os.devnull, os.O_RDONLY), -1)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        request = json.dumps({"argv": args, "cwd": str(cwd), "env": env}).encode()
        try:
            await self._send(request, [chan_child.fileno(), in_r, out_w, err_w])
        except OSError:
            for fd in (in_w, out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            chan.close()
            raise
        finally:
            chan_child.close()
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        chan.setblocking(False)
        try:
            first = json.loads(await loop.sock_recv(chan, _MESSAGE) or b"{}")
            if "pid" not in first and "exit" not in first:
                self.lost = "the warm process " + (f"could not fork: {first['error']}" if "error" in first else "died")
                raise OSError(self.lost)
        except BaseException:
            chan.close()
            for fd in (in_w, out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            raise
        agent = ForkedAgent(int(first.get("pid", 0)), chan, first)
        agent.stdout = await _reader(loop, out_r)
        agent.stderr = await _reader(loop, err_r)
        if in_w >= 0:
            agent.stdin = await _writer(loop, in_w)
        return agent

    async def _send(self, request: bytes, fds: list[int]) -> None:
        """One message with its descriptors; concurrent senders never interleave on a SEQPACKET socket."""
        loop = asyncio.get_running_loop()
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _pack(fds))]
        while True:
            try:
                self.control.sendmsg([request], ancillary)
                return
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(self.control, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self.control)
            except OSError as exc:
                self.lost = f"the warm process is gone ({exc.strerror or exc})"
                raise OSError(self.lost) from exc

    def close(self) -> None:
        """End the zygote (an end of file on its socket) and wait for it; its tasks have ended by now."""
        self.control.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pack(fds: list[int]) -> bytes:
    import array

    return array.array("i", fds).tobytes()


async def _reader(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0))
    return reader


async def _writer(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamWriter:
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", 0))
    return asyncio.StreamWriter(transport, protocol, None, loop)


def note(text: str) -> None:
    """Say once per reason, on the driver's stderr, why a task's agent is a fresh process."""
    if text not in _noted:
        _noted.add(text)
        with contextlib.suppress(OSError):
            print(f"kimicode batch: starting fresh agent processes: {text}", file=sys.stderr)


_noted: set[str] = set()
