#!/usr/bin/env python3
"""Print a .docx as plain text: sections (page size, margins, header/footer, page-number fields),
the styles in use, and the body in order with each paragraph's style and each table's cells.

Usage: inspect_docx.py FILE.docx [--outline] [--width N]
Exit codes: 0 ok, 1 the file cannot be read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

EMU_PER_MM = 36000


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def load_document(path: Path) -> Any:
    try:
        import docx  # python-docx
    except ImportError:
        fail("python-docx is not installed (run: pip install python-docx)")
    if not path.is_file():
        fail(f"{path} does not exist or is not a file")
    if not zipfile.is_zipfile(path):
        fail(f"{path} is not a .docx (not a zip package; legacy .doc must be converted first)")
    try:
        return docx.Document(str(path))
    except Exception as exc:  # noqa: BLE001 - python-docx raises several unrelated types for broken packages
        fail(f"cannot open {path} as a Word document: {exc}")


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def mm(length: Any) -> str:
    return "?" if length is None else f"{length / EMU_PER_MM:.0f}"


def has_page_field(part: Any) -> bool:
    """True when the header/footer holds a PAGE or NUMPAGES field (simple or complex form)."""
    from docx.oxml.ns import qn

    element = part._element
    instructions = [node.text or "" for node in element.xpath(".//w:instrText")]
    instructions += [node.get(qn("w:instr"), "") for node in element.xpath(".//w:fldSimple")]
    return any(text.split()[:1] in (["PAGE"], ["NUMPAGES"]) for text in instructions)


def story_text(part: Any) -> str:
    return " / ".join(p.text.strip() for p in part.paragraphs if p.text.strip())


def describe_sections(document: Any, width: int) -> list[str]:
    lines: list[str] = []
    for number, section in enumerate(document.sections, start=1):
        orientation = "landscape" if section.orientation == 1 else "portrait"
        lines.append(
            f"section {number}: {mm(section.page_width)}x{mm(section.page_height)} mm {orientation}, "
            f"margins L{mm(section.left_margin)} R{mm(section.right_margin)} "
            f"T{mm(section.top_margin)} B{mm(section.bottom_margin)} mm"
        )
        for label, part in (("header", section.header), ("footer", section.footer)):
            if part.is_linked_to_previous and number > 1:
                lines.append(f"  {label}: same as previous section")
                continue
            text = shorten(story_text(part), width) or "(empty)"
            field = " [page-number field]" if has_page_field(part) else ""
            lines.append(f"  {label}: {text}{field}")
    return lines


def paragraph_line(paragraph: Any, width: int, outline: bool) -> str | None:
    style = paragraph.style.name if paragraph.style is not None else "?"
    is_heading = style.startswith("Heading") or style == "Title"
    if outline and not is_heading:
        return None
    text = shorten(paragraph.text, width)
    if outline:
        level = int(style.split()[-1]) if style.split()[-1].isdigit() else 0
        return f"{'  ' * max(level - 1, 0)}[{style}] {text}"
    parts = [text] if text else []
    if paragraph._p.xpath(".//w:drawing | .//w:pict"):
        parts.append("(image)")
    if paragraph._p.xpath('.//w:br[@w:type="page"]'):
        parts.append("(page break)")
    return f"[{style}] " + (" ".join(parts) if parts else "(empty)")


def table_lines(table: Any, number: int, width: int) -> list[str]:
    style = table.style.name if table.style is not None else "none"
    lines = [f"[table {number}: {len(table.rows)} rows x {len(table.columns)} cols, style {style!r}]"]
    for row in table.rows:
        seen: list[int] = []
        cells: list[str] = []
        for cell in row.cells:
            # Merged cells come back once per grid column; print each merged cell once.
            if id(cell._tc) in seen:
                continue
            seen.append(id(cell._tc))
            cells.append(shorten(cell.text, max(width // 4, 12)))
        lines.append("  | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="Dump a .docx as text: sections, styles, headings, tables.")
    parser.add_argument("file", type=Path, help="the .docx file")
    parser.add_argument("--outline", action="store_true", help="print only the headings, indented by level")
    parser.add_argument("--width", type=int, default=200, help="cut paragraphs longer than this (default 200)")
    args = parser.parse_args()

    document = load_document(args.file)
    from docx.table import Table

    blocks = list(document.iter_inner_content())
    paragraphs = [b for b in blocks if not isinstance(b, Table)]
    tables = [b for b in blocks if isinstance(b, Table)]
    styles = Counter(p.style.name for p in paragraphs if p.style is not None)

    print(f"file: {args.file}")
    print(
        f"sections: {len(document.sections)} | paragraphs: {len(paragraphs)} | tables: {len(tables)} | "
        f"images: {len(document.inline_shapes)}"
    )
    for line in describe_sections(document, args.width):
        print(line)
    print("styles used: " + ", ".join(f"{name} x{count}" for name, count in styles.most_common()))
    print("--- outline ---" if args.outline else "--- body ---")
    table_number = 0
    for block in blocks:
        if isinstance(block, Table):
            table_number += 1
            if not args.outline:
                print("\n".join(table_lines(block, table_number, args.width)))
            continue
        text = paragraph_line(block, args.width, args.outline)
        if text is not None:
            print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
