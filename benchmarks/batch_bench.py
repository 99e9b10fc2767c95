"""kimicode batch: throughput of the local pool and of Ray, and what Ray adds per task.

    python benchmarks/batch_bench.py [--tasks 100] [--latency 0.3] [--workers 1,4,16] [--engines local,ray]

N small tasks over 4 local git repositories against the scripted model server: each agent makes two model
turns of `--latency` seconds (createfile, then submit) and the check greps the file. Every run is the real
`kimicode batch` CLI with default settings, except the endpoint (the scripted server, no rate limit) and a
fresh OUT folder. Ray runs use one single-node cluster on 127.0.0.1 started here (`ray start --head`, as
many CPUs as the largest --workers), so cluster start-up is not counted; the driver's connect time is
measured with a batch that has nothing left to do and subtracted.

Prints wall time, tasks/min and the median task duration per engine and worker count, the speedup over
1 worker, and Ray's added cost per task: (Ray wall − local wall − connect) × workers / N.

Measured here (2 shared cores, load 4–7 from other jobs): local 24.5 / 51.6 / 53.2 tasks/min at 1 / 4 / 16
workers, Ray 20.9 / 53.8 / 53.9; Ray adds ≈ +0.4 s per task at 1 worker and nothing measurable at 4 and 16;
driver connect 2.9 s. Past 4 workers both are CPU-bound: each agent process costs ≈ 1.7 s of CPU to start
(the openai SDK import dominates), so 2 cores cap a batch near 50 tasks/min whatever the worker count.
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_batch(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, list[dict[str, object]], str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kimicode", "batch", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--engines", default="local,ray")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    engines = args.engines.split(",")

    root = Path(tempfile.mkdtemp(prefix="kimicode-batch-bench-"))
    home = root / "home"
    write_home_config(home, "")
    repos = make_repos(root, 4)
    tasks = root / "TASKS.jsonl"
    write_tasks(tasks, repos, args.tasks)
    rows: dict[tuple[str, int], dict[str, float]] = {}
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
            for engine in engines:
                for workers in worker_counts:
                    out = root / f"out-{engine}-{workers}"
                    extra = ["--ray", address] if engine == "ray" else []
                    wall, records, _ = run_batch(
                        [str(tasks), "--workers", str(workers), "--out", str(out), *extra], env, root
                    )
                    assert len(records) == args.tasks and all(r["status"] == "done" for r in records), records[:2]
                    median = statistics.median(int(r["duration_ms"]) for r in records) / 1000  # type: ignore[arg-type]
                    rows[(engine, workers)] = {"wall": wall, "median": median}
                    print(f"  {engine:5} {workers:3} workers: {wall:7.1f}s wall, "
                          f"{args.tasks / wall * 60:6.1f} tasks/min, median task {median:.2f}s", flush=True)
    finally:
        if head is not None:
            head.send_signal(signal.SIGTERM)
            try:
                head.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{args.tasks} tasks, 2 model turns of {args.latency * 1000:.0f} ms each, {os.cpu_count()} CPUs")
    print(f"{'engine':6} {'workers':>7} {'wall s':>8} {'tasks/min':>10} {'median task s':>14} {'speedup':>8}")
    for (engine, workers), row in rows.items():
        base = rows.get((engine, worker_counts[0]))
        speedup = base["wall"] / row["wall"] if base else float("nan")
        print(f"{engine:6} {workers:7d} {row['wall']:8.1f} {args.tasks / row['wall'] * 60:10.1f} "
              f"{row['median']:14.2f} {speedup:7.2f}×")
    if "ray" in engines and "local" in engines:
        print(f"\nRay driver connect (a batch with nothing to do): {connect:.2f}s")
        for workers in worker_counts:
            local, ray = rows[("local", workers)], rows[("ray", workers)]
            added = (ray["wall"] - local["wall"] - connect) * workers / args.tasks
            print(f"workers {workers:3d}: Ray/local wall {ray['wall'] / local['wall']:.2f}×, "
                  f"added per task {added * 1000:+.0f} ms (median task {ray['median'] - local['median']:+.2f}s)")


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
