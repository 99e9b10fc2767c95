"""Running a command's process group: reading its merged output bounded in memory, killing everything it
started, and naming how it ended. Shared by ``bash`` and the background tasks, below both.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Protocol

from kimicode.tools.result import MAX_OUTPUT_CHARS

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


class CommandProcess(Protocol):
    """A running command as bash and the background tasks handle it: an asyncio process, or a command in a
    session sandbox (security/sandbox_session.py). ``pid`` names the process group that a kill ends."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


class BoundedOutput:
    """Keeps the first ``head_limit`` and the last ``tail_limit`` bytes of a stream of any length."""

    def __init__(self, head_limit: int = HEAD_BYTES, tail_limit: int = TAIL_BYTES) -> None:
        self.head_limit = head_limit
        self.tail_limit = tail_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        # Set when the command moved to the background: its output goes there (the task's log) instead.
        self.sink: Callable[[bytes], None] | None = None

    def feed(self, chunk: bytes) -> None:
        if self.sink is not None:
            self.sink(chunk)
            return
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


def kill_group(pgid: int) -> None:
    """SIGKILL every process in the group, grandchildren included."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


class PipeReading(asyncio.Future[None]):
    """Reads a pipe to its end into ``output`` from the event loop's readiness callbacks: no task, stream
    or transport per command (each of those costs wake-ups). Done at end of file, failed with the read's
    OSError; cancelled, it stops at once. Either way ``read_fd`` is closed by the time it is done."""

    def __init__(self, read_fd: int, output: BoundedOutput) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(loop=loop)
        self._fd = read_fd
        self._output = output
        try:
            os.set_blocking(read_fd, False)
            loop.add_reader(read_fd, self._ready)
        except BaseException:
            os.close(read_fd)
            raise

    def _ready(self) -> None:
        # One chunk per wake-up, as asyncio's pipe transport reads: a command that writes without end
        # must not keep the loop from everything else.
        try:
            chunk = os.read(self._fd, READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._stop()
            self.set_exception(exc)
            return
        if not chunk:
            self._stop()
            self.set_result(None)
            return
        try:
            self._output.feed(chunk)
        except Exception as exc:  # noqa: BLE001 - a moved command's log that cannot be written (disk full):
            # the reading fails with it, as a read error does, rather than in every later callback
            self._stop()
            self.set_exception(exc)

    def _stop(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            self.get_loop().remove_reader(fd)
            os.close(fd)

    def cancel(self, msg: object = None) -> bool:
        self._stop()
        return super().cancel(msg)


async def pump(read_fd: int, output: BoundedOutput) -> None:
    """Read the pipe to its end; closes ``read_fd`` (cancelled too)."""
    reading = PipeReading(read_fd, output)
    try:
        await reading
    finally:
        reading.cancel()  # cancelled while waiting: stop reading (nothing happens once it is done)


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
