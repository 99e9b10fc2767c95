"""kimicode batch: throughput of the local pool and of Ray, and what Ray adds per task.

    python benchmarks/batch_bench.py [--runs 3] [--tasks 16] [--latency 0.3] [--workers 4,16] [--engines local]
    python benchmarks/batch_bench.py --full     # 100 tasks at 1, 4 and 16 workers, local and Ray (about 30 min)
    python benchmarks/batch_bench.py --engines local,local-fresh   # warm forks against a fresh process per task

N small tasks over 4 local git repositories against the scripted model server: each agent makes two model
turns of `--latency` seconds (createfile, then submit) and the check greps the file. Every run is the real
`kimicode batch` CLI with default settings, except the endpoint (the scripted server, no rate limit) and a
fresh OUT folder. Ray runs use one single-node cluster on 127.0.0.1 started here (`ray start --head`, as
many CPUs as the largest --workers), so cluster start-up is not counted; the driver's connect time is
measured with a batch that has nothing left to do and subtracted. Each Ray batch starts its own task actors
and their warm processes (one per node, kimicode/batch/ray_fleet.py): that start-up is counted in its wall. ``local-fresh`` is the local pool with
KIMICODE_BATCH_WARM=0: each agent a fresh interpreter instead of a fork of the warm process.

A warm-up batch of 2 tasks runs first (thrown away); then `--runs` rounds, each running every engine and
worker count once, interleaved. Prints, per engine and worker count, medians with min–max of wall time and
tasks/min, the median task duration, the speedup over the first worker count, and the share of the ideal
(every worker busy with nothing but the model: ⌈N / workers⌉ × 2 × latency), with a verdict against the
target: ≥ 50% of ideal at 16 workers. For the local pool also the CPU per task of the batch's processes
(driver, warm process, agents, git, checks: the run's child-process CPU) and of the scripted server (this
process), and the share of ideal a CPU-bound batch could reach at best with every core free for it. With both engines: Ray's added cost per task,
(Ray wall − local wall − connect) × workers / N.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import Stats, check_runs, machine_line, stats, target_line  # noqa: E402
from kimicode.batch.warm import WARM_ENV  # noqa: E402
from tests.batch_script import make_repos, responder  # noqa: E402
from tests.clirun import cli_env, write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM  # noqa: E402


def write_tasks(path: Path, repos: list[Path], count: int) -> None:
    lines = [
        {"id": f"t{i:03d}", "task": f"BATCH-t{i:03d}: write done.txt", "repo": str(repos[i % len(repos)]),
         "check": f"grep -q t{i:03d} done.txt"}
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _cpu(who: int) -> float:
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def run_batch(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, list[dict[str, object]], str]:
    started = time.perf_counter()
    cpu_batch, cpu_here = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF)
    proc = subprocess.run([sys.executable, "-m", "kimicode", "batch", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
    # What the batch's processes (driver, warm process, agents, git, checks) and this process (the
    # scripted server's threads) used: the floor a CPU-bound batch cannot go below on this machine.
    LAST_CPU[:] = [_cpu(resource.RUSAGE_CHILDREN) - cpu_batch, _cpu(resource.RUSAGE_SELF) - cpu_here]
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = Path(args[args.index("--out") + 1])
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return wall, records, proc.stderr


def start_ray(env: dict[str, str], cpus: int, temp: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", f"--num-cpus={cpus}", "--include-dashboard=false", "--object-store-memory=100000000",
         f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    return head, f"127.0.0.1:{port}"


LAST_CPU: list[float] = [0.0, 0.0]  # CPU seconds of the last run_batch: the batch's processes, this process
IDEAL_SHARE_TARGET = 50.0  # percent of ideal, at TARGET_WORKERS
TARGET_WORKERS = 16


def ideal_per_minute(tasks: int, workers: int, latency: float) -> float:
    return tasks / (math.ceil(tasks / workers) * 2 * latency) * 60


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="kept rounds (after a warm-up batch)")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--workers", default="4,16")
    parser.add_argument("--engines", default="local")
    parser.add_argument("--full", action="store_true", help="100 tasks at 1, 4, 16 workers, local and Ray")
    args = parser.parse_args()
    check_runs(args.runs)
    if args.full:
        args.tasks, args.workers, args.engines = 100, "1,4,16", "local,ray"
    worker_counts = [int(w) for w in args.workers.split(",")]
    engines = args.engines.split(",")
    configs = [(engine, workers) for engine in engines for workers in worker_counts]

    root = Path(tempfile.mkdtemp(prefix="kimicode-batch-bench-"))
    home = root / "home"
    write_home_config(home, "")
    repos = make_repos(root, 4)
    tasks = root / "TASKS.jsonl"
    write_tasks(tasks, repos, args.tasks)
    warm = root / "WARM.jsonl"
    write_tasks(warm, repos, 2)
    walls: dict[tuple[str, int], list[float]] = {config: [] for config in configs}
    medians: dict[tuple[str, int], list[float]] = {config: [] for config in configs}
    cpus: dict[tuple[str, int], list[tuple[float, float]]] = {config: [] for config in configs}
    head = None
    try:
        with FakeLLM() as server:
            server.responder = responder(args.latency)
            env = cli_env(home, server.base_url, RAY_USAGE_STATS_ENABLED="0")
            address = ""
            connect = 0.0
            if "ray" in engines:
                temp = Path(f"/tmp/kbb{os.getpid()}")
                head, address = start_ray(env, max(worker_counts), temp)
                connect = _ray_connect_time(tasks, address, env, root)
            for number, engine in enumerate(engines):  # the warm-up: each engine once, thrown away
                warm_env = {**env, WARM_ENV: "0"} if engine == "local-fresh" else env
                extra = ["--ray", address] if engine == "ray" else []
                run_batch([str(warm), "--workers", "2", "--out", str(root / f"out-warm{number}"), *extra], warm_env, root)
            for round_number in range(args.runs):
                for engine, workers in configs:
                    out = root / f"out-{engine}-{workers}-{round_number}"
                    extra = ["--ray", address] if engine == "ray" else []
                    run_env = {**env, WARM_ENV: "0"} if engine == "local-fresh" else env
                    wall, records, _ = run_batch(
                        [str(tasks), "--workers", str(workers), "--out", str(out), *extra], run_env, root
                    )
                    assert len(records) == args.tasks and all(r["status"] == "done" for r in records), records[:2]
                    median = statistics.median(int(str(r["duration_ms"])) for r in records) / 1000
                    walls[(engine, workers)].append(wall)
                    cpus[(engine, workers)].append((LAST_CPU[0], LAST_CPU[1]))
                    medians[(engine, workers)].append(median)
                    print(f"  round {round_number + 1}: {engine:5} {workers:3} workers: {wall:7.1f}s wall, "
                          f"{args.tasks / wall * 60:6.1f} tasks/min, median task {median:.2f}s", flush=True)
    finally:
        if head is not None:
            head.send_signal(signal.SIGTERM)
            try:
                head.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)

    wall_s: dict[tuple[str, int], Stats] = {c: stats(v) for c, v in walls.items()}
    rate_s = {c: stats([args.tasks / w * 60 for w in v]) for c, v in walls.items()}
    print(f"\n{args.tasks} tasks, 2 model turns of {args.latency * 1000:.0f} ms each, {os.cpu_count()} CPUs, "
          f"{args.runs} rounds")
    for engine, workers in configs:
        base = wall_s[(engine, worker_counts[0])]
        ideal = ideal_per_minute(args.tasks, workers, args.latency)
        share = rate_s[(engine, workers)].median / ideal * 100
        print(f"{engine:5} {workers:3} workers: wall {wall_s[(engine, workers)].show(unit='s')}; "
              f"tasks/min {rate_s[(engine, workers)].show()}; median task {statistics.median(medians[(engine, workers)]):.2f}s; "
              f"speedup {base.median / wall_s[(engine, workers)].median:.2f}x; {share:.1f}% of ideal ({ideal:.0f}/min)")
    cores = os.cpu_count() or 1
    for engine, workers in configs:  # Ray's own processes are not children of the driver: local only
        if engine.startswith("local"):
            batch = stats([b / args.tasks for b, _ in cpus[(engine, workers)]])
            served = stats([h / args.tasks for _, h in cpus[(engine, workers)]])
            floor = statistics.median(b + h for b, h in cpus[(engine, workers)]) / cores
            best = min(100.0, math.ceil(args.tasks / workers) * 2 * args.latency / floor * 100) if floor else 100.0
            print(f"{engine:5} {workers:3} workers: CPU per task: batch processes {batch.show(1000, 0, 'ms')}, "
                  f"scripted server {served.median * 1000:.0f} ms; all {cores} cores busy with nothing else: "
                  f"≥ {floor:.1f}s wall, at most {best:.0f}% of ideal")
    for engine in engines:
        if TARGET_WORKERS in worker_counts:
            ideal = ideal_per_minute(args.tasks, TARGET_WORKERS, args.latency)
            share = rate_s[(engine, TARGET_WORKERS)].median / ideal * 100
            print(target_line(f"{engine}, {TARGET_WORKERS} workers: share of ideal (median)", share,
                              IDEAL_SHARE_TARGET, "%", higher_is_better=True))
    if "ray" in engines and "local" in engines:
        print(f"\nRay driver connect (a batch with nothing to do): {connect:.2f}s")
        for workers in worker_counts:
            local, ray = wall_s[("local", workers)].median, wall_s[("ray", workers)].median
            added = (ray - local - connect) * workers / args.tasks
            print(f"workers {workers:3d}: Ray/local wall {ray / local:.2f}x, added per task {added * 1000:+.0f} ms")
    print(machine_line())


def _ray_connect_time(tasks: Path, address: str, env: dict[str, str], root: Path) -> float:
    """A Ray batch whose every task is already finished: connecting, scheduling nothing, disconnecting."""
    out = root / "out-connect"
    out.mkdir()
    ids = [json.loads(line)["id"] for line in tasks.read_text().splitlines()]
    (out / "results.jsonl").write_text("".join(json.dumps({"id": i, "status": "done"}) + "\n" for i in ids))
    deadline = time.monotonic() + 60
    while True:  # the head node takes a few seconds before it accepts drivers
        try:
            times = [run_batch([str(tasks), "--out", str(out), "--ray", address], env, root)[0] for _ in range(3)]
            return statistics.median(times)
        except SystemExit:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


if __name__ == "__main__":
    main()
