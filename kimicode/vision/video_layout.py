"""A video stream as its container lists it, read without decoding, and the plans made from that list.

Reading the container alone (~10 ms a minute of video) gives every packet's timestamp and keyframe flag:
the exact frame count, the display order and the groups of pictures (GOPs). From these ``Layout`` plans,
packet by packet, the ``skip_frame`` level that decodes the frames wanted and as little else as possible,
and deals the GOPs to decoders of their own.

Invariants:
- Positions are decode order (the order of packets in the container); frame numbers are display order
  (sorted timestamps). ``shown`` and ``decode_position`` map one to the other and back.
- A plan never skips a frame that a wanted frame is predicted from: in a GOP with a wanted frame, every
  reference before the last wanted one is decoded, and an open GOP's leading pictures bring the GOP
  before them.
- A decoder's part is a run of whole GOPs (an open GOP stays with the one before it), so each part
  decodes on its own after a seek to its first keyframe.
"""

from __future__ import annotations

import bisect
import os
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = ["DECODE", "KEYFRAMES", "REFERENCES", "Layout", "Unsupported", "cores", "open_video"]

DECODE = "DEFAULT"  # skip_frame levels: decode the packet
REFERENCES = "NONREF"  # decode it if other frames are predicted from it
KEYFRAMES = "NONKEY"  # decode it if it is a keyframe
# Decoders of their own for parts of the clip only when no part holds more than this share of the work.
SHARE_WORTH_IT = 0.75


class Unsupported(Exception):
    """PyAV is not installed or cannot read this file: the caller falls back to OpenCV."""


def open_video(av: Any, path: Path, threads: int = 0) -> Any:
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
    threads = threads or cores()
    if threads > 1:
        stream.thread_type = "AUTO"  # frame and slice threads ...
    stream.codec_context.thread_count = threads  # ... one a core (FFmpeg's one more only adds switching)
    return container

def cores() -> int:
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, min(16, len(usable)))

class Layout:
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
        self.reordered = any(b < a for a, b in pairwise(self.shown))  # B-frames
        unit = float(time_base)
        self.times = [(pts - self.pts[0]) * unit for pts in self.pts]
        span = self.times[-1]
        self.fps = rate if 0 < rate <= 1000 else ((len(self.pts) - 1) / span if span > 0 else 25.0)

    @classmethod
    def read(cls, av: Any, path: Path) -> Layout:
        container = open_video(av, path)
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
        return [range(start, end) for start, end in zip(self.gop_starts, ends, strict=True)]

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
                levels[j] = DECODE if self.shown[j] in wanted else REFERENCES
            if number > 0 and any(self.shown[j] < self.shown[gop.start] for j in hits):
                # A wanted leading picture (shown before its keyframe, an open GOP) is predicted from the
                # GOP before as well.
                for j in gops[number - 1]:
                    if levels[j] != DECODE:
                        levels[j] = REFERENCES
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
        return sum(1 for j in span if levels[j] is not None and (levels[j] != KEYFRAMES or j in self.starts))

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
        groups = balanced([work for _, work in units], decoders)
        total = sum(work for _, work in units)
        if len(groups) < 2 or max(sum(units[i][1] for i in group) for group in groups) > SHARE_WORTH_IT * total:
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

def balanced(works: list[int], parts: int) -> list[list[int]]:
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
