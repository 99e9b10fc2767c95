"""Git checkpoints: GitPython's import cost, one git command through kimicode's runner (GitPython's command
layer) vs a bare subprocess (interleaved, after a warm-up call), and snapshot/undo timings. Medians with
min–max; no target is set for these.

Run: python benchmarks/checkpoints.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Stats, machine_line, stats  # noqa: E402
from kimicode.vcs.checkpoints import Checkpoints  # noqa: E402

FILES = 2000
ROUNDS = 7


def import_gitpython_ms() -> Stats:
    code = "import time; t = time.perf_counter(); import git; print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
            for _ in range(ROUNDS)]
    return stats(runs)


def git_call_ms(repo: Path) -> Stats:
    runs = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, check=True)
        runs.append((time.perf_counter() - start) * 1000)
    return stats(runs)


def runner_call_ms(repo: Path) -> tuple[Stats, Stats]:
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
    return stats(ours), stats(bare)


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
    print(f"import git (GitPython)          {import_gitpython_ms().show(1.0, 1, 'ms')}  (paid once if imported)")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make_repo(repo)
        print(f"one git subprocess (rev-parse)  {git_call_ms(repo).show(1.0, 1, 'ms')}")
        ours, bare = runner_call_ms(repo)
        print(f"  through kimicode's run_git    {ours.show(1.0, 1, 'ms')}")
        print(f"  bare subprocess, alternating  {bare.show(1.0, 1, 'ms')}, ratio {ours.median / bare.median:.2f}")
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
        print(f"snapshot, {FILES} tracked files    {stats(snapshots).show(1.0, 1, 'ms')}")
        print(f"undo of 6 changed files         {stats(undos).show(1.0, 1, 'ms')}")
    print(machine_line())


if __name__ == "__main__":
    main()
