"""Processes the model's commands leave behind end with the session, sandbox or not.

A sandboxed command cannot leave anything behind (its PID namespace ends with it). An unsandboxed one
can: ``setsid server &`` or a double fork escapes the command's process group, and its parent exits, so
the kernel would hand the orphan to init. On Linux kimicode marks itself a child subreaper
(``PR_SET_CHILD_SUBREAPER``): such orphans become kimicode's children instead, and ``end_orphans`` kills
every child still alive when the session ends (MCP servers and browsers are closed before that).

Killed outright (``kill -9``), kimicode runs no code: the watchdog (``watchdog.py``), started with the first
command, ends what the commands started then, by the mark every command's environment carries. Until then
it is a shell waiting on a pipe (a Python interpreter's start is over ten times the CPU, and the first
command's sandbox starts at the same time); it becomes the watchdog proper only once the pipe closes
without a word from kimicode. At a normal end kimicode looks for marked processes itself and, finding none
(the usual case: ``end_orphans`` ended them), just ends the waiting shell.

Not covered: a process that escapes further (re-parented to a subreaper of its own, or started through
another service such as ``systemd-run``, ``at`` or a terminal multiplexer's server), and other systems
than Linux, where only the command's own process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
REAP_WAIT_S = 1.0
MARK_VARIABLE = "KIMICODE_SESSION_MARK"

# The watchdog until the pipe closes: a shell that ignores the terminal's signals, reads the pipe to its
# end (nothing is ever written to it) and then becomes the watchdog ($1 -I -S watchdog.py NAME=VALUE).
WAITING_SHELL = "/bin/sh"
WAITING = 'trap "" INT HUP TERM; while read -r _; do :; done; exec "$1" -I -S "$2" "$3"'

_watchdog: int | None = None  # its pid
_watchdog_pipe: int | None = None  # the writing end: kimicode's alone (not inherited)
_mark: dict[str, str] = {}


def command_mark() -> dict[str, str]:
    """The variable every command of this process is started with; the watchdog is started on first use.

    Empty where no watchdog can run (not Linux, or it could not start): commands then end as before, with
    the session when it ends normally.
    """
    global _watchdog, _watchdog_pipe
    if _mark or not sys.platform.startswith("linux"):
        return _mark
    value = secrets.token_hex(8)
    script = str(Path(__file__).with_name("watchdog.py"))
    devnull = os.open(os.devnull, os.O_RDWR)
    read_end, write_end = os.pipe()  # (both not inherited: only the copy made stdin below is)
    try:
        _watchdog = os.posix_spawn(
            WAITING_SHELL,
            [WAITING_SHELL, "-c", WAITING, "kimicode-watchdog", sys.executable, script, f"{MARK_VARIABLE}={value}"],
            {"PATH": os.environ.get("PATH", os.defpath)},  # nothing else: no key sits in its environment
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_DUP2, devnull, 1),
                (os.POSIX_SPAWN_DUP2, devnull, 2),
                *((os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()),
            ],
            setsid=True,  # Ctrl-C and a closed terminal reach kimicode, not the watchdog
        )
    except OSError:
        os.close(write_end)
        return _mark
    finally:
        os.close(read_end)
        os.close(devnull)
    _watchdog_pipe = write_end
    _mark[MARK_VARIABLE] = value
    return _mark


def _inherited_fds() -> list[int]:
    """Descriptors above 2 that a child would inherit (ones kimicode itself inherited from its parent):
    the watchdog must not hold a pipe someone waits on to close."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return []
    inherited = []
    for fd in fds:
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    inherited.append(fd)
            except OSError:  # (the descriptor listdir itself used, closed by now)
                continue
    return inherited


def release_watchdog(wait_s: float = 0.2, meanwhile: Callable[[], None] | None = None) -> None:
    """The session is over: what is still marked (normally nothing) is ended, and the watchdog too.

    kimicode looks for marked processes itself (one read of each process's environment, ``watchdog.marked``)
    and, finding none, ends the watchdog while it still waits; else it closes the pipe and the watchdog ends
    them (SIGTERM, then SIGKILL). Waited for briefly, so that it is not left a zombie; one still ending
    processes is left to finish on its own. ``meanwhile`` runs while the watchdog ends.
    """
    global _watchdog, _watchdog_pipe
    if _watchdog_pipe is None or _watchdog is None:
        if meanwhile is not None:
            meanwhile()
        return
    from kimicode.security.watchdog import marked

    entry = "".join(f"{name}={value}" for name, value in _mark.items()).encode()
    if not marked(entry):  # (one look, as the watchdog's own: all the commands have ended by now)
        with contextlib.suppress(ProcessLookupError):
            os.kill(_watchdog, signal.SIGKILL)
    os.close(_watchdog_pipe)
    _watchdog_pipe = None
    _mark.clear()  # a later command starts another watchdog, with a mark of its own
    pid, _watchdog = _watchdog, None
    if meanwhile is not None:
        meanwhile()
    _reap([pid], wait_s)


def adopt_orphans() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children(pid: int | None = None) -> list[int]:
    """The live (or zombie) children of ``pid`` (default: this process), from /proc."""
    parent = os.getpid() if pid is None else pid
    listed = _listed_children(parent)
    if listed is not None:
        return listed
    return [child for child, (ppid, _) in process_table().items() if ppid == parent]


def _listed_children(parent: int) -> list[int] | None:
    """The children the kernel lists per thread of ``parent`` (``/proc/PID/task/TID/children``): a few
    reads instead of one per process on the machine (the watchdog, a child, makes the scan run at every
    end of a session). None where the kernel has no such list (built without CONFIG_PROC_CHILDREN)."""
    task_dir = f"/proc/{parent}/task"
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return None
    found: list[int] = []
    for tid in tids:
        try:
            fd = os.open(f"{task_dir}/{tid}/children", os.O_RDONLY)
        except FileNotFoundError:
            if not os.path.exists(f"{task_dir}/{tid}"):
                continue  # a thread that ended meanwhile
            return None
        except OSError:
            return None
        try:
            data = b""
            while chunk := os.read(fd, 65536):
                data += chunk
        except OSError:
            return None
        finally:
            os.close(fd)
        found.extend(int(pid) for pid in data.split())
    return sorted(set(found))


def process_table() -> dict[int, tuple[int, str]]:
    """Every process in /proc: pid -> (parent pid, state letter); {} where there is no /proc."""
    table: dict[int, tuple[int, str]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for name in entries:
        if not name.isdigit():
            continue
        # (os.open/os.read: a buffered file object per process made the scan several times slower)
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            stat = os.read(fd, 4096)  # (one line, well under a page)
        except OSError:
            continue
        finally:
            os.close(fd)
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split(None, 2)  # (state, parent pid, the rest)
        if len(fields) > 1:
            table[int(name)] = (int(fields[1]), fields[0].decode("ascii", "replace"))
    return table


def end_orphans(rounds: int = 5) -> int:
    """Kill every child of this process still running and reap them; returns how many were killed.

    Runs at the end of a session, when kimicode's own children (MCP servers, browsers) are already closed:
    whatever is left was started by a command. Killing a child may orphan its own children onto us, so
    this repeats a few rounds.
    """
    if not sys.platform.startswith("linux"):
        return 0
    sessions = sys.modules.get("kimicode.security.sandbox_session")
    if sessions is not None:
        sessions.close_all()  # the idle session sandboxes are kimicode's own, not orphans to count
    killed = 0
    own_group = os.getpgrp()
    watchdog = _watchdog
    for _ in range(rounds):
        pids = [pid for pid in children() if pid != watchdog] if _has_children() else []
        if not pids:
            break
        for pid in pids:
            try:
                group = os.getpgid(pid)
                if group != own_group:
                    os.killpg(group, signal.SIGKILL)  # the orphan's own group: its helpers too
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        _reap(pids)
    release_watchdog(meanwhile=_remove_placeholders)
    return killed


def _remove_placeholders() -> None:
    """No sandbox runs any more: the empty folders protected paths were mounted over can go now, while the
    watchdog checks, rather than one by one at exit (placeholders.py)."""
    placeholders = sys.modules.get("kimicode.security.placeholders")
    if placeholders is not None:
        placeholders.remove_all()


def _has_children() -> bool:
    """Whether this process has any child, live or zombie (an adopted orphan is one): when it has none,
    the kernel says so at once and the scan of every process in /proc is not needed."""
    try:
        # WNOWAIT: a zombie is looked at, not reaped (its owner, or _reap, waits for it).
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except OSError:  # (not expected: scan, as before)
        return True
    return True


def _reap(pids: list[int], wait_s: float = REAP_WAIT_S) -> None:
    """Wait (up to ``wait_s`` in all) for each of ``pids`` to end, and reap it: woken by its end (a pidfd)
    rather than by polling, so that an end of session waits no longer than its processes take to die."""
    deadline = time.monotonic() + wait_s
    for pid in pids:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                continue
        except ChildProcessError:
            continue  # not ours to wait for, or reaped elsewhere
        if not _wait_for_end(pid, deadline - time.monotonic()):
            continue  # still alive at the deadline: left as before
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _wait_for_end(pid: int, timeout_s: float) -> bool:
    """Whether ``pid`` ended within ``timeout_s``: a pidfd reads ready once it has (Linux 5.3 and later),
    else a poll every 10 ms as before."""
    if timeout_s <= 0:
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (OSError, AttributeError):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    return True
            except ChildProcessError:
                return True
            time.sleep(0.01)
        return False
    try:
        return bool(select.select([pidfd], [], [], timeout_s)[0])
    finally:
        os.close(pidfd)
