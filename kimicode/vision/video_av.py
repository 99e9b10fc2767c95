"""The scene scan through FFmpeg's own decoder (PyAV), decoding only what the answer needs.

First the container alone is read (no decoding, ~10 ms a minute): every packet's timestamp and keyframe
flag give the exact frame count, the display order and the groups of pictures (GOPs). Then one forward
pass, with FFmpeg's ``skip_frame`` set packet by packet:

* short GOPs (a keyframe every few frames, e.g. OpenCV's MPEG-4): the keyframes are decoded, and of the
  rest only the frames wanted for the answer with the frames they are predicted from;
* long GOPs (x264 puts ~8 s between keyframes, a browser recording one keyframe in minutes): every
  reference frame is decoded (they carry the stream anyway) and non-reference frames only when wanted.
  Skipping only frames that nothing is predicted from keeps every decoded frame exact.

With more than one core, the GOPs are dealt to decoders of their own (one a core, in threads: PyAV lets go
of the GIL while FFmpeg decodes), which keeps the cores busier than FFmpeg's frame threads do; a clip with
one long GOP keeps one decoder and its threads.

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
import concurrent.futures
import contextlib
import os
import threading
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
# Decoders of their own for parts of the clip only when no part holds more than this share of the work.
_SHARE_WORTH_IT = 0.75
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


def _open(av: Any, path: Path, threads: int = 0) -> Any:
    """The file's first video stream, its decoder on ``threads`` threads (0: one a core)."""
    try:
        # A clip's tags may be in any encoding: before PyAV 19 undecodable ones raise unless ignored.
        container = av.open(str(path), metadata_errors="ignore")
    except TypeError as exc:
        if "metadata_errors" not in str(exc):
            raise
        container = av.open(str(path))  # PyAV 19 dropped the argument
    if not container.streams.video:
        container.close()
        raise Unsupported("no video stream")
    stream = container.streams.video[0]
    threads = threads or _cores()
    if threads > 1:
        stream.thread_type = "AUTO"  # frame and slice threads ...
    stream.codec_context.thread_count = threads  # ... one a core (FFmpeg's one more only adds switching)
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
        self.starts = set(self.gop_starts)
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

    def cost(self, levels: list[str | None], positions: range | None = None) -> int:
        """Packets sent to the decoder, roughly what decoding takes (keyframes count for what they are)."""
        span = positions if positions is not None else range(len(levels))
        return sum(1 for j in span if levels[j] is not None and (levels[j] != _KEYFRAMES or j in self.starts))

    def closed(self, gop: range) -> bool:
        """No frame of the GOP is shown before its keyframe: it decodes without the GOP before it."""
        return min(self.shown[j] for j in gop) == self.shown[gop.start]

    def split(self, levels: list[str | None], decoders: int) -> list[list[range]]:
        """The packets to send, as runs of consecutive GOPs, dealt to at most ``decoders`` decoders.

        Each decoder gets consecutive GOPs of about the same work, and it seeks only between its runs.
        FFmpeg's frame threads keep a core only ~70% busy on H.264 (each frame waits for the rows it is
        predicted from) while decoders of their own, each on one core, share nothing: on 2 cores a 60 s
        1080p H.264 clip decodes in 1.6-1.9 s instead of 2.1-2.7 s. A stream with one long GOP (a browser's
        recording) has nothing to deal and keeps the one decoder with its threads.
        """
        units: list[tuple[range, int]] = []  # GOPs to send, an open GOP joined to the one before it
        for gop in self.gops():
            work = self.cost(levels, gop)
            if not work:
                continue
            if units and units[-1][0].stop == gop.start and not self.closed(gop):
                joined, before = units.pop()
                units.append((range(joined.start, gop.stop), before + work))
            else:
                units.append((gop, work))
        groups = _balanced([work for _, work in units], decoders)
        total = sum(work for _, work in units)
        if len(groups) < 2 or max(sum(units[i][1] for i in group) for group in groups) > _SHARE_WORTH_IT * total:
            groups = [list(range(len(units)))]
        dealt = []
        for group in groups:
            runs: list[range] = []
            for i in group:
                gop = units[i][0]
                if runs and runs[-1].stop == gop.start:
                    runs[-1] = range(runs[-1].start, gop.stop)
                else:
                    runs.append(gop)
            dealt.append(runs)
        return dealt


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
        self.error = getattr(av, "FFmpegError", None) or av.error.FFmpegError
        self.refused = 0  # packets the decoder refused
        self.pending: dict[int, np.ndarray] = {}  # the first frame of each run after a seek, in colour
        self.lock = threading.Lock()  # the record above, shared by the decoders of a clip's parts

    def forward(self) -> None:
        """One pass from the start: the uniform samples, and the keyframes or all references as anchors."""
        layout = self.layout
        by_keyframes = layout.plan(self.uniform, _KEYFRAMES)
        references = len(layout) // 2 if layout.reordered else len(layout)
        keyframe_anchors = layout.cost(by_keyframes) <= _KEYFRAME_MODE_RATIO * references
        levels = by_keyframes if keyframe_anchors else layout.plan(self.uniform, _REFERENCES)
        self._decode_all(levels, None)

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
        self._decode_all(self.layout.plan(needed, None), needed)

    def _decode_all(self, levels: list[str | None], needed: set[int] | None) -> None:
        """Send the packets ``levels`` names, through one decoder or several on parts of the clip."""
        dealt = self.layout.split(levels, _cores())
        if len(dealt) == 1:
            self._decode_runs(dealt[0], levels, needed, 0)
        else:
            threads = max(1, _cores() // len(dealt))
            # PyAV lets go of the GIL while FFmpeg decodes: the decoders run side by side in threads.
            with concurrent.futures.ThreadPoolExecutor(len(dealt), thread_name_prefix="video-decode") as pool:
                parts = [pool.submit(self._decode_runs, runs, levels, needed, threads) for runs in dealt]
                for part in parts:
                    part.result()  # (a decoder's error is raised here)
        # The first frame of each run after a seek, now that the frame before it is decoded too.
        order = sorted(self.result.thumbs)
        for index, pixels in sorted(self.pending.items()):
            place = bisect.bisect_left(order, index)
            change = self._change(index, order[place - 1] if place > 0 else None, self.result.thumbs[index])
            if change is not None and index not in self.result.colour:
                self._keep(index, change, pixels)
        self.pending.clear()

    def _decode_runs(self, runs: list[range], levels: list[str | None], needed: set[int] | None, threads: int) -> None:
        """Decode runs of GOPs with a decoder of their own, seeking to each run's keyframe."""
        layout = self.layout
        reformatter = self.av.video.reformatter.VideoReformatter()  # (it keeps FFmpeg's scaler: one a decoder)
        container = _open(self.av, self.path, threads)
        try:
            stream = container.streams.video[0]
            context = stream.codec_context
            for run in runs:
                last = max(j for j in run if levels[j] is not None)
                if run.start > 0:
                    container.seek(layout.packet_pts[run.start], stream=stream, backward=True, any_frame=False)
                # The frame before a run's first may be another decoder's: it is decided on at the end.
                first = run.start > 0
                started = False
                current: str | None = None
                for packet in container.demux(stream):
                    position = layout.position_of.get(packet.pts) if packet.pts is not None else None
                    if position is None:
                        break  # the end (the decoder is drained below), or a packet the container did not list
                    started = started or position >= run.start  # a seek may land a keyframe early
                    if started and position > last:
                        break
                    if not started or levels[position] is None:
                        continue
                    if levels[position] != current:
                        context.skip_frame = current = levels[position]
                    first = self._take_all(self._frames_of(packet), needed, reformatter, first)
                # The frames still in the decoder's threads.
                self._take_all(self._drained(context), needed, reformatter, first)
                if hasattr(context, "flush_buffers"):  # (PyAV before 13: the next seek resets it)
                    context.flush_buffers()
        finally:
            container.close()

    def _frames_of(self, packet: Any) -> list[Any]:
        """The frames a packet completes; a damaged packet the decoder refuses is dropped, as players do."""
        try:
            return list(packet.decode())
        except self.error:
            with self.lock:
                self.refused += 1
                if self.refused > _MAX_REFUSED and not self.result.thumbs:
                    raise  # nothing decodes at all: not damage but a stream this decoder cannot read
            return []

    def _drained(self, context: Any) -> list[Any]:
        try:
            return list(context.decode(None))
        except self.error:
            return []

    def _take_all(self, frames: list[Any], needed: set[int] | None, reformatter: Any, first: bool) -> bool:
        """Take the frames in order; whether the next one taken is still a part's first."""
        for frame in frames:
            if self._take(frame, needed, reformatter, first):
                first = False
        return first

    def _take(self, frame: Any, needed: set[int] | None, reformatter: Any, first: bool) -> bool:
        """Record a decoded frame's thumbnail; keep it in colour if it is wanted or may be a change.

        True when the frame was taken (``first`` then applied to it).
        """
        if frame.pts is None:
            return False
        layout = self.layout
        index = layout.index_of.get(frame.pts)
        if index is None:  # a timestamp the container did not list: the nearest frame
            index = min(max(0, bisect.bisect_left(layout.pts, frame.pts)), len(layout) - 1)
        if needed is not None and index not in needed:
            return False  # a replay decodes its GOP's start only to reach the frames it is after
        thumb = _thumb(frame)
        colour, uniform = self.result.colour, index in self.uniform
        with self.lock:
            previous = self._record(index, thumb, needed is None)
            if index in colour:
                return True
            change = None if uniform or first else self._change(index, previous, thumb)
            if not (uniform or first or self._worth_keeping(change)):
                return True
        pixels = _colour(frame, self.keep_tokens, reformatter)
        with self.lock:
            if uniform:
                colour[index] = Frame(index, layout.times[index], pixels)
            elif first:
                self.pending[index] = pixels
            elif change is not None:
                self._keep(index, change, pixels)
        return True

    def _record(self, index: int, thumb: Thumb, forward: bool) -> int | None:
        """Store a thumbnail; the decoded frame just before it, to compare it with."""
        thumbs = self.result.thumbs
        if forward:  # frames come in display order from each decoder
            if self.decoded and self.decoded[-1] >= index:
                bisect.insort(self.decoded, index)  # (another decoder's part, or frames out of order)
            else:
                self.decoded.append(index)
            place = bisect.bisect_left(self.decoded, index)
            previous = self.decoded[place - 1] if place > 0 else None
        else:  # a replay, in order within each stretch; the order is rebuilt once afterwards
            place = bisect.bisect_left(self.decoded, index)
            previous = index - 1 if index - 1 in thumbs else (self.decoded[place - 1] if place > 0 else None)
        thumbs[index] = thumb
        return previous

    def _change(self, index: int, previous: int | None, thumb: Thumb) -> float | None:
        """How much the picture changed since the frame before, if that was decoded (or the one before it).

        A change seen across a wider gap is a replay's to place.
        """
        if previous is None or index - previous > 2:
            return None
        return difference(self.result.thumbs[previous], thumb)

    def _worth_keeping(self, change: float | None) -> bool:
        """Whether a possible change is kept in colour (whether it stands out is decided at the end)."""
        if change is None or change < self.threshold / 2:
            return False
        if len(self.candidates) < self.max_candidates:
            return True
        return min(self.candidates.values()) < change

    def _keep(self, index: int, change: float, pixels: np.ndarray) -> None:
        if not self._worth_keeping(change):  # (stronger ones may have come in the meantime)
            return
        if len(self.candidates) >= self.max_candidates:
            weakest = min(self.candidates, key=self.candidates.__getitem__)
            del self.candidates[weakest], self.result.colour[weakest]
        self.candidates[index] = change
        self.result.colour[index] = Frame(index, self.layout.times[index], pixels, change)


def _balanced(works: list[int], parts: int) -> list[list[int]]:
    """``works`` cut into at most ``parts`` consecutive groups (indices) whose largest sum is smallest."""
    if parts < 2 or len(works) < 2:
        return [list(range(len(works)))]

    def cut(limit: int) -> list[list[int]]:
        groups: list[list[int]] = [[]]
        total = 0
        for i, work in enumerate(works):
            if groups[-1] and total + work > limit:
                groups.append([])
                total = 0
            groups[-1].append(i)
            total += work
        return groups

    low, high = max(works), sum(works)
    while low < high:  # the smallest largest sum with which ``parts`` groups suffice
        middle = (low + high) // 2
        if len(cut(middle)) <= parts:
            high = middle
        else:
            low = middle + 1
    return cut(low)


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
