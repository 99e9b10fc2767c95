"""`kimicode batch --ray ADDRESS`: the same tasks as Ray tasks, for more than one machine.

Imported only with --ray (Ray is an optional extra: pip install "kimicode[ray]"). Each task runs
kimicode.batch.runner.run_task inside a Ray task on some node: its checkout and artifacts live in a
temporary folder there, and the artifacts travel back with the result (workers share no file system with
the driver), which writes them to OUT/<id>/ and records the task. The driver's schedule, budget and
results file are the local pool's (kimicode/batch/driver.py).

One rate limiter for the fleet: a Ray actor holds the AIMD state; each Ray task starts the limiter service
on its own 127.0.0.1 with a backend that forwards to the actor, so the agent processes speak the same
protocol as in a local batch and only Ray's own channels cross machines.

ADDRESS: a cluster address (host:port, ray://host:port), "auto" (the cluster RAY_ADDRESS or `ray start`
points at), or "local" (start a private single-node cluster for this batch).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from kimicode.batch.driver import BatchOptions, BatchSummary, Reporter, Schedule
from kimicode.batch.limiter_service import LimiterService, LocalBackend, summarize
from kimicode.batch.results import fresh_task_dir
from kimicode.batch.runner import run_task
from kimicode.batch.tasks import TaskSpec, is_url
from kimicode.config import Config
from kimicode.llm.limiter import LIMITER_ENV, Outcome

LOCAL_OBJECT_STORE = 100 * 1024 * 1024  # a private cluster moves only small artifacts
POLL_SECONDS = 0.2


class RayUnavailable(Exception):
    """--ray cannot be used as asked; the message is one line for the user."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable('--ray needs Ray: pip install "kimicode[ray]"') from exc
    return ray


class LimiterActor:
    """The fleet's AIMD state (an async Ray actor: waiting acquires do not block others)."""

    def __init__(self) -> None:
        self.backend = LocalBackend()

    async def acquire(self, key: str, start: int) -> dict[str, int]:
        return await self.backend.acquire(key, start)

    async def release(self, key: str, grant: int, outcome: Outcome, retry_after: float | None) -> None:
        await self.backend.release(key, grant, outcome, retry_after)

    async def stats(self) -> dict[str, dict[str, int]]:
        return {key: s.as_dict() for key, s in self.backend.stats().items()}


class ActorBackend:
    """A worker-side limiter backend that asks the one actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def acquire(self, key: str, start: int) -> dict[str, int]:
        ref = self.actor.acquire.remote(key, start)
        try:
            return await ref
        except asyncio.CancelledError:
            _ray().cancel(ref)
            raise

    async def release(self, key: str, grant: int, outcome: Outcome, retry_after: float | None) -> None:
        await self.actor.release.remote(key, grant, outcome, retry_after)


def task_on_worker(spec: dict[str, Any], env: dict[str, str], actor: Any) -> dict[str, Any]:
    """Body of one Ray task: run the task in a temporary folder, return its record and artifacts."""

    async def main() -> dict[str, Any]:
        service = LimiterService(ActorBackend(actor))
        address = await service.start()
        try:
            with tempfile.TemporaryDirectory(prefix="kimicode-batch-") as tmp:
                task = TaskSpec(**spec)
                folder = Path(tmp) / "out" / task.id
                folder.mkdir(parents=True)
                outcome = await run_task(task, folder, Path(tmp) / "work", {**env, LIMITER_ENV: address})
                files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        finally:
            await service.close()
        return {"record": outcome.record, "files": files}

    return asyncio.run(main())


def _connect(ray: Any, address: str, options: BatchOptions) -> None:
    quiet: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False, "namespace": "kimicode-batch"}
    if address == "local":
        cpus = max(os.cpu_count() or 1, int(options.workers * options.num_cpus + 0.999))
        ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE,
            **quiet,
        )
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailable(f"cannot connect to the Ray cluster at {address}: {exc}") from exc


def check_reachable(specs: list[TaskSpec], nodes: list[dict[str, Any]], here: set[str]) -> str:
    """Why some task cannot run on these nodes ("" when all can): a local path is only reachable from a
    cluster whose every node is this machine."""
    remote = sorted({str(n.get("NodeManagerAddress")) for n in nodes if n.get("NodeManagerAddress") not in here})
    if not remote:
        return ""
    for spec in specs:
        local = [spec.repo] if not is_url(spec.repo) else []
        local += spec.images
        if local:
            return (
                f"task {spec.id}: {local[0]} is a path on this machine, but the Ray cluster has nodes elsewhere "
                f"({', '.join(remote[:3])}); give the repository as a git URL the workers can reach"
            )
    return ""


def _worker_env(config: Config) -> dict[str, str]:
    """The endpoint the agents use: the driver's, since workers need not share its config files."""
    env = {"KIMI_BASE_URL": config.base_url, "KIMI_MODEL": config.model}
    if config.api_key:
        env["KIMI_API_KEY"] = config.api_key
    return env


async def run_ray(specs: list[TaskSpec], options: BatchOptions, reporter: Reporter, config: Config) -> BatchSummary:
    ray = _ray()
    address = options.ray_address or "auto"
    _connect(ray, address, options)
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        here = {"127.0.0.1", "localhost", ray.util.get_node_ip_address()}
        problem = check_reachable(specs, nodes, here)
        if problem:
            raise RayUnavailable(problem)
        if options.workers < 1:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            options.workers = max(1, int(cpus // max(options.num_cpus, 0.01)))
        return await _schedule(ray, specs, options, reporter, config)
    finally:
        ray.shutdown()


async def _schedule(
    ray: Any, specs: list[TaskSpec], options: BatchOptions, reporter: Reporter, config: Config
) -> BatchSummary:
    schedule = Schedule(specs, options, reporter, "ray")
    actor = ray.remote(LimiterActor).options(num_cpus=0, max_concurrency=1000).remote()
    remote = ray.remote(task_on_worker).options(num_cpus=options.num_cpus, max_retries=0)
    env = {**_worker_env(config), **options.agent_env}
    running: dict[Any, TaskSpec] = {}
    interrupted = False
    try:
        while True:
            while len(running) < options.workers and (spec := schedule.next()) is not None:
                running[remote.remote(spec.as_dict(), env, actor)] = spec
            if not running:
                break
            ready, _ = await asyncio.to_thread(ray.wait, list(running), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                spec = running.pop(ref)
                schedule.record(_collect(ray, ref, spec, options.out))
    except asyncio.CancelledError:
        interrupted = True
        for ref in running:
            ray.cancel(ref, force=True)
    try:
        stats = await asyncio.wait_for(actor.stats.remote(), 10)
    except Exception:  # noqa: BLE001 - the summary can do without the limiter's figures
        stats = {}
    return schedule.close(summarize(stats), interrupted)


def _collect(ray: Any, ref: Any, spec: TaskSpec, out: Path) -> dict[str, Any]:
    """Write a finished Ray task's artifacts to OUT/<id>/ and return its record."""
    folder = fresh_task_dir(out, spec.id)
    try:
        value = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - the worker died or Ray lost the task: a result, not a crash of the batch
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        (folder / "patch.diff").write_text("")
        return {"id": spec.id, "status": "failed", "reason": f"ray: {first}", "result": "", "num_steps": 0,
                "usage": {}, "duration_ms": 0, "patch": f"{spec.id}/patch.diff"}
    for name, data in value["files"].items():
        (folder / Path(name).name).write_bytes(data)
    return dict(value["record"])
