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

Invariants:
- Every frame the scan sends decodes exactly as it would with every frame decoded: only frames nothing
  is predicted from are skipped (``video_layout``'s plans), and a part after a seek starts on a keyframe.
- The record (thumbnails, colour frames, candidates) is shared by the decoders of a clip's parts and
  changed only under ``_Scanner.lock``; a part's first frame is compared with the frame before it only
  once every part is decoded.
- At most ``_CANDIDATES_PER_FRAME`` colour frames per frame that may be sent are held for possible
  changes: a stronger change pushes out the weakest.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.vision import video_layout, video_pixels
from kimicode.vision.video_layout import Layout, Unsupported, open_video
from kimicode.vision.video_scenes import (
    FLASH_SECONDS,
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

_KEYFRAME_MODE_RATIO = 0.4  # keyframes as anchors when that decodes at most this share of the references
_MAX_REFUSED = 50  # refused packets before a first decoded frame: the OpenCV scan gets its turn
_CANDIDATES_PER_FRAME = 2  # colour frames of possible scene changes kept, per frame that may be sent


def scan(path: Path, max_frames: int, max_fps: float, threshold: float, token_budget: int) -> Scan:
    """Every scene change located to its frame, the uniform samples and the changes in colour."""
    try:
        import av
    except ImportError as exc:
        raise Unsupported("PyAV is not installed") from exc
    error = getattr(av, "FFmpegError", None) or av.error.FFmpegError
    try:
        with _quiet(av):
            layout = Layout.read(av, path)
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
    if logging is None or level is None:
        yield
        return
    logging.set_level(logging.PANIC)
    try:
        yield
    finally:
        logging.set_level(level)

class _Scanner:
    def __init__(
        self, av: Any, path: Path, layout: Layout, max_frames: int, max_fps: float, threshold: float, budget: int
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
        by_keyframes = layout.plan(self.uniform, video_layout.KEYFRAMES)
        references = len(layout) // 2 if layout.reordered else len(layout)
        keyframe_anchors = layout.cost(by_keyframes) <= _KEYFRAME_MODE_RATIO * references
        levels = by_keyframes if keyframe_anchors else layout.plan(self.uniform, video_layout.REFERENCES)
        self._decode_all(levels, None)

    def replay(self) -> None:
        """Decode the frames between neighbours that differ enough to hide a change, GOP by GOP.

        Across a skipped frame what would count between neighbours (``is_jump``) is looked into; across
        wider gaps half the threshold is, as motion over the gap may hide part of a cut's jump. When those
        stretches together would cost more than decoding the whole clip, the whole clip is decoded
        instead, once, from the start.
        """
        thumbs, count, order = self.result.thumbs, len(self.layout), self.decoded
        steps = [difference(thumbs[a], thumbs[b]) for a, b in pairwise(order)]
        stretches = []
        for k, (before, after) in enumerate(pairwise(order)):
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
        dealt = self.layout.split(levels, video_layout.cores())
        if len(dealt) == 1:
            self._decode_runs(dealt[0], levels, needed, 0)
        else:
            threads = max(1, video_layout.cores() // len(dealt))
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
        container = open_video(self.av, self.path, threads)
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
        thumb = video_pixels.thumb(frame)
        colour, uniform = self.result.colour, index in self.uniform
        with self.lock:
            previous = self._record(index, thumb, needed is None)
            if index in colour:
                return True
            change = None if uniform or first else self._change(index, previous, thumb)
            if not (uniform or first or self._worth_keeping(change)):
                return True
        pixels = video_pixels.colour(frame, self.keep_tokens, reformatter)
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

def _uniform_by_time(times: list[float], duration: float, count: int) -> list[int]:
    """``count`` frames evenly spread in time from the first frame on (the frame shown at each moment)."""
    count = max(1, min(count, len(times)))
    step = duration / count
    return sorted({max(0, bisect.bisect_right(times, i * step + 1e-6) - 1) for i in range(count)})
