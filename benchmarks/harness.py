"""What every benchmark here does the same way: warm-up, interleaved runs, medians with their spread, and the
project's target printed with a verdict.

Interleaving (A B C, A B C, ... rather than A A A, B B B) puts the configurations compared under the same
load: on a shared machine a burst of someone else's work then hits all of them, not only the one that
happened to run at that moment. The warm-up round is run and thrown away: it pays for imports, .pyc files
and the file cache, which the rounds after it do not.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

MIN_RUNS = 3


@dataclass(frozen=True)
class Stats:
    """The samples of one measure, in the unit they were taken in."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def show(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        """`median 12.3 ms (min–max 11.0–14.2, n=5)`, each sample multiplied by ``scale``."""
        m, lo, hi = (f"{v * scale:.{digits}f}" for v in (self.median, self.low, self.high))
        suffix = f" {unit}" if unit else ""
        return f"median {m}{suffix} (min–max {lo}–{hi}, n={len(self.samples)})"


def stats(samples: list[float] | tuple[float, ...]) -> Stats:
    if not samples:
        raise ValueError("no samples")
    return Stats(tuple(samples))


def check_runs(runs: int) -> int:
    """Fewer than three runs give no spread worth the name; refuse them rather than print a 'median' of two."""
    if runs < MIN_RUNS:
        raise SystemExit(f"--runs must be at least {MIN_RUNS} (got {runs})")
    return runs


def interleaved(
    configs: Mapping[str, Callable[[], float]], runs: int, warmup: int = 1
) -> dict[str, Stats]:
    """Run each configuration once per round, ``warmup`` rounds thrown away, then ``runs`` rounds kept.

    Each callable returns one sample (seconds, bytes, a ratio: whatever the caller measures).
    """
    check_runs(runs)
    kept: dict[str, list[float]] = {name: [] for name in configs}
    for round_number in range(warmup + runs):
        for name, measure in configs.items():
            sample = measure()
            if round_number >= warmup:
                kept[name].append(sample)
    return {name: stats(samples) for name, samples in kept.items()}


async def interleaved_async(
    configs: Mapping[str, Callable[[], Awaitable[float]]], runs: int, warmup: int = 1
) -> dict[str, Stats]:
    """`interleaved` for measures that run on the caller's event loop."""
    check_runs(runs)
    kept: dict[str, list[float]] = {name: [] for name in configs}
    for round_number in range(warmup + runs):
        for name, measure in configs.items():
            sample = await measure()
            if round_number >= warmup:
                kept[name].append(sample)
    return {name: stats(samples) for name, samples in kept.items()}


def run_async(configs: Mapping[str, Callable[[], Awaitable[float]]], runs: int, warmup: int = 1) -> dict[str, Stats]:
    return asyncio.run(interleaved_async(configs, runs, warmup))


def verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


def target_line(label: str, value: float, target: float, unit: str, higher_is_better: bool = False,
                digits: int = 1) -> str:
    """`label: 12.3 ms, target ≤ 2.0 ms: MISS` (the median is what is held to the target)."""
    sign = "≥" if higher_is_better else "≤"
    return (f"{label}: {value:.{digits}f} {unit}, target {sign} {target:.{digits}f} {unit}: "
            f"{verdict(value, target, higher_is_better)}")


def machine_line() -> str:
    """The conditions the figures were taken under: cores and the load average at the end of the run."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)"
