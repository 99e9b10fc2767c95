"""Run one batch task: checkout → setup → the agent → check; leave its artifacts in a folder.

The agent runs as a `kimicode -p --output-format json` subprocess in the task's checkout: the very path a
user's script takes, and a crash, a hang or a runaway memory use stays inside that one task. Each process
gets its own process group (a timeout or a cancel ends the whole group) and dies with the process that
started it (PR_SET_PDEATHSIG), so a killed driver leaves no agent running on behind it (how: process.py).
In the local pool that process is a fork of one warm, pre-imported process (warm.py), the same otherwise.

The same function runs in the local pool and inside a Ray task; it only needs the task, a folder for
artifacts, a folder for checkouts and the agent's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.batch.process import LineCallback, run_process
from kimicode.batch.tasks import TaskSpec, is_url
from kimicode.batch.warm import WarmPool, agent_prefix


def _user_trusts(repo: Path, checkout: Path) -> bool:
    """The user trusts ``repo`` as it is and the task's checkout carries the very settings trusted there."""
    from kimicode.batch.settings import same_settings
    from kimicode.config import kimicode_home
    from kimicode.security.trust import TrustStore

    repo = repo.expanduser().resolve()
    return TrustStore(kimicode_home()).is_trusted(repo) and same_settings(repo, checkout)


def agent_argv(spec: TaskSpec, checkout: Path) -> list[str]:
    """The agent's command line: the one place it is built.

    Headless with -y: the agent may edit its checkout without asking, inside whatever sandbox and
    permission rules are in force (-y never switches the sandbox off). --trust is given only for a worktree
    of a local repository the user has trusted (`kimicode trust` there, files unchanged since) whose
    settings at the task's ref are the trusted ones (another branch may add an MCP server): a local path is
    no proof of authorship (a cloned repository is a local path too), and an untrusted project's config
    could otherwise widen what the agent may do or point it, with the user's key, at another endpoint.
    -y never approves leaving the sandbox: --allow-escalation goes along only when the batch was given it.
    """
    argv = [*agent_prefix(), "-p", "--output-format", "json", "-y", "-w", str(checkout)]
    if not is_url(spec.repo) and _user_trusts(Path(spec.repo), checkout):
        argv.append("--trust")
    if spec.allow_escalation:
        argv.append("--allow-escalation")
    if spec.mode:
        argv += ["--mode", spec.mode]
    if spec.max_steps:
        argv += ["--max-steps", str(spec.max_steps)]
    for image in spec.images:
        argv += ["--image", image]
    return argv


_COMMIT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256


class CheckoutError(Exception):
    pass


@dataclass
class Outcome:
    """What one task came to; ``record`` is its results.jsonl line (without the driver's path)."""

    record: dict[str, Any]
    folder: Path


@dataclass
class _Run:
    spec: TaskSpec
    folder: Path
    work_root: Path
    env: dict[str, str]
    on_line: LineCallback
    phase: str = "checkout"
    checkout: Path | None = None
    repo_root: Path | None = None
    # The checkout's git directory as made, before the agent ran: the patch is read through it, whatever
    # the agent's commands did to the checkout's `.git`.
    git_dir: Path | None = None
    lock: Path | None = None  # serialises worktree changes of the local repository (several tasks share it)
    base: str = ""
    agent: dict[str, Any] = field(default_factory=dict)
    check_exit: int | None = None
    # The warm pool, or its start still under way: a task checks out while the warm process imports.
    pool: WarmPool | asyncio.Future[WarmPool | None] | None = None
    later: Worktrees | None = None  # where git's bookkeeping of a removed checkout is dropped at the batch's end


async def run_task(
    spec: TaskSpec,
    folder: Path,
    work_root: Path,
    env: dict[str, str],
    on_line: LineCallback | None = None,
    pool: WarmPool | asyncio.Future[WarmPool | None] | None = None,
    worktrees: Worktrees | None = None,
) -> Outcome:
    """Run ``spec`` with artifacts in ``folder`` and its checkout under ``work_root``; never raises for a
    failure of the task itself (that is a result), only for cancellation. With ``pool`` the agent is a fork
    of its warm process (kimicode/batch/warm.py) where that is possible; a pool still starting is waited
    for only when the agent starts. With ``worktrees`` a local repository's checkout is only deleted, and
    git's record of it dropped by ``worktrees.prune()`` once, at the end of the batch."""
    run = _Run(spec, folder, work_root, env, on_line or (lambda line: None), pool=pool, later=worktrees)
    started = time.monotonic()
    status, reason = "done", ""
    try:
        async with asyncio.timeout(spec.timeout):
            status, reason = await _pipeline(run)
    except TimeoutError:
        status, reason = "failed", f"timed out after {spec.timeout:g}s (during {run.phase})"
    except CheckoutError as exc:
        status, reason = "failed", f"checkout: {exc}"
    finally:
        await _finish(run)  # also when cancelled: the patch is kept and the checkout dropped
    record: dict[str, Any] = {"id": spec.id, "status": status}
    if reason:
        record["reason"] = reason
    if run.check_exit is not None:
        record["check_exit"] = run.check_exit
    record.update(
        {
            "result": str(run.agent.get("result", "")),
            "num_steps": int(run.agent.get("num_steps", 0) or 0),
            "usage": run.agent.get("usage") or {},
            "duration_ms": int((time.monotonic() - started) * 1000),
            "patch": f"{spec.id}/patch.diff",
        }
    )
    if run.agent.get("session_id"):
        record["session_id"] = run.agent["session_id"]
    (folder / "result.json").write_text(json.dumps(run.agent or {}, ensure_ascii=False, indent=2) + "\n")
    return Outcome(record, folder)


async def _pipeline(run: _Run) -> tuple[str, str]:
    spec = run.spec
    run.on_line("checking out")
    await _checkout(run)
    assert run.checkout is not None
    if spec.setup:
        run.phase = "setup"
        run.on_line("setup: " + spec.setup)
        code, _ = await run_process(["bash", "-c", spec.setup], run.checkout, None, run.folder / "setup.log", run.on_line)
        if code != 0:
            return "failed", f"setup failed (exit {code}); see {spec.id}/setup.log"
    run.phase = "agent"
    run.on_line("agent started")
    from kimicode.security.childenv import environment

    env = {**environment(), **run.env}  # the agent is kimicode itself: it gets the endpoint key
    pool = await asyncio.shield(run.pool) if isinstance(run.pool, asyncio.Future) else run.pool
    code, stdout = await run_process(
        agent_argv(spec, run.checkout), run.checkout, spec.task, run.folder / "agent.log", run.on_line, env=env,
        pool=pool,
    )
    run.agent = _parse_result(stdout)
    if code != 0 or run.agent.get("is_error", True):
        what = run.agent.get("subtype") or f"exit {code}"
        said = str(run.agent.get("result") or _last_line(run.folder / "agent.log") or "no result").strip()
        return "failed", f"agent {what}: {said.splitlines()[0][:300] if said else ''}"
    if spec.check:
        run.phase = "check"
        run.on_line("check: " + spec.check)
        code, _ = await run_process(["bash", "-c", spec.check], run.checkout, None, run.folder / "check.log", run.on_line)
        run.check_exit = code
        if code != 0:
            return "failed", f"check failed (exit {code}); see {spec.id}/check.log"
    return "done", ""


async def _checkout(run: _Run) -> None:
    spec = run.spec
    path = run.work_root / spec.id
    run.work_root.mkdir(parents=True, exist_ok=True)
    if is_url(spec.repo):
        await asyncio.to_thread(_remove_tree, path)
        await _git_async(["clone", "--quiet", spec.repo, str(path)], run.work_root)
        if spec.ref:
            await _git_async(["checkout", "--quiet", "--detach", spec.ref], path)
    else:
        repo = Path(spec.repo)
        if not repo.is_dir():
            raise CheckoutError(f"{repo} is not a directory on this machine")
        # Asked once per repository and batch: a task starts a dozen processes, each costs a start-up.
        located = run.later.located.get(spec.repo) if run.later is not None else None
        if located is None:
            try:  # one git for both answers
                located = _two_lines(await _git_async(["rev-parse", "--show-toplevel", "--git-common-dir"], repo))
            except CheckoutError as exc:
                raise CheckoutError(f"{repo} is not a git repository ({exc})") from exc
            if run.later is not None:
                run.later.located[spec.repo] = located
        top, common = located
        run.lock = (repo / common).resolve() / "kimicode-batch.lock"
        run.repo_root = Path(top)
        await asyncio.to_thread(_add_worktree, run.repo_root, run.lock, path, spec.ref or "HEAD")
    run.checkout = path
    made = _made_checkout(path)
    if made is None:
        base, git_dir = _two_lines(await _git_async(["rev-parse", "HEAD", "--absolute-git-dir"], path))
        made = base, Path(git_dir).resolve()
    run.base, run.git_dir = made


def _made_checkout(path: Path) -> tuple[str, Path] | None:
    """The commit and git directory of a checkout git has just made detached, read from its files (git
    wrote them a moment ago and no command of the task has run): one git process fewer per task. None when
    HEAD is not a commit id (a fresh clone on its branch): git is asked then."""
    from kimicode.vcs.layout import GitRefused, find_layout

    try:
        layout = find_layout(path)
        head = (layout.git_dir / "HEAD").read_text(encoding="ascii").strip() if layout is not None else ""
    except (GitRefused, OSError, UnicodeDecodeError):
        return None
    if layout is None or layout.toplevel != path.resolve() or not _COMMIT_ID.fullmatch(head):
        return None
    return head, layout.git_dir


def _two_lines(output: str) -> tuple[str, str]:
    lines = output.splitlines()
    if len(lines) != 2:
        raise CheckoutError(f"unexpected answer from git rev-parse: {output.strip()!r}")
    return lines[0].strip(), lines[1].strip()


def _add_worktree(top: Path, lock: Path, path: Path, ref: str) -> None:
    """`git worktree add`, one at a time per repository (several tasks and processes share it)."""
    with _locked(lock):
        if path.exists() or path.is_symlink():  # left by a killed run; a missing one is pruned below
            _git(["worktree", "remove", "--force", str(path)], top, ok=(0, 128))
            _remove_tree(path)
        # Pruning is only needed when git still lists a checkout that is gone (a killed run): try without
        # first, as each git costs a process start under this lock, which every task of the repository takes.
        try:
            _git(["worktree", "add", "--quiet", "--detach", str(path), ref], top)
        except CheckoutError:
            _git(["worktree", "prune"], top)
            _git(["worktree", "add", "--quiet", "--detach", str(path), ref], top)


@contextlib.contextmanager
def _locked(lock: Path) -> Any:
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def _finish(run: _Run) -> None:
    """Keep the change as a patch and the session, then drop the checkout (also after a failure)."""
    checkout = run.checkout
    try:
        if checkout is not None and run.base and run.git_dir is not None:
            _note_moved_git_dir(run, checkout)
            pinned = {"GIT_DIR": str(run.git_dir), "GIT_WORK_TREE": str(checkout)}
            await _git_async(["add", "-A"], checkout, env=pinned)
            patch = await _git_async(["diff", "--cached", "--binary", run.base], checkout, env=pinned)
            (run.folder / "patch.diff").write_text(patch, encoding="utf-8", errors="surrogateescape")
        else:
            (run.folder / "patch.diff").write_text("")
    except (CheckoutError, OSError) as exc:
        (run.folder / "patch.diff").write_text("")
        _append(run.folder / "agent.log", f"kimicode batch: could not collect the patch: {exc}\n")
    _copy_session(run)
    if checkout is not None:
        if run.repo_root is not None and run.lock is not None and run.later is not None:
            run.later.add(run.repo_root, run.lock)
            await asyncio.to_thread(_remove_tree, checkout)
        elif run.repo_root is not None and run.lock is not None:
            await asyncio.to_thread(_remove_worktree, run.repo_root, run.lock, checkout)
        else:
            await asyncio.to_thread(_remove_tree, checkout)


def _note_moved_git_dir(run: _Run, checkout: Path) -> None:
    from kimicode.vcs.layout import GitRefused, find_layout

    try:
        layout = find_layout(checkout)
        now = str(layout.git_dir) if layout is not None else "no repository"
    except GitRefused as exc:
        now = str(exc)
    if now != str(run.git_dir):
        _append(
            run.folder / "agent.log",
            f"kimicode batch: the task changed its checkout's .git (now: {now}); the patch is read through "
            f"{run.git_dir}, the git directory the checkout was made with\n",
        )


class Worktrees:
    """The local repositories whose removed checkouts git still lists: one `git worktree prune` each at the
    end of a batch instead of a `git worktree remove` per task. Until then git lists them as prunable; a
    killed batch leaves them listed, and the next run's checkout of the same id prunes when it must."""

    def __init__(self) -> None:
        self.repos: dict[Path, Path] = {}  # top → its lock
        self.located: dict[str, tuple[str, str]] = {}  # a task's repo → git's top level and common directory

    def add(self, top: Path, lock: Path) -> None:
        self.repos[top] = lock

    def prune(self) -> None:
        for top, lock in self.repos.items():
            with contextlib.suppress(CheckoutError, OSError), _locked(lock):
                _git(["worktree", "prune"], top)


def _remove_worktree(top: Path, lock: Path, path: Path) -> None:
    with _locked(lock):
        removed = _git_status(["worktree", "remove", "--force", str(path)], top) == 0
        _remove_tree(path)
        if not removed:  # git could not remove it (moved .git, say): drop what it still lists
            _git(["worktree", "prune"], top)


def _copy_session(run: _Run) -> None:
    session_id = run.agent.get("session_id")
    if not session_id:
        return
    home = Path(run.env.get("KIMICODE_HOME") or os.environ.get("KIMICODE_HOME") or Path.home() / ".kimicode")
    for found in (home / "sessions").glob(f"*/{session_id}.jsonl"):
        shutil.copyfile(found, run.folder / "session.jsonl")
        return


def _parse_result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("type") == "result":
            return value
    return {}


def _git(args: list[str], cwd: Path, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None) -> str:
    from kimicode.vcs.git import run_git  # hardened: a checkout's config and attributes run nothing

    return run_git(*args, cwd=cwd, error=CheckoutError, ok=ok, env=env).stdout


def _git_status(args: list[str], cwd: Path) -> int:
    from kimicode.vcs.git import run_git

    return run_git(*args, cwd=cwd, error=CheckoutError, ok=(0, 128)).returncode


async def _git_async(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    return await asyncio.to_thread(_git, args, cwd, (0,), env)


def _remove_tree(path: Path) -> None:
    if path.exists() or path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""
