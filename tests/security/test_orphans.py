"""At the end of a session kimicode ends what a command left behind, also a process that escaped with
``setsid`` and dropped the mark the watchdog goes by (``env -i``): only the subreaper catches that one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux's")

ROOT = Path(__file__).resolve().parents[2]

# A stand-in for a session: kimicode's own calls, in a process of their own (the subreaper mark stays there).
SESSION = """
import os, subprocess, sys
from kimicode.security import orphans
assert orphans.adopt_orphans()
print(orphans.end_orphans(), flush=True)  # nothing left behind yet
started = subprocess.run(
    ["sh", "-c", "env -i setsid sleep 1000 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True
)
pid = int(started.stdout)
print(pid, flush=True)
with open(f"/proc/{pid}/stat", "rb") as f:  # its shell is gone: the orphan is ours now
    assert int(f.read().rsplit(b")", 1)[1].split()[1]) == os.getpid()
print(orphans.end_orphans(), flush=True)
try:
    os.kill(pid, 0)
    print("alive", flush=True)
except ProcessLookupError:
    print("gone", flush=True)
"""


def test_an_escaped_unmarked_orphan_ends_with_the_session() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", SESSION], capture_output=True, text=True, env=env, timeout=60)
    lines = run.stdout.split()
    if len(lines) > 1 and lines[-1] != "gone":
        try:
            os.kill(int(lines[1]), 9)  # (leave nothing behind when the check fails)
        except ProcessLookupError:
            pass
    assert run.returncode == 0, run.stderr
    assert lines[0] == "0"
    assert lines[2:] == ["1", "gone"]


# Children started from a thread (listed under that thread by the kernel), one whose thread has ended, and a
# zombie are all children; the list the kernel keeps per thread says what a scan of /proc says.
THREADS = """
import os, subprocess, threading
from kimicode.security import orphans
started = []
def start():
    started.append(subprocess.Popen(["sleep", "1000"]))
keep, up = threading.Event(), threading.Event()
def start_and_stay():
    start()
    up.set()
    keep.wait()
ended = threading.Thread(target=start)
ended.start(); ended.join()
staying = threading.Thread(target=start_and_stay)
staying.start()
up.wait()
zombie = subprocess.Popen(["true"])
os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)
scanned = sorted(c for c, (ppid, _) in orphans.process_table().items() if ppid == os.getpid())
listed = orphans.children()
expected = sorted([p.pid for p in started] + [zombie.pid])
for p in started:
    p.kill(); p.wait()
zombie.wait()
keep.set(); staying.join()
print(listed == expected, scanned == expected, orphans.children() == [], orphans._listed_children(os.getpid()) is not None)
"""


def test_children_started_from_threads_and_zombies_are_all_listed() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "True", "True", "True"]
