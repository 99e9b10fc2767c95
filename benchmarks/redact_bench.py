"""Redaction's cost on a 1 MB tool result: what every session record and json line pays.

Two keys are registered (an API key and an MCP token); each row times ``redact`` on about 1 MB of text:
without any secret, with words that trigger the key-shape pattern, full of percent escapes, and with a key
in it plain, base64-encoded, or split over two lines. One warm-up round, then five rounds each running
every input once; medians with min–max. No target is set for this.

Run: python benchmarks/redact_bench.py
"""

from __future__ import annotations

import base64
import functools
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import interleaved, machine_line  # noqa: E402
from kimicode.security import redact as r  # noqa: E402

KEY = "sk-Zq8Jx2Lm4Np6Rt8Vw0Yb3Dc5Fg7Hk9"
RUNS = 5


def sample() -> dict[str, str]:
    rng = random.Random(1)
    alphabet = string.ascii_letters + string.digits + "    ./_"
    base = "".join("".join(rng.choice(alphabet) for _ in range(99)) + "\n" for _ in range(10486))
    middle = len(base) // 2
    return {
        "no secret": base,
        "key-shape words": base.replace("\n", " sk- bearer\n", 200),
        "percent escapes": base.replace(" ", "%20"),
        "key plain": base[:middle] + KEY + base[middle:],
        "key base64": base[:middle] + base64.b64encode(KEY.encode()).decode() + base[middle:],
        "key split": base[:middle] + KEY[:10] + "\n" + KEY[10:] + base[middle:],
    }


def main() -> None:
    r.register(KEY)
    r.register("mcp_token_0123456789abcdef")
    texts = sample()
    redacted: dict[str, int] = {}

    def timed(name: str) -> float:
        started = time.perf_counter()
        out = r.redact(texts[name])
        elapsed = time.perf_counter() - started
        redacted[name] = out.count(r.REDACTED)
        return elapsed

    got = interleaved({name: functools.partial(timed, name) for name in texts}, RUNS)
    for name, text in texts.items():
        print(f"{name:16s} {len(text) / 1e6:.2f} MB  {got[name].show(1000, 1, 'ms')}  ({redacted[name]} redacted)")
    print(machine_line())


if __name__ == "__main__":
    main()
