"""Background tasks: commands that keep running while the conversation goes on (dev servers, watchers).

A task is started by ``bash`` with ``background: true``, or is a foreground command moved here (it reached
its timeout, or the user pressed Ctrl-B). Its output goes to a log file in the session's folder; the model
reads what is new with ``task_output`` and ends it with ``task_stop``. Every task is its own process group
(sandboxed ones also their own PID namespace), so stopping one ends everything it started, and ``close``
ends them all when the session ends. The manager reports every change (started, a new last line, listening
on a port, ended) to its subscribers; the agent loop turns those into ``TaskUpdate`` events.

A sandboxed task runs under the port bridge (kimicode.security.portbridge): the ports its processes listen
on inside the sandbox are offered on the host's 127.0.0.1, so ``screenshot`` can open the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from kimicode.security.portbridge import PortBridge, listening_ports, process_tree
from kimicode.tools.process import (
    DRAIN_GRACE_S,
    KILL_GRACE_S,
    BoundedOutput,
    CommandProcess,
    exit_line,
    kill_group,
    pump,
)
from kimicode.tools.result import MAX_OUTPUT_CHARS, ToolError

MAX_RUNNING = 16
# Seconds between looks at a task's listening ports: often while a server is starting, then calmly.
FAST_POLL_S, SLOW_POLL_S, FAST_POLL_FOR_S = 0.25, 1.0, 15.0
# A new task's start result waits up to this long for it to listen on a port, end, or fail.
SETTLE_S = 1.0
# "Printed a line" updates go out at most this often per task.
LINE_UPDATE_S = 1.0
STOP_GRACE_S = 2.0
MAX_WAIT_S = 600
TAIL_KEEP = 4096
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

Listener = Callable[["BackgroundTask"], None]


class BackgroundTask:
    def __init__(
        self, task_id: str, command: str, proc: CommandProcess, log_path: Path, *,
        sandboxed: bool, bridge: PortBridge | None, moved: str = "",
    ) -> None:
        self.id = task_id
        self.command = command
        self.proc = proc
        self.log_path = log_path
        self.sandboxed = sandboxed
        self.bridge = bridge
        self.moved = moved  # "", "timeout" or "user": how it came to the background
        self.state = "running"  # running | done | failed | stopped
        self.exit_code: int | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self.ports: list[int] = []
        self.read_offset = 0  # bytes of the log that the model has been shown
        self.stop_requested = False
        self._log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = 0
        self._tail = b""
        self._done = asyncio.Event()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def runtime(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def last_line(self) -> str:
        text = _ANSI.sub("", self._tail.decode("utf-8", "replace")).replace("\r", "\n")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""

    def write(self, chunk: bytes) -> None:
        if self._log < 0:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._log, view) :]
        self._size += len(chunk)
        self._tail = (self._tail + chunk)[-TAIL_KEEP:]

    def finish(self, returncode: int | None) -> None:
        self.exit_code = None if returncode is None else (128 - returncode if returncode < 0 else returncode)
        if self.stop_requested:
            self.state = "stopped"
        else:
            self.state = "done" if returncode == 0 else "failed"
        self.ended = time.monotonic()
        if self._log >= 0:
            os.close(self._log)
            self._log = -1
        if self.bridge is not None:
            self.bridge.close()
        self._done.set()

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the task to end; True when it has."""
        if not self._done.is_set() and seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._done.wait()
        return self._done.is_set()

    def unread(self) -> str:
        """What the log holds beyond what the model has seen, head and tail kept when it is long."""
        start, end = self.read_offset, self._size
        self.read_offset = end
        if end <= start:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                if end - start <= MAX_OUTPUT_CHARS:
                    return f.read(end - start).decode("utf-8", "replace")
                output = BoundedOutput()
                while chunk := f.read(min(64 * 1024, end - f.tell())):
                    output.feed(chunk)
                return output.render()
        except OSError as exc:
            return f"[could not read the log {self.log_path}: {exc.strerror or exc}]\n"

    def status(self) -> str:
        """One line: state, runtime, what it listens on, where its log is."""
        seconds = f"{self.runtime:.0f}s"
        if self.state == "running":
            head = f"task {self.id} running for {seconds}"
        elif self.state == "stopped":
            head = f"task {self.id} stopped after {seconds}"
        else:
            head = f"task {self.id} ended after {seconds}, {exit_line(self.exit_code).strip('[]')}"
        parts = [head]
        if self.ports:
            where = ", ".join(f"127.0.0.1:{port}" for port in self.ports)
            parts.append(f"listening on {where}" + (" (bridged from the sandbox)" if self.sandboxed else ""))
        if self.bridge is not None and self.bridge.unavailable:
            parts += [f"port {port} not reachable from this machine: {why}" for port, why in self.bridge.unavailable.items()]
        parts.append(f"log: {self.log_path}")
        return "[" + "; ".join(parts) + "]"


class TaskManager:
    """The background tasks of one session."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir  # the session's folder for task logs; a private temp folder until bound
        self.tasks: dict[str, BackgroundTask] = {}
        self.closed = False
        self._ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._detach: set[asyncio.Future[None]] = set()
        self._watchers: set[asyncio.Task[None]] = set()

    # -- who hears about changes ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, task: BackgroundTask) -> None:
        for listener in list(self._listeners):
            listener(task)

    # -- the tasks -----------------------------------------------------------------------------------

    def running(self) -> list[BackgroundTask]:
        return [task for task in self.tasks.values() if task.running]

    def refusal(self) -> str:
        """Why no further task can start now ("" when one can)."""
        if self.closed:
            return "the session is ending"
        if len(self.running()) >= MAX_RUNNING:
            return f"{MAX_RUNNING} background tasks are running already; stop one with task_stop first"
        return ""

    def get(self, task_id: str) -> BackgroundTask:
        key = str(task_id).strip().removeprefix("task").strip()
        task = self.tasks.get(key)
        if task is None:
            known = ", ".join(self.tasks) or "none yet"
            raise ToolError(f"no background task {task_id!r} (tasks of this session: {known})")
        return task

    def _log_path(self, task_id: str) -> Path:
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="kimicode-tasks-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"task-{task_id}.log"

    def _new(self, proc: CommandProcess, command: str, sandboxed: bool, bridge: PortBridge | None, moved: str) -> BackgroundTask:
        task_id = str(next(self._ids))
        task = BackgroundTask(task_id, command, proc, self._log_path(task_id), sandboxed=sandboxed, bridge=bridge, moved=moved)
        self.tasks[task_id] = task
        return task

    def launch(
        self, proc: CommandProcess, read_fd: int, command: str, *, sandboxed: bool, bridge_socket: Path | None
    ) -> BackgroundTask:
        """Take a command just started for the background (its output pipe is ``read_fd``)."""
        bridge = PortBridge(bridge_socket) if bridge_socket is not None else None
        task = self._new(proc, command, sandboxed, bridge, "")
        output = BoundedOutput()
        output.sink = task.write
        self._watch(task, asyncio.ensure_future(pump(read_fd, output)))
        return task

    def adopt(
        self, proc: CommandProcess, reader: asyncio.Future[None], output: BoundedOutput, command: str, *,
        sandboxed: bool, why: str, started: float | None = None,
    ) -> BackgroundTask:
        """Take over a foreground command that is still running (``why``: "timeout" or "user")."""
        task = self._new(proc, command, sandboxed, None, why)
        task.started = started or task.started
        shown = output.render().encode("utf-8")
        task.write(shown)
        task.read_offset = len(shown)  # the bash result showed this much already
        output.sink = task.write
        self._watch(task, reader)
        return task

    def _watch(self, task: BackgroundTask, reader: asyncio.Future[None]) -> None:
        watcher = asyncio.ensure_future(self._follow(task, reader))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        self._notify(task)

    async def _follow(self, task: BackgroundTask, reader: asyncio.Future[None]) -> None:
        waiter = asyncio.ensure_future(task.proc.wait())
        told_line, told_at = "", 0.0
        try:
            while True:
                fast = task.runtime < FAST_POLL_FOR_S
                done, _ = await asyncio.wait({waiter}, timeout=FAST_POLL_S if fast else SLOW_POLL_S)
                if done:
                    break
                changed = await self._look_at_ports(task)
                line = task.last_line
                if changed or (line != told_line and time.monotonic() - told_at >= LINE_UPDATE_S):
                    told_line, told_at = line, time.monotonic()
                    self._notify(task)
        finally:
            # What the command left in its group ends with it, as in the sandbox (its PID namespace).
            kill_group(task.pid)
            if not waiter.done():
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    async with asyncio.timeout(KILL_GRACE_S):
                        await waiter
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait({reader}, timeout=DRAIN_GRACE_S)
            if not reader.done():
                reader.cancel()
            task.finish(task.proc.returncode)
            self._notify(task)

    async def _look_at_ports(self, task: BackgroundTask) -> bool:
        ports = await asyncio.to_thread(lambda: listening_ports(process_tree(task.pid)))
        if task.bridge is not None:
            await task.bridge.offer(ports)
            ports = task.bridge.ports
        if ports != task.ports:
            task.ports = ports
            return True
        return False

    async def settle(self, task: BackgroundTask) -> None:
        """A moment for a new task to listen on a port, fail or end, so its start result can say so."""
        deadline = time.monotonic() + SETTLE_S
        while task.running and not task.ports and time.monotonic() < deadline:
            if await task.wait(FAST_POLL_S / 2):
                return
            await self._look_at_ports(task)

    async def stop(self, task_id: str) -> BackgroundTask:
        task = self.get(task_id)
        await self._stop(task)
        return task

    async def _stop(self, task: BackgroundTask) -> None:
        if not task.running:
            return
        task.stop_requested = True
        try:
            os.killpg(task.pid, signal.SIGTERM)  # a server may want to tidy up; a sandbox ends at once
        except (ProcessLookupError, PermissionError):
            pass
        if not await task.wait(STOP_GRACE_S):
            kill_group(task.pid)
            await task.wait(KILL_GRACE_S)

    async def close(self) -> None:
        """The session ends: every task ends with it."""
        self.closed = True
        await asyncio.gather(*(self._stop(task) for task in self.running()), return_exceptions=True)
        for watcher in list(self._watchers):
            watcher.cancel()

    # -- moving a foreground command here --------------------------------------------------------------

    @contextlib.contextmanager
    def foreground(self) -> Iterator[asyncio.Future[None]]:
        """Register a running foreground command; the future resolves when the user asks to move it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._detach.add(future)
        try:
            yield future
        finally:
            self._detach.discard(future)
            if not future.done():
                future.cancel()

    @property
    def has_foreground(self) -> bool:
        return any(not future.done() for future in self._detach)

    def detach_foreground(self) -> int:
        """Move every running foreground command to the background (Ctrl-B); returns how many."""
        moved = 0
        for future in list(self._detach):
            if not future.done():
                future.set_result(None)
                moved += 1
        return moved

