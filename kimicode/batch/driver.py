"""The batch driver: what to run, in what order, within which budget; the local process pool.

Shared by both engines: the list of tasks still to run (ids in results.jsonl are skipped), the budget
(``--max-cost``/``--max-tokens`` stop scheduling new tasks; running ones finish and are recorded), the
results file and the reporter that shows progress. The local pool is asyncio over subprocesses: a task is
I/O-bound waiting on the model, so ``--workers`` coroutines each driving one task's processes is all the
pool there needs to be. Ray (kimicode/batch/ray_engine.py) replaces only the part that runs tasks.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kimicode.batch.limiter_service import LimiterService, LocalBackend, summarize
from kimicode.batch.results import ResultsFile, fresh_task_dir
from kimicode.batch.runner import Worktrees, run_task
from kimicode.batch.tasks import TaskSpec
from kimicode.batch.warm import WarmPool, note, warm_wanted
from kimicode.llm.limiter import LIMITER_ENV

WORK_DIR = ".work"  # OUT/.work/<id>: the local pool's checkouts while tasks run


class Reporter(Protocol):
    """Progress, as the front end shows it (kimicode/manage/batch_view.py)."""

    def begin(self, total: int, skipped: int, queued: list[str], engine: str) -> None: ...

    def running(self, task_id: str) -> None: ...

    def line(self, task_id: str, text: str) -> None: ...

    def finished(self, record: dict[str, Any]) -> None: ...

    def end(self, summary: BatchSummary) -> None: ...


@dataclass
class BatchOptions:
    out: Path
    out_label: str  # OUT as the user wrote it: results name files with it
    workers: int = 4
    max_cost: float | None = None
    max_tokens: int | None = None
    limiter_start: int = 20
    agent_env: dict[str, str] = field(default_factory=dict)
    ray_address: str | None = None
    num_cpus: float = 1.0


@dataclass
class Budget:
    max_cost: float | None
    max_tokens: int | None
    cost: float = 0.0
    tokens: int = 0

    def add(self, usage: dict[str, Any]) -> None:
        self.cost += float(usage.get("cost_usd", 0.0) or 0.0)
        self.tokens += int(usage.get("input_tokens", 0) or 0) + int(usage.get("output_tokens", 0) or 0)

    def reached(self) -> str:
        """Why no new task may start, or ""."""
        if self.max_cost is not None and self.cost >= self.max_cost:
            return f"--max-cost ${self.max_cost:g} reached (${self.cost:.4f} spent)"
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            return f"--max-tokens {self.max_tokens} reached ({self.tokens} used)"
        return ""


@dataclass
class BatchSummary:
    total: int
    skipped: int  # finished in an earlier run
    done: int = 0
    failed: int = 0
    not_run: int = 0  # left queued because the budget stopped the schedule
    stopped: str = ""  # why the schedule stopped early ("" = every task ran)
    interrupted: bool = False
    cost: float = 0.0
    tokens: int = 0
    elapsed: float = 0.0
    limiter: dict[str, int] = field(default_factory=dict)
    engine: str = "local"

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "engine": self.engine,
            "total": self.total,
            "skipped": self.skipped,
            "done": self.done,
            "failed": self.failed,
            "not_run": self.not_run,
            "stopped": self.stopped,
            "interrupted": self.interrupted,
            "cost_usd": round(self.cost, 6),
            "tokens": self.tokens,
            "elapsed_s": round(self.elapsed, 3),
            **self.limiter,
        }


class Schedule:
    """The queue, the budget and the bookkeeping of one batch run, engine-independent."""

    def __init__(self, specs: list[TaskSpec], options: BatchOptions, reporter: Reporter, engine: str) -> None:
        options.out.mkdir(parents=True, exist_ok=True)
        self.options = options
        self.reporter = reporter
        self.results = ResultsFile(options.out)
        finished = self.results.finished
        self.queue: deque[TaskSpec] = deque(s for s in specs if s.id not in finished)
        self.budget = Budget(options.max_cost, options.max_tokens)
        self.summary = BatchSummary(total=len(specs), skipped=len(specs) - len(self.queue), engine=engine)
        self.started = time.monotonic()
        reporter.begin(len(specs), self.summary.skipped, [s.id for s in self.queue], engine)

    def next(self) -> TaskSpec | None:
        """The next task to start, or None (queue empty, or the budget stops the schedule)."""
        if not self.queue:
            return None
        why = self.budget.reached()
        if why:
            self.summary.stopped = why
            return None
        spec = self.queue.popleft()
        self.reporter.running(spec.id)
        return spec

    def record(self, record: dict[str, Any]) -> None:
        self._spend(record)
        self.results.add(record)
        self._count(record)

    async def record_in_thread(self, record: dict[str, Any]) -> None:
        """``record`` with results.jsonl written (and fsynced) in a thread: meanwhile the loop keeps driving
        every other task. The budget counts the task at once (no task starts on a budget that is already
        spent); a cancel does not stop a write under way: the line is counted, then the cancel goes on."""
        self._spend(record)
        write = asyncio.ensure_future(asyncio.to_thread(self.results.add, record))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await write
            self._count(record)
            raise
        self._count(record)

    def _spend(self, record: dict[str, Any]) -> None:
        record["patch"] = str(Path(self.options.out_label) / record["id"] / "patch.diff")
        self.budget.add(record.get("usage") or {})

    def _count(self, record: dict[str, Any]) -> None:
        if record["status"] == "done":
            self.summary.done += 1
        else:
            self.summary.failed += 1
        self.reporter.finished(record)

    def close(self, limiter: dict[str, int], interrupted: bool = False) -> BatchSummary:
        summary = self.summary
        summary.not_run = len(self.queue)
        if summary.not_run and not summary.stopped and not interrupted:
            summary.stopped = self.budget.reached() or "stopped"
        summary.interrupted = interrupted
        summary.cost = self.budget.cost
        summary.tokens = self.budget.tokens
        summary.elapsed = time.monotonic() - self.started
        summary.limiter = limiter
        self.reporter.end(summary)
        return summary


async def run_local(specs: list[TaskSpec], options: BatchOptions, reporter: Reporter) -> BatchSummary:
    """Run the tasks on this machine, ``options.workers`` at a time."""
    schedule = Schedule(specs, options, reporter, "local")
    backend = LocalBackend()
    service = LimiterService(backend)
    env = {**options.agent_env, LIMITER_ENV: await service.start()}
    work_root = options.out / WORK_DIR
    # Started, not awaited: tasks check out while the warm process imports, and wait for it at their agent.
    pool = asyncio.ensure_future(_warm_pool(env, options.out, work_root))
    worktrees = Worktrees()

    async def worker() -> None:
        while (spec := schedule.next()) is not None:
            folder = fresh_task_dir(options.out, spec.id)
            line = functools.partial(reporter.line, spec.id)
            outcome = await run_task(spec, folder, work_root, env, line, pool=pool, worktrees=worktrees)
            await schedule.record_in_thread(outcome.record)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, options.workers))]
    interrupted = False
    try:
        await asyncio.gather(*workers)
    except asyncio.CancelledError:
        interrupted = True
        for task in workers:
            if not task.done() and not task.cancelling():  # a second cancel would cut their clean-up short
                task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        await service.close()
        warm = await asyncio.shield(pool)  # a warm process still starting is closed once it has started
        if warm is not None:
            await asyncio.to_thread(warm.close)
        await asyncio.to_thread(worktrees.prune)
    stats = {key: s.as_dict() for key, s in backend.stats().items()}
    return schedule.close(summarize(stats), interrupted)


async def _warm_pool(env: dict[str, str], out: Path, work_root: Path) -> WarmPool | None:
    """The warm process the agents fork from, or None (then each is a fresh process; said once)."""
    from kimicode.security.childenv import environment

    full = {**environment(), **env}  # what each task's agent gets (runner.py)
    why = warm_wanted(full)
    if not why:
        try:
            return await WarmPool.start(full, out, str(work_root.resolve()))
        except OSError as exc:
            why = str(exc)
    note(why)
    return None
