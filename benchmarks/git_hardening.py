"""The cost of running git as data: a checkpoint with the hardened layer vs the plain one it replaced, and
the control-file fingerprint the bash tool takes before and after each command.

Medians with min–max of interleaved runs (hardened, plain, hardened, ...) after a warm-up, against one
repository of FILES files, each round changing one file so that every snapshot makes a new checkpoint.
No target is set for this.

Run: python benchmarks/git_hardening.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Stats, machine_line, stats  # noqa: E402
from kimicode.vcs import git as layer  # noqa: E402
from kimicode.vcs.checkpoints import Checkpoints  # noqa: E402
from kimicode.vcs.gitdrivers import RACY_SECONDS  # noqa: E402
from kimicode.vcs.gitwatch import _gitlink_cache, fingerprint  # noqa: E402

FILES = 2000
ROUNDS = 9
# What every command carried before the hardening.
PLAIN_CONFIG = ["-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "core.hooksPath=/dev/null",
                "-c", "core.quotePath=false"]


def _plain(args: tuple[str, ...], cwd: Path, env: dict[str, str], _layer: Any) -> tuple[dict[str, str], list[str]]:
    return {**layer.IDENTITY, "GIT_OPTIONAL_LOCKS": "0", **env}, PLAIN_CONFIG


def make_repo(root: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    for i in range(FILES):
        folder = root / f"pkg{i % 40}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{i}.py").write_text(f"VALUE = {i}\n" * 20)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, check=True, env=env)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def checkpoint_ms(repo: Path) -> tuple[Stats, Stats]:
    hardened_fn = layer._hardened
    checkpoints = Checkpoints(repo, "20261206-000000-bench0")
    checkpoints.snapshot("warm")
    hardened: list[float] = []
    plain: list[float] = []
    for i in range(ROUNDS):
        for kind, sink in (("hardened", hardened), ("plain", plain)):
            layer._hardened = hardened_fn if kind == "hardened" else _plain  # type: ignore[assignment]
            (repo / "pkg0" / "mod0.py").write_text(f"VALUE = {i} {kind}\n")
            sink.append(timed(lambda label=f"{kind} {i}": checkpoints.snapshot(label)))  # type: ignore[misc]
    layer._hardened = hardened_fn
    return stats(hardened), stats(plain)


def one_command_ms(repo: Path) -> tuple[Stats, Stats]:
    hardened_fn = layer._hardened
    hardened: list[float] = []
    plain: list[float] = []
    for _ in range(ROUNDS * 3):
        for kind, sink in (("hardened", hardened), ("plain", plain)):
            layer._hardened = hardened_fn if kind == "hardened" else _plain  # type: ignore[assignment]
            sink.append(timed(lambda: layer.run_git("rev-parse", "HEAD", cwd=repo, error=RuntimeError)))
    layer._hardened = hardened_fn
    return stats(hardened), stats(plain)


def fingerprint_ms(repo: Path) -> tuple[float, float]:
    """(index unchanged, index just rewritten) per fingerprint; the bash tool takes two per command."""
    fingerprint(repo)
    steady = statistics.median(timed(lambda: fingerprint(repo)) for _ in range(ROUNDS * 5))
    fresh = []
    for _ in range(ROUNDS):
        _gitlink_cache.clear()
        fresh.append(timed(lambda: fingerprint(repo)))
    return steady, statistics.median(fresh)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "repo"
        repo.mkdir()
        make_repo(repo)
        # Config files younger than RACY_SECONDS are listed on every command; a session's are older.
        time.sleep(RACY_SECONDS + 0.1)
        hardened, plain = checkpoint_ms(repo)
        print(f"checkpoint ({FILES} files): hardened {hardened.show(1.0, 1, 'ms')}, plain {plain.show(1.0, 1, 'ms')}, "
              f"{hardened.median - plain.median:+.1f} ms per checkpoint")
        hardened, plain = one_command_ms(repo)
        print(f"one git command: hardened {hardened.show(1.0, 1, 'ms')}, plain {plain.show(1.0, 1, 'ms')}, "
              f"{hardened.median - plain.median:+.1f} ms")
        steady, fresh = fingerprint_ms(repo)
        print(f"control-file fingerprint: {steady:.2f} ms (index unchanged), {fresh:.2f} ms (index re-read); "
              f"two per bash command")
    print(machine_line())


if __name__ == "__main__":
    main()
