"""Test helpers for what the tests need from the system (bubblewrap, poppler's pdftoppm, Chromium).

A test that needs something missing here is skipped; in CI (``CI`` set, as CI services and ``.ci/run`` do) it
fails instead, so that a green run cannot hold zero sandbox tests.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from kimicode.security.sandbox import detect_sandbox


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    """End a test that needs ``what``, which this machine lacks: a skip, or in CI a failure."""
    if in_ci():
        pytest.fail(f"CI must have {what}", pytrace=False)
    pytest.skip(f"needs {what}")


@functools.cache
def bwrap_problem() -> str:
    """Why no bubblewrap sandbox works here ("" when one does)."""
    probe = detect_sandbox("workspace-write", False, Path.cwd(), Path.cwd())
    return "" if probe.backend == "bwrap" else (probe.unavailable or "no bubblewrap sandbox here")


def _pdftoppm_problem() -> str:
    return "" if shutil.which("pdftoppm") else "pdftoppm is not on PATH"


# What a ``needs`` mark names, and why it is unusable here ("" when it works); checked before each test.
SYSTEM_NEEDS: dict[str, tuple[str, Callable[[], str]]] = {
    "bwrap": ("a working bubblewrap (bwrap)", bwrap_problem),
    "pdftoppm": ("poppler-utils' pdftoppm", _pdftoppm_problem),
}

needs_bwrap = pytest.mark.needs("bwrap")
needs_pdftoppm = pytest.mark.needs("pdftoppm")


def check_needs(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        what, problem = SYSTEM_NEEDS[mark.args[0]]
        if why := problem():
            missing(f"{what}: {why}")
