"""In CI a test whose system dependency is missing fails: a green run cannot hide that it ran none of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import REPO
from tests.sandboxing import SYSTEM_NEEDS

SANDBOX_TEST = "tests/security/test_sandbox.py::test_read_only_mode_refuses_workspace_writes"


def path_without(program: str, farm: Path) -> str:
    """$PATH with ``program`` gone: each folder that has it is replaced by links to all its other entries."""
    folders = []
    for index, folder in enumerate(os.environ["PATH"].split(os.pathsep)):
        if not (Path(folder) / program).exists():
            folders.append(folder)
            continue
        copy = farm / str(index)
        copy.mkdir(parents=True)
        for entry in Path(folder).iterdir():
            if entry.name != program:
                (copy / entry.name).symlink_to(entry)
        folders.append(str(copy))
    return os.pathsep.join(folders)


@pytest.mark.parametrize("ci", ["1", "true", ""])
def test_a_sandbox_test_without_bubblewrap_fails_in_ci_and_is_skipped_elsewhere(tmp_path: Path, ci: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS") and not k.startswith("PYTEST_XDIST")}
    env["PATH"] = path_without("bwrap", tmp_path / "bin")
    if ci:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", SANDBOX_TEST],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    what = SYSTEM_NEEDS["bwrap"][0]
    if ci:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"CI must have {what}: bubblewrap (bwrap) is not installed" in proc.stdout, proc.stdout
        assert "1 error" in proc.stdout
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "1 skipped" in proc.stdout and f"needs {what}" in proc.stdout, proc.stdout
