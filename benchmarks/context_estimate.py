"""estimate_tokens over a long history: what each step pays to decide on compaction.

One call warms up, then seven are timed per history length; medians with min–max. No target is set.

Run: python benchmarks/context_estimate.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import machine_line, stats  # noqa: E402
from kimicode.agent.context import estimate_tokens  # noqa: E402


def history(steps: int) -> list[dict]:
    messages: list[dict] = [{"role": "system", "content": "s" * 8000}]
    for i in range(steps):
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": "bash", "arguments": '{"command":"ls"}'}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": "output line\n" * 150})
    return messages


def main() -> None:
    for steps in (100, 500, 1500):
        messages = history(steps)
        tokens = estimate_tokens(messages)  # warm-up
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            estimate_tokens(messages)
            runs.append((time.perf_counter() - start) * 1000)
        print(f"{len(messages):5d} messages  {tokens:8d} tokens  {stats(runs).show(1.0, 2, 'ms')}")
    print(machine_line())


if __name__ == "__main__":
    main()
