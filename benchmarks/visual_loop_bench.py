"""Timing of the visual loop: comparing a capture with a reference, and a capture after five actions.

Run from the repository root:  python benchmarks/visual_loop_bench.py [--runs N]
Prints medians and their ratio to the targets: compare two 1280x800 captures (decode, score, regions and
diff image) <= 100 ms; a 5-action screenshot with a warm browser <= 1.5 s, each with a verdict. Also prints
the same SSIM computed in pure NumPy against OpenCV, the measurement behind using OpenCV: both get the same
float32 320x200 arrays (prepared outside the timing), the same 7x7 Gaussian window (sigma 1.5, reflected
border) and return the mean; they run alternately in one loop, and both scores are printed to show they
compute the same thing. The screenshot with and without actions alternate too, after a warm-up capture.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import check_runs, machine_line, target_line  # noqa: E402
from kimicode.vision.browser import Browser  # noqa: E402

COMPARE_TARGET = 0.100
ACTIONS_TARGET = 1.5

PAGE = """<!doctype html><html><head><style>
body { margin: 0; font: 16px system-ui, sans-serif } header { height: 80px; background: #123; display: flex;
  align-items: center; gap: 16px; padding: 0 24px } header button { padding: 8px 16px }
#menu { display: none; position: absolute; top: 80px; right: 24px; width: 220px; background: #fff;
  box-shadow: 0 4px 16px #0003; transition: opacity .15s } #menu.open { display: block }
main { display: grid; grid-template-columns: repeat(3, 1fr); gap: 24px; padding: 24px }
.card { height: 220px; border-radius: 12px; background: linear-gradient(135deg, #f80, #08f); padding: 16px }
.card:hover { outline: 4px solid #000 } input { font-size: 16px }
</style></head><body><header><input id="q" placeholder="Search">
<button id="go" onclick="document.getElementById('menu').classList.toggle('open')">Menu</button></header>
<div id="menu"><a href="#">Pricing</a><br><a href="#">About</a></div><main>
""" + "".join(f'<div class="card" id="c{i}"><h2>Card {i}</h2><p>Some text for card {i}.</p></div>' for i in range(9)) + """
</main></body></html>"""

ACTIONS = [
    {"type": "#q", "text": "shoes"},
    {"press": "Enter"},
    {"click": "Menu"},
    {"hover": "#c4"},
    {"scroll_to": "#c7"},
]


def median_of(samples: list[float], unit: float = 1.0, suffix: str = "s") -> str:
    scaled = [s / unit for s in samples]
    return (
        f"median {statistics.median(scaled):.3f} {suffix} "
        f"(min–max {min(scaled):.3f}–{max(scaled):.3f}, n={len(scaled)})"
    )


def numpy_ssim(a: object, b: object) -> float:
    """Mean SSIM in pure NumPy with the window kimicode uses (7x7 Gaussian, sigma 1.5, separable, reflected
    border as OpenCV's default), for comparison only."""
    import numpy as np

    taps = np.exp(-((np.arange(7, dtype=np.float32) - 3) ** 2) / (2 * 1.5**2))
    taps /= taps.sum()

    def blur(x: np.ndarray) -> np.ndarray:
        pad = np.pad(x, ((3, 3), (3, 3), (0, 0)), mode="reflect")
        rows = sum(taps[k] * pad[k : k + x.shape[0]] for k in range(7))
        return sum(taps[k] * rows[:, k : k + x.shape[1]] for k in range(7))

    x, y = np.asarray(a, np.float32), np.asarray(b, np.float32)
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean())


async def capture_pair(folder: Path) -> tuple[bytes, bytes, list[float], list[float]]:
    from kimicode.vision.actions import parse_actions

    page = folder / "page.html"
    page.write_text(PAGE)
    moved = folder / "moved.html"
    moved.write_text(PAGE.replace("gap: 24px; padding: 24px", "gap: 40px; padding: 24px 60px"))
    browser = Browser()
    try:
        [first] = await browser.screenshot(str(page))  # launch outside the timing
        [second] = await browser.screenshot(str(moved))
        actions = parse_actions(ACTIONS)
        timings: list[float] = []
        plain: list[float] = []
        for _ in range(RUNS):
            start = time.perf_counter()
            await browser.screenshot(str(page))
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            await browser.screenshot(str(page), actions=actions)
            timings.append(time.perf_counter() - start)
        return bytes(first), bytes(second), timings, plain
    finally:
        await browser.close()


def bench_compare(first: bytes, second: bytes, runs: int) -> tuple[list[float], list[float], float]:
    import cv2

    from kimicode.vision.compare import compare_images, decode_png, render_diff

    cv2.setNumThreads(1)  # one core: CPU time then tells what an idle machine's wall time would be
    total: list[float] = []
    cpu: list[float] = []
    score = 0.0
    for round_number in range(runs + 1):  # round 0 warms up
        start, start_cpu = time.perf_counter(), time.process_time()
        capture, reference = decode_png(first), decode_png(second)
        comparison = compare_images(capture, reference)
        render_diff(capture, comparison)
        if round_number:
            total.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        score = comparison.similarity
    return total, cpu, score


def ssim_pair(first: bytes, second: bytes, runs: int) -> tuple[list[float], list[float], float, float]:
    """OpenCV's and NumPy's SSIM on the same inputs, alternating; their times and their scores."""
    import cv2
    import numpy as np

    from kimicode.vision.compare import _ssim_map, decode_png

    a = cv2.resize(decode_png(first), (320, 200), interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(decode_png(second), (320, 200), interpolation=cv2.INTER_AREA).astype(np.float32)
    opencv: list[float] = []
    numpy_only: list[float] = []
    opencv_score = numpy_score = 0.0
    for round_number in range(runs + 1):  # round 0 warms up
        start = time.perf_counter()
        opencv_score = float(_ssim_map(a, b).mean())
        middle = time.perf_counter()
        numpy_score = numpy_ssim(a, b)
        end = time.perf_counter()
        if round_number:
            opencv.append(middle - start)
            numpy_only.append(end - middle)
    return opencv, numpy_only, opencv_score, numpy_score


RUNS = 7


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    RUNS = check_runs(parser.parse_args().runs)
    with tempfile.TemporaryDirectory() as temp:
        first, second, actions, plain = asyncio.run(capture_pair(Path(temp)))
    total, cpu, score = bench_compare(first, second, RUNS * 3)
    opencv_only, numpy_only, opencv_score, numpy_score = ssim_pair(first, second, RUNS * 3)
    print(f"compare 1280x800 vs 1280x800 (decode, score, regions, diff PNG): {median_of(total, 1e-3, 'ms')}")
    print(f"  CPU time (one thread): {median_of(cpu, 1e-3, 'ms')}; similarity {score:.2f}")
    print(f"  SSIM alone at 320x200, same inputs and window: OpenCV {median_of(opencv_only, 1e-3, 'ms')}, "
          f"score {opencv_score:.4f}")
    print(f"                                                 NumPy  {median_of(numpy_only, 1e-3, 'ms')}, "
          f"score {numpy_score:.4f}")
    print(f"screenshot after 5 actions (type, press, click, hover, scroll_to), warm: {median_of(actions)}")
    print(f"  the same screenshot without actions: {median_of(plain)} "
          f"(the actions add {statistics.median(actions) - statistics.median(plain):.3f} s)")
    print(target_line("compare (median)", statistics.median(total) * 1000, COMPARE_TARGET * 1000, "ms", digits=0))
    print(target_line("screenshot after 5 actions, warm (median)", statistics.median(actions), ACTIONS_TARGET, "s",
                      digits=2))
    print(machine_line())


if __name__ == "__main__":
    main()
