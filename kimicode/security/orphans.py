"""Processes the model's commands leave behind end with the session, sandbox or not.

A sandboxed command cannot leave anything behind (its PID namespace ends with it). An unsandboxed one
can: ``setsid server &`` or a double fork escapes the command's process group, and its parent exits, so
the kernel would hand the orphan to init. On Linux kimicode marks itself a child subreaper
(``PR_SET_CHILD_SUBREAPER``): such orphans become kimicode's children instead, and ``end_orphans`` kills
every child still alive when the session ends (MCP servers and browsers are closed before that).

Not covered: a process that escapes further (re-parented to a subreaper of its own, or started through
another service such as ``systemd-run``, ``at`` or a terminal multiplexer's server), and other systems
than Linux, where only the command's own process group is killed.
"""

from __future__ import annotations

import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
REAP_WAIT_S = 1.0


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
    return [child for child, (ppid, _) in process_table().items() if ppid == parent]


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
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
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
    killed = 0
    own_group = os.getpgrp()
    for _ in range(rounds):
        pids = children()
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
    return killed


def _reap(pids: list[int]) -> None:
    deadline = time.monotonic() + REAP_WAIT_S
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid  # not ours to wait for, or reaped elsewhere
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.01)
