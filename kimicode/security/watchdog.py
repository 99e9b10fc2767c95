"""What a session's commands started ends even when kimicode cannot end it (``kill -9``, the OOM killer, a crash).

On a normal exit kimicode kills its commands' process groups and the orphans it adopted (``orphans.py``).
Killed outright it runs no code at all, and an unsandboxed command's processes would live on (a sandboxed
one ends with it: bubblewrap's ``--die-with-parent``). So the first command of a session starts this
watchdog: a small process of its own session (no terminal signal reaches it) that reads a pipe only
kimicode holds the writing end of. The pipe closes when kimicode ends, however it ends; the watchdog then
ends every process that carries the session's mark, a random value in a variable every command is started
with and every descendant inherits (``/proc/<pid>/environ`` is what a process was started with), also one
that left its process group and parent. SIGTERM first, SIGKILL a second later.

Not covered: a process started with an emptied environment (``env -i``), one of another user, other
systems than Linux.

Started as a shell that waits on the pipe (orphans.py: at a normal end kimicode itself finds nothing left
and ends it there); once the pipe closes that shell becomes ``python -I -S watchdog.py NAME=VALUE``. It
imports nothing of kimicode, and only modules built into the interpreter (``posix``, ``_signal``,
``time``): ``os`` and ``signal`` would double its start (``signal`` loads ``enum``). kimicode imports
``marked`` for its own look at the end.
"""

import _signal
import posix
import sys
import time

GRACE_S = 1.0  # between SIGTERM and SIGKILL


def marked(mark: bytes) -> list[int]:
    """Processes whose environment holds ``mark`` (a whole ``NAME=VALUE`` entry), this one aside."""
    own = posix.getpid()
    entry = b"\0" + mark + b"\0"  # (entries are NUL-separated: a whole one sits between two NULs)
    found = []
    # open/read rather than a file object: the scan runs while kimicode's exit waits for it, and a
    # buffered file costs five more system calls per process on the machine.
    for name in posix.listdir("/proc"):
        if not name.isdigit() or int(name) == own:
            continue
        try:
            fd = posix.open(f"/proc/{name}/environ", posix.O_RDONLY)
        except OSError:  # gone, or not ours to read
            continue
        try:
            data = b"\0"
            while chunk := posix.read(fd, 65536):
                data += chunk
        except OSError:
            continue
        finally:
            posix.close(fd)
        if entry in data + b"\0":
            found.append(int(name))
    return found


def end_marked(mark: bytes) -> None:
    for sig in (_signal.SIGTERM, _signal.SIGKILL):
        pids = marked(mark)
        for pid in pids:
            try:
                posix.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + GRACE_S
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = marked(mark)  # (a killed process reads as empty: a zombie has no environment left)
        if not pids:
            return


def main() -> None:
    mark = sys.argv[1].encode()
    for sig in (_signal.SIGINT, _signal.SIGHUP, _signal.SIGTERM):
        _signal.signal(sig, _signal.SIG_IGN)  # only the pipe's end ends it
    while True:
        try:
            if not posix.read(0, 512):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    end_marked(mark)
    # kimicode's end may wait for this exit: nothing is buffered (it writes nothing), so the interpreter's
    # own teardown, three times what the rest takes here, is skipped.
    posix._exit(0)


if __name__ == "__main__":
    main()
