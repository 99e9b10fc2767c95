#!/usr/bin/env python3
"""Print a .pptx as text: slide size, the layouts the template offers (with their placeholders), and for
each slide its layout, title, text, tables, pictures, charts and speaker notes, plus warnings for empty
placeholders and shapes that run past the slide's edges.

Usage: inspect_pptx.py FILE.pptx [--slides 1-3,7] [--width N] [--no-layouts]
Exit codes: 0 ok, 1 the file cannot be read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path
from typing import Any, NoReturn

EMU_PER_MM = 36000


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def open_presentation(path: Path) -> Any:
    try:
        from pptx import Presentation
    except ImportError:
        fail("python-pptx is not installed (run: pip install python-pptx)")
    if not path.is_file():
        fail(f"{path} does not exist or is not a file")
    if not zipfile.is_zipfile(path):
        fail(f"{path} is not a .pptx (not a zip package; legacy .ppt must be converted first)")
    try:
        return Presentation(str(path))
    except Exception as exc:  # noqa: BLE001 - python-pptx raises several unrelated types for broken packages
        fail(f"cannot open {path} as a presentation: {exc}")


def parse_slides(spec: str, count: int) -> list[int]:
    numbers: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            first, _, last = part.partition("-")
            start, end = int(first), int(last or first)
        except ValueError:
            fail(f"bad slide range {part!r} (use e.g. 1-3,7)")
        if not 1 <= start <= end <= count:
            fail(f"slide range {part!r} is outside 1-{count}")
        numbers.extend(range(start, end + 1))
    return numbers


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def placeholder_kind(shape: Any) -> str:
    kind = shape.placeholder_format.type
    return kind.name.lower() if kind is not None and hasattr(kind, "name") else "?"


def layout_lines(presentation: Any) -> list[str]:
    lines = []
    for index, layout in enumerate(presentation.slide_layouts):
        holders = ", ".join(f"{p.placeholder_format.idx}:{placeholder_kind(p)}" for p in layout.placeholders)
        lines.append(f"  {index} {layout.name!r} [{holders}]")
    return lines


def edge_warnings(shape: Any, slide_width: int, slide_height: int) -> list[str]:
    if None in (shape.left, shape.top, shape.width, shape.height):
        return []  # inherits its position from the layout
    sides = []
    if shape.left < 0:
        sides.append("left")
    if shape.top < 0:
        sides.append("top")
    if shape.left + shape.width > slide_width:
        sides.append("right")
    if shape.top + shape.height > slide_height:
        sides.append("bottom")
    return [f"{shape.name!r} runs past the {side} edge" for side in sides]


def shape_type_of(shape: Any) -> Any:
    """The MSO_SHAPE_TYPE, or None for shapes python-pptx cannot classify (it raises for some)."""
    try:
        return shape.shape_type
    except Exception:  # noqa: BLE001 - see above: python-pptx raises for shapes it cannot classify
        return None


def shape_lines(shape: Any, width: int, depth: int = 1) -> tuple[list[str], list[str]]:
    """Lines describing one shape (recursing into groups) and warnings about it."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    pad = "  " * depth
    lines: list[str] = []
    warnings: list[str] = []
    shape_type = shape_type_of(shape)
    if shape_type == MSO_SHAPE_TYPE.GROUP:
        lines.append(f"{pad}[group {shape.name!r}]")
        for child in shape.shapes:
            child_lines, child_warnings = shape_lines(child, width, depth + 1)
            lines += child_lines
            warnings += child_warnings
        return lines, warnings
    if shape.is_placeholder:
        label = f"placeholder {shape.placeholder_format.idx} {placeholder_kind(shape)}"
    else:
        label = f"{str(shape_type).split('.')[-1].split(' ')[0].lower()} {shape.name!r}"
    if getattr(shape, "has_table", False) and shape.has_table:
        table = shape.table
        lines.append(f"{pad}[table {shape.name!r} {len(table.rows)}x{len(table.columns)}]")
        for row in table.rows:
            lines.append(f"{pad}  | " + " | ".join(shorten(c.text, 24) for c in row.cells) + " |")
    elif getattr(shape, "has_chart", False) and shape.has_chart:
        chart = shape.chart
        series = ", ".join(s.name for plot in chart.plots for s in plot.series)
        title = chart.chart_title.text_frame.text if chart.has_title else ""
        kind = str(chart.chart_type).split(".")[-1].split(" ")[0]
        lines.append(f"{pad}[chart {shape.name!r} {kind}] title: {title!r} series: {series}")
    elif shape_type == MSO_SHAPE_TYPE.PICTURE or hasattr(shape, "image"):
        try:
            image = f"{shape.image.content_type}, {shape.image.size[0]}x{shape.image.size[1]} px"
        except Exception:  # noqa: BLE001 - a damaged picture is named, not a reason to stop
            image = "image not readable"
        size = f"{shape.width / EMU_PER_MM:.0f}x{shape.height / EMU_PER_MM:.0f} mm" if shape.width else ""
        lines.append(f"{pad}[picture {shape.name!r}] {size} {image}")
    elif shape.has_text_frame:
        paragraphs = [(p.level, p.text) for p in shape.text_frame.paragraphs if p.text.strip()]
        if len(paragraphs) == 1:
            lines.append(f"{pad}[{label}] {shorten(paragraphs[0][1], width)}")
        elif paragraphs:
            lines.append(f"{pad}[{label}]")
            # One line per paragraph, indented by bullet level, so the outline of the slide shows.
            lines += [f"{pad}  {'  ' * level}- {shorten(text, width)}" for level, text in paragraphs]
        elif shape.is_placeholder:
            warnings.append(f"empty placeholder {shape.placeholder_format.idx} {shape.name!r}")
    elif shape.is_placeholder:
        warnings.append(f"empty placeholder {shape.placeholder_format.idx} {shape.name!r}")
    else:
        lines.append(f"{pad}[{label}]")
    return lines, warnings


def main() -> int:
    parser = argparse.ArgumentParser(description="Dump a .pptx: layouts, slides, titles, text, images, notes.")
    parser.add_argument("file", type=Path, help="the .pptx file")
    parser.add_argument("--slides", help="slides to print, e.g. 1-3,7 (default: all)")
    parser.add_argument("--width", type=int, default=160, help="cut texts longer than this (default 160)")
    parser.add_argument("--no-layouts", action="store_true", help="do not list the template's layouts")
    args = parser.parse_args()

    presentation = open_presentation(args.file)
    slides = list(presentation.slides)
    numbers = parse_slides(args.slides, len(slides)) if args.slides else list(range(1, len(slides) + 1))
    slide_width, slide_height = presentation.slide_width, presentation.slide_height
    print(f"file: {args.file}")
    print(
        f"slides: {len(slides)} | size: {slide_width / EMU_PER_MM:.0f}x{slide_height / EMU_PER_MM:.0f} mm "
        f"(ratio {slide_width / slide_height:.2f})"
    )
    if not args.no_layouts:
        print("layouts (index name [placeholder idx:type]):")
        print("\n".join(layout_lines(presentation)))

    for number in numbers:
        slide = slides[number - 1]
        print(f"\n--- slide {number} (layout {slide.slide_layout.name!r}) ---")
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        print(f"title: {shorten(title, args.width) if title else '(none)'}")
        warnings: list[str] = []
        for shape in slide.shapes:
            warnings += edge_warnings(shape, slide_width, slide_height)
            if shape is not None and title_shape is not None and shape.shape_id == title_shape.shape_id:
                if not title:
                    warnings.append(f"empty title placeholder {shape.name!r}")
                continue
            lines, shape_warnings = shape_lines(shape, args.width)
            warnings += shape_warnings
            if lines:
                print("\n".join(lines))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text if slide.notes_slide.notes_text_frame else ""
            if notes.strip():
                print(f"  notes: {shorten(notes, args.width)}")
        for warning in warnings:
            print(f"  warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
