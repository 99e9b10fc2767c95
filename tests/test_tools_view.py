"""The view tool: numbered files, ranges, clipping, directory listings, binaries and images."""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from kimicode.llm.messages import Image
from kimicode.tools.base import MAX_OUTPUT_CHARS, ToolContext, ToolResult
from kimicode.tools.view import ViewTool


def view(ctx: ToolContext, path: str, **extra: Any) -> ToolResult:
    return asyncio.run(ViewTool().run({"path": path, **extra}, ctx))


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path)


@pytest.fixture
def five_lines(tmp_path: Path) -> Path:
    path = tmp_path / "five.txt"
    path.write_text("one\ntwo\nthree\nfour\nfive\n")
    return path


def test_file_is_numbered_like_cat_n(ctx: ToolContext, five_lines: Path) -> None:
    result = view(ctx, "five.txt")
    assert not result.is_error
    assert result.text == "     1\tone\n     2\ttwo\n     3\tthree\n     4\tfour\n     5\tfive"


def test_view_range_inclusive_and_minus_one(ctx: ToolContext, five_lines: Path) -> None:
    assert view(ctx, "five.txt", view_range=[2, 3]).text == "     2\ttwo\n     3\tthree"
    assert view(ctx, "five.txt", view_range=[4, -1]).text == "     4\tfour\n     5\tfive"
    assert view(ctx, str(five_lines), view_range=[5, 5]).text == "     5\tfive"


@pytest.mark.parametrize("bad", [[0, 2], [6, -1], [2, 9], [4, 3]])
def test_out_of_range_names_the_line_count(ctx: ToolContext, five_lines: Path, bad: list[int]) -> None:
    result = view(ctx, "five.txt", view_range=bad)
    assert result.is_error
    assert "has 5 lines" in result.text


def test_malformed_view_range(ctx: ToolContext, five_lines: Path) -> None:
    result = view(ctx, "five.txt", view_range=[1])
    assert result.is_error and "two integers" in result.text


def test_long_file_is_clipped_with_a_hint(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "long.py").write_text("".join(f"x = {n:020d}\n" for n in range(1, 5001)))
    result = view(ctx, "long.py")
    assert len(result.text) < MAX_OUTPUT_CHARS + 300
    assert result.text.startswith("     1\tx = 00000000000000000001\n")
    assert "use view_range" in result.text and "grep" in result.text
    assert "of 5000" in result.text
    # The range suggested in the note really shows the next lines.
    last_shown = int(result.text.split("showed lines 1-")[1].split(" ")[0])
    follow = view(ctx, "long.py", view_range=[last_shown + 1, last_shown + 1])
    assert follow.text == f"{last_shown + 1:6d}\tx = {last_shown + 1:020d}"


def test_empty_file(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    result = view(ctx, "empty")
    assert not result.is_error and "empty" in result.text
    assert view(ctx, "empty", view_range=[1, -1]).text == result.text


def test_missing_path(ctx: ToolContext) -> None:
    result = view(ctx, "nope/missing.txt")
    assert result.is_error and "does not exist" in result.text


def test_binary_file_is_refused(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02" * 10)
    result = view(ctx, "blob.bin")
    assert result.is_error and "binary file" in result.text


def test_utf16_with_bom_is_text(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "wide.txt").write_bytes("\ufeffhello\nworld\n".encode("utf-16-le"))
    assert view(ctx, "wide.txt").text == "     1\thello\n     2\tworld"


def test_directory_two_levels_sorted_hidden_skipped(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "deep" / "too_deep.py").write_text("")
    (tmp_path / "src" / "app.py").write_text("")
    (tmp_path / "README.md").write_text("")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("")
    (tmp_path / "src" / ".cache").write_text("")
    result = view(ctx, ".")
    assert not result.is_error
    lines = result.text.splitlines()
    assert "2 levels" in lines[0]
    assert lines[1:] == ["README.md", "src/", "src/app.py", "src/pkg/"]


def test_view_range_on_a_directory_is_an_error(ctx: ToolContext, tmp_path: Path) -> None:
    result = view(ctx, ".", view_range=[1, 2])
    assert result.is_error and "directory" in result.text


def test_image_goes_to_the_model(
    ctx: ToolContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picture = tmp_path / "shot.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    seen: list[tuple[bytes, str]] = []

    def encode_image_bytes(data: bytes, max_tokens: int = 4096, label: str = "") -> Image:
        seen.append((data, label))
        return Image(mime="image/png", data=b"png-bytes", width=64, height=32, label=label)

    module = types.ModuleType("kimicode.vision.images")
    module.encode_image_bytes = encode_image_bytes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kimicode.vision.images", module)
    result = view(ctx, "shot.png")
    assert not result.is_error
    assert result.text == f"{picture} (image, 64x32)"
    assert seen == [(b"\x89PNG\r\n\x1a\n", str(picture))]  # the bytes read through the opened file
    assert [img.data for img in result.images] == [b"png-bytes"]


def test_image_support_missing_is_a_clear_error(
    ctx: ToolContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shot.jpg").write_bytes(b"\xff\xd8\xff")
    monkeypatch.setitem(sys.modules, "kimicode.vision.images", None)  # makes the import fail
    result = view(ctx, "shot.jpg")
    assert result.is_error
    assert "image support is unavailable" in result.text
    assert result.images == []


def test_real_png_when_image_support_is_installed(ctx: ToolContext, tmp_path: Path) -> None:
    from PIL import Image as PILImage

    PILImage.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "red.png")
    result = view(ctx, "red.png")
    assert not result.is_error, result.text
    assert result.text == f"{tmp_path / 'red.png'} (image, 40x20)"
    assert result.images and result.images[0].data
