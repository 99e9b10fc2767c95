"""Video in: sampled, timestamped frames within an image-token budget, or the Moonshot native upload.

Frames are picked on a uniform grid (at most ``max_fps``, at most ``max_frames``) plus the first frame
after each scene change, wherever it falls. Tiny luma thumbnails of scan points are compared: every frame of
a clip up to ``_MAX_DENSE_FRAMES`` frames; on longer ones a grid (four points per uniform sample), and each
change seen between two grid points is then pinned to its exact frame by decoding only that stretch again
and comparing each of its frames with the one before. (Comparing every frame of a long video costs ~0.5 ms
a frame more at 1080p than decoding alone, more than the whole pass may take; a flash that comes and goes
between two grid points is what that leaves unseen.)

Decoding dominates the cost, so the pass converts only the frames it keeps: with the colour conversion
switched off the decoder hands over its luma plane as it is (~0.4 ms at 1080p against ~2 ms for BGR). Moving far ahead is a seek (the decoder restarts at
the previous keyframe); a frame a little ahead is cheaper to reach by ``grab()``-ing forward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.llm.messages import Image
from kimicode.vision.errors import VisionError
from kimicode.vision.images import DEFAULT_MAX_TOKENS, fit_within_tokens

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_MAX_VIDEO_BYTES",
    "NATIVE_VIDEO_MAX_BYTES",
    "sample_video",
    "upload_video_native",
    "video_url_part",
]

DEFAULT_MAX_VIDEO_BYTES = 2 * 1024**3
NATIVE_VIDEO_MAX_BYTES = 100 * 1024**2  # Moonshot's /v1/files limit for video
DEFAULT_SCENE_THRESHOLD = 30.0  # mean absolute difference of 0..255 luma thumbnails
_SEEK_GAP = 24  # frames: reach targets closer than this by grabbing forward instead of seeking
_MAX_DENSE_FRAMES = 300  # up to this many frames (10 s at 30 fps) every frame is compared
_SCAN_DENSITY = 4  # longer videos: grid points per uniform sample ...
_MAX_SCAN_POINTS = 128  # ... at most this many; each change seen between two is pinned to its frame
_MAX_PINNED_CHANGES = 64  # changes located exactly per video (a slideshow of flashes stays bounded)
_THUMB_SIZE = (32, 18)
_JPEG_QUALITY = 85


@dataclass
class _Frame:
    index: int
    pixels: np.ndarray  # BGR, already downscaled to the largest per-frame size we may send
    change: float = 0.0  # thumbnail difference from the frame before it


def sample_video(
    path: Path,
    max_frames: int = 32,
    max_fps: float = 2.0,
    token_budget: int = 32_000,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    max_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
) -> list[Image]:
    """Timestamped JPEG frames of a video, sorted by time, together within ``token_budget`` tokens."""
    import cv2

    if max_frames < 1 or max_fps <= 0 or token_budget < 1:
        raise ValueError("max_frames, max_fps and token_budget must be positive")
    path = _checked_file(Path(path), max_bytes)
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
        uniform = _uniform_indices(frame_count, min(max_frames, max(1, int(duration * max_fps))))
        # Keep frames no bigger than the largest size the final per-frame budget can allow.
        keep_tokens = min(DEFAULT_MAX_TOKENS, max(1, token_budget // len(uniform)))
        with _quiet_opencv():
            scanned = _Scanner(capture, set(uniform), scene_threshold, keep_tokens).run(frame_count)
    finally:
        capture.release()
    if not scanned:
        raise VisionError(f"cannot read video {path}: no frame could be decoded")

    chosen = _choose(scanned, set(uniform), max_frames, scene_threshold)
    per_frame_tokens = min(DEFAULT_MAX_TOKENS, max(1, token_budget // len(chosen)))
    return [_to_image(frame, fps, per_frame_tokens) for frame in chosen]


def _checked_file(path: Path, max_bytes: int) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise VisionError(f"video not found: {path} (check the path)")
    if not path.is_file():
        raise VisionError(f"not a video file: {path} is a directory")
    size = path.stat().st_size
    if size == 0:
        raise VisionError(f"cannot read video {path}: the file is empty")
    if size > max_bytes:
        raise VisionError(
            f"video too large: {path} is {size / 1024**2:.0f} MB, the limit is {max_bytes / 1024**2:.0f} MB "
            "(trim or re-encode it smaller, e.g. with ffmpeg)"
        )
    return path


def _count_frames(capture: Any) -> int:
    count = 0
    while capture.grab():
        count += 1
    return count


def _uniform_indices(frame_count: int, count: int) -> list[int]:
    """``count`` frames evenly spread from the first frame on."""
    count = max(1, min(count, frame_count))
    step = frame_count / count
    return sorted({min(frame_count - 1, int(i * step)) for i in range(count)})


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

    def __init__(self, capture: Any, keep: set[int], threshold: float, keep_tokens: int) -> None:
        self.capture = capture
        self.keep = keep
        self.threshold = threshold
        self.keep_tokens = keep_tokens
        self.position = 0  # index of the frame the next grab() decodes
        self.luma = True  # the decoder's own luma plane, until it turns out not to be one
        self.primed = False
        self.converting = True

    def run(self, frame_count: int) -> list[_Frame]:
        indices = _scan_indices(frame_count, sorted(self.keep))
        frames: dict[int, _Frame] = {}
        previous: tuple[int, np.ndarray] | None = None
        pinned = 0
        recent: list[float] = []  # the latest grid-point differences
        for index in indices:
            thumb = self._visit(index)
            if thumb is None:
                continue  # frame counts in headers are often a little high; skip missing tail frames
            change = 0.0 if previous is None else _difference(previous[1], thumb)
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
                exact = self._pin(previous, index)  # type: ignore[arg-type]
                if exact is not None:
                    frames.setdefault(exact.index, exact)
                if index in self.keep:
                    self._visit(index)  # the pin moved the decoder; this frame is wanted too
            if index in self.keep or (change >= self.threshold and gap == 1):
                frames.setdefault(index, _Frame(index, self._colour(), change))
            previous = (index, thumb)
        return [frames[i] for i in sorted(frames)]

    def _pin(self, before: tuple[int, np.ndarray], after: int) -> _Frame | None:
        """The first frame in (before, after] that differs from the one before it, decoded and kept."""
        last = before[1]
        self._move_to(before[0] + 1)
        for index in range(before[0] + 1, after + 1):
            thumb = self._visit(index)
            if thumb is None:
                return None
            change = _difference(last, thumb)
            if change >= self.threshold:
                return _Frame(index, self._colour(), change)
            last = thumb
        return None  # a gradual change (a fade): no single frame to show

    def _move_to(self, index: int) -> None:
        import cv2

        if index < self.position or index - self.position > _SEEK_GAP:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self.position = index
        else:
            while self.position < index and self.capture.grab():
                self.position += 1

    def _visit(self, index: int) -> np.ndarray | None:
        """Decode frame ``index`` and return its thumbnail (None when it cannot be decoded)."""
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
        step = max(1, min(width // (_THUMB_SIZE[0] * 4), height // (_THUMB_SIZE[1] * 4)))
        return cv2.resize(plane[::step, ::step], _THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)

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
        return _downscale(pixels, self.keep_tokens)


def _difference(first: np.ndarray, second: np.ndarray) -> float:
    import numpy as np

    return float(np.abs(first - second).mean())


def _choose(frames: list[_Frame], uniform: set[int], max_frames: int, threshold: float) -> list[_Frame]:
    """Scene-change frames first (strongest up to half the cap), the uniform grid fills the rest."""
    scene = [f for f in frames if f.change >= threshold and f.index not in uniform]
    scene = sorted(scene, key=lambda f: f.change, reverse=True)[: max(1, max_frames // 2)]
    regular = [f for f in frames if f.index in uniform]
    room = max_frames - len(scene)
    if len(regular) > room:
        # Thin the uniform grid evenly rather than cutting off the end of the video.
        picks = {round(i * (len(regular) - 1) / max(1, room - 1)) for i in range(room)} if room > 0 else set()
        regular = [f for i, f in enumerate(regular) if i in picks]
    return sorted(scene + regular, key=lambda f: f.index)


def _downscale(pixels: np.ndarray, max_tokens: int) -> np.ndarray:
    import cv2

    height, width = pixels.shape[:2]
    target_w, target_h = fit_within_tokens(width, height, max_tokens)
    if (target_w, target_h) == (width, height):
        return pixels
    # Area averaging is the sharpest for big reductions but ~9x slower; bilinear is fine down to half size.
    interpolation = cv2.INTER_AREA if target_w < width / 2 else cv2.INTER_LINEAR
    return cv2.resize(pixels, (target_w, target_h), interpolation=interpolation)


def _to_image(frame: _Frame, fps: float, max_tokens: int) -> Image:
    import cv2

    pixels = _downscale(frame.pixels, max_tokens)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise VisionError("cannot encode a video frame as JPEG")
    height, width = pixels.shape[:2]
    label = f"frame at t={frame.index / fps:.1f}s"
    return Image(mime="image/jpeg", data=encoded.tobytes(), width=width, height=height, label=label)


async def upload_video_native(client_base_url: str, api_key: str, path: Path, timeout: float = 300.0) -> str:
    """Upload a video to the Moonshot Files API (purpose "video") and return its file id."""
    import httpx2

    path = _checked_file(Path(path), NATIVE_VIDEO_MAX_BYTES)
    url = client_base_url.rstrip("/") + "/files"
    try:
        async with httpx2.AsyncClient(timeout=timeout) as client:
            with path.open("rb") as handle:
                response = await client.post(
                    url,
                    headers={"Authorization": f"Bearer {api_key}"},
                    data={"purpose": "video"},
                    files={"file": (path.name, handle, _video_mime(path))},
                )
    except httpx2.HTTPError as exc:
        raise VisionError(f"video upload to {url} failed: {exc.__class__.__name__}: {exc}") from None
    if response.status_code == 401:
        raise VisionError("video upload refused: the API key is not valid (check KIMI_API_KEY)")
    if response.status_code >= 400:
        detail = response.text.strip().replace("\n", " ")[:300]
        raise VisionError(f"video upload to {url} failed: HTTP {response.status_code} {detail}")
    try:
        file_id = response.json()["id"]
    except (ValueError, KeyError, TypeError):
        raise VisionError(f"video upload to {url} returned no file id: {response.text[:200]}") from None
    return str(file_id)


def video_url_part(file_id: str) -> dict[str, Any]:
    """The content part that refers to an uploaded video on the Moonshot API."""
    return {"type": "video_url", "video_url": {"url": f"ms://{file_id}"}}


def _video_mime(path: Path) -> str:
    return {
        ".mp4": "video/mp4",
        ".m4v": "video/mp4",
        ".mov": "video/quicktime",
        ".webm": "video/webm",
        ".mkv": "video/x-matroska",
        ".avi": "video/x-msvideo",
    }.get(path.suffix.lower(), "application/octet-stream")


@dataclass
class ScrollSample:
    index: int  # frame number in the video
    time: float  # seconds
    scroll: float  # how far the page has scrolled since the first frame, in video pixels
    width: int  # the video's width (to convert scroll to page pixels)


_TRACK_WIDTH = 320  # thumbnails for motion estimation
_TRACK_RATE = 10.0  # samples per second: fast enough that one step never scrolls past most of a frame
_MAX_TRACK_SAMPLES = 600


def scroll_track(path: Path, max_bytes: int = DEFAULT_MAX_VIDEO_BYTES) -> list[ScrollSample]:
    """Estimated scroll position of a screen recording over time (phase correlation between samples).

    Each step's vertical shift is found by matching the middle band of one grey thumbnail in the next
    (falling back to phase correlation when that band is blank); a step with no clear match (a cut, a
    fade) counts as no movement. Pages scroll vertically, so only vertical shifts are looked for.
    """
    import cv2
    import numpy as np

    path = _checked_file(Path(path), max_bytes)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VisionError(f"cannot read video {path}: not a video OpenCV can decode (try mp4, webm, mov)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        if fps <= 0 or fps > 1000:
            fps = 25.0
        frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        step = max(1, round(fps / _TRACK_RATE))
        if frame_count > step * _MAX_TRACK_SAMPLES:
            step = -(-frame_count // _MAX_TRACK_SAMPLES)
        samples: list[ScrollSample] = []
        previous: np.ndarray | None = None
        scroll = 0.0
        index = 0
        while True:
            ok = capture.grab()
            if not ok:
                break
            if index % step == 0:
                ok, pixels = capture.retrieve()
                if not ok or pixels is None:
                    break
                height, width = pixels.shape[:2]
                factor = _TRACK_WIDTH / width
                grey = cv2.cvtColor(
                    cv2.resize(pixels, (_TRACK_WIDTH, max(8, round(height * factor))), interpolation=cv2.INTER_AREA),
                    cv2.COLOR_BGR2GRAY,
                ).astype(np.float32)
                if previous is not None:
                    scroll += _vertical_shift(previous, grey) / factor
                previous = grey
                samples.append(ScrollSample(index, index / fps, max(0.0, scroll), width))
            index += 1
    finally:
        capture.release()
    if not samples:
        raise VisionError(f"cannot read video {path}: it has no decodable frames")
    return samples


def _vertical_shift(previous: np.ndarray, current: np.ndarray) -> float:
    """How many thumbnail rows the content moved up from ``previous`` to ``current`` (within a third)."""
    import cv2

    height = previous.shape[0]
    top, bottom = height // 3, 2 * height // 3
    band = previous[top:bottom]
    if float(band.std()) > 2.0:
        scores = cv2.matchTemplate(current, band, cv2.TM_CCOEFF_NORMED)
        _, best, _, (_, position) = cv2.minMaxLoc(scores)
        return float(top - position) if best > 0.6 else 0.0
    (dx, dy), response = cv2.phaseCorrelate(previous, current)
    return float(-dy) if response > 0.1 and abs(dx) < 2 else 0.0


def read_frame(path: Path, index: int) -> np.ndarray:
    """One frame of a video as RGB pixels."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, pixels = capture.read()
    finally:
        capture.release()
    if not ok or pixels is None:
        raise VisionError(f"cannot read frame {index} of {path}")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
