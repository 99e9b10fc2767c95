"""Comparing a capture with a reference: the score orders differences sensibly and the boxes sit on them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

from kimicode.vision.compare import (
    BOX_COLOUR,
    SIMILARITY_TARGET,
    Box,
    compare_images,
    load_reference,
    render_diff,
)
from kimicode.vision.errors import VisionError


def page(button_y: int = 380, colour: tuple[int, int, int] = (20, 90, 200), size: tuple[int, int] = (1280, 800)) -> np.ndarray:
    """A heading, five lines of 'text' and a button, drawn at 1280x800 (scaled to ``size``)."""
    img = PILImage.new("RGB", (1280, 800), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((100, 100, 700, 150), fill=(30, 30, 30))
    for i in range(5):
        draw.rectangle((100, 200 + i * 30, 900, 215 + i * 30), fill=(90, 90, 90))
    draw.rectangle((100, button_y, 300, button_y + 50), fill=colour)
    if size != (1280, 800):
        img = img.resize(size, PILImage.Resampling.LANCZOS)
    return np.asarray(img)


def covers(box: Box, x0: int, y0: int, x1: int, y1: int, slack: int = 12) -> bool:
    return box.x <= x0 + slack and box.y <= y0 + slack and box.x + box.width >= x1 - slack and box.y + box.height >= y1 - slack


def test_identical_pictures_score_one_and_have_no_regions() -> None:
    result = compare_images(page(), page())
    assert result.similarity == pytest.approx(1.0)
    assert result.regions == []


def test_score_orders_differences_by_how_visible_they_are() -> None:
    reference = page()
    jpeg = io.BytesIO()
    PILImage.fromarray(reference).save(jpeg, "JPEG", quality=70)
    recompressed = compare_images(np.asarray(PILImage.open(jpeg).convert("RGB")), reference).similarity
    nudged = compare_images(page(383), reference).similarity
    recoloured = compare_images(page(colour=(200, 30, 30)), reference).similarity
    moved = compare_images(page(110), reference).similarity
    assert recompressed > SIMILARITY_TARGET
    assert 1.0 > recompressed > nudged > recoloured > moved
    assert recoloured < SIMILARITY_TARGET and moved < 0.9


def test_a_moved_button_is_boxed_where_it_is_and_where_it_should_be() -> None:
    result = compare_images(page(110), page(380))
    assert len(result.regions) == 2
    boxes = sorted(result.regions, key=lambda b: b.y)
    assert covers(boxes[0], 100, 110, 300, 160)  # where it is now (over the heading)
    assert covers(boxes[1], 100, 380, 300, 430)  # where the reference has it
    assert all(b.width < 300 and b.height < 120 for b in boxes)  # tight, not the whole page


def test_reference_of_another_size_is_fitted_to_the_capture() -> None:
    double = compare_images(page(), page(size=(2560, 1600)))
    assert double.similarity > 0.99 and "scaled to width 1280" in double.note
    taller = np.vstack([page(), np.full((400, 1280, 3), 255, np.uint8)])
    cropped = compare_images(page(), taller)
    assert cropped.similarity > 0.99 and "top 800px" in cropped.note


def test_diff_image_boxes_the_regions_in_red(tmp_path: Path) -> None:
    capture = page(110)
    result = compare_images(capture, page(380))
    diff = PILImage.open(io.BytesIO(render_diff(capture, result))).convert("RGB")
    scale = diff.width / 1280
    assert diff.width <= 800
    red = np.all(np.abs(np.asarray(diff).astype(int) - BOX_COLOUR) < 30, axis=2)
    ys, xs = np.nonzero(red)
    assert len(xs) > 100
    # Every red pixel belongs to one of the two boxes (or their numbers just above them).
    for box in result.regions:
        inside = (xs >= (box.x - 4) * scale) & (xs <= (box.x + box.width + 30) * scale)
        assert inside.any()
    assert xs.min() >= 80 * scale and xs.max() <= 330 * scale


def test_unreadable_reference_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VisionError, match="reference image not found"):
        load_reference(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(VisionError, match="not a supported image"):
        load_reference(bad)
    transparent = tmp_path / "t.png"
    PILImage.new("RGBA", (10, 10), (0, 0, 0, 0)).save(transparent)
    assert load_reference(transparent)[5, 5].tolist() == [255, 255, 255]


def test_reference_photo_is_read_upright(tmp_path: Path) -> None:
    photo = tmp_path / "design.jpg"
    exif = PILImage.Exif()
    exif[0x0112] = 6  # stored sideways: view rotated 90 degrees clockwise
    PILImage.new("RGB", (200, 100), (10, 200, 10)).save(photo, exif=exif.tobytes())
    assert load_reference(photo).shape == (200, 100, 3)
    palette = tmp_path / "design.gif"
    PILImage.new("P", (30, 20)).save(palette)
    assert load_reference(palette).shape == (20, 30, 3)
