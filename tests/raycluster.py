"""A real single-node Ray cluster on 127.0.0.1 for the batch tests, and a CLI run that waits for it to be up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CONNECT_REFUSED = "cannot connect to the Ray cluster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def ray_head(env: dict[str, str], cpus: int) -> Iterator[str]:
    """Start `ray start --head` with ``cpus`` CPUs (stopped on exit); yields its address."""
    port = free_port()
    temp = Path(f"/tmp/kb{os.getpid()}-{port}")  # Ray's socket paths must stay short
    env = {**env, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         # Every port it listens on is a free one (its defaults are fixed: two clusters at once would clash).
         f"--port={port}", f"--dashboard-agent-listen-port={free_port()}",
         f"--metrics-export-port={free_port()}", f"--num-cpus={cpus}", "--include-dashboard=false",
         "--object-store-memory=80000000", f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # --block: ending this process stops the cluster it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        subprocess.run(["rm", "-rf", str(temp)], check=False)


def run_until_up(run: Callable[[], subprocess.CompletedProcess[str]]) -> subprocess.CompletedProcess[str]:
    """The head node takes a few seconds to accept drivers; a refused connection is retried, once up it is not."""
    deadline = time.monotonic() + 60
    while True:
        proc = run()
        if proc.returncode != 2 or CONNECT_REFUSED not in proc.stderr or time.monotonic() > deadline:
            return proc
        time.sleep(1)
