"""Starting one session sandbox (sandbox_session.py): bubblewrap with the supervisor as its PID 1.

In two parts, so that a caller can do other work while the sandbox starts: ``launch`` starts bubblewrap
without waiting for it, ``ready`` hands the supervisor its text and waits until it says it is ready. A
sandbox launched and not yet ready is in ``STARTING``, so that the end of the session ends it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

from kimicode.security.bwrap_argv import BwrapSpec, bwrap_argv
from kimicode.security.described import Key
from kimicode.security.supervisor import HEADER, READY

START_TIMEOUT_S = 10.0
_CODE: bytes | None = None
# What the sandbox's python runs: the supervisor, compiled here and read from the channel (a short command
# line in ``ps``, no file of kimicode's read inside the sandbox, and no compiling there: marshal's format
# is that of this very interpreter, which the sandbox runs).
BOOTSTRAP = (
    "# kimicode-supervisor\nimport os, marshal\nsize = int.from_bytes(os.read(0, 4), 'big')\ncode = b''\n"
    "while len(code) < size:\n    part = os.read(0, size - len(code))\n    if not part: raise SystemExit(3)\n"
    "    code += part\nexec(marshal.loads(code))\n"
)


def _code() -> bytes:
    """The supervisor, compiled once: the sandbox runs this copy, not a file a command could rewrite."""
    global _CODE
    if _CODE is None:
        path = Path(__file__).with_name("supervisor.py")
        _CODE = marshal.dumps(compile(path.read_text(encoding="utf-8"), "kimicode-supervisor", "exec"))
    return _CODE


class Instance:
    """One running sandbox: the outer bubblewrap (its own process group) and the supervisor's channel."""

    def __init__(self, key: Key, popen: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.key = key
        self.popen = popen
        self.channel = channel
        self.broken = False
        self._readable = select.poll()
        self._readable.register(channel.fileno(), select.POLLIN)

    @property
    def alive(self) -> bool:
        if self.broken or self.popen.poll() is not None:
            return False
        # The supervisor gone, bubblewrap not yet: the channel is at its end, so readable (between commands
        # the supervisor sends nothing else); a poll, not a peek that raises for the usual answer.
        return not self._readable.poll(0)

    def kill(self) -> None:
        """Send the sandbox SIGKILL without waiting for it to end (``close`` waits): sandboxes killed one
        after the other this way end at the same time, and one killed early ends while other work goes on."""
        self.broken = True
        if self.popen.poll() is None:  # (not yet reaped: the pid is still bubblewrap's, not reused)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def close(self) -> None:
        """End the sandbox and everything in it (the supervisor dies with bubblewrap: --die-with-parent)."""
        self.kill()
        self.channel.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=START_TIMEOUT_S)


STARTING: set[Instance] = set()  # bubblewrap running, supervisor not yet ready


def launch(spec: BwrapSpec, key: Key) -> Instance | None:
    """Bubblewrap started for a session sandbox for ``key`` (not waited for); None where it cannot start."""
    roots = [str(p) for p in spec.private_dirs] + ([str(spec.runtime_dir)] if spec.runtime_dir else []) + ["/dev"]
    argv = [*bwrap_argv(spec), "--as-pid-1", "--", sys.executable, "-I", "-S", "-c", BOOTSTRAP, *roots]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        popen = subprocess.Popen(
            argv, stdin=theirs.fileno(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
            start_new_session=True, env={"PATH": os.environ.get("PATH", os.defpath)},
        )
    except (OSError, ValueError):
        ours.close()
        return None
    finally:
        theirs.close()
    instance = Instance(key, popen, ours)
    STARTING.add(instance)
    return instance


async def ready(instance: Instance) -> Instance | None:
    """``instance`` once its supervisor is ready; None (and the sandbox ended) where it does not get so."""
    try:
        return await _ready(instance)
    finally:
        STARTING.discard(instance)


async def _ready(instance: Instance) -> Instance | None:
    ours = instance.channel
    code = _code()
    try:
        ours.sendall(HEADER.pack(len(code)) + code)  # (before the first request: the buffer has room)
    except OSError:
        await asyncio.to_thread(instance.close)
        return None
    ours.setblocking(False)
    loop = asyncio.get_running_loop()
    data = b""
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while len(data) < len(READY):
                chunk = await loop.sock_recv(ours, len(READY) - len(data))
                if not chunk:
                    break
                data += chunk
    except (OSError, TimeoutError):
        pass
    except BaseException:  # cancelled while it starts
        instance.close()
        raise
    if data != READY:
        await asyncio.to_thread(instance.close)
        return None
    return instance
