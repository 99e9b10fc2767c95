"""Pairing captured frames with a reference (a design image or a screen recording) and comparing them.

An image reference taller than a frame is treated as the whole page: each frame is compared with the
slice of it at the frame's scroll position. A video reference is a recording of the page scrolling: its
frames' scroll positions are estimated (kimicode.vision.video.scroll_track) and each capture frame is
paired with the recorded frame nearest to its own scroll position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from kimicode.vision.compare import Comparison, compare_images, decode_png, load_reference
from kimicode.vision.errors import VisionError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["VIDEO_SUFFIXES", "FramePair", "compare_with_reference"]

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")


@dataclass
class FramePair:
    index: int  # which capture frame (0-based)
    capture: np.ndarray  # RGB pixels of the capture
    reference: np.ndarray  # the part of the reference it was compared with (capture-sized)
    comparison: Comparison
    source: str  # where in the reference: "" for a plain image, "rows 800-1600", "t=3.2s (scrollY≈790)"
    offset_y: int = 0  # capture pixels cut off the top of ``capture`` before comparing


def compare_with_reference(frames: Sequence[Any], path: Path, whole: bool = False) -> list[FramePair]:
    """One FramePair per frame that has a counterpart in the reference.

    ``frames`` are ScreenshotFrames (PNG bytes with ``scroll_y`` and ``scale``); ``whole`` compares each
    frame with the whole reference (element captures, full-page captures) instead of slicing it.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _against_video(frames, path)
    reference = load_reference(path)
    pairs: list[FramePair] = []
    for index, frame in enumerate(frames):
        capture = decode_png(bytes(frame))
        part, source = (reference, "") if whole else _slice(reference, capture, frame)
        if part is None:
            continue
        pairs.append(FramePair(index, capture, part, compare_images(capture, part), source))
    if not pairs:
        raise VisionError(f"the reference {path} ends above every captured frame: nothing to compare")
    return pairs


def _slice(reference: np.ndarray, capture: np.ndarray, frame: Any) -> tuple[np.ndarray | None, str]:
    """The rows of a page-tall reference that the frame shows; the whole reference when it is not taller."""
    ref_h, ref_w = reference.shape[:2]
    cap_h, cap_w = capture.shape[:2]
    per_css_px = ref_w / (cap_w / frame.scale)  # reference pixels per CSS pixel of the page
    frame_rows = round(cap_h / frame.scale * per_css_px)
    if ref_h <= frame_rows * 1.05:
        return (reference, "") if frame.scroll_y == 0 else (None, "")
    top = round(frame.scroll_y * per_css_px)
    if top >= ref_h - frame_rows // 4:
        return None, ""
    part = reference[top : top + frame_rows]
    return part, f"reference rows {top}-{top + part.shape[0]}"


def _against_video(frames: Sequence[Any], path: Path) -> list[FramePair]:
    from kimicode.vision.video import read_frame, scroll_track

    track = scroll_track(path)
    pairs: list[FramePair] = []
    decoded: dict[int, np.ndarray] = {}
    for index, frame in enumerate(frames):
        capture = decode_png(bytes(frame))
        css_width = capture.shape[1] / frame.scale
        # The recording shows the page at its own width: its pixels convert to CSS pixels by width.
        best = min(track, key=lambda sample: abs(sample.scroll * css_width / sample.width - frame.scroll_y))
        scroll_css = round(best.scroll * css_width / best.width)
        source = f"video t={best.time:.1f}s (scrollY≈{scroll_css})"
        if best.index not in decoded:
            decoded[best.index] = read_frame(path, best.index)
        residual = frame.scroll_y - best.scroll * css_width / best.width
        part, cut = _align(capture, decoded[best.index], residual, frame.scale)
        offset = capture.shape[0] - cut.shape[0] if residual < 0 else 0  # rows cut off the capture's top
        pairs.append(FramePair(index, cut, part, compare_images(cut, part), source, offset))
    return pairs


def _align(capture: np.ndarray, recorded: np.ndarray, residual_css: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The recorded frame and the capture cut to the rows both show, when the nearest recorded frame is
    ``residual_css`` page pixels above the capture (samples are a few dozen pixels apart)."""
    cap_rows = round(abs(residual_css) * scale)
    rec_rows = round(abs(residual_css) * recorded.shape[1] / (capture.shape[1] / scale))
    if cap_rows < 2 or cap_rows >= capture.shape[0] // 2:
        return recorded, capture
    if residual_css > 0:  # the capture is further down: its top rows are the recording's lower rows
        return recorded[rec_rows:], capture[: capture.shape[0] - cap_rows]
    return recorded[: recorded.shape[0] - rec_rows], capture[cap_rows:]
