"""One-shot start-up: what `kimicode -p` (one reply) imports and how long it takes, against the scripted server.

    python benchmarks/startup_profile.py [--runs 3] [--baseline REV]

Configurations, interleaved (one warm-up round, then `--runs` rounds):
- `python -m kimicode -p "say done"`, as foundation_bench.py runs it;
- the `kimicode` console script of the interpreter's environment (the same code: the checkout comes first on
  PYTHONPATH), to show what the entry point itself adds;
- `python -m kimicode` with no .pyc files for kimicode's own modules (a copy of the package without them,
  PYTHONDONTWRITEBYTECODE=1): each of its modules compiled from source on every start, as in a checkout run
  with PYTHONDONTWRITEBYTECODE=1 (foundation_bench.py measures that when the variable is set; an installed
  kimicode has its .pyc files). So the other configurations have the .pyc files written first (compileall),
  and this one is kept apart to say what compiling costs;
- with `--baseline REV`: `python -m kimicode` of that revision (from `git archive`, its .pyc written too).

Per run: wall (spawn → exit), CPU of the process (user + system), and the time from spawn to the first
request reaching the server. The target is the project's: one-shot wall ≤ 0.5 s (median of the first
configuration). Then one more run with `-X importtime`, not timed: the 15 imports with the largest
cumulative time among those kimicode's own code asked for (importtime's own overhead included), self time
per top-level package, and the module count.
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import check_runs, interleaved, machine_line, target_line  # noqa: E402
from tests.clirun import cli_env, write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM, Reply  # noqa: E402

ONE_SHOT_TARGET_S = 0.5
TASK = ["-p", "say done"]
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


class Sample:
    """One run's three figures; the harness takes one number per call, so each measure reads its own."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.first_request: list[float] = []


def one_run(fake: FakeLLM, env: dict[str, str], cwd: Path, argv: list[str]) -> tuple[float, float, float]:
    """Wall, CPU and spawn → first request, in seconds."""
    fake.script(Reply(content="done"))
    seen = len(fake.requests)
    started_at = time.time()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0 or out.strip() != "done":
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({os.waitstatus_to_exitcode(status)}): {err or out}")
    if len(fake.requests) != seen + 1:
        raise SystemExit(f"expected one request, the server saw {len(fake.requests) - seen}")
    return wall, usage.ru_utime + usage.ru_stime, fake.requests[-1].time - started_at


def checkout(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def import_profile(env: dict[str, str], cwd: Path, fake: FakeLLM) -> None:
    fake.script(Reply(content="done"))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "kimicode", *TASK], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)
    rows = [(int(m[2]), int(m[1]), len(m[3]) // 2, m[4]) for m in map(IMPORT_LINE.match, proc.stderr.splitlines())
            if m]
    # An import asked for by kimicode's own code: the entry right under a kimicode module in the tree (the
    # tree is printed children first, so a child's parent is the next line with a smaller depth).
    asked: list[tuple[int, str]] = []
    for i, (cumulative, _, depth, name) in enumerate(rows):
        parent = next((r[3] for r in rows[i + 1:] if r[2] < depth), None)
        if depth == 0 or (parent or "").startswith("kimicode"):
            asked.append((cumulative, name))
    print(f"import profile (-X importtime, one run, {len(rows)} modules; its own overhead included):")
    print("  the 15 largest imports kimicode's code asked for, by cumulative time:")
    for cumulative, name in sorted(asked, reverse=True)[:15]:
        print(f"    {cumulative / 1000:8.1f} ms  {name}")
    by_package: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    for _, own, _, name in rows:
        parts = name.split(".")
        package = ".".join(parts[:2]) if parts[0] == "kimicode" else parts[0]
        by_package[package] += own
        modules[package] += 1
    print("  self time by package (kimicode by subpackage):")
    for package, own in by_package.most_common(10):
        print(f"    {own / 1000:8.1f} ms  {package} ({modules[package]} modules)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="kept rounds (after one warm-up round)")
    parser.add_argument("--baseline", metavar="REV", help="also time this revision's one-shot (e.g. HEAD~3)")
    opts = parser.parse_args()
    check_runs(opts.runs)
    script = Path(sys.executable).with_name("kimicode")
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as fake:
        home, cwd, no_pyc_copy = Path(tmp) / "home", Path(tmp) / "ws", Path(tmp) / "no-pyc"
        cwd.mkdir()
        shutil.copytree(REPO / "kimicode", no_pyc_copy / "kimicode", ignore=shutil.ignore_patterns("__pycache__"))
        write_home_config(home, "")
        env = cli_env(home, fake.base_url)
        compileall.compile_dir(REPO / "kimicode", quiet=1)
        configs: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -m kimicode": ([sys.executable, "-m", "kimicode", *TASK], env),
        }
        if script.exists():
            configs["kimicode (console script)"] = ([str(script), *TASK], env)
        no_pyc = {**env, "PYTHONDONTWRITEBYTECODE": "1",
                  "PYTHONPATH": os.pathsep.join([str(no_pyc_copy), env.get("PYTHONPATH", "")])}
        configs["python -m kimicode, no .pyc"] = ([sys.executable, "-m", "kimicode", *TASK], no_pyc)
        if opts.baseline:
            old = checkout(opts.baseline, Path(tmp) / "baseline")
            compileall.compile_dir(old / "kimicode", quiet=1)
            old_env = {**env, "PYTHONPATH": os.pathsep.join([str(old), env.get("PYTHONPATH", "")])}
            configs[f"python -m kimicode at {opts.baseline}"] = ([sys.executable, "-m", "kimicode", *TASK], old_env)

        samples = {name: Sample() for name in configs}

        def measure(name: str) -> Callable[[], float]:
            argv, run_env = configs[name]

            def run() -> float:
                wall, cpu, first = one_run(fake, run_env, cwd, argv)
                samples[name].cpu.append(cpu)
                samples[name].first_request.append(first)
                return wall

            return run

        walls = interleaved({name: measure(name) for name in configs}, opts.runs)
        ms = 1000.0
        for name, wall in walls.items():
            kept = samples[name]
            cpu = sorted(kept.cpu[-opts.runs:])[opts.runs // 2]
            first = sorted(kept.first_request[-opts.runs:])[opts.runs // 2]
            print(f"{name:<40} wall {wall.show(ms, 0, 'ms')}; CPU median {cpu * ms:.0f} ms; "
                  f"first request at {first * ms:.0f} ms (median)")
        import_profile(env, cwd, fake)
    print(target_line("one-shot wall, python -m kimicode (median)", walls["python -m kimicode"].median,
                      ONE_SHOT_TARGET_S, "s", digits=2))
    print(machine_line())


if __name__ == "__main__":
    main()
