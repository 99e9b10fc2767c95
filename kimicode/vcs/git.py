"""Running git for kimicode's own bookkeeping (checkpoints, sub-agent worktrees).

Always the same identity, no hooks, byte-exact content (no line-ending conversion) and file names as they
are, so what kimicode records never depends on the user's git configuration.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "kimicode",
    "GIT_AUTHOR_EMAIL": "kimicode@localhost",
    "GIT_COMMITTER_NAME": "kimicode",
    "GIT_COMMITTER_EMAIL": "kimicode@localhost",
}
CONFIG = [
    "-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "core.hooksPath=/dev/null",
    "-c", "core.quotePath=false",
]


def run_git(
    *args: str,
    cwd: Path,
    error: type[Exception],
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    errors: str = "surrogateescape",  # round-trips any file name byte for byte
    ok: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[str]:
    """Run one git command; a failure raises ``error`` with git's last line of complaint.

    A GIT_INDEX_FILE inherited from the environment is dropped unless ``env`` sets one: kimicode's private
    indexes must never leak into, or come from, the user's.
    """
    full_env = {**os.environ, **IDENTITY, "GIT_OPTIONAL_LOCKS": "0", **(env or {})}
    if env is None or "GIT_INDEX_FILE" not in env:
        full_env.pop("GIT_INDEX_FILE", None)
    result = subprocess.run(
        ["git", *CONFIG, *args],
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        errors=errors,
        env=full_env,
        input=stdin,
    )
    if result.returncode not in ok:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise error(f"git {args[0]} failed: {reason}")
    return result
