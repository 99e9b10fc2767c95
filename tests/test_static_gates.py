"""The static gates: ``ruff check`` and ``mypy`` pass, so README's test command proves them.

Both run as one would by hand, from the repository root with the settings in pyproject.toml ([tool.ruff],
[tool.mypy]), through this interpreter, so that the versions the ``test`` extra installs are the ones that
judge. Missing, they skip here and fail in CI (tests/sandboxing.py's ``missing``).

mypy keeps its cache in the repository's ``.mypy_cache``: a cold run takes half a minute on an idle 2-core
machine (longer under load), a warm one a second or a few. One test runs mypy, and the gates share an xdist
group, so no two workers write that cache at once.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import REPO
from tests.sandboxing import missing

# What ruff checks: the package with every rule pyproject.toml selects; the tests with pyflakes only (an
# undefined name, or a second test of the same name that silently replaces the first, is a test that cannot
# fail). Import order and bugbear are not gated in tests/ yet: they have findings there (unsorted imports,
# zip() without strict=) in files that the package's own changes also edit.
RUFF_RUNS = {"kimicode": ("kimicode",), "tests": ("--select", "F", "tests")}
MYPY_CACHE = REPO / ".mypy_cache"
GATE_TOOLS = ("ruff", "mypy")
static_gate = pytest.mark.xdist_group("static_gates")


def run_gate(module: str, *args: str) -> str:
    """Run ``python -m module args`` from the repository root; end the test with its output unless it passed."""
    if importlib.util.find_spec(module) is None:
        missing(f"{module} (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"{module} {' '.join(args)} (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}", pytrace=False)
    return proc.stdout


@static_gate
@pytest.mark.parametrize("args", RUFF_RUNS.values(), ids=list(RUFF_RUNS))
def test_ruff_finds_nothing(args: tuple[str, ...]) -> None:
    run_gate("ruff", "check", "--no-fix", "--output-format", "concise", *args)


@static_gate
def test_mypy_finds_nothing_in_the_package() -> None:
    # No paths: [tool.mypy] files in pyproject.toml says what is checked.
    run_gate("mypy", "--cache-dir", str(MYPY_CACHE))


@pytest.mark.parametrize("ci", ["1", ""])
def test_a_missing_gate_fails_in_ci_and_is_skipped_elsewhere(tmp_path: Path, ci: str) -> None:
    # A pytest plugin loaded first makes ruff and mypy unimportable, as in a venv without the test extra.
    (tmp_path / "hide_gates.py").write_text("".join(f"import sys\nsys.modules[{t!r}] = None\n" for t in GATE_TOOLS))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS") and not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO), env.get("PYTHONPATH", "")])
    if ci:
        env["CI"] = ci
    gates = [f"tests/test_static_gates.py::{name}" for name in ("test_ruff_finds_nothing",
                                                                 "test_mypy_finds_nothing_in_the_package")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "hide_gates", "-rs",
                           *gates], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if ci:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        for tool in GATE_TOOLS:
            assert f"CI must have {tool} (pip install -e '.[test]')" in proc.stdout, proc.stdout
        assert "3 failed" in proc.stdout, proc.stdout
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "3 skipped" in proc.stdout and "needs ruff" in proc.stdout and "needs mypy" in proc.stdout, proc.stdout
