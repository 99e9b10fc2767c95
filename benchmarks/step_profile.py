"""Where a long run's per-step figure goes beyond its steady step: the first steps and the end.

    python benchmarks/step_profile.py [--runs 5] [--steps 100] [--sandbox off]

foundation_bench.py's judged line spreads what a 100-step loop pays once (the first permission check's
imports, the git watch's first look, the first command's own bubblewrap while the session sandbox starts,
the placeholders' removal and the exit) over its steps. This splits it by the scripted server's timestamps
(when it finished answer N, when request N+1 arrived): the start (process start to the first request), step 1,
step 2, steps 3–10 together, the steady step (median of steps 11 on), and the end (the last answer to the exit
the parent sees), next to a one-shot's start and end in the same round. Each value is a step's whole gap,
the command included. One warm-up round, then `--runs` rounds; medians with min–max. No target: it
says where the judged line's one-time share is, e.g. "step 1 − steady" over 100 steps is its cost per step.
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import check_runs, machine_line, stats  # noqa: E402
from tests.clirun import cli_env, write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM, Reply, ToolCall  # noqa: E402


def timed(fake: FakeLLM, cwd: Path, env: dict[str, str], args: list[str]) -> tuple[float, float]:
    """(started, exited) of one kimicode process, on the scripted server's clock."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kimicode", *args], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    exited = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"kimicode exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return started, exited


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="kept rounds (after one warm-up round)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--sandbox", default="", help="passed on as --sandbox (e.g. off); default: the default")
    opts = parser.parse_args()
    check_runs(opts.runs)
    if opts.steps < 11:
        raise SystemExit("--steps must be at least 11 (steps 11 on are the steady ones)")
    compileall.compile_dir(REPO / "kimicode", quiet=1)  # as an install has them (foundation_bench.py says why)
    rows: dict[str, list[float]] = {key: [] for key in (
        "one-shot: start to its request", "one-shot: answer to exit", "loop: start to its first request",
        "step 1", "step 2", "steps 3-10 (together)", "steady step (median of steps 11 on)",
        "loop: last answer to exit")}
    sandbox = ["--sandbox", opts.sandbox] if opts.sandbox else []
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as fake:
        home, cwd = Path(tmp) / "home", Path(tmp) / "ws"
        cwd.mkdir()
        write_home_config(home, "")
        env = cli_env(home, fake.base_url)
        for round_number in range(1 + opts.runs):
            fake.script(Reply(content="done"))
            started, exited = timed(fake, cwd, env, ["-p", "say done"])
            one = fake.requests[-1]
            fake.script(*[Reply(tool_calls=[ToolCall("bash", {"command": "true"})]) for _ in range(opts.steps)],
                        Reply(content="done"))
            loop_started, loop_exited = timed(
                fake, cwd, env, ["-p", "-y", "--max-steps", str(opts.steps + 5), *sandbox, "loop"])
            if not round_number:
                continue  # the warm-up: .pyc files, the file cache
            requests = fake.requests[-(opts.steps + 1):]
            gaps = [after.received - before.answered for before, after in zip(requests, requests[1:], strict=False)]
            for key, value in (
                ("one-shot: start to its request", one.received - started),
                ("one-shot: answer to exit", exited - one.answered),
                ("loop: start to its first request", requests[0].received - loop_started),
                ("step 1", gaps[0]),
                ("step 2", gaps[1]),
                ("steps 3-10 (together)", sum(gaps[2:10])),
                ("steady step (median of steps 11 on)", statistics.median(gaps[10:])),
                ("loop: last answer to exit", loop_exited - requests[-1].answered),
            ):
                rows[key].append(value)
    print(f"{opts.steps}-step loop of bash true, sandbox {opts.sandbox or 'on (default)'}; "
          "each step is the scripted server's gap, the command included")
    for key, samples in rows.items():
        print(f"{key:<40} {stats(samples).show(1000.0, 2, 'ms')}")
    steady = statistics.median(rows["steady step (median of steps 11 on)"])
    median = {key: statistics.median(samples) for key, samples in rows.items()}
    once = (median["step 1"] + median["step 2"] + median["steps 3-10 (together)"] - 9 * steady
            + median["loop: last answer to exit"] - median["one-shot: answer to exit"])
    print(f"{'first ten steps and the end beyond steady':<40} {once * 1000:.1f} ms once, "
          f"{once * 1000 / opts.steps:.2f} ms per step of the loop")
    print(machine_line())


if __name__ == "__main__":
    main()
