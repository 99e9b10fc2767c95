"""The fallback scene scan through OpenCV (used when PyAV is missing or cannot read a file).

Tiny luma thumbnails of scan points are compared: every frame of a clip up to ``_MAX_DENSE_FRAMES``
frames; on longer ones a grid (four points per uniform sample), and each change seen between two grid points
that stands out against motion is then pinned to its exact frame by decoding only that stretch again. (A
change that motion hides between two grid points is missed: OpenCV cannot skip decoding work, and decoding
every frame of a long 1080p video takes longer than the whole pass may.)

Decoding dominates the cost, so the pass converts only the frames it keeps: with the colour conversion
switched off the decoder hands over its luma plane as it is (~0.4 ms at 1080p against ~2 ms for BGR).
Moving far ahead is a seek (the decoder restarts at the previous keyframe); a frame a little ahead is
cheaper to reach by ``grab()``-ing forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.vision.errors import VisionError
from kimicode.vision.video_scenes import (
    LUMA_GRID,
    Frame,
    Scan,
    difference,
    downscale,
    keep_tokens_for,
    uniform_indices,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["scan"]

_SEEK_GAP = 24  # frames: reach targets closer than this by grabbing forward instead of seeking
_MAX_DENSE_FRAMES = 300  # up to this many frames (10 s at 30 fps) every frame is compared
_SCAN_DENSITY = 4  # longer videos: grid points per uniform sample ...
_MAX_SCAN_POINTS = 128  # ... at most this many; each change seen between two is pinned to its frame
_MAX_PINNED_CHANGES = 64  # changes located exactly per video (a slideshow of flashes stays bounded)


def scan(path: Path, max_frames: int, max_fps: float, threshold: float, token_budget: int) -> Scan:
    """Thumbnails of the scan points and the kept frames in colour, through OpenCV."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VisionError(f"cannot read video {path}: not a video OpenCV can decode (try mp4, webm, mov)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if fps <= 0 or fps > 1000:
            fps = 25.0  # containers without a rate: timestamps are estimates
        if frame_count <= 0:
            frame_count = _count_frames(capture)
            capture.release()
            capture = cv2.VideoCapture(str(path))
        if frame_count <= 0:
            raise VisionError(f"cannot read video {path}: it has no decodable frames")

        duration = frame_count / fps
        uniform = uniform_indices(frame_count, min(max_frames, max(1, int(duration * max_fps))))
        result = Scan(fps=fps, uniform=uniform)
        with _quiet_opencv():
            _Scanner(capture, result, threshold, keep_tokens_for(token_budget, len(uniform))).run(frame_count)
    finally:
        capture.release()
    return result


def _count_frames(capture: Any) -> int:
    count = 0
    while capture.grab():
        count += 1
    return count


def _scan_indices(frame_count: int, uniform: list[int]) -> list[int]:
    """Every frame of a short clip; a grid (plus the uniform frames) over a long one."""
    if frame_count <= _MAX_DENSE_FRAMES:
        return list(range(frame_count))
    points = min(frame_count, max(len(uniform) * _SCAN_DENSITY, 2), _MAX_SCAN_POINTS)
    step = frame_count / points
    grid = {min(frame_count - 1, int(i * step)) for i in range(points)}
    return sorted(grid | set(uniform))


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV warns on every frame handed over unconverted ("treated as 8UC1"); that is the point here."""
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(level)


class _Scanner:
    """One pass over a video's scan points in order: a thumbnail of each, the kept frames in colour."""

    def __init__(self, capture: Any, result: Scan, threshold: float, keep_tokens: int) -> None:
        self.capture = capture
        self.result = result
        self.keep = set(result.uniform)
        self.threshold = threshold
        self.keep_tokens = keep_tokens
        self.position = 0  # index of the frame the next grab() decodes
        self.luma = True  # the decoder's own luma plane, until it turns out not to be one
        self.primed = False
        self.converting = True

    def run(self, frame_count: int) -> None:
        indices = _scan_indices(frame_count, self.result.uniform)
        previous: tuple[int, np.ndarray] | None = None
        pinned = 0
        recent: list[float] = []  # the latest grid-point differences
        for index in indices:
            thumb = self._visit(index)
            if thumb is None:
                continue  # frame counts in headers are often a little high; skip missing tail frames
            change = 0.0 if previous is None else difference(previous[1], thumb)
            gap = index - previous[0] if previous is not None else 0
            # Between grid points motion alone adds up; a cut stands out against what motion gives, so only
            # a jump of twice the usual and of the last grid step is looked into.
            typical = max(sorted(recent)[len(recent) // 2] if recent else 0.0, recent[-1] if recent else 0.0)
            if gap > 1:
                recent.append(change)
                del recent[:-16]
            if change >= self.threshold and change >= 2 * typical and gap > 1 and pinned < _MAX_PINNED_CHANGES:
                # Seen between two grid points: find the frame where it happens.
                pinned += 1
                self._pin(previous, index)  # type: ignore[arg-type]
                if index in self.keep:
                    self._visit(index)  # the pin moved the decoder; this frame is wanted too
            if index in self.keep or (change >= self.threshold and gap == 1):
                self._keep(index)
            previous = (index, thumb)

    def _pin(self, before: tuple[int, np.ndarray], after: int) -> None:
        """Decode (before, after] until the first frame that differs from the one before it; keep that one."""
        last = before[1]
        self._move_to(before[0] + 1)
        for index in range(before[0] + 1, after + 1):
            thumb = self._visit(index)
            if thumb is None:
                return
            if difference(last, thumb) >= self.threshold:
                self._keep(index)
                return
            last = thumb
        # A gradual change (a fade): no single frame to show.

    def _keep(self, index: int) -> None:
        if index not in self.result.colour:
            self.result.colour[index] = Frame(index, index / self.result.fps, self._colour())

    def _move_to(self, index: int) -> None:
        import cv2

        if index < self.position or index - self.position > _SEEK_GAP:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self.position = index
        else:
            while self.position < index and self.capture.grab():
                self.position += 1

    def _visit(self, index: int) -> np.ndarray | None:
        """Decode frame ``index``, record its thumbnail and return it (None when it cannot be decoded)."""
        import cv2
        import numpy as np

        self._move_to(index)
        if not self.capture.grab():
            return None
        self.position = index + 1
        plane = self._plane()
        if plane is None:
            return None
        height, width = plane.shape[:2]
        step = max(1, min(width // (LUMA_GRID[0] * 4), height // (LUMA_GRID[1] * 4)))
        thumb = cv2.resize(np.ascontiguousarray(plane[::step, ::step]), LUMA_GRID, interpolation=cv2.INTER_AREA).ravel()
        self.result.thumbs[index] = thumb
        return thumb

    def _plane(self) -> np.ndarray | None:
        """The current frame as one 8-bit plane: the decoder's luma, or grey from BGR where that fails."""
        import cv2
        import numpy as np

        if self.luma:
            if not self.primed:
                # The colour path must be set up before the first unconverted hand-over, or later
                # conversions of this capture fail.
                self.capture.retrieve()
                self.primed = True
            self._convert(False)
            ok, plane = self.capture.retrieve()
            if ok and plane is not None and plane.ndim == 2 and plane.dtype == np.uint8 and plane.size > 0:
                return plane
            self.luma = False  # another backend or pixel format: convert every frame instead
            self._convert(True)
        ok, pixels = self.capture.retrieve()
        if not ok or pixels is None:
            return None
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY) if pixels.ndim == 3 else pixels

    def _convert(self, on: bool) -> None:
        # Setting the property costs about as much as decoding a frame: only when it changes.
        import cv2

        if self.converting != on:
            self.capture.set(cv2.CAP_PROP_CONVERT_RGB, 1 if on else 0)
            self.converting = on

    def _colour(self) -> np.ndarray:
        """The frame last decoded, in colour, downscaled to what may be sent."""
        self._convert(True)
        ok, pixels = self.capture.retrieve()
        if not ok or pixels is None or pixels.ndim != 3:
            raise VisionError("cannot convert a decoded video frame to colour")
        return downscale(pixels, self.keep_tokens)

