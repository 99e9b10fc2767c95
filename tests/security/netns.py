"""Run a scenario in a network namespace of its own, where the private and cloud-metadata addresses live on
the namespace's loopback and a private /etc/hosts names them: no lookup or packet leaves the machine.

The scenario (a function in tests/security/netns_scenarios.py) starts its listeners, the fake model and
the real CLI inside the namespace, and prints what happened as one JSON line; the test asserts on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.clirun import REPO

# Put on the namespace's loopback; names in its /etc/hosts point at them.
NETNS_ADDRESSES = ("169.254.169.254", "10.0.0.5", "100.100.100.200")
NETNS_V6_ADDRESSES = ("fd00:ec2::254",)
NETNS_HOSTS = {
    "meta.example.com": "169.254.169.254",
    "intranet.example.com": "10.0.0.5",
    "sneaky.example.com": "127.0.0.1",
    "metadata.google.internal": "169.254.169.254",
}

_SETUP = " && ".join(
    ["mount --bind \"$HOSTS\" /etc/hosts", "ip link set lo up"]
    + [f"ip addr add {a}/32 dev lo" for a in NETNS_ADDRESSES]
    + [f"ip -6 addr add {a}/128 dev lo" for a in NETNS_V6_ADDRESSES]
    + ['exec "$@"']
)


def _available() -> bool:
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("ip")):
        return False
    try:
        return subprocess.run(["unshare", "-n", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


NETNS_AVAILABLE = _available()


def run_in_netns(scenario: str, args: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        hosts = Path(scratch) / "hosts"
        hosts.write_text("127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{a} {n}\n" for n, a in NETNS_HOSTS.items()))
        env = dict(os.environ, HOSTS=str(hosts), PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run(
            ["unshare", "-n", "-m", "sh", "-c", _SETUP, "sh", sys.executable, "-m", "tests.security.netns_scenarios",
             scenario, json.dumps(args)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
        )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"scenario {scenario} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
