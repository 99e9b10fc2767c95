"""Pixels taken from PyAV's decoded frames: a thumbnail to compare, a colour picture to send.

Invariants:
- A thumbnail is a fixed grid of Y, U and V means (``video_scenes.LUMA_GRID`` and ``CHROMA_GRID``),
  whatever the frame's size or pixel format, so the thumbnails of any two frames compare.
- Thumbnails are sampled from the decoder's own planes (no colour conversion) where those are planar
  8-bit; other formats get a small 8-bit copy first.
- A colour picture is upright (the stream's rotation applied) and no larger than the token size it may be
  sent at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kimicode.vision.images import fit_within_tokens
from kimicode.vision.video_scenes import CHROMA_GRID, LUMA_GRID, Thumb

if TYPE_CHECKING:
    import numpy as np

__all__ = ["colour", "thumb"]

# Pixel formats whose planes are 8-bit Y, U, V (or Y alone) and can be sampled as they are.
_PLANAR_8BIT = {
    "gray", "yuv410p", "yuv411p", "yuv420p", "yuv422p", "yuv440p", "yuv444p",
    "yuvj411p", "yuvj420p", "yuvj422p", "yuvj440p", "yuvj444p",
}  # fmt: skip


def thumb(frame: Any) -> Thumb:
    """Means over a grid of Y, U and V, from samples of the decoder's planes as they are."""
    if frame.format.name not in _PLANAR_8BIT:
        # Deeper or packed formats (10-bit, RGB): a small 8-bit copy first.
        frame = frame.reformat(width=LUMA_GRID[0] * 4, height=LUMA_GRID[1] * 4, format="yuv444p")
    import numpy as np

    grids = (LUMA_GRID, CHROMA_GRID, CHROMA_GRID)
    return np.concatenate([_plane_thumb(plane, grid).ravel() for plane, grid in zip(frame.planes, grids, strict=False)])  # gray: one plane


def _plane_thumb(plane: Any, grid: tuple[int, int]) -> np.ndarray:
    import cv2
    import numpy as np

    width, height, line = plane.width, plane.height, plane.line_size
    rows = np.frombuffer(plane, np.uint8, count=line * height).reshape(height, line)
    # About four samples a cell each way: reading every pixel of a 1080p plane costs more than decoding.
    step_y, step_x = max(1, height // (grid[1] * 4)), max(1, width // (grid[0] * 4))
    sample = np.ascontiguousarray(rows[step_y // 2 : height : step_y, step_x // 2 : width : step_x])
    return cv2.resize(sample, grid, interpolation=cv2.INTER_AREA)


def colour(frame: Any, max_tokens: int, reformatter: Any) -> np.ndarray:
    """The frame upright in BGR, scaled by FFmpeg straight to the largest size that may be sent."""
    import numpy as np

    rotation = round(float(getattr(frame, "rotation", 0) or 0)) % 360  # counter-clockwise, for display
    sideways = rotation in (90, 270)
    width, height = (frame.height, frame.width) if sideways else (frame.width, frame.height)
    target_w, target_h = fit_within_tokens(width, height, max_tokens)
    if sideways:
        target_w, target_h = target_h, target_w
    # One reformatter for all frames: it keeps FFmpeg's scaler between calls (building one costs ~6 ms).
    pixels = reformatter.reformat(frame, width=target_w, height=target_h, format="bgr24", interpolation="AREA")
    pixels = pixels.to_ndarray()
    if rotation in (90, 180, 270):
        pixels = np.ascontiguousarray(np.rot90(pixels, k=rotation // 90))
    return pixels
