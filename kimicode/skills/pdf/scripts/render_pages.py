#!/usr/bin/env python3
"""Render pages of a PDF (or of a .docx/.xlsx/.pptx/.odt..., converted to PDF with LibreOffice first)
to PNG files with pdftoppm, and print their paths so they can be opened and looked at.

Usage: render_pages.py FILE [--out DIR] [--dpi 80] [--first N] [--last N]
Exit codes: 0 ok, 1 missing tool / conversion failed / bad input, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

CONVERT_TIMEOUT_SECONDS = 300
RENDER_TIMEOUT_SECONDS = 300


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def is_pdf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(1024).lstrip().startswith(b"%PDF")


def convert_to_pdf(source: Path, out_dir: Path) -> Path:
    """Convert an office document with LibreOffice headless; returns the PDF path."""
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        fail(
            f"{source.name} is not a PDF and LibreOffice is not installed to convert it "
            "(install it, e.g. apt-get install libreoffice-core libreoffice-writer, or export a PDF another way)"
        )
    # A private profile lets this run even while another LibreOffice instance is open.
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        command = [
            office,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out_dir),
            str(source),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            fail(f"LibreOffice did not finish converting {source.name} within {CONVERT_TIMEOUT_SECONDS}s")
    pdf = out_dir / (source.stem + ".pdf")
    if result.returncode != 0 or not pdf.is_file():
        detail = (result.stderr or result.stdout).strip().splitlines()
        fail(f"LibreOffice could not convert {source.name}: {detail[-1] if detail else 'no output'}")
    return pdf


def render(pdf: Path, out_dir: Path, dpi: int, first: int | None, last: int | None) -> list[Path]:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        fail("pdftoppm is not installed (install poppler-utils, e.g. apt-get install poppler-utils)")
    for old in out_dir.glob("page-*.png"):
        old.unlink()  # never mix pages of an earlier render with this one
    command = [pdftoppm, "-png", "-r", str(dpi)]
    if first is not None:
        command += ["-f", str(first)]
    if last is not None:
        command += ["-l", str(last)]
    command += [str(pdf), str(out_dir / "page")]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        fail(f"pdftoppm did not finish within {RENDER_TIMEOUT_SECONDS}s (try fewer pages with --first/--last)")
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        fail(f"pdftoppm failed on {pdf.name}: {detail[-1] if detail else f'exit code {result.returncode}'}")
    # pdftoppm pads page numbers to the width of the page count (page-1 / page-01); sort numerically.
    return sorted(out_dir.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description="Render document pages to PNG (pdftoppm; LibreOffice for non-PDF).")
    parser.add_argument("file", type=Path, help="a PDF, or an office document LibreOffice can open")
    parser.add_argument("--out", type=Path, help="folder for the PNGs (default: FILE's folder/<name>-pages)")
    parser.add_argument("--dpi", type=int, default=80, help="resolution (default 80; 150 for small print)")
    parser.add_argument("--first", type=int, help="first page to render (1-based)")
    parser.add_argument("--last", type=int, help="last page to render")
    args = parser.parse_args()

    source: Path = args.file
    if not source.is_file():
        fail(f"{source} does not exist or is not a file")
    if args.dpi < 10 or args.dpi > 600:
        fail(f"--dpi {args.dpi} is out of range (use 10-600)")
    out_dir: Path = args.out or source.parent / f"{source.stem}-pages"
    out_dir.mkdir(parents=True, exist_ok=True)

    pdf = source if is_pdf(source) else convert_to_pdf(source.resolve(), out_dir.resolve())
    pages = render(pdf, out_dir, args.dpi, args.first, args.last)
    if not pages:
        fail(f"no pages rendered from {pdf.name} (check --first/--last against the page count)")
    if pdf != source:
        print(f"pdf: {pdf}")
    for page in pages:
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
