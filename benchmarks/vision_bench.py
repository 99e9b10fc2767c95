"""Timing of the seeing path: screenshots (warm and cold) and video frame sampling.

Run from the repository root:  python benchmarks/vision_bench.py [--video PATH] [--runs N] [--video-only]
Prints medians and their ratio to the targets (warm screenshot <= 1.5 s, 60 s 1080p video <= 2 s for
32 frames). The generated video is MPEG-4 part 2; with ffmpeg on PATH it is also re-encoded as H.264
(libx264, default GOP) and as long-GOP VP8 (libvpx, one keyframe in 9999 frames), the formats people and
browsers record.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kimicode.vision.browser import Browser  # noqa: E402
from kimicode.vision.video import sample_video  # noqa: E402

WARM_SCREENSHOT_TARGET = 1.5
VIDEO_TARGET = 2.0

PAGE = """<!doctype html><html><head><style>
body { margin: 0; font: 16px system-ui, sans-serif } header { height: 80px; background: #123 }
main { display: grid; grid-template-columns: repeat(3, 1fr); gap: 24px; padding: 24px }
.card { height: 220px; border-radius: 12px; background: linear-gradient(135deg, #f80, #08f) }
</style></head><body><header></header><main>
""" + "".join(f'<div class="card"><h2>Card {i}</h2><p>Some text for card {i}.</p></div>' for i in range(9)) + """
</main></body></html>"""


def write_test_video(path: Path, seconds: int = 60, fps: int = 30) -> None:
    """1920x1080 with motion in every frame and a scene change every 10 s (MPEG-4 part 2)."""
    import cv2
    import numpy as np

    height, width = 1080, 1920
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.dstack([(cols // 8) % 256, (rows // 8) % 256, ((rows + cols) // 16) % 256]).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise SystemExit("cannot write the test video (OpenCV without an MPEG-4 encoder)")
    for index in range(seconds * fps):
        scene = index // (fps * 10)
        frame = np.roll(base, shift=index * 6, axis=1)
        frame[:, :, scene % 3] = 255 - frame[:, :, scene % 3]  # a different look per scene
        cv2.circle(frame, ((index * 11) % width, height // 2), 90, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()


def reencoded(source: Path) -> list[Path]:
    """H.264 and long-GOP VP8 copies of ``source`` (none without ffmpeg)."""
    if shutil.which("ffmpeg") is None:
        print("(ffmpeg not found: H.264 and VP8 variants skipped)")
        return []
    variants = {
        "video-60s-1080p-h264.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
        "video-60s-1080p-vp8-longgop.webm": ["-c:v", "libvpx", "-g", "9999", "-b:v", "4M", "-deadline", "realtime", "-cpu-used", "8"],
    }
    out: list[Path] = []
    for name, codec in variants.items():
        target = source.with_name(name)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)], check=True)
        out.append(target)
    return out


def median_of(samples: list[float]) -> str:
    return f"median {statistics.median(samples):.3f} s (min {min(samples):.3f}, max {max(samples):.3f}, n={len(samples)})"


async def bench_screenshots(page: Path, runs: int) -> tuple[list[float], list[float]]:
    cold: list[float] = []
    for _ in range(max(2, runs // 2)):
        browser = Browser()
        start = time.perf_counter()
        await browser.screenshot(str(page))
        cold.append(time.perf_counter() - start)
        await browser.close()
    warm: list[float] = []
    browser = Browser()
    await browser.screenshot(str(page))  # launch outside the timing
    for _ in range(runs):
        start = time.perf_counter()
        await browser.screenshot(str(page), width=1280, height=800)
        warm.append(time.perf_counter() - start)
    await browser.close()
    return warm, cold


def bench_video(video: Path, runs: int) -> tuple[list[float], int]:
    times: list[float] = []
    frames = 0
    for _ in range(runs):
        start = time.perf_counter()
        frames = len(sample_video(video, max_frames=32))
        times.append(time.perf_counter() - start)
    return times, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="time this video instead of a generated 60 s 1080p one")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--video-only", action="store_true", help="skip the screenshot timings")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        if not args.video_only:
            page = Path(temp) / "page.html"
            page.write_text(PAGE)
            warm, cold = asyncio.run(bench_screenshots(page, args.runs))
            print(f"screenshot 1280x800, warm browser:  {median_of(warm)}")
            print(f"  ratio to the {WARM_SCREENSHOT_TARGET} s target: {statistics.median(warm) / WARM_SCREENSHOT_TARGET:.2f}")
            print(f"screenshot, cold launch included:   {median_of(cold)}")
            print(f"  cold / warm: {statistics.median(cold) / statistics.median(warm):.1f}x")

        videos = [args.video] if args.video is not None else []
        if not videos:
            source = Path(temp) / "video-60s-1080p.mp4"
            print("writing a 60 s 1080p test video ...", flush=True)
            write_test_video(source)
            videos = [source, *reencoded(source)]
        for video in videos:
            times, frames = bench_video(video, max(3, args.runs // 2))
            print(f"video sampling ({video.name}, {frames} frames): {median_of(times)}")
            print(f"  ratio to the {VIDEO_TARGET} s target: {statistics.median(times) / VIDEO_TARGET:.2f}")


if __name__ == "__main__":
    main()
