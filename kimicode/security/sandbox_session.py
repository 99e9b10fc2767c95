"""One bubblewrap sandbox for many commands: started once, reused while nothing about it has changed.

Starting bubblewrap (namespaces, a dozen binds) costs several milliseconds per command. Instead a sandbox
is started once, with supervisor.py as its PID 1, and each command is a request to it over a socket pair
only kimicode and the supervisor hold (see supervisor.py for what it does per command: its own session
and process group; afterwards every other process of the sandbox killed, the private folders put back as
they were, System V IPC cleared).

A sandbox is reused only for a command whose sandbox would be exactly the same: the bubblewrap arguments
(``BwrapSpec``: stance, network, writable roots, protected and secret paths, cwd) and the identity (device,
inode) of every path bound in, so that a ``.git`` renamed and rebuilt on the host, a ``.env`` or a
credential file that appeared since, an added folder or an escalation all get a fresh sandbox. (The key
itself is worked out again only when something it depends on changed: described.py.) One sandbox
runs one command at a time: commands at the same time get sandboxes of their own. The first command of a
kind runs in a bubblewrap of its own, as does every command beyond MAX_LIVE sandboxes, so a lone command
never waits for a session sandbox to start; one starts meanwhile, ahead, for the next command of that kind
(which waits for it if it is not ready yet), and is closed unused at exit if none comes.

A command that runs into its timeout, is cancelled, or is moved to the background takes its whole sandbox
with it (killed with the command, never reused). A supervisor that is gone (it cannot be killed from
inside; the OOM killer can) is replaced once, transparently, when the request cannot be delivered.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.security.bwrap_argv import BwrapSpec
from kimicode.security.described import Key, describe
from kimicode.security.sandbox_launch import STARTING, Instance, launch, ready
from kimicode.security.sandbox_request import request_body, send
from kimicode.security.supervisor import STATUS, VERDICT

if TYPE_CHECKING:
    from kimicode.security.sandbox import Sandbox

# Session sandboxes alive at once per Sandbox (in use or idle, ~12 MB each): more commands at the same time
# (a wide swarm) get a bubblewrap each, as before, rather than a sandbox started and dropped per command.
MAX_LIVE = 8
DISABLE_VARIABLE = "KIMICODE_SANDBOX_PER_COMMAND"  # "1": a new bubblewrap per command, as before


class SandboxedCommand:
    """A command running in a session sandbox, as bash.py and the background tasks see a process: ``pid``
    is the sandbox's process group (killing it ends the sandbox and the command), ``wait`` its exit code."""

    def __init__(self, instance: Instance, pool: Pool) -> None:
        self.instance = instance
        self.pool = pool
        self.pid = instance.popen.pid
        self.returncode: int | None = None
        self.detached = False  # moved to the background: the task owns the sandbox, which ends with it
        # Its sandbox was sent SIGKILL (timeout, interrupt): never reused, even if the command's reply came
        # first (it ended just then), since the sandbox may still look alive while it dies.
        self.killed = False
        # The reply is read by a callback of the loop's own, not a task: the command's end reaches whoever
        # awaits ``ended`` in the loop turn that reads it (a task and asyncio.shield each added turns).
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[int] = self._loop.create_future()
        self._data = b""
        self._fd = instance.channel.fileno()
        self._reading = True
        self._ending: asyncio.Task[None] | None = None
        self.on_end: Callable[[], object] | None = None  # called as ``ended`` gets its result, in that turn
        self._loop.add_reader(self._fd, self._readable)

    @property
    def ended(self) -> asyncio.Future[int]:
        """Done with the exit code when the command ended; for waiting on only (``finish`` decides what
        happens to a command not ended: a caller that cancelled this would leave its sandbox unended)."""
        return self._done

    def _readable(self) -> None:
        try:
            chunk = self.instance.channel.recv(STATUS.size - len(self._data))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        self._data += chunk
        if chunk and len(self._data) < STATUS.size:
            return
        self._stop_reading()  # (the sandbox's verdict that follows is read before its next command)
        if len(self._data) == STATUS.size and not self.detached:
            (self.returncode,) = STATUS.unpack(self._data)
            self._set_done()
        else:  # (ending the sandbox waits for bubblewrap: in a thread, from a task)
            self._ending = asyncio.ensure_future(self._end())

    async def _end(self) -> None:
        if len(self._data) == STATUS.size:  # a command moved to the background: its sandbox ends with it
            (self.returncode,) = STATUS.unpack(self._data)
            await asyncio.to_thread(self.instance.close)
        else:  # the sandbox was killed (timeout, cancel, stop) or its supervisor died
            await asyncio.to_thread(self.instance.close)
            self.returncode = self.instance.popen.returncode if self.instance.popen.returncode else -signal.SIGKILL
        self._set_done()

    def _set_done(self) -> None:
        if not self._done.done():
            assert self.returncode is not None
            self._done.set_result(self.returncode)
            if self.on_end is not None:
                self.on_end()

    def _stop_reading(self) -> None:
        if self._reading:  # (before the channel is closed: the loop must not watch a closed descriptor)
            self._reading = False
            self._loop.remove_reader(self._fd)

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    def finish(self) -> None:
        """The caller is done with the command: its sandbox serves the next one if the command ended on
        its own, else it ends (killed, cancelled: killed already; moved: when the command ends)."""
        self.pool.busy -= 1
        if not self._done.done():
            if self.detached:
                return
            self._stop_reading()
            self._done.cancel()
            if self._ending is not None:
                self._ending.cancel()
        elif not (self._done.cancelled() or self.detached or self.killed):
            # (neither its verdict nor its life is checked here: Pool.take_started does, right before the
            # next command would use it, while this one's result goes on to the model meanwhile)
            self.pool.put(self.instance, judged=False)
            return
        self.instance.close()


class Pool:
    """The idle sandboxes of one ``Sandbox``, by key."""

    def __init__(self) -> None:
        self.idle: list[Instance] = []
        # Idle instances whose verdict on their last command is not read yet (it may still be on its way).
        self.unjudged: set[Instance] = set()
        self.busy = 0  # instances running a command
        self.starting = 0  # instances being started (for a command, or ahead of commands)
        # Keys a command was run for: the first command of a kind runs in a bubblewrap of its own while a
        # session sandbox starts ahead for the next (``ahead``, by key, until it is idle or failed).
        self.seen: set[Key] = set()
        self.ahead: dict[Key, asyncio.Task[None]] = {}
        self.failed = False  # a session sandbox would not start here: bubblewrap per command from then on
        _POOLS.append(self)

    def take(self, key: Key) -> Instance | None:
        """An idle sandbox for ``key``, its verdict perhaps not read yet (``take_started`` reads it)."""
        for instance in list(self.idle):
            if instance in self.unjudged:  # (a verdict unread makes the channel readable: no life check)
                if instance.key != key:
                    continue
            elif not instance.alive:
                self._drop(instance)
                continue
            elif instance.key != key:
                continue
            self.idle.remove(instance)
            return instance
        return None

    async def take_started(self, key: Key) -> Instance | None:
        """An idle sandbox for ``key``, once the one started ahead for it (if any) is up or failed, and
        once it has said it is put back as it was (never a command into a sandbox not yet put back)."""
        task = self.ahead.get(key)
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait({task})  # (a waiter cancelled leaves the start to finish for another)
        elif task is not None and task.get_loop().is_closed():  # its loop ended first: it never will
            self._ahead_done(key, task)
        while (instance := self.take(key)) is not None:
            if instance in self.unjudged:
                self.unjudged.discard(instance)
                if not await _intact(instance) or not instance.alive:
                    instance.close()  # retired (or gone): the next command gets a fresh sandbox
                    continue
            return instance
        return None

    async def settle(self) -> None:
        """Read the verdict of every idle sandbox that has one coming (retired ones end): once done, no
        supervisor is still putting its sandbox back (benchmarks count that work with its command)."""
        for instance in list(self.unjudged):
            self.unjudged.discard(instance)
            if not await _intact(instance) and instance in self.idle:
                self._drop(instance)

    def put(self, instance: Instance, *, judged: bool = True) -> None:
        self.idle.append(instance)
        if not judged:
            self.unjudged.add(instance)
        while len(self.idle) > MAX_LIVE:
            self._drop(self.idle[0])

    def _drop(self, instance: Instance) -> None:
        self.idle.remove(instance)
        self.unjudged.discard(instance)
        instance.close()

    def room(self, spec: BwrapSpec, key: Key, then: Callable[[], object]) -> bool:
        """Whether a new session sandbox may start for ``key`` now: not for the first command of its kind,
        for which one starts ahead instead (without waiting; ``then`` runs once it is ready), and only
        under MAX_LIVE."""
        if key not in self.seen:
            if len(self.seen) > 64:
                self.seen.clear()
            self.seen.add(key)
            if not self.failed and self.live() < MAX_LIVE and key not in self.ahead:
                self.starting += 1  # (counted before the task runs: a start at the same time sees it)
                task = asyncio.ensure_future(self._ahead(spec, key, then))
                self.ahead[key] = task
                task.add_done_callback(lambda _: self._ahead_done(key, task))
            return False
        return not self.failed and self.live() < MAX_LIVE

    async def _ahead(self, spec: BwrapSpec, key: Key, then: Callable[[], object]) -> None:
        instance = launch(spec, key)
        if instance is not None:
            instance = await ready(instance)
        self.failed = self.failed or instance is None
        if instance is not None:
            self.put(instance)
            then()

    def _ahead_done(self, key: Key, task: asyncio.Task[None]) -> None:
        self.starting -= 1  # (also for a task cancelled before it ran: no finally of its own would)
        if self.ahead.get(key) is task:
            del self.ahead[key]

    def live(self) -> int:
        return self.busy + len(self.idle) + self.starting

    async def start(self, spec: BwrapSpec, key: Key) -> Instance | None:
        """A new session sandbox for ``key``, counted as live while it starts."""
        self.starting += 1
        try:
            instance = launch(spec, key)
            return None if instance is None else await ready(instance)
        finally:
            self.starting -= 1

    def close(self) -> None:
        while self.idle:
            self._drop(self.idle[-1])


_POOLS: list[Pool] = []


async def _intact(instance: Instance) -> bool:
    """Read the verdict on the sandbox's last command: True when it is put back as it was; False when it
    must retire (or its supervisor is gone). Waits while the supervisor is still putting it back."""
    data = b""
    try:
        while len(data) < VERDICT.size:
            try:  # (usually there long since: the model answered meanwhile)
                chunk = instance.channel.recv(VERDICT.size - len(data))
            except BlockingIOError:
                chunk = await asyncio.get_running_loop().sock_recv(instance.channel, VERDICT.size - len(data))
            if not chunk:
                return False
            data += chunk
    except OSError:
        return False
    except BaseException:  # cancelled while waiting: its verdict half read, the sandbox is never reused
        instance.close()
        raise
    return VERDICT.unpack(data) == (0,)


def kill_all() -> None:
    """Send every session sandbox idle or starting SIGKILL, not waiting for them: at the end of the session,
    first thing, so that they end while the rest of it is closed (``close_all`` then reaps them)."""
    for instance in [*STARTING, *(instance for pool in _POOLS for instance in pool.idle)]:
        instance.kill()


def close_all() -> None:
    """End every session sandbox idle or starting (at the end of the session; a start ahead may not have
    been waited for; bubblewrap also dies with kimicode): all are killed, then each waited for."""
    kill_all()
    for instance in list(STARTING):
        instance.close()
    for pool in _POOLS:
        pool.close()


atexit.register(close_all)


def _pool(sandbox: Sandbox) -> Pool:
    if sandbox.sessions is None:
        sandbox.sessions = Pool()
    pool: Pool = sandbox.sessions
    return pool


def enabled(sandbox: Sandbox) -> bool:
    return sandbox.active and sandbox.backend == "bwrap" and os.environ.get(DISABLE_VARIABLE, "") != "1"


def _describe_ahead(sandbox: Sandbox, cwd: Path, allow_network: bool) -> None:
    """The description a second command of a kind would work out (about 10 ms: it starts watching what
    the description depends on, described.py), worked out once its sandbox started ahead is ready, when
    the model is most likely still answering; the next command then works it out again under watch
    (about a millisecond) and the ones after reuse it. (Not while the sandbox starts: the first command
    would wait for it.)"""
    with contextlib.suppress(OSError, ValueError):
        describe(sandbox, cwd, allow_network=allow_network)


def _hand_over(sandbox: Sandbox, kind: tuple[Path, bool], spec: BwrapSpec) -> None:
    """The description just worked out, for the bubblewrap of its own the caller wraps the command in
    next, in this same turn of the loop (the first command of a kind: about a millisecond saved)."""
    handed = sandbox.handed = (kind, spec)

    def drop() -> None:
        if sandbox.handed is handed:
            sandbox.handed = None

    asyncio.get_running_loop().call_soon(drop)


async def start_command(
    sandbox: Sandbox, argv: list[str], cwd: Path, env: Mapping[str, str], *, allow_network: bool = False
) -> tuple[SandboxedCommand, int] | None:
    """Run ``argv`` in a session sandbox: (the command, the reading end of its merged output); None when
    no session sandbox can serve it (the caller then wraps the command in a bubblewrap of its own).

    Raises ValueError for a NUL byte in the command or its environment, as starting a process would.
    """
    if not enabled(sandbox):
        return None
    key = describe(sandbox, cwd, allow_network=allow_network)
    spec = key[0]
    body = request_body(spec, argv, env)
    pool = _pool(sandbox)
    for _ in range(2):  # a supervisor found gone is replaced once
        instance = await pool.take_started(key)
        if instance is None and pool.room(spec, key, lambda: _describe_ahead(sandbox, cwd, allow_network)):
            instance = await pool.start(spec, key)
            pool.failed = instance is None
        if instance is None:
            _hand_over(sandbox, (cwd, allow_network), spec)
            return None
        read_fd = write_fd = -1
        try:
            read_fd, write_fd = os.pipe()
            sent = await send(instance, body, write_fd)
        except BaseException:  # cancelled, or out of descriptors: the sandbox is in no state to reuse
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.close(fd)
            instance.close()
            raise
        os.close(write_fd)
        if sent:
            pool.busy += 1
            return SandboxedCommand(instance, pool), read_fd
        os.close(read_fd)
        await asyncio.to_thread(instance.close)
    return None


async def prewarm(sandbox: Sandbox, cwd: Path, count: int, slots: asyncio.Semaphore | None = None) -> int:
    """Start up to ``count`` session sandboxes for commands in ``cwd`` before they come (a swarm whose
    sub-agents will soon run many commands at once), one after another, left idle in the pool; returns how
    many started. A command uses one only if its sandbox would be exactly the same then (the key above).
    ``slots``: what the commands to come hold while they run; each start holds one too, so starts ahead and
    commands together never make more than MAX_LIVE sandboxes."""
    if not enabled(sandbox) or count <= 0:
        return 0
    pool = _pool(sandbox)
    key = describe(sandbox, cwd)
    spec = key[0]
    pool.seen.add(key)  # the commands to come are not the first of their kind
    started = 0
    while started < count and not pool.failed and pool.live() < MAX_LIVE:
        async with slots if slots is not None else contextlib.nullcontext():
            if pool.failed or pool.live() >= MAX_LIVE:
                break
            instance = await pool.start(spec, key)
            if instance is None:
                pool.failed = True
                break
            pool.put(instance)  # idle before the slot is free: the command that takes the slot finds it
        started += 1
    return started
