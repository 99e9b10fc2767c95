"""Comparing a capture with a reference image: one score, the regions that differ, and a diff picture.

The score is SSIM (structural similarity, Gaussian window) on both images brought to the same size and
then reduced by a whole factor to about ``COMPARE_SIDE`` pixels on the longer side. Per pixel it takes
the worst colour channel (a red button that should be blue is a difference, which grey SSIM misses), and
it is averaged over the page's *content*: pixels that are not the background colour in either image.
Plain mean SSIM is dominated by empty background: a button moved onto a heading scores 0.98 on a
mostly white page, which says "fine" about a broken layout; over the content it scores about 0.85.
Measured on drawn 1280x800 pages: identical 1.0, the same page as a JPEG (quality 70) 0.997, shifted
3 px 0.97, one button in the wrong colour 0.94, one button moved 0.85.

OpenCV does the filtering (about 10 ms for two 1280x800 images; NumPy box filters doing the same maths
take several times longer, see benchmarks/compare_bench.py).

Regions are where local SSIM is low or colours differ clearly, merged over small gaps so a changed line
of text is one box, largest first, in capture pixels (the caller turns them into page coordinates).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.vision.errors import VisionError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["COMPARE_SIDE", "SIMILARITY_TARGET", "Box", "Comparison", "compare_images", "load_reference", "render_diff"]

# The score a capture should reach to count as matching its reference. Below it, the result carries a
# diff image; at or above it, only the score (cost rule). Rendering noise between two captures of the
# same layout (font hinting, anti-aliasing) stays above 0.98; a moved or missing block falls below 0.9.
SIMILARITY_TARGET = 0.95
COMPARE_SIDE = 400
MAX_REGIONS = 8
DIFF_SIDE = 640
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_BACKGROUND_TOLERANCE = 14  # 0..255 per channel: still the background colour
_LOW_SSIM = 0.75  # a pixel whose local SSIM is below this differs
_COLOUR_STEP = 40  # ... or whose colour differs by more than this in some channel (0..255, blurred)
_MIN_REGION_FRACTION = 0.0004  # smaller specks (anti-aliasing, a caret) are not regions
BOX_COLOUR = (255, 0, 0)  # RGB: red boxes on the diff image
TINT_COLOUR = (255, 0, 255)  # RGB: magenta over differing pixels


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    def shifted(self, dx: int, dy: int, scale: float = 1.0) -> Box:
        """The box in another coordinate system: divided by ``scale`` (device pixel ratio), then moved."""
        return Box(
            round(self.x / scale) + dx, round(self.y / scale) + dy, round(self.width / scale), round(self.height / scale)
        )

    def __str__(self) -> str:
        return f"x={self.x} y={self.y} w={self.width} h={self.height}"


@dataclass
class Comparison:
    similarity: float  # 0..1, 1 = the same picture
    regions: list[Box]  # differing regions in capture pixels, largest first
    width: int  # the size both images were compared at (the capture's)
    height: int
    note: str = ""  # how the reference was fitted, when it did not have the capture's size
    mask: np.ndarray | None = field(default=None, repr=False)  # differing pixels at the compare size


def load_reference(path: Path) -> np.ndarray:
    """The reference image as RGB pixels; a clear error when it cannot be read.

    OpenCV decodes PNG, JPEG and WebP in about half Pillow's time; Pillow reads the rest (GIF, BMP ...).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise VisionError(f"reference image not found: {path} (give the path of a PNG/JPEG design or screenshot)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VisionError(f"cannot read reference {path}: {exc.strerror or exc}") from None
    pixels = _decode_with_opencv(data)
    if pixels is not None:
        return pixels
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            img.seek(0)
            return _rgb_array(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise VisionError(f"cannot read reference {path}: not a supported image (png, jpeg, webp, gif)") from None


def _decode_with_opencv(data: bytes) -> np.ndarray | None:
    import cv2
    import numpy as np

    if not data.startswith((b"\x89PNG", b"\xff\xd8", b"RIFF")):
        return None
    # JPEG: IMREAD_COLOR applies the EXIF orientation (a photo of a design); PNG/WebP may carry alpha.
    flags = cv2.IMREAD_COLOR if data.startswith(b"\xff\xd8") else cv2.IMREAD_UNCHANGED
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None or pixels.dtype != np.uint8:
        return None  # 16-bit and odd PNGs: Pillow converts them properly
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if pixels.shape[2] == 4:
        # Transparent parts of a design are page background: flatten onto white.
        alpha = pixels[..., 3:4].astype(np.float32) / 255
        flat = pixels[..., :3].astype(np.float32) * alpha + 255 * (1 - alpha)
        return cv2.cvtColor(flat.astype(np.uint8), cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def decode_png(data: bytes) -> np.ndarray:
    import cv2
    import numpy as np

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise VisionError("cannot decode the captured image")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _rgb_array(img: object) -> np.ndarray:
    import numpy as np
    from PIL import Image as PILImage

    assert isinstance(img, PILImage.Image)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent parts of a design are page background: flatten onto white.
        rgba = img.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return np.asarray(flat)
    return np.asarray(img.convert("RGB"))


def fit_reference(reference: np.ndarray, width: int, height: int) -> tuple[np.ndarray, str]:
    """The reference at the capture's size: scaled to its width, then cropped or padded (white) in height."""
    import cv2
    import numpy as np

    ref_h, ref_w = reference.shape[:2]
    note = ""
    if ref_w != width:
        scaled_h = max(1, round(ref_h * width / ref_w))
        interpolation = cv2.INTER_AREA if ref_w > width else cv2.INTER_LINEAR
        reference = cv2.resize(reference, (width, scaled_h), interpolation=interpolation)
        note = f"reference {ref_w}x{ref_h} scaled to width {width}"
    cur_h = reference.shape[0]
    if cur_h != height and abs(cur_h - height) <= max(2, height // 100):
        return np.ascontiguousarray(cv2.resize(reference, (width, height), interpolation=cv2.INTER_LINEAR)), note
    if cur_h > height:
        reference = reference[:height]
        note = (note + "; " if note else "reference ") + f"cropped to the top {height}px (the capture's height)"
    elif cur_h < height:
        pad = np.full((height - cur_h, width, 3), 255, dtype=np.uint8)
        reference = np.vstack([reference, pad])
        note = (note + "; " if note else "reference ") + f"is shorter: padded with white below {cur_h}px"
    return np.ascontiguousarray(reference), note


def compare_images(capture: np.ndarray, reference: np.ndarray) -> Comparison:
    """Score and differing regions of ``capture`` against ``reference`` (RGB arrays of any sizes)."""
    import cv2
    import numpy as np

    height, width = capture.shape[:2]
    reference, note = fit_reference(reference, width, height)
    # A whole-number reduction: OpenCV's area resampling has a fast path for it (3x faster).
    factor = max(1, -(-max(width, height) // COMPARE_SIDE))
    small = (max(8, width // factor), max(8, height // factor))
    a = cv2.resize(capture, small, interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(reference, small, interpolation=cv2.INTER_AREA).astype(np.float32)

    ssim_map = _ssim_map(a, b)
    content = _content_mask(a) | _content_mask(b)
    per_pixel = _channel_min(ssim_map)
    # At least a few percent of the picture, so a near-empty page is not judged by a handful of pixels.
    if content.sum() >= 0.02 * content.size:
        similarity = float(per_pixel[content].mean())
    else:
        similarity = float(per_pixel.mean())
    similarity = max(0.0, min(1.0, similarity))

    local = _channel_min(ssim_map)
    colour = _channel_max(cv2.absdiff(cv2.GaussianBlur(a, (5, 5), 1.0), cv2.GaussianBlur(b, (5, 5), 1.0)))
    mask = ((local < _LOW_SSIM) | (colour > _COLOUR_STEP)).astype(np.uint8)
    regions = _regions(mask, width / small[0], height / small[1])
    return Comparison(similarity, regions, width, height, note, mask)


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel, per-channel SSIM (Gaussian window, sigma 1.5)."""
    import cv2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (7, 7), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    denominator = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    return numerator / denominator


def _channel_min(x: np.ndarray) -> np.ndarray:
    import numpy as np

    # Channel by channel: NumPy's reduce over the last, interleaved axis is several times slower.
    return np.minimum(np.minimum(x[..., 0], x[..., 1]), x[..., 2])


def _channel_max(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


def _content_mask(pixels: np.ndarray) -> np.ndarray:
    """Pixels that are not page background (the most common colour), grown by the SSIM window."""
    import cv2
    import numpy as np

    quantised = pixels.astype(np.uint8) >> 4
    keys = (quantised[..., 0].astype(np.int32) << 8) | (quantised[..., 1].astype(np.int32) << 4) | quantised[..., 2]
    background_key = int(np.argmax(np.bincount(keys.ravel(), minlength=4096)))
    background = np.array([(background_key >> 8) & 15, (background_key >> 4) & 15, background_key & 15]) * 16 + 8
    differs = _channel_max(np.abs(pixels - background.astype(np.float32))) > _BACKGROUND_TOLERANCE
    grown = cv2.dilate(differs.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7)))
    return grown.astype(bool)


def _regions(mask: np.ndarray, sx: float, sy: float) -> list[Box]:
    """Bounding boxes of the differing areas, merged across small gaps, largest first, in capture pixels."""
    import cv2

    h, w = mask.shape
    gap = max(3, round(max(w, h) / 64))  # letters of one changed line, parts of one moved block
    merged = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (gap, gap)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
    boxes: list[tuple[int, Box]] = []
    min_area = _MIN_REGION_FRACTION * w * h
    for label in range(1, count):
        x, y, bw, bh, _area = (int(v) for v in stats[label])
        inside = int(mask[y : y + bh, x : x + bw].sum())  # differing pixels, not the dilated halo
        if inside < min_area:
            continue
        # Undo the dilation's growth (half a gap each side), then scale up to capture pixels.
        shrink = gap // 2
        x0, y0 = min(x + shrink, w - 1), min(y + shrink, h - 1)
        x1, y1 = max(x0 + 1, x + bw - shrink), max(y0 + 1, y + bh - shrink)
        box = Box(int(x0 * sx), int(y0 * sy), max(1, round((x1 - x0) * sx)), max(1, round((y1 - y0) * sy)))
        boxes.append((box.width * box.height, box))
    boxes.sort(key=lambda item: item[0], reverse=True)
    return [box for _, box in boxes[:MAX_REGIONS]]


def render_diff(capture: np.ndarray, comparison: Comparison) -> bytes:
    """PNG of the capture faded to grey, differing pixels tinted magenta, regions boxed red and numbered.

    At most ``DIFF_SIDE`` pixels on the longer side: it shows *where*, the capture itself shows detail,
    so a diff of a 1280x800 capture costs the model a quarter of its tokens (345 instead of 1334).
    """
    import cv2
    import numpy as np

    scale = min(1.0, DIFF_SIDE / max(comparison.width, comparison.height))
    size = (max(1, round(comparison.width * scale)), max(1, round(comparison.height * scale)))
    grey = cv2.cvtColor(capture, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    faded = cv2.convertScaleAbs(grey, alpha=0.35, beta=255 * 0.65)
    picture = cv2.cvtColor(faded, cv2.COLOR_GRAY2RGB)
    if comparison.mask is not None:
        mask = cv2.resize(comparison.mask, size, interpolation=cv2.INTER_NEAREST)
        tint = np.empty_like(picture)
        tint[:] = TINT_COLOUR
        cv2.copyTo(cv2.addWeighted(picture, 0.4, tint, 0.6, 0), mask, picture)
    thickness = max(2, round(max(size) / 300))
    for number, box in enumerate(comparison.regions, start=1):
        x0, y0 = round(box.x * scale), round(box.y * scale)
        x1, y1 = round((box.x + box.width) * scale) - 1, round((box.y + box.height) * scale) - 1
        cv2.rectangle(picture, (x0, y0), (max(x0, x1), max(y0, y1)), BOX_COLOUR, thickness)
        label_y = y0 - 6 if y0 > 24 else y1 + 20
        cv2.putText(picture, str(number), (x0, label_y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, BOX_COLOUR, 2)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise VisionError("cannot encode the diff image")
    return encoded.tobytes()


def png_from_array(pixels: np.ndarray) -> bytes:
    """RGB pixels as PNG bytes (to send a fitted reference image)."""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
