"""Cost of appending one message to a session log: plain write-through vs fsync per record.

One warm-up round, then ROUNDS rounds alternating write-through and fsync; a round's sample is the median
of RECORDS appends to a fresh session. Prints medians of the rounds with min–max and the ratio. No target
is set for this.

Run: python benchmarks/session_write.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Stats, interleaved, machine_line  # noqa: E402
from kimicode.session.store import SessionStore  # noqa: E402

RECORDS = 300
ROUNDS = 5


def round_median_us(fsync: bool, payload: str) -> float:
    """One sample: the median append time over RECORDS appends to a fresh session."""
    with tempfile.TemporaryDirectory() as home:
        session = SessionStore(Path(home), fsync=fsync).create(Path(home), "kimi-k2.5", "agent")
        session.append_message({"role": "user", "content": "warm-up"})
        timings = []
        for i in range(RECORDS):
            start = time.perf_counter()
            session.append_message({"role": "tool", "tool_call_id": f"c{i}", "content": payload})
            timings.append(time.perf_counter() - start)
        session.close()
        return statistics.median(timings) * 1e6


def main() -> None:
    for label, payload in (("200 B message", "x" * 200), ("16 KB tool output", "y" * 16_000)):
        got: dict[str, Stats] = interleaved({
            "plain": lambda p=payload: round_median_us(False, p),  # type: ignore[misc]
            "fsync": lambda p=payload: round_median_us(True, p),  # type: ignore[misc]
        }, ROUNDS)
        ratio = got["fsync"].median / got["plain"].median
        print(f"{label:18s}  write-through {got['plain'].show(1.0, 1, 'µs')}")
        print(f"{'':18s}  fsync         {got['fsync'].show(1.0, 1, 'µs')}   ratio {ratio:6.1f}x")
    print(machine_line())

if __name__ == "__main__":
    main()
