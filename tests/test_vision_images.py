"""Image encoding: what reaches the model fits its budget, stays upright and keeps its kind."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from kimicode.vision.errors import VisionError
from kimicode.vision.images import (
    PATCH_PIXELS,
    encode_image_bytes,
    encode_image_file,
    estimate_image_tokens,
    fit_within_tokens,
    image_from_png_bytes,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _decode(data: bytes) -> PILImage.Image:
    return PILImage.open(io.BytesIO(data))


def _close(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour))


def test_token_estimate_counts_started_patches() -> None:
    patch = PATCH_PIXELS
    assert estimate_image_tokens(patch, patch) == 1
    assert estimate_image_tokens(patch + 1, patch) == 2
    assert estimate_image_tokens(45 * patch + 1, 28 * patch + patch - 1) == 46 * 29
    assert estimate_image_tokens(0, 10) == 0


def test_fit_within_tokens_keeps_ratio_and_never_upscales() -> None:
    assert fit_within_tokens(100, 50, 4096) == (100, 50)
    width, height = fit_within_tokens(10_000, 1_000, 500)
    assert estimate_image_tokens(width, height) <= 500
    assert abs(width / height - 10) < 0.05


def test_big_rotated_photo_fits_budget_upright(tmp_path: Path) -> None:
    # Stored 4000x3000 landscape: left half red, right half blue. EXIF orientation 6 means "rotate
    # 90 degrees clockwise to display", so the upright picture is 3000x4000 with red on top.
    raw = PILImage.new("RGB", (4000, 3000), BLUE)
    raw.paste(RED, (0, 0, 2000, 3000))
    exif = raw.getexif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    raw.save(path, "JPEG", quality=90, exif=exif.tobytes())

    image = encode_image_file(path)

    assert image.mime == "image/jpeg"
    assert estimate_image_tokens(image.width, image.height) <= 4096
    assert image.height > image.width
    assert abs(image.width / image.height - 3000 / 4000) < 0.01
    decoded = _decode(image.data).convert("RGB")
    assert decoded.size == (image.width, image.height)
    assert _close(decoded.getpixel((image.width // 2, image.height // 10)), RED)
    assert _close(decoded.getpixel((image.width // 2, image.height * 9 // 10)), BLUE)
    assert image.label == str(path)


def test_smaller_budget_is_respected(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    PILImage.new("RGB", (3000, 1000), RED).save(path)
    image = encode_image_file(path, max_tokens=300)
    assert estimate_image_tokens(image.width, image.height) <= 300
    assert abs(image.width / image.height - 3) < 0.05


def test_png_with_alpha_stays_png_with_alpha(tmp_path: Path) -> None:
    picture = PILImage.new("RGBA", (3000, 3000), (0, 0, 0, 0))
    picture.paste((0, 200, 0, 255), (0, 0, 1500, 3000))
    path = tmp_path / "logo.png"
    picture.save(path)

    image = encode_image_file(path)

    assert image.mime == "image/png"
    assert estimate_image_tokens(image.width, image.height) <= 4096
    decoded = _decode(image.data).convert("RGBA")
    assert decoded.getpixel((image.width - 5, 5))[3] == 0  # transparent half is still transparent
    assert decoded.getpixel((5, 5)) == (0, 200, 0, 255)


def test_small_png_is_sent_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "icon.png"
    PILImage.new("RGB", (64, 32), RED).save(path)
    image = encode_image_file(path)
    assert image.data == path.read_bytes()
    assert (image.mime, image.width, image.height) == ("image/png", 64, 32)


def test_gif_sends_its_first_frame(tmp_path: Path) -> None:
    frames = [PILImage.new("RGB", (120, 80), colour) for colour in (RED, (0, 255, 0), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)

    image = encode_image_file(path)

    assert image.mime == "image/png"
    assert (image.width, image.height) == (120, 80)
    assert _close(_decode(image.data).convert("RGB").getpixel((60, 40)), RED, tolerance=10)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_formats_are_converted(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"picture.{fmt.lower()}"
    PILImage.new("RGB", (200, 100), BLUE).save(path, fmt)
    image = encode_image_file(path)
    assert image.mime in ("image/png", "image/jpeg")
    assert _close(_decode(image.data).convert("RGB").getpixel((100, 50)), BLUE, tolerance=10)


def test_webp_photo_is_kept_when_small(tmp_path: Path) -> None:
    path = tmp_path / "photo.webp"
    PILImage.new("RGB", (300, 200), BLUE).save(path, "WEBP")
    assert encode_image_file(path).mime == "image/webp"


def test_corrupt_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(VisionError) as error:
        encode_image_file(path)
    message = str(error.value)
    assert "broken.png" in message and "\n" not in message


def test_truncated_jpeg_is_an_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (800, 600), RED).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(VisionError, match="cut.jpg"):
        encode_image_file(path)


def test_text_file_and_missing_file_are_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(VisionError, match="not a supported image"):
        encode_image_file(text)
    with pytest.raises(VisionError, match="image not found"):
        encode_image_file(tmp_path / "nope.png")
    with pytest.raises(VisionError, match="empty"):
        encode_image_bytes(b"")


def test_screenshot_png_stays_png_when_downscaled() -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (1280, 9000), (250, 250, 250)).save(buffer, "PNG")
    image = image_from_png_bytes(buffer.getvalue(), label="full page")
    assert image.mime == "image/png"
    assert estimate_image_tokens(image.width, image.height) <= 4096
    assert image.label == "full page"
