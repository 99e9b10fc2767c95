"""Keystroke-to-screen latency of the REPL prompt: idle, and while a turn streams a long answer.

Spawns the real interactive kimicode in a pty against the scripted model server. Each sample types one
character that never occurs in the streamed text, waits until the terminal output shows it, and erases it
again. During the turn the server streams ~60 chunks a second. The first 5 keys of each state are a
warm-up and left out. Idle and streaming cannot be interleaved (one is the state the other's turn ends),
so they run one after the other. Prints medians with min–max, the 90th percentile, the ratio streaming /
idle, and a verdict against the target: ≤ 16 ms median while a turn streams (one frame at 60 Hz).

    python benchmarks/repl_keystroke.py [samples]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import machine_line, stats, target_line  # noqa: E402
from tests.clirun import write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM, Reply  # noqa: E402
from tests.replpty import CURSOR_POSITION_REQUEST, Repl  # noqa: E402

TARGET_MS = 16.0
WARM_UP_KEYS = 5
# Never in the streamed words nor on the bottom line. They take turns: when a key comes before the screen
# showed the previous one erased, the same key again would leave the screen as it was and draw nothing.
PROBES = "ZQXV"
BACKSPACE = "\x7f"


def read_until(repl: Repl, wanted: str, timeout: float = 5.0) -> float:
    """Seconds until ``wanted`` shows in the output; answers the prompt's cursor-position requests."""
    started = time.perf_counter()
    buffer = ""
    while time.perf_counter() - started < timeout:
        try:
            chunk = repl.child.read_nonblocking(65536, timeout=0.005)
        except Exception:  # noqa: BLE001 - pexpect.TIMEOUT: nothing yet
            continue
        buffer += chunk
        if CURSOR_POSITION_REQUEST in buffer:
            repl.child.send("\x1b[1;1R" * buffer.count(CURSOR_POSITION_REQUEST))
            buffer = buffer.replace(CURSOR_POSITION_REQUEST, "")
        if wanted in buffer:
            return time.perf_counter() - started
    raise TimeoutError(f"{wanted!r} never showed")


def drain(repl: Repl, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            chunk = repl.child.read_nonblocking(65536, timeout=0.01)
        except Exception:  # noqa: BLE001
            continue
        if CURSOR_POSITION_REQUEST in chunk:
            repl.child.send("\x1b[1;1R" * chunk.count(CURSOR_POSITION_REQUEST))


def samples(repl: Repl, count: int) -> list[float]:
    times = []
    for n in range(count):
        probe = PROBES[n % len(PROBES)]
        repl.send(probe)
        times.append(read_until(repl, probe))
        repl.send(BACKSPACE)
        drain(repl, 0.05)
    return times


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    # ~50 kB in 12-character chunks every 16 ms: it streams for over a minute, far longer than the samples take
    answer = " ".join(f"word{i}" for i in range(6000))
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as fake:
        home, workspace = Path(tmp) / "home", Path(tmp) / "ws"
        workspace.mkdir()
        write_home_config(home, "")
        fake.script(Reply(content=answer, chunk_size=12, chunk_delay=0.016))
        repl = Repl(home, workspace, fake.base_url)
        try:
            repl.wait_prompt()
            drain(repl, 1.0)
            idle = samples(repl, WARM_UP_KEYS + count)[WARM_UP_KEYS:]
            repl.send("stream a long answer\r")
            read_until(repl, "word200", timeout=20)
            streaming = samples(repl, WARM_UP_KEYS + count)[WARM_UP_KEYS:]
        finally:
            repl.close()
    for label, values in (("idle prompt", idle), ("while a turn streams", streaming)):
        ordered = sorted(values)
        p90 = ordered[int(len(ordered) * 0.9) - 1]
        print(f"{label:<22} {stats(values).show(1000, 1, 'ms')}   p90 {p90 * 1000:6.1f} ms")
    print(f"ratio streaming / idle (medians): {statistics.median(streaming) / statistics.median(idle):.2f}")
    print(target_line("while a turn streams (median)", statistics.median(streaming) * 1000, TARGET_MS, "ms"))
    print(machine_line())


if __name__ == "__main__":
    main()
