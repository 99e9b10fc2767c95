#!/usr/bin/env python3
"""Print a PDF as text: page count, metadata, page sizes, bookmarks, form fields and the text of each page.

Pages with no extractable text are usually scanned images: render them (render_pages.py) and look.

Usage: inspect_pdf.py FILE.pdf [--pages 1-3,7] [--chars N] [--password PW]
Exit codes: 0 ok, 1 the file cannot be read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

POINTS_PER_MM = 72 / 25.4


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def parse_pages(spec: str, page_count: int) -> list[int]:
    """'1-3,7' -> [0, 1, 2, 6] (zero-based), checked against the page count."""
    pages: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            first, _, last = part.partition("-")
            start, end = int(first), int(last or first)
        except ValueError:
            fail(f"bad page range {part!r} (use e.g. 1-3,7)")
        if not 1 <= start <= end <= page_count:
            fail(f"page range {part!r} is outside 1-{page_count}")
        pages.extend(range(start - 1, end))
    return pages


def open_pdf(path: Path, password: str | None) -> Any:
    try:
        from pypdf import PdfReader
    except ImportError:
        fail("pypdf is not installed (run: pip install pypdf)")
    if not path.is_file():
        fail(f"{path} does not exist or is not a file")
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(password or ""):
            fail(f"{path} is encrypted; pass the password with --password")
        return reader
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises several types for damaged files
        fail(f"cannot read {path} as a PDF: {exc}")


def outline_lines(items: Any, reader: Any, depth: int = 0) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, list):
            lines.extend(outline_lines(item, reader, depth + 1))
            continue
        try:
            page = reader.get_destination_page_number(item) + 1
        except Exception:  # noqa: BLE001 - a broken outline entry still lists, without its page
            page = "?"
        lines.append(f"{'  ' * depth}- {item.title} (page {page})")
    return lines


def size_label(page: Any) -> str:
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    if page.rotation in (90, 270):
        width, height = height, width
    return f"{width / POINTS_PER_MM:.0f}x{height / POINTS_PER_MM:.0f} mm"


def main() -> int:
    parser = argparse.ArgumentParser(description="Dump a PDF: pages, metadata, bookmarks, fields, text per page.")
    parser.add_argument("file", type=Path, help="the PDF file")
    parser.add_argument("--pages", help="pages to print text for, e.g. 1-3,7 (default: all)")
    parser.add_argument("--chars", type=int, default=3000, help="cut each page's text after N chars (default 3000)")
    parser.add_argument("--password", help="password for an encrypted PDF")
    args = parser.parse_args()

    reader = open_pdf(args.file, args.password)
    count = len(reader.pages)
    selected = parse_pages(args.pages, count) if args.pages else list(range(count))
    print(f"file: {args.file}")
    print(f"pages: {count} | encrypted: {'yes' if reader.is_encrypted else 'no'}")
    metadata = reader.metadata or {}
    for key in ("/Title", "/Author", "/Subject", "/Creator", "/Producer", "/CreationDate"):
        if metadata.get(key):
            print(f"{key[1:].lower()}: {metadata.get(key)}")
    sizes: dict[str, int] = {}
    for page in reader.pages:
        label = size_label(page)
        sizes[label] = sizes.get(label, 0) + 1
    print("page sizes: " + ", ".join(f"{label} x{n}" for label, n in sizes.items()))
    outline = outline_lines(reader.outline, reader)
    if outline:
        print("bookmarks:")
        print("\n".join(outline))
    fields = reader.get_fields() or {}
    if fields:
        print(f"form fields ({len(fields)}):")
        for name, field in fields.items():
            print(f"  {name} [{field.get('/FT', '?')}] = {field.get('/V', '')!s}")

    empty: list[int] = []
    for index in selected:
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception as exc:  # noqa: BLE001 - one unreadable page must not hide the others
            text = f"(text extraction failed: {exc})"
        if not text.strip():
            empty.append(index + 1)
        shown = text if len(text) <= args.chars else text[: args.chars] + f"\n... ({len(text)} chars in all)"
        print(f"\n--- page {index + 1} ---")
        print(shown.strip() or "(no text: likely an image; render the page to look at it)")
    if empty:
        print(f"\npages without text: {', '.join(map(str, empty))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
