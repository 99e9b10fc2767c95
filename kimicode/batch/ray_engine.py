"""`kimicode batch --ray ADDRESS`: the same tasks as Ray tasks, for more than one machine.

Imported only with --ray (Ray is an optional extra: pip install "kimicode[ray]"). Ray actors
(kimicode/batch/ray_actor.py; one per node, with as many tasks at once as the node has CPUs for:
ray_fleet.py) each run many tasks, every task's agent a fork of the actor's warm process:
kimicode.batch.runner.run_task on some node, its checkout and artifacts in a temporary folder there; the
artifacts travel back with the result (workers share no file system with the driver), which writes them
to OUT/<id>/ and records the task. An actor that dies costs the tasks it was running a "ray: ..." result
and is replaced by a new one. The driver's schedule, budget and results file are the local pool's
(kimicode/batch/driver.py).

One rate limiter for the fleet: a Ray actor holds the AIMD state; each task actor starts the limiter
service on its own 127.0.0.1 with a backend that forwards to that actor, so the agent processes speak the
same protocol as in a local batch and only Ray's own channels cross machines.

ADDRESS: a cluster address (host:port, ray://host:port), "auto" (the cluster RAY_ADDRESS or `ray start`
points at), or "local" (start a private single-node cluster for this batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from kimicode.batch.driver import BatchOptions, BatchSummary, Reporter, Schedule
from kimicode.batch.limiter_service import LocalBackend, summarize
from kimicode.batch.ray_actor import TaskActor
from kimicode.batch.ray_fleet import Fleet, Member, Share, plan
from kimicode.batch.results import fresh_task_dir
from kimicode.batch.tasks import TaskSpec, is_url
from kimicode.config import Config
from kimicode.llm.limiter import Outcome

LOCAL_OBJECT_STORE = 100 * 1024 * 1024  # a private cluster moves only small artifacts
POLL_SECONDS = 0.2
CANCEL_GRACE = 10.0  # seconds for cancelled tasks and closing actors to clean up before they are killed


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
    limiter = ray.remote(LimiterActor).options(num_cpus=0, max_concurrency=1000).remote()
    # Ray never restarts or retries on its own: a lost actor's tasks are results, and the fleet starts a
    # new actor in its place.
    actor_class = ray.remote(TaskActor)

    def start(share: Share) -> Any:
        placement: dict[str, Any] = {}
        if share.node:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            placement["scheduling_strategy"] = NodeAffinitySchedulingStrategy(share.node, soft=True)
        # The actor holds the CPUs of all its tasks, so a node runs no more tasks than Ray tasks would.
        return actor_class.options(
            num_cpus=share.slots * max(options.num_cpus, 0.0), max_concurrency=share.slots, max_restarts=0,
            max_task_retries=0, **placement,
        ).remote(ActorBackend(limiter))

    def kill(handle: Any) -> None:
        with contextlib.suppress(Exception):
            ray.kill(handle)

    fleet = Fleet(plan(ray.nodes(), options.workers, options.num_cpus), start, kill)
    env = {**_worker_env(config), **options.agent_env}
    running: dict[Any, tuple[TaskSpec, Member]] = {}
    interrupted = False
    try:
        while True:
            while fleet.has_room() and (spec := schedule.next()) is not None:
                member = fleet.take()
                running[member.handle.run.remote(spec.as_dict(), env)] = (spec, member)
            if not running:
                break
            ready, _ = await asyncio.to_thread(ray.wait, list(running), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                spec, member = running.pop(ref)
                record, lost = _collect(ray, ref, spec, options.out)
                schedule.record(record)
                fleet.give_back(member, lost)
    except asyncio.CancelledError:
        interrupted = True
        for ref in running:  # the task's own clean-up runs: its agent's group is ended, its checkout removed
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        if running:
            await asyncio.to_thread(ray.wait, list(running), num_returns=len(running), timeout=CANCEL_GRACE)
    await _close(ray, fleet.started())
    try:
        stats = await asyncio.wait_for(limiter.stats.remote(), 10)
    except Exception:  # noqa: BLE001 - the summary can do without the limiter's figures
        stats = {}
    return schedule.close(summarize(stats), interrupted)


async def _close(ray: Any, actors: list[Any]) -> None:
    """End the actors' warm processes and limiter services, then the actors."""
    if actors:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(actor.close.remote() for actor in actors)), CANCEL_GRACE)
    for actor in actors:
        with contextlib.suppress(Exception):
            ray.kill(actor)


def _collect(ray: Any, ref: Any, spec: TaskSpec, out: Path) -> tuple[dict[str, Any], bool]:
    """Write a finished task's artifacts to OUT/<id>/; returns its record and whether Ray lost its actor."""
    folder = fresh_task_dir(out, spec.id)
    try:
        value = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - the worker died or Ray lost the task: a result, not a crash of the batch
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        (folder / "patch.diff").write_text("")
        lost = isinstance(exc, ray.exceptions.RayActorError)
        return {"id": spec.id, "status": "failed", "reason": f"ray: {first}", "result": "", "num_steps": 0,
                "usage": {}, "duration_ms": 0, "patch": f"{spec.id}/patch.diff"}, lost
    for name, data in value["files"].items():
        (folder / Path(name).name).write_bytes(data)
    return dict(value["record"]), False
