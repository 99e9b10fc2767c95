"""Test helpers for the command sandbox: skip where bubblewrap does not work."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimicode.security.sandbox import detect_sandbox


def bwrap_problem() -> str:
    """Why no bubblewrap sandbox works here ("" when one does)."""
    probe = detect_sandbox("workspace-write", False, Path.cwd(), Path.cwd())
    return "" if probe.backend == "bwrap" else (probe.unavailable or "no bubblewrap sandbox here")


needs_bwrap = pytest.mark.skipif(bool(bwrap_problem()), reason=f"bubblewrap does not work here: {bwrap_problem()}")
