"""Cost of appending one message to a session log: plain write-through vs fsync per record.

Run: python benchmarks/session_write.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kimicode.session.store import SessionStore  # noqa: E402

RECORDS = 300
ROUNDS = 5


def median_append_us(fsync: bool, payload: str) -> float:
    medians = []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as home:
            session = SessionStore(Path(home), fsync=fsync).create(Path(home), "kimi-k2.5", "agent")
            session.append_message({"role": "user", "content": "warm-up"})
            timings = []
            for i in range(RECORDS):
                start = time.perf_counter()
                session.append_message({"role": "tool", "tool_call_id": f"c{i}", "content": payload})
                timings.append(time.perf_counter() - start)
            session.close()
            medians.append(statistics.median(timings))
    return statistics.median(medians) * 1e6


def main() -> None:
    for label, payload in (("200 B message", "x" * 200), ("16 KB tool output", "y" * 16_000)):
        plain = median_append_us(False, payload)
        synced = median_append_us(True, payload)
        print(f"{label:18s}  write-through {plain:8.1f} us   fsync {synced:8.1f} us   ratio {synced / plain:6.1f}x")


if __name__ == "__main__":
    main()
