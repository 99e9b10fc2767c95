"""Running git for kimicode's own bookkeeping (checkpoints, sub-agent worktrees, the change set on submit,
batch checkouts and patches).

Every git command kimicode runs goes through ``run_git`` here, on GitPython's command layer
(``git.Git.execute``: the same git binary, one process per command, no shell). GitPython is imported on the
first call, never at start-up (its import costs ~0.15 s).

The repository is data, never code: ``githarden.py`` switches off every config key that names a program,
``layout.py`` finds the repository (and refuses a hostile layout), ``gitwatch.py`` refuses a repository
whose control files a command changed. Always the same identity, byte-exact content (no line-ending
conversion) and file names as they are, so what kimicode records never depends on the user's git
configuration.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kimicode.vcs import githarden
from kimicode.vcs.gitdrivers import driver_overrides
from kimicode.vcs.gitwatch import UNREADABLE_INDEX, gitlinks, refusal
from kimicode.vcs.layout import GitRefused, Layout, common_dir_of, find_layout, refuse

IDENTITY = {
    "GIT_AUTHOR_NAME": "kimicode",
    "GIT_AUTHOR_EMAIL": "kimicode@localhost",
    "GIT_COMMITTER_NAME": "kimicode",
    "GIT_COMMITTER_EMAIL": "kimicode@localhost",
}


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


def check_repository(cwd: Path, git_dir: Path | None = None) -> Layout | None:
    """The repository kimicode would run git on at ``cwd``; raises GitRefused for a hostile layout, a
    repository whose control files a command changed, or one whose git directory is not ``git_dir``."""
    layout = find_layout(cwd)
    reason = refusal(cwd, layout.toplevel if layout else None)
    if reason:
        raise GitRefused(reason)
    if git_dir is not None and (layout is None or layout.git_dir != git_dir.resolve()):
        where = layout.git_dir if layout else "no repository"
        raise refuse(Path(cwd), f"its git directory is now {where}, was {git_dir}")
    return layout


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
    """Run one git command, hardened; a failure, a refusal (or no git at all) raises ``error`` with one line.

    The repository is the one ``layout.py`` finds at ``cwd``, pinned with GIT_DIR/GIT_WORK_TREE, unless
    ``env`` names GIT_DIR itself (a caller that recorded it earlier). A GIT_INDEX_FILE inherited from the
    environment is replaced with the repository's own index unless ``env`` sets one: kimicode's private
    indexes must never leak into, or come from, the user's.
    """
    try:
        layer = _command_layer(cwd)
        full_env, options = _hardened(args, cwd, env or {}, layer)
    except GitUnavailable as exc:
        raise error(str(exc)) from None
    except GitRefused as exc:
        raise error(str(exc)) from None
    except OSError as exc:  # a control file that cannot be read
        raise error(f"git {args[0]} failed: {exc}") from None
    command = ["git", *options, *githarden.command_args(args)]
    status, out, err = _execute(layer, command, full_env, stdin, errors, timeout, error, args[0])
    stdout = out.decode("utf-8", errors) if isinstance(out, bytes) else str(out or "")
    result = subprocess.CompletedProcess(command, status, stdout, err or "")
    if status not in ok:
        raise error(f"git {args[0]} failed: {_last_line(err)}")
    return result


def _hardened(args: tuple[str, ...], cwd: Path, env: dict[str, str], layer: Any) -> tuple[dict[str, str], list[str]]:
    """The environment and the options before the command name for ``git *args`` at ``cwd``."""
    full_env = {**IDENTITY, **githarden.ENVIRONMENT}
    transport = args[0] == "clone"  # a batch task's URL; the new repository has no config of its own yet
    layout: Layout | None = None
    if "GIT_DIR" not in env and not transport:
        layout = check_repository(cwd)
        if layout is not None:
            full_env["GIT_DIR"] = str(layout.git_dir)
            full_env["GIT_WORK_TREE"] = str(layout.toplevel)
            if "GIT_INDEX_FILE" in os.environ:
                # GitPython starts from os.environ and can only add to it, so the inherited one is replaced.
                full_env["GIT_INDEX_FILE"] = str(layout.git_dir / "index")
    full_env.update(env)
    options = githarden.global_options(transport)
    if "GIT_DIR" in full_env:
        git_dir = Path(full_env["GIT_DIR"])
        common = layout.common_dir if layout is not None and layout.git_dir == git_dir else common_dir_of(git_dir)
        full_env.update(driver_overrides(git_dir, common, full_env, lambda: _driver_listing(layer, options, full_env)))
        if args[0] == "add":
            _unlink_nested_repositories(layer, options, full_env)
    elif "GIT_INDEX_FILE" in os.environ and "GIT_INDEX_FILE" not in env:
        full_env["GIT_INDEX_FILE"] = os.devnull
    return full_env, options


def _driver_listing(layer: Any, options: list[str], env: dict[str, str]) -> str:
    """Every filter/diff/merge driver program the repository's config (and what it includes) defines."""
    status, out, _err = layer.execute(
        ["git", *options, "config", "-z", "--get-regexp", githarden.DRIVER_QUERY],
        with_extended_output=True, with_exceptions=False, stdout_as_string=False, env=env,
    )
    if status not in (0, 1):  # 1: no driver at all; anything else: nothing known, so nothing runs
        raise GitRefused(f"cannot list the repository's drivers: {_last_line(_err)}")
    return out.decode("utf-8", "surrogateescape") if status == 0 and isinstance(out, bytes) else ""


def _last_line(err: Any) -> str:
    text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err or "")
    return (text.strip().splitlines() or ["no message"])[-1]


def _unlink_nested_repositories(layer: Any, options: list[str], env: dict[str, str]) -> None:
    """Drop the index entries of nested repositories that are checked out before ``git add``.

    `git add` asks each such repository whether it is modified by running `git status` inside it, with
    that repository's own config (whose drivers nobody listed). Without an entry, `add` records the nested
    repository's HEAD from its files, running nothing there.
    """
    index = Path(env.get("GIT_INDEX_FILE") or Path(env["GIT_DIR"]) / "index")
    top = Path(env.get("GIT_WORK_TREE", "."))
    links = gitlinks(index)
    if links == (UNREADABLE_INDEX,):  # a format the reader does not know: git lists them
        status, out, _err = layer.execute(
            ["git", *options, "ls-files", "-s", "-z"],
            with_extended_output=True, with_exceptions=False, stdout_as_string=False, env=env,
        )
        records = out.decode("utf-8", "surrogateescape").split("\0") if status == 0 else []
        links = tuple(r.split("\t", 1)[1] for r in records if r.startswith("160000 ") and "\t" in r)
    populated = [link for link in links if os.path.lexists(top / link / ".git")]
    if not populated:
        return
    handle = _stdin_file("\0".join(populated), "surrogateescape")
    try:
        status, _out, err = layer.execute(
            ["git", *options, "update-index", "--force-remove", "-z", "--stdin"],
            istream=handle, with_extended_output=True, with_exceptions=False, env=env,
        )
    finally:
        handle.close()
    if status != 0:
        raise GitRefused(f"cannot set nested repositories aside: {_last_line(err)}")


def _stdin_file(text: str, errors: str) -> Any:
    handle = tempfile.TemporaryFile()
    handle.write(text.encode("utf-8", errors))
    handle.seek(0)
    return handle


def _execute(
    layer: Any, command: list[str], env: dict[str, str], stdin: str | None, errors: str, timeout: float | None,
    error: type[Exception], name: str,
) -> tuple[int, Any, Any]:
    handle = _stdin_file(stdin, errors) if stdin is not None else None
    try:
        return layer.execute(
            command,
            istream=handle,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=timeout,
            env=env,
        )
    except OSError as exc:  # includes GitPython's GitCommandNotFound
        raise error(f"git {name} failed: {exc}") from None
    finally:
        if handle is not None:
            handle.close()


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
