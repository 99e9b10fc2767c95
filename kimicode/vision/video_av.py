"""The scene scan through FFmpeg's own decoder (PyAV), decoding only what the answer needs.

First the container alone is read (no decoding, ~10 ms a minute): every packet's timestamp and keyframe
flag give the exact frame count, the display order and the groups of pictures (GOPs). Then one forward
pass, with FFmpeg's ``skip_frame`` set packet by packet:

* short GOPs (a keyframe every few frames, e.g. OpenCV's MPEG-4): the keyframes are decoded, and of the
  rest only the frames wanted for the answer with the frames they are predicted from;
* long GOPs (x264 puts ~8 s between keyframes, a browser recording one keyframe in minutes): every
  reference frame is decoded (they carry the stream anyway) and non-reference frames only when wanted.
  Skipping only frames that nothing is predicted from keeps every decoded frame exact.

Every decoded frame gets a thumbnail of its Y, U and V planes, sampled straight from the decoder's buffers
(no colour conversion). Where two neighbouring decoded frames differ enough to hide a cut, the frames
between them are decoded afterwards by a second decoder that seeks to their keyframe, so a change is placed
at its own frame wherever it falls, at the cost of the one GOP it is in. When motion makes so many
stretches suspect that they would cost more than the whole clip, the whole clip is decoded once instead:
a scan never costs more than its forward pass plus one full decode.

Measured (60 s 1080p, 32 frames, CPU seconds on 2 shared cores): the frames the uniform samples alone
need are most of the cost. In a long GOP each sample needs every reference frame back to its keyframe;
skipping all B-frames instead of only unreferenced ones would save a third on H.264 but corrupts most
frames of x264's default output (P-frames are predicted from B-frames), and FFmpeg does not flag them.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.vision.images import fit_within_tokens
from kimicode.vision.video_scenes import (
    CHROMA_GRID,
    FLASH_SECONDS,
    LUMA_GRID,
    Frame,
    Scan,
    Thumb,
    difference,
    is_jump,
    keep_tokens_for,
    motion_around,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Unsupported", "scan"]

_DECODE = "DEFAULT"  # skip_frame levels: decode the packet
_REFERENCES = "NONREF"  # decode it if other frames are predicted from it
_KEYFRAMES = "NONKEY"  # decode it if it is a keyframe
_KEYFRAME_MODE_RATIO = 0.4  # keyframes as anchors when that decodes at most this share of the references
_MAX_REFUSED = 50  # refused packets before a first decoded frame: the OpenCV scan gets its turn
_CANDIDATES_PER_FRAME = 2  # colour frames of possible scene changes kept, per frame that may be sent
# Pixel formats whose planes are 8-bit Y, U, V (or Y alone) and can be sampled as they are.
_PLANAR_8BIT = {
    "gray", "yuv410p", "yuv411p", "yuv420p", "yuv422p", "yuv440p", "yuv444p",
    "yuvj411p", "yuvj420p", "yuvj422p", "yuvj440p", "yuvj444p",
}  # fmt: skip


class Unsupported(Exception):
    """PyAV is not installed or cannot read this file: the caller falls back to OpenCV."""


def scan(path: Path, max_frames: int, max_fps: float, threshold: float, token_budget: int) -> Scan:
    """Every scene change located to its frame, the uniform samples and the changes in colour."""
    try:
        import av
    except ImportError as exc:
        raise Unsupported("PyAV is not installed") from exc
    error = getattr(av, "FFmpegError", None) or av.error.FFmpegError
    try:
        with _quiet(av):
            layout = _Layout.read(av, path)
            scanner = _Scanner(av, path, layout, max_frames, max_fps, threshold, token_budget)
            scanner.forward()
            scanner.replay()
    except (error, ValueError) as exc:  # (ValueError: a frame whose planes or format PyAV cannot map)
        raise Unsupported(str(exc)) from exc
    if not any(i in scanner.result.colour for i in scanner.result.uniform):
        raise Unsupported("no frame could be decoded")
    return scanner.result


@contextlib.contextmanager
def _quiet(av: Any) -> Iterator[None]:
    """FFmpeg's own messages (a damaged packet, a missing index) stay out of the terminal.

    PyAV before 13 passes them to Python's logging, which prints warnings to stderr; later ones drop them.
    """
    logging = getattr(av, "logging", None)
    level = logging.get_level() if logging is not None and hasattr(logging, "get_level") else None
    if level is None:
        yield
        return
    logging.set_level(logging.PANIC)
    try:
        yield
    finally:
        logging.set_level(level)


def _open(av: Any, path: Path) -> Any:
    container = av.open(str(path), metadata_errors="ignore")
    if not container.streams.video:
        container.close()
        raise Unsupported("no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads ...
    stream.codec_context.thread_count = _cores()  # ... one a core (FFmpeg's one more only adds switching)
    return container


def _cores() -> int:
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, min(16, len(usable)))


class _Layout:
    """A video stream as its container describes it: packet timestamps and keyframe flags, no decoding."""

    def __init__(self, packets: list[tuple[int, bool]], time_base: Fraction, rate: float) -> None:
        self.packet_pts = [pts for pts, _ in packets]  # decode order
        self.pts = sorted(set(self.packet_pts))  # display order
        self.index_of = {pts: i for i, pts in enumerate(self.pts)}
        self.shown = [self.index_of[pts] for pts in self.packet_pts]  # decode position -> frame number
        self.position_of = {pts: j for j, pts in enumerate(self.packet_pts)}
        self.decode_position = [0] * len(self.pts)  # frame number -> decode position
        for j, index in enumerate(self.shown):
            self.decode_position[index] = j
        self.gop_starts = [j for j, (_, key) in enumerate(packets) if key]
        if not self.gop_starts or self.gop_starts[0] != 0:
            self.gop_starts.insert(0, 0)  # a stream cut out of a longer one may not start on a keyframe
        self.reordered = any(b < a for a, b in zip(self.shown, self.shown[1:]))  # B-frames
        unit = float(time_base)
        self.times = [(pts - self.pts[0]) * unit for pts in self.pts]
        span = self.times[-1]
        self.fps = rate if 0 < rate <= 1000 else ((len(self.pts) - 1) / span if span > 0 else 25.0)

    @classmethod
    def read(cls, av: Any, path: Path) -> _Layout:
        container = _open(av, path)
        try:
            stream = container.streams.video[0]
            packets: list[tuple[int, bool]] = []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise Unsupported("packets without timestamps")  # raw elementary streams, some AVI
                packets.append((packet.pts, bool(packet.is_keyframe)))
            if not packets:
                raise Unsupported("no video packets")
            rate = stream.average_rate or stream.guessed_rate or 0
            return cls(packets, stream.time_base, float(rate))
        finally:
            container.close()

    def __len__(self) -> int:
        return len(self.pts)

    def gops(self) -> list[range]:
        """Decode positions of each GOP, from its keyframe to the packet before the next one."""
        ends = [*self.gop_starts[1:], len(self.packet_pts)]
        return [range(start, end) for start, end in zip(self.gop_starts, ends)]

    def plan(self, wanted: set[int], base: str | None) -> list[str | None]:
        """The ``skip_frame`` level for each packet (None: not sent) so that the ``wanted`` frames decode.

        In a GOP with a wanted frame, every packet decoded before the last wanted one may be a frame it is
        predicted from, so the references among them are decoded; after it, ``base`` applies.
        """
        levels: list[str | None] = [base] * len(self.packet_pts)
        gops = self.gops()
        for number, gop in enumerate(gops):
            hits = [j for j in gop if self.shown[j] in wanted]
            if not hits:
                continue
            for j in range(gop.start, hits[-1] + 1):
                levels[j] = _DECODE if self.shown[j] in wanted else _REFERENCES
            if number > 0 and any(self.shown[j] < self.shown[gop.start] for j in hits):
                # A wanted leading picture (shown before its keyframe, an open GOP) is predicted from the
                # GOP before as well.
                for j in gops[number - 1]:
                    if levels[j] != _DECODE:
                        levels[j] = _REFERENCES
        return levels

    def reach(self, frames: range) -> int:
        """Packets a decoder sends to reach ``frames`` from the keyframe before them (an upper bound)."""
        positions = [self.decode_position[i] for i in frames]
        first, last = min(positions), max(positions)
        start = self.gop_starts[bisect.bisect_right(self.gop_starts, first) - 1]
        return last - start + 1

    def cost(self, levels: list[str | None]) -> int:
        """Packets sent to the decoder, roughly what decoding takes (keyframes count for what they are)."""
        return sum(1 for level in levels if level is not None and level != _KEYFRAMES) + sum(
            1 for j in self.gop_starts if levels[j] == _KEYFRAMES
        )


class _Scanner:
    def __init__(
        self, av: Any, path: Path, layout: _Layout, max_frames: int, max_fps: float, threshold: float, budget: int
    ) -> None:
        self.av = av
        self.path = path
        self.layout = layout
        self.threshold = threshold
        times = layout.times
        # The last frame is shown as long as the one before it (the average rate misleads in a recording
        # whose rate varies).
        last = times[-1] - times[-2] if len(times) > 1 and times[-1] > times[-2] else 1 / layout.fps
        duration = times[-1] + last
        wanted = min(max_frames, max(1, int(duration * max_fps)))
        uniform = _uniform_by_time(layout.times, duration, wanted)
        self.result = Scan(fps=layout.fps, uniform=uniform)
        self.uniform = set(uniform)
        self.keep_tokens = keep_tokens_for(budget, len(uniform))
        self.max_candidates = _CANDIDATES_PER_FRAME * max_frames
        self.candidates: dict[int, float] = {}  # colour frames kept for a possible change: strength
        self.decoded: list[int] = []  # frame numbers with a thumbnail, sorted
        self.window = max(2, round(FLASH_SECONDS * layout.fps))
        self.reformatter = av.video.reformatter.VideoReformatter()
        self.error = getattr(av, "FFmpegError", None) or av.error.FFmpegError
        self.refused = 0  # packets the decoder refused

    def forward(self) -> None:
        """One pass from the start: the uniform samples, and the keyframes or all references as anchors."""
        layout = self.layout
        by_keyframes = layout.plan(self.uniform, _KEYFRAMES)
        references = len(layout) // 2 if layout.reordered else len(layout)
        keyframe_anchors = layout.cost(by_keyframes) <= _KEYFRAME_MODE_RATIO * references
        levels = by_keyframes if keyframe_anchors else layout.plan(self.uniform, _REFERENCES)
        container = _open(self.av, self.path)
        try:
            stream = container.streams.video[0]
            context = stream.codec_context
            current: str | None = None
            for packet in container.demux(stream):
                if packet.pts is not None:  # (the empty packet at the end drains the decoder)
                    position = layout.position_of.get(packet.pts)
                    level = levels[position] if position is not None else _DECODE
                    if level != current:
                        context.skip_frame = current = level
                for frame in self._decode(packet):
                    self._take(frame, None)
        finally:
            container.close()

    def replay(self) -> None:
        """Decode the frames between neighbours that differ enough to hide a change, GOP by GOP.

        Across a skipped frame what would count between neighbours (``is_jump``) is looked into; across
        wider gaps half the threshold is, as motion over the gap may hide part of a cut's jump. When those
        stretches together would cost more than decoding the whole clip, the whole clip is decoded
        instead, once, from the start.
        """
        thumbs, count, order = self.result.thumbs, len(self.layout), self.decoded
        steps = [difference(thumbs[a], thumbs[b]) for a, b in zip(order, order[1:])]
        stretches = []
        for k, (before, after) in enumerate(zip(order, order[1:])):
            gap = after - before
            if gap == 1:
                continue
            if gap == 2:
                suspect = is_jump(steps[k], 2, motion_around(steps, order, k), self.threshold)
            else:
                suspect = steps[k] >= self.threshold / 2
            if suspect:  # on past the later frame too, for the flash check: does the picture come back?
                stretches.append(range(before + 1, min(count, after + self.window + 1)))
                if gap == 2:
                    self.result.approximate.add(after)  # unless the replay fills the frame between
        if not stretches:
            return
        if sum(self.layout.reach(frames) for frames in stretches) >= count:
            self._decode_again(set(range(count)))
        else:
            self._decode_again({i for frames in stretches for i in frames})
        self.decoded = sorted(thumbs)
        self.result.approximate = {i for i in self.result.approximate if i - 1 not in thumbs}

    def _decode_again(self, needed: set[int]) -> None:
        layout = self.layout
        levels = layout.plan(needed, None)
        visited = [gop for gop in layout.gops() if levels[gop.start] is not None]
        runs: list[list[range]] = []  # consecutive GOPs are decoded without seeking in between
        for gop in visited:
            if runs and runs[-1][-1].stop == gop.start:
                runs[-1].append(gop)
            else:
                runs.append([gop])
        container = _open(self.av, self.path)
        try:
            stream = container.streams.video[0]
            context = stream.codec_context
            for run in runs:
                last = max(j for gop in run for j in gop if levels[j] is not None)
                container.seek(layout.packet_pts[run[0].start], stream=stream, backward=True, any_frame=False)
                started = False
                current: str | None = None
                for packet in container.demux(stream):
                    position = layout.position_of.get(packet.pts) if packet.pts is not None else None
                    if position is None:
                        break
                    started = started or position >= run[0].start  # a seek may land a keyframe early
                    if started and position > last:
                        break
                    if not started or levels[position] is None:
                        continue
                    if levels[position] != current:
                        context.skip_frame = current = levels[position]
                    for frame in self._decode(packet):
                        self._take(frame, needed)
                for frame in context.decode(None):  # the frames still in the decoder's threads
                    self._take(frame, needed)
                # (The next run's seek resets the drained decoder.)
        finally:
            container.close()

    def _decode(self, packet: Any) -> list[Any]:
        """The frames a packet completes; a damaged packet the decoder refuses is dropped, as players do."""
        try:
            return list(packet.decode())
        except self.error:
            self.refused += 1
            if self.refused > _MAX_REFUSED and not self.result.thumbs:
                raise  # nothing decodes at all: not damage but a stream this decoder cannot read
            return []

    def _take(self, frame: Any, needed: set[int] | None) -> None:
        """Record a decoded frame's thumbnail; keep it in colour if it is wanted or may be a change."""
        if frame.pts is None:
            return
        layout = self.layout
        index = layout.index_of.get(frame.pts)
        if index is None:  # a timestamp the container did not list: the nearest frame
            index = min(max(0, bisect.bisect_left(layout.pts, frame.pts)), len(layout) - 1)
        if needed is not None and index not in needed:
            return  # a replay decodes its GOP's start only to reach the frames it is after
        thumb = _thumb(frame)
        thumbs = self.result.thumbs
        if needed is None:  # the forward pass: frames come in display order
            if self.decoded and self.decoded[-1] >= index:
                bisect.insort(self.decoded, index)  # (a decoder handing frames over out of order)
            else:
                self.decoded.append(index)
            place = bisect.bisect_left(self.decoded, index)
            previous = self.decoded[place - 1] if place > 0 else None
        else:  # a replay, in order within each stretch; the order is rebuilt once afterwards
            place = bisect.bisect_left(self.decoded, index)
            previous = index - 1 if index - 1 in thumbs else (self.decoded[place - 1] if place > 0 else None)
        thumbs[index] = thumb
        colour = self.result.colour
        if index in colour:
            return
        if index in self.uniform:
            colour[index] = Frame(index, layout.times[index], _colour(frame, self.keep_tokens, self.reformatter))
            return
        # A possible change is kept in colour only when the frame before it (or, failing that, the one
        # before that) was decoded: a change seen across a wider gap is a replay's to place.
        if previous is None or index - previous > 2:
            return
        change = difference(self.result.thumbs[previous], thumb)
        if change < self.threshold / 2:  # (whether it stands out against motion is decided at the end)
            return
        if len(self.candidates) >= self.max_candidates:
            weakest = min(self.candidates, key=self.candidates.__getitem__)
            if self.candidates[weakest] >= change:
                return
            del self.candidates[weakest], colour[weakest]
        self.candidates[index] = change
        pixels = _colour(frame, self.keep_tokens, self.reformatter)
        colour[index] = Frame(index, layout.times[index], pixels, change)


def _uniform_by_time(times: list[float], duration: float, count: int) -> list[int]:
    """``count`` frames evenly spread in time from the first frame on (the frame shown at each moment)."""
    count = max(1, min(count, len(times)))
    step = duration / count
    return sorted({max(0, bisect.bisect_right(times, i * step + 1e-6) - 1) for i in range(count)})


def _thumb(frame: Any) -> Thumb:
    """Means over a grid of Y, U and V, from samples of the decoder's planes as they are."""
    if frame.format.name not in _PLANAR_8BIT:
        # Deeper or packed formats (10-bit, RGB): a small 8-bit copy first.
        frame = frame.reformat(width=LUMA_GRID[0] * 4, height=LUMA_GRID[1] * 4, format="yuv444p")
    import numpy as np

    grids = (LUMA_GRID, CHROMA_GRID, CHROMA_GRID)
    return np.concatenate([_plane_thumb(plane, grid).ravel() for plane, grid in zip(frame.planes, grids)])


def _plane_thumb(plane: Any, grid: tuple[int, int]) -> np.ndarray:
    import cv2
    import numpy as np

    width, height, line = plane.width, plane.height, plane.line_size
    rows = np.frombuffer(plane, np.uint8, count=line * height).reshape(height, line)
    # About four samples a cell each way: reading every pixel of a 1080p plane costs more than decoding.
    step_y, step_x = max(1, height // (grid[1] * 4)), max(1, width // (grid[0] * 4))
    sample = np.ascontiguousarray(rows[step_y // 2 : height : step_y, step_x // 2 : width : step_x])
    return cv2.resize(sample, grid, interpolation=cv2.INTER_AREA)


def _colour(frame: Any, max_tokens: int, reformatter: Any) -> np.ndarray:
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
