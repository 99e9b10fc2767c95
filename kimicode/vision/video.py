"""Video in: sampled, timestamped frames within an image-token budget, or the Moonshot native upload.

Frames are picked evenly in time (at most ``max_fps``, at most ``max_frames``) plus the first frame of each
new scene, wherever it falls. Finding those is a scan of small thumbnails of the decoded frames: through
FFmpeg's own decoder (PyAV, ``video_av``), which skips the decoding that no answer needs and places every
change at its frame; through OpenCV (``video_cv``) when PyAV is missing or cannot read the file. Which
jumps are cuts and which are flashes, and which frames are shown, is ``video_scenes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.llm.messages import Image
from kimicode.vision.errors import VisionError
from kimicode.vision.images import DEFAULT_MAX_TOKENS
from kimicode.vision.video_scenes import Frame, choose, downscale, scene_changes

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
# Mean absolute difference of 0..255 thumbnails, in the plane (luma or colour) that changes most; from
# half of it a jump counts when it stands out against the motion around it (video_scenes.is_jump).
DEFAULT_SCENE_THRESHOLD = 30.0
_JPEG_QUALITY = 85


def sample_video(
    path: Path,
    max_frames: int = 32,
    max_fps: float = 2.0,
    token_budget: int = 32_000,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    max_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
) -> list[Image]:
    """Timestamped JPEG frames of a video, sorted by time, together within ``token_budget`` tokens."""
    from kimicode.vision import video_av, video_cv
    from kimicode.vision.video_scenes import FLASH_SECONDS

    if max_frames < 1 or max_fps <= 0 or token_budget < 1:
        raise ValueError("max_frames, max_fps and token_budget must be positive")
    path = _checked_file(Path(path), max_bytes)
    try:
        scan = video_av.scan(path, max_frames, max_fps, scene_threshold, token_budget)
    except video_av.Unsupported:
        scan = video_cv.scan(path, max_frames, max_fps, scene_threshold, token_budget)
    if not scan.colour:
        raise VisionError(f"cannot read video {path}: no frame could be decoded")

    changes = scene_changes(scan, scene_threshold, window=max(2, round(FLASH_SECONDS * scan.fps)))
    chosen = choose(scan, changes, max_frames)
    per_frame_tokens = min(DEFAULT_MAX_TOKENS, max(1, token_budget // len(chosen)))
    return [_to_image(frame, per_frame_tokens) for frame in chosen]


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


def _to_image(frame: Frame, max_tokens: int) -> Image:
    import cv2

    pixels = downscale(frame.pixels, max_tokens)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise VisionError("cannot encode a video frame as JPEG")
    height, width = pixels.shape[:2]
    label = f"frame at t={frame.time:.1f}s"
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
