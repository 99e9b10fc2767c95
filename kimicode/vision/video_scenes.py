"""Where a video's scene changes, from thumbnails of its decoded frames, and which frames to show.

Both scanners (FFmpeg's decoder through PyAV, OpenCV as the fallback) hand over the same thing: a small
thumbnail of every frame they decoded, by frame number, and the kept frames in colour. A scene change is a
jump between two neighbouring frames (``is_jump``: past the threshold, or past half of it and standing out
against the motion around it); one that comes back within ``FLASH_SECONDS`` (a flash, a glitch, a frame
of something else) is a flash, not a cut: the frame it returns on is no change at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, TypeAlias

from kimicode.vision.images import DEFAULT_MAX_TOKENS, fit_within_tokens

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CHROMA_GRID",
    "FLASH_SECONDS",
    "LUMA_GRID",
    "STANDS_OUT",
    "Change",
    "Frame",
    "Scan",
    "Thumb",
    "choose",
    "difference",
    "downscale",
    "is_jump",
    "keep_tokens_for",
    "motion_around",
    "scene_changes",
    "uniform_indices",
]

FLASH_SECONDS = 0.25  # a change that reverts within this long is a flash
# A jump below the threshold (down to half of it) still counts when it is this many times the motion of
# the frames around it: a page change in a screen recording leaves most of the screen as it was.
STANDS_OUT = 3.0
LUMA_GRID = (32, 18)  # thumbnail cells (width, height) of the luma plane ...
CHROMA_GRID = (16, 9)  # ... and of each colour plane
# A thumbnail: uint8 cell means, the luma grid's then (when the scanner has colour) U's and V's, flat
# (864 bytes a frame: an hour at 30 fps is 93 MB).
Thumb: TypeAlias = "np.ndarray"
_LUMA_CELLS = LUMA_GRID[0] * LUMA_GRID[1]
_CHROMA_CELLS = CHROMA_GRID[0] * CHROMA_GRID[1]
_PLANE_STARTS = (0, _LUMA_CELLS, _LUMA_CELLS + _CHROMA_CELLS)


@dataclass
class Frame:
    index: int  # frame number, in display order
    time: float  # seconds from the first frame
    pixels: np.ndarray  # BGR, already downscaled to the largest per-frame size that may be sent
    change: float = 0.0  # thumbnail difference from the frame before it (scene changes only)


@dataclass
class Scan:
    """What a scanner found: the uniform samples, every decoded frame's thumbnail, the frames in colour."""

    fps: float
    uniform: list[int]
    thumbs: dict[int, Thumb] = field(default_factory=dict)
    colour: dict[int, Frame] = field(default_factory=dict)
    # Changes known only to within a frame: the frame before was not decoded (it is the previous one's).
    approximate: set[int] = field(default_factory=set)


@dataclass
class Change:
    index: int  # the first frame of the new picture
    strength: float
    flash: bool  # it goes back to what was before within FLASH_SECONDS


def difference(first: Thumb, second: Thumb) -> float:
    """How far apart two thumbnails are: the largest mean absolute difference of any plane (0..255).

    Per plane, so a cut between two pictures of the same brightness but other colours still counts.
    """
    import numpy as np

    gaps = np.abs(first.astype(np.int32) - second)
    if gaps.size == _LUMA_CELLS:
        return float(gaps.mean())
    sums = np.add.reduceat(gaps, _PLANE_STARTS)
    return float(max(sums[0] / _LUMA_CELLS, sums[1] / _CHROMA_CELLS, sums[2] / _CHROMA_CELLS))


def motion_around(steps: list[float], order: list[int], k: int) -> float:
    """The difference a frame's worth of motion makes around step ``k`` (between ``order[k]`` and the next):
    the mean of the two steps on each side, each over the frames it spans."""
    around = [steps[j] / (order[j + 1] - order[j]) for j in (k - 2, k - 1, k + 1, k + 2) if 0 <= j < len(steps)]
    return sum(around) / len(around) if around else 0.0


def is_jump(strength: float, frames: int, motion: float, threshold: float) -> bool:
    """A change of picture over ``frames`` frames: past the threshold, or past half of it and standing out
    against what the motion around it would give over as many frames."""
    return strength >= threshold or (strength >= threshold / 2 and strength >= STANDS_OUT * motion * frames)


def scene_changes(scan: Scan, threshold: float, window: int) -> list[Change]:
    """Jumps between neighbouring decoded frames (see ``is_jump``), each marked cut or flash.

    ``window`` is FLASH_SECONDS in frames: a jump whose picture before comes back within it is a flash,
    and the jumps until it is back (the return) are not changes of their own.
    """
    order = sorted(scan.thumbs)
    thumbs = scan.thumbs
    steps = [difference(thumbs[a], thumbs[b]) for a, b in pairwise(order)]
    changes: list[Change] = []
    within_flash = -1  # frames up to here belong to a flash already found
    for k in range(1, len(order)):
        before, index = order[k - 1], order[k]
        if index <= within_flash or (index - before != 1 and index not in scan.approximate):
            continue
        strength = steps[k - 1]
        if not is_jump(strength, index - before, motion_around(steps, order, k - 1), threshold):
            continue
        back = None
        for j in range(k + 1, len(order)):
            if order[j] > index + window:
                break
            # Back: the picture is nearer what it was before the jump than what it jumped to, by half of
            # either (motion while it lasted moves both pictures on a little).
            later = thumbs[order[j]]
            if difference(thumbs[before], later) < min(difference(thumbs[index], later), strength) / 2:
                back = order[j]
                break
        if back is not None:
            within_flash = back
        changes.append(Change(index, strength, back is not None))
    return changes


def choose(scan: Scan, changes: list[Change], max_frames: int) -> list[Frame]:
    """Cuts first (the strongest, up to half the cap), the uniform grid fills the rest, flashes what is left.

    A flash takes no uniform sample's place: it is shown only when the grid leaves room (short clips).
    """
    uniform = set(scan.uniform)
    shown = [c for c in changes if c.index not in uniform and c.index in scan.colour]
    for change in shown:
        scan.colour[change.index].change = change.strength
    by_strength = sorted(shown, key=lambda c: c.strength, reverse=True)
    cuts = [c.index for c in by_strength if not c.flash][: max(1, max_frames // 2)]
    regular = [i for i in scan.uniform if i in scan.colour]
    room = max_frames - len(cuts)
    if len(regular) > room:
        # Thin the uniform grid evenly rather than cutting off the end of the video.
        picks = {round(i * (len(regular) - 1) / max(1, room - 1)) for i in range(room)} if room > 0 else set()
        regular = [f for i, f in enumerate(regular) if i in picks]
    spare = max(0, max_frames - len(cuts) - len(regular))
    flashes = [c.index for c in by_strength if c.flash][:spare]
    return [scan.colour[i] for i in sorted({*cuts, *regular, *flashes})]


def uniform_indices(frame_count: int, count: int) -> list[int]:
    """``count`` frames evenly spread from the first frame on."""
    count = max(1, min(count, frame_count))
    step = frame_count / count
    return sorted({min(frame_count - 1, int(i * step)) for i in range(count)})


def keep_tokens_for(token_budget: int, uniform_count: int) -> int:
    """Frames are kept no bigger than the largest size the final per-frame budget can allow."""
    return min(DEFAULT_MAX_TOKENS, max(1, token_budget // max(1, uniform_count)))


def downscale(pixels: np.ndarray, max_tokens: int) -> np.ndarray:
    import cv2

    height, width = pixels.shape[:2]
    target_w, target_h = fit_within_tokens(width, height, max_tokens)
    if (target_w, target_h) == (width, height):
        return pixels
    # Area averaging is the sharpest for big reductions but ~9x slower; bilinear is fine down to half size.
    interpolation = cv2.INTER_AREA if target_w < width / 2 else cv2.INTER_LINEAR
    return cv2.resize(pixels, (target_w, target_h), interpolation=interpolation)
