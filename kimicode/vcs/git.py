"""Running git for kimicode's own bookkeeping (checkpoints, sub-agent worktrees, the change set on submit).

Every git command kimicode runs goes through here, on GitPython's command layer (``git.Git.execute``: the
same git binary, one process per command, no shell). GitPython is imported on the first call, never at
start-up (its import costs ~0.15 s).

Always the same identity, no hooks, byte-exact content (no line-ending conversion) and file names as they
are, so what kimicode records never depends on the user's git configuration.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

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


class GitUnavailable(RuntimeError):
    """No git binary (or GitPython cannot use it)."""


def git_available() -> bool:
    return shutil.which("git") is not None


def _command_layer(cwd: Path) -> Any:
    if not git_available():
        raise GitUnavailable("git is not installed (or not on PATH)")
    try:
        import git  # GitPython; its import runs `git version` once
    except ImportError as exc:
        raise GitUnavailable(f"GitPython cannot run git: {exc}") from exc
    return git.Git(cwd)


def run_git(
    *args: str,
    cwd: Path,
    error: type[Exception],
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    errors: str = "surrogateescape",  # round-trips any file name byte for byte
    ok: tuple[int, ...] = (0,),
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one git command; a failure (or no git at all) raises ``error`` with git's last line of complaint.

    A GIT_INDEX_FILE inherited from the environment is overridden with the repository's own index unless
    ``env`` sets one: kimicode's private indexes must never leak into, or come from, the user's.
    """
    try:
        layer = _command_layer(cwd)
    except GitUnavailable as exc:
        raise error(str(exc)) from None
    full_env = {**IDENTITY, "GIT_OPTIONAL_LOCKS": "0", **(env or {})}
    if (env is None or "GIT_INDEX_FILE" not in env) and "GIT_INDEX_FILE" in os.environ:
        # GitPython starts from os.environ and can only add to it, so the inherited one is replaced.
        full_env["GIT_INDEX_FILE"] = _default_index(layer)
    command = ["git", *CONFIG, *args]
    handle = None
    try:
        if stdin is not None:
            handle = tempfile.TemporaryFile()
            handle.write(stdin.encode("utf-8", errors))
            handle.seek(0)
        status, out, err = layer.execute(
            command,
            istream=handle,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=timeout,
            env=full_env,
        )
    except OSError as exc:  # includes GitPython's GitCommandNotFound
        raise error(f"git {args[0]} failed: {exc}") from None
    finally:
        if handle is not None:
            handle.close()
    stdout = out.decode("utf-8", errors) if isinstance(out, bytes) else str(out or "")
    result = subprocess.CompletedProcess(command, status, stdout, err or "")
    if status not in ok:
        reason = ((err or "").strip().splitlines() or ["no message"])[-1]
        raise error(f"git {args[0]} failed: {reason}")
    return result


def _default_index(layer: Any) -> str:
    status, out, _err = layer.execute(
        ["git", "rev-parse", "--absolute-git-dir"], with_extended_output=True, with_exceptions=False
    )
    return os.path.join(out.strip(), "index") if status == 0 and out.strip() else os.devnull


class _Failed(RuntimeError):
    pass


def git_output(*args: str, cwd: Path, timeout: float | None = None, env: dict[str, str] | None = None) -> str | None:
    """git's stdout (invalid UTF-8 replaced), or None when git is missing, fails or runs past ``timeout``."""
    try:
        return run_git(*args, cwd=cwd, error=_Failed, env=env, errors="replace", timeout=timeout).stdout
    except _Failed:
        return None


async def git_output_async(
    *args: str, cwd: Path, timeout: float | None = None, env: dict[str, str] | None = None
) -> str | None:
    """``git_output`` off the event loop (in a worker thread)."""
    return await asyncio.to_thread(git_output, *args, cwd=cwd, timeout=timeout, env=env)
