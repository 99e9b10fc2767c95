"""Turning image files and bytes into `Image`s the model can read, within its token budget.

Kimi K2.5 spends about one token per 28x28 pixel patch and reads at most ~4k tokens of one image, so
larger images are downscaled (aspect ratio kept) until ceil(w/28) * ceil(h/28) fits the budget. Pixels
past that budget would only cost upload time: the server would shrink them anyway.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.llm.messages import Image
from kimicode.vision.errors import VisionError

if TYPE_CHECKING:  # Pillow is imported lazily at run time
    from PIL.Image import Image as PILImage

__all__ = [
    "PATCH_PIXELS",
    "DEFAULT_MAX_TOKENS",
    "VisionError",
    "estimate_image_tokens",
    "fit_within_tokens",
    "encode_image_file",
    "encode_image_bytes",
    "image_from_png_bytes",
]

PATCH_PIXELS = 28
DEFAULT_MAX_TOKENS = 4096
JPEG_QUALITY = 85
# A lossless image bigger than this after encoding is sent as JPEG instead (unless it has alpha):
# a multi-megabyte PNG photo costs upload time and context-log space for nothing.
MAX_LOSSLESS_BYTES = 2 * 1024 * 1024
SUPPORTED_FORMATS = "png, jpeg, webp, gif, bmp, tiff"


def estimate_image_tokens(width: int, height: int) -> int:
    """Tokens the model spends on a width x height image (one per started 28x28 patch)."""
    if width <= 0 or height <= 0:
        return 0
    return math.ceil(width / PATCH_PIXELS) * math.ceil(height / PATCH_PIXELS)


def fit_within_tokens(width: int, height: int, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[int, int]:
    """The largest size with the same aspect ratio whose token estimate is <= max_tokens (never upscales)."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if estimate_image_tokens(width, height) <= max_tokens:
        return width, height
    scale = math.sqrt(max_tokens * PATCH_PIXELS * PATCH_PIXELS / (width * height))
    # The square-root guess ignores patch rounding; step down until the rounded count fits.
    while True:
        new_w = max(1, int(width * scale))
        new_h = max(1, int(height * scale))
        if estimate_image_tokens(new_w, new_h) <= max_tokens:
            return new_w, new_h
        scale *= 0.99


def encode_image_file(path: Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> Image:
    """Read an image file and encode it for the model, labelled with its path."""
    path = Path(path).expanduser()
    if not path.exists():
        raise VisionError(f"image not found: {path} (check the path)")
    if not path.is_file():
        raise VisionError(f"not an image file: {path} is a directory")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VisionError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return _encode(data, max_tokens, label=str(path), source=str(path))


def encode_image_bytes(data: bytes, max_tokens: int = DEFAULT_MAX_TOKENS, label: str = "") -> Image:
    """Encode image bytes (any supported format) for the model."""
    return _encode(data, max_tokens, label=label, source=label or "image data")


def image_from_png_bytes(png: bytes, max_tokens: int = DEFAULT_MAX_TOKENS, label: str = "") -> Image:
    """A screenshot (PNG bytes) as an Image: kept PNG so text stays crisp, downscaled to the budget."""
    return _encode(png, max_tokens, label=label, source=label or "screenshot", keep_lossless=True)


def _encode(data: bytes, max_tokens: int, label: str, source: str, keep_lossless: bool = False) -> Image:
    from PIL import Image as PILImageModule
    from PIL import ImageOps, UnidentifiedImageError

    if not data:
        raise VisionError(f"cannot read image {source}: the file is empty")
    try:
        img: PILImage = PILImageModule.open(io.BytesIO(data))
        source_format = (img.format or "").upper()
        raw_width, raw_height = img.size
        orientation = img.getexif().get(0x0112, 1)  # EXIF Orientation
        if source_format == "JPEG":
            _draft_for_budget(img, raw_width, raw_height, orientation, max_tokens)
        img.seek(0)  # first frame of an animated GIF/WebP
        img.load()
    except PILImageModule.DecompressionBombError:
        raise VisionError(f"cannot read image {source}: it is too large to decode safely") from None
    except UnidentifiedImageError:
        raise VisionError(
            f"cannot read image {source}: not a supported image ({SUPPORTED_FORMATS})"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise VisionError(f"cannot read image {source}: the file is corrupt or truncated ({exc})") from None

    rotated = orientation not in (1, None)
    if rotated:
        img = ImageOps.exif_transpose(img)
    has_alpha = _has_alpha(img)
    width, height = img.size
    target = fit_within_tokens(width, height, max_tokens)

    # Small enough, upright, and already in a format the model reads: send the original bytes.
    if (
        target == (width, height)
        and not rotated
        and source_format in ("PNG", "JPEG", "WEBP")
        and (source_format == "JPEG" or len(data) <= MAX_LOSSLESS_BYTES)
        and raw_width == width
    ):
        mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[source_format]
        return Image(mime=mime, data=data, width=width, height=height, label=label)

    img = img.convert("RGBA" if has_alpha else "RGB")
    if target != (width, height):
        img = img.resize(target, PILImageModule.Resampling.LANCZOS, reducing_gap=3.0)

    lossless = has_alpha or keep_lossless or source_format in ("PNG", "GIF", "BMP", "TIFF")
    if lossless:
        png = _save(img, "PNG", optimize=False)
        if has_alpha or len(png) <= MAX_LOSSLESS_BYTES:
            return Image(mime="image/png", data=png, width=img.width, height=img.height, label=label)
    jpeg = _save(img.convert("RGB"), "JPEG", quality=JPEG_QUALITY, optimize=True)
    return Image(mime="image/jpeg", data=jpeg, width=img.width, height=img.height, label=label)


def _draft_for_budget(img: PILImage, width: int, height: int, orientation: int, max_tokens: int) -> None:
    """Let the JPEG decoder skip detail we would throw away (DCT scaling: 2-8x faster on big photos)."""
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    target_w, target_h = fit_within_tokens(*upright, max_tokens)
    if orientation in (5, 6, 7, 8):
        target_w, target_h = target_h, target_w
    # draft() never goes below the requested size, so the final resize still sees enough pixels.
    img.draft("RGB", (target_w, target_h))


def _has_alpha(img: PILImage) -> bool:
    if img.mode in ("RGBA", "LA", "PA"):
        return True
    return img.mode == "P" and "transparency" in img.info


def _save(img: PILImage, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()
