"""Git checkpoints: GitPython's import cost, one git command through kimicode's runner (GitPython's command
layer) vs a bare subprocess, and snapshot/undo timings.

Run: python benchmarks/checkpoints.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kimicode.vcs.checkpoints import Checkpoints  # noqa: E402

FILES = 2000
ROUNDS = 7


def import_gitpython_ms() -> float:
    code = "import time; t = time.perf_counter(); import git; print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
            for _ in range(ROUNDS)]
    return statistics.median(runs)


def git_call_ms(repo: Path) -> float:
    runs = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, check=True)
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def runner_call_ms(repo: Path) -> tuple[float, float]:
    """(kimicode's run_git, bare subprocess.run) medians for the same command, interleaved against noise."""
    from kimicode.vcs.git import run_git

    run_git("rev-parse", "--show-toplevel", cwd=repo, error=RuntimeError)  # GitPython imported and warm
    ours, bare = [], []
    for _ in range(ROUNDS * 5):
        start = time.perf_counter()
        run_git("rev-parse", "--show-toplevel", cwd=repo, error=RuntimeError)
        ours.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, check=True)
        bare.append((time.perf_counter() - start) * 1000)
    return statistics.median(ours), statistics.median(bare)


def make_repo(root: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    for i in range(FILES):
        folder = root / f"pkg{i % 40}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{i}.py").write_text(f"value = {i}\n" * 50)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, check=True, env=env)


def main() -> None:
    print(f"import git (GitPython)         {import_gitpython_ms():7.1f} ms  (paid once at start-up if imported)")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make_repo(repo)
        print(f"one git subprocess (rev-parse) {git_call_ms(repo):7.1f} ms")
        ours, bare = runner_call_ms(repo)
        print(f"  through kimicode's run_git   {ours:7.1f} ms  (bare subprocess {bare:.1f} ms, ratio {ours / bare:.2f})")
        snapshots, undos = [], []
        for n in range(ROUNDS):
            checkpoints = Checkpoints(repo, f"bench-{n}")
            start = time.perf_counter()
            checkpoints.snapshot("before turn")
            snapshots.append((time.perf_counter() - start) * 1000)
            for i in range(5):
                (repo / f"pkg{i}" / f"mod{i}.py").write_text("changed\n")
            (repo / f"new{n}.py").write_text("new\n")
            start = time.perf_counter()
            checkpoints.undo()
            undos.append((time.perf_counter() - start) * 1000)
        print(f"snapshot, {FILES} tracked files   {statistics.median(snapshots):7.1f} ms")
        print(f"undo of 6 changed files        {statistics.median(undos):7.1f} ms")


if __name__ == "__main__":
    main()
