#!/usr/bin/env python3
"""Print an .xlsx workbook as text: sheets, used ranges, a preview of the cells, every formula next to its
cached value, and the problems worth fixing (error values such as #REF!, formulas never calculated,
references to sheets that do not exist).

openpyxl never calculates formulas: a file it wrote has formulas with NO cached value until a spreadsheet
program (Excel, LibreOffice) opens and saves it. This script shows exactly that difference.

Usage: inspect_xlsx.py FILE.xlsx [--sheet NAME] [--rows N] [--max-formulas N] [--strict]
Exit codes: 0 ok, 1 the file cannot be read (or, with --strict, problems were found), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path
from typing import Any, NoReturn

ERROR_VALUES = ("#REF!", "#DIV/0!", "#VALUE!", "#NAME?", "#N/A", "#NUM!", "#NULL!", "#SPILL!", "#CALC!")
# Sheet references inside formulas: 'My Sheet'!A1 or Sheet2!A1.
SHEET_REFERENCE = re.compile(r"(?:'((?:[^']|'')+)'|(?<![#\w.])([A-Za-z_][\w.]*))!")
STRING_LITERAL = re.compile(r'"(?:[^"]|"")*"')


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def load_workbooks(path: Path) -> tuple[Any, Any]:
    """The workbook twice: with formulas, and with the values last cached by a spreadsheet program."""
    try:
        import openpyxl
    except ImportError:
        fail("openpyxl is not installed (run: pip install openpyxl)")
    if not path.is_file():
        fail(f"{path} does not exist or is not a file")
    if not zipfile.is_zipfile(path):
        fail(f"{path} is not an .xlsx (not a zip package; legacy .xls must be converted first)")
    try:
        return (
            openpyxl.load_workbook(path, data_only=False),
            openpyxl.load_workbook(path, data_only=True),
        )
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many unrelated types for broken packages
        fail(f"cannot open {path} as a workbook: {exc}")


def show(value: Any, width: int = 40) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def is_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


def missing_sheets(formula: str, sheet_names: set[str]) -> list[str]:
    names = []
    for quoted, plain in SHEET_REFERENCE.findall(STRING_LITERAL.sub('""', formula)):
        name = quoted.replace("''", "'") if quoted else plain
        if name not in sheet_names and not name.startswith("["):
            names.append(name)
    return names


def inspect_sheet(
    sheet: Any, cached_sheet: Any, args: argparse.Namespace, sheet_names: set[str]
) -> tuple[int, int]:
    """Print one sheet; return (problems found, formulas without a cached value)."""
    kind = "chartsheet" if not hasattr(sheet, "iter_rows") else "worksheet"
    print(f"\n== sheet {sheet.title!r} ({kind}, {sheet.sheet_state}) ==")
    if kind == "chartsheet":
        return 0, 0
    print(f"used range: {sheet.dimensions} ({sheet.max_row} rows x {sheet.max_column} cols)")
    if sheet.freeze_panes:
        print(f"freeze panes at: {sheet.freeze_panes}")
    if sheet.merged_cells.ranges:
        print("merged: " + ", ".join(str(r) for r in list(sheet.merged_cells.ranges)[:20]))
    charts = len(getattr(sheet, "_charts", []))
    images = len(getattr(sheet, "_images", []))
    if charts or images:
        print(f"charts: {charts} | images: {images}")

    formulas: list[str] = []
    problems: list[str] = []
    uncomputed = 0
    for row in sheet.iter_rows():
        for cell in row:
            value = cell.value
            if value is None:
                continue
            cached = cached_sheet[cell.coordinate].value
            if is_formula(value):
                shown = "(not calculated)" if cached is None else show(cached)
                uncomputed += cached is None
                formulas.append(f"  {cell.coordinate}: {show(value, 80)} -> {shown}")
                if "#REF!" in value:
                    problems.append(f"  {cell.coordinate}: formula contains #REF!: {show(value, 80)}")
                for name in missing_sheets(value, sheet_names):
                    problems.append(f"  {cell.coordinate}: formula refers to missing sheet {name!r}")
            elif hasattr(value, "text"):  # array/data-table formula objects
                formulas.append(f"  {cell.coordinate}: {show(getattr(value, 'text', value), 80)} (array)")
            if isinstance(cached, str) and cached in ERROR_VALUES:
                problems.append(f"  {cell.coordinate}: value is {cached}")

    print(f"preview (first {args.rows} rows; formulas shown as written):")
    for row in sheet.iter_rows(max_row=min(args.rows, sheet.max_row)):
        cells = [f"{c.coordinate}={show(c.value, 24)}" for c in row if c.value is not None]
        if cells:
            print("  " + "  ".join(cells))

    print(f"formulas: {len(formulas)} ({uncomputed} without a cached value)")
    for line in formulas[: args.max_formulas]:
        print(line)
    if len(formulas) > args.max_formulas:
        print(f"  ... {len(formulas) - args.max_formulas} more (use --max-formulas)")
    if problems:
        print(f"problems: {len(problems)}")
        print("\n".join(problems))
    return len(problems), uncomputed


def main() -> int:
    parser = argparse.ArgumentParser(description="Dump an .xlsx: sheets, ranges, formulas vs cached values, errors.")
    parser.add_argument("file", type=Path, help="the .xlsx/.xlsm file")
    parser.add_argument("--sheet", help="inspect only this sheet")
    parser.add_argument("--rows", type=int, default=10, help="rows to preview per sheet (default 10)")
    parser.add_argument("--max-formulas", type=int, default=50, help="formulas to list per sheet (default 50)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when errors or uncalculated formulas exist")
    args = parser.parse_args()

    workbook, cached = load_workbooks(args.file)
    names = workbook.sheetnames
    if args.sheet is not None and args.sheet not in names:
        fail(f"no sheet named {args.sheet!r}; sheets are: {', '.join(names)}")
    print(f"file: {args.file}")
    print(f"sheets ({len(names)}): {', '.join(names)}")
    if workbook.defined_names:
        print("defined names: " + ", ".join(f"{n}={d.attr_text}" for n, d in workbook.defined_names.items()))

    problems = 0
    uncomputed = 0
    for name in names if args.sheet is None else [args.sheet]:
        sheet_problems, sheet_uncomputed = inspect_sheet(workbook[name], cached[name], args, set(names))
        problems += sheet_problems
        uncomputed += sheet_uncomputed
    print(f"\nsummary: {problems} problem(s), {uncomputed} formula(s) without a cached value")
    if uncomputed:
        print("note: cached values appear only after Excel/LibreOffice recalculates and saves the file")
    return 1 if args.strict and (problems or uncomputed) else 0


if __name__ == "__main__":
    sys.exit(main())
