"""The launcher that starts Chromium as an ordinary user when kimicode runs as root (vision/boundary.py):
one per browser program and process, gone when the process ends — not a folder left in /tmp per launch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="the launcher is made as root, with unshare"
)

SCRIPT = """
from kimicode.vision.boundary import sandbox_wrapper
first = sandbox_wrapper("/bin/true")
again = sandbox_wrapper("/bin/true")
other = sandbox_wrapper("/bin/false")
print(first, again, other)
"""


def test_one_launcher_per_program_and_none_left_when_the_process_ends() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    first, again, other = proc.stdout.split()
    assert first == again != other
    assert Path(first).name == "chromium" and Path(other).name == "chromium"
    assert not Path(first).parent.exists() and not Path(other).parent.exists()
