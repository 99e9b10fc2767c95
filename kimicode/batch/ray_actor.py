"""A warm Ray worker for `kimicode batch --ray`: one actor runs many tasks, several at once.

A Ray task would start each agent as a fresh interpreter that imports the agent's run path (the openai
SDK above all) before its first request: most of a second of CPU per task. An actor instead keeps what
the local pool keeps (kimicode/batch/driver.py): a warm process (kimicode/batch/warm.py) that each task's
agent is forked from, and a limiter service on its own 127.0.0.1 that forwards to the fleet's limiter
actor. Each task is still ``run_task`` as in the local pool: its own checkout, its own environment (the
API keys travel in it and never reach the warm process), its own session, a timeout that kills its
process group; a crash or a hang takes only its fork. The actor keeps no state of a task after it: the
task's folders are removed when its artifacts have been read.

The actor process is the warm process's parent: when Ray loses the actor, the warm process and its
agents die with it (PDEATHSIG), and the driver replaces the actor (kimicode/batch/ray_engine.py). What a
lost actor's tasks left in its folder is removed by the next actor of the same user to start on that node
(its folder's live mark is no longer locked).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kimicode.batch.limiter_service import LimiterService
from kimicode.batch.runner import run_task
from kimicode.batch.tasks import TaskSpec
from kimicode.batch.warm import WarmPool, note, warm_wanted
from kimicode.llm.limiter import LIMITER_ENV

ROOT_PREFIX = "kimicode-batch-"  # an actor's folder for its tasks' checkouts and artifacts
LIVE_MARK = ".actor-alive"  # in it, locked for as long as the actor lives


class TaskActor:
    """Runs batch tasks on one Ray worker (as many at once as Ray lets it: max_concurrency), each agent a
    fork of this actor's warm process."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend  # the worker-side limiter backend (ray_engine.ActorBackend)
        self.root, self._live = _claim_root()
        sweep_dead_roots(self.root.parent, self.root)
        self.service: asyncio.Future[LimiterService] | None = None
        self.pool: asyncio.Future[WarmPool | None] | None = None
        self.retired: list[WarmPool] = []  # warm processes replaced while tasks may still use them

    async def run(self, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
        """Run one task; its record and artifacts (file name → bytes) travel back to the driver."""
        if self.service is None:  # shared by the tasks the actor runs at once, as their warm process is
            self.service = asyncio.ensure_future(self._start_service())
        service = await asyncio.shield(self.service)
        task_env = {**env, LIMITER_ENV: service.address}
        pool = self._pool(task_env)
        task = TaskSpec(**spec)
        folder = Path(tempfile.mkdtemp(prefix="task-", dir=self.root))
        try:
            artifacts = folder / "out" / task.id
            artifacts.mkdir(parents=True)
            outcome = await run_task(task, artifacts, folder / "work", task_env, pool=pool)
            files = {p.name: p.read_bytes() for p in sorted(artifacts.iterdir()) if p.is_file()}
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return {"record": outcome.record, "files": files}

    async def _start_service(self) -> LimiterService:
        service = LimiterService(self.backend)
        await service.start()
        return service

    def _pool(self, env: dict[str, str]) -> asyncio.Future[WarmPool | None]:
        """The warm process, started with the first task's environment (minus its keys: WarmPool.start),
        and again when it has died."""
        if self.pool is not None and self.pool.done():
            warm = None if self.pool.cancelled() else self.pool.result()
            if self.pool.cancelled() or (warm is not None and (warm.lost or warm.proc.poll() is not None)):
                if warm is not None:  # closed with the actor: ending it now would end other tasks' agents
                    self.retired.append(warm)
                self.pool = None
        if self.pool is None:
            self.pool = asyncio.ensure_future(self._start_pool(env))
        return self.pool

    async def _start_pool(self, env: dict[str, str]) -> WarmPool | None:
        from kimicode.security.childenv import environment

        full = {**environment(), **env}  # what the task's agent gets (runner.py)
        why = warm_wanted(full)
        if not why:
            try:
                return await WarmPool.start(full, self.root, str(self.root))
            except OSError as exc:
                why = str(exc)
        note(why)  # on the worker's log: each agent is then a fresh process, as without the actor
        return None

    async def close(self) -> None:
        """End the warm process and the limiter service, remove the actor's folder."""
        if self.pool is not None:
            warm = await asyncio.shield(self.pool)
            if warm is not None:
                await asyncio.to_thread(warm.close)
            self.pool = None
        for warm in self.retired:
            await asyncio.to_thread(warm.close)
        self.retired.clear()
        if self.service is not None:
            service = await asyncio.shield(self.service)
            await service.close()
            self.service = None
        with contextlib.suppress(OSError):
            await asyncio.to_thread(shutil.rmtree, self.root, True)
        if self._live >= 0:
            os.close(self._live)
            self._live = -1


def _claim_root() -> tuple[Path, int]:
    """A fresh folder for this actor, its live mark locked (the lock goes when the process does, however)."""
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    staged = root / f"{LIVE_MARK}.new"
    fd = os.open(staged, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(staged, root / LIVE_MARK)  # only ever seen locked: a sweeper never takes a folder being made
    return root, fd


def sweep_dead_roots(parent: Path, mine: Path) -> None:
    """Remove the folders of this user's actors that died (Ray lost them: nothing ran their close), with
    what their killed tasks left there; a folder whose live mark is still locked belongs to a live actor."""
    for folder in parent.glob(f"{ROOT_PREFIX}*"):
        if folder == mine:
            continue
        try:
            if folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            fd = os.open(folder / LIVE_MARK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # not an actor's folder, or gone
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
