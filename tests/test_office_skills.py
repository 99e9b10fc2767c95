"""The built-in office skills: SKILL.md frontmatter, and each helper script run as a subprocess on real
documents generated here with python-docx, openpyxl, xlsxwriter, reportlab and python-pptx."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kimicode.discovery.frontmatter import parse_frontmatter, split_frontmatter
from tests.sandboxing import needs_pdftoppm

SKILLS_DIR = Path(__file__).resolve().parent.parent / "kimicode" / "skills"
OFFICE_SKILLS = ("docx", "xlsx", "pdf", "pptx")
SCRIPTS = {
    "docx": ["inspect_docx.py"],
    "xlsx": ["inspect_xlsx.py"],
    "pdf": ["inspect_pdf.py", "render_pages.py"],
    "pptx": ["inspect_pptx.py"],
}


def run_script(
    skill: str, script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    path = SKILLS_DIR / skill / "scripts" / script
    return subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, timeout=120, env=env
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr.strip()
    assert "Traceback" not in error
    assert error.startswith("error: ") and "\n" not in error, error
    for fragment in fragments:
        assert fragment in error, error


# --- SKILL.md files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("skill", OFFICE_SKILLS)
def test_skill_md_has_valid_frontmatter_and_names_only_existing_scripts(skill: str) -> None:
    text = (SKILLS_DIR / skill / "SKILL.md").read_text(encoding="utf-8")
    block, body = split_frontmatter(text)
    meta = parse_frontmatter(block)
    assert meta["name"] == skill
    description = meta["description"]
    assert isinstance(description, str) and description.strip()
    assert len(description) <= 1024
    # A complete sentence: nothing was cut off (e.g. by a " #" that YAML reads as a comment).
    assert description.rstrip().endswith(".")
    assert len(text.splitlines()) <= 130
    mentioned = set(re.findall(r"(?:\.\./(\w+)/)?scripts/(\w+\.py)", body))
    assert mentioned, "the skill should point at its helper scripts"
    for other_skill, script in mentioned:
        assert (SKILLS_DIR / (other_skill or skill) / "scripts" / script).is_file(), script
    for script in SCRIPTS[skill]:
        assert f"scripts/{script}" in body


@pytest.mark.parametrize("skill,script", [(s, f) for s, files in SCRIPTS.items() for f in files])
def test_every_script_has_help(skill: str, script: str) -> None:
    result = run_script(skill, script, "--help")
    assert result.returncode == 0
    assert "usage:" in result.stdout


@pytest.mark.parametrize("skill,script", [(s, f) for s, files in SCRIPTS.items() for f in files])
def test_every_script_reports_a_missing_file_in_one_line(skill: str, script: str, tmp_path: Path) -> None:
    result = run_script(skill, script, str(tmp_path / "nothing-here.bin"))
    assert_one_line_error(result, "nothing-here.bin", "does not exist")


# --- docx -------------------------------------------------------------------------------------------


def make_docx(path: Path) -> None:
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    document.add_heading("Quarterly report", level=0)
    document.add_heading("Summary of sales", level=1)
    document.add_paragraph("Revenue grew in every region. " * 20)
    document.add_paragraph("Northern expansion", style="List Bullet")
    document.add_heading("Regional details", level=2)
    table = document.add_table(rows=2, cols=2, style="Table Grid")
    for cell, text in zip(table.rows[0].cells + table.rows[1].cells, ["Region", "Sales", "North", "1200"]):
        cell.text = text
    footer = document.sections[0].footer.paragraphs[0]
    footer.text = "Page "
    run = footer.add_run()
    for kind in ("begin", "instr", "end"):
        if kind == "instr":
            node = OxmlElement("w:instrText")
            node.text = " PAGE "
        else:
            node = OxmlElement("w:fldChar")
            node.set(qn("w:fldCharType"), kind)
        run._r.append(node)
    document.save(str(path))


def test_inspect_docx_names_headings_styles_tables_and_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    make_docx(path)
    result = run_script("docx", "inspect_docx.py", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sections: 1 | paragraphs: 5 | tables: 1" in out
    assert "[Title] Quarterly report" in out
    assert "[Heading 1] Summary of sales" in out
    assert "[Heading 2] Regional details" in out
    assert "[List Bullet] Northern expansion" in out
    assert "[table 1: 2 rows x 2 cols, style 'Table Grid']" in out
    assert "| Region | Sales |" in out and "| North | 1200 |" in out
    assert "footer: Page [page-number field]" in out
    assert "Heading 1 x1" in out
    # Long paragraphs are cut to --width.
    body_line = next(line for line in out.splitlines() if line.startswith("[Normal] Revenue"))
    assert len(body_line) <= len("[Normal] ") + 200 and body_line.endswith("...")


def test_inspect_docx_outline_lists_only_headings_by_level(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    make_docx(path)
    result = run_script("docx", "inspect_docx.py", str(path), "--outline")
    assert result.returncode == 0, result.stderr
    outline = result.stdout.split("--- outline ---\n", 1)[1].splitlines()
    assert outline == [
        "[Title] Quarterly report",
        "[Heading 1] Summary of sales",
        "  [Heading 2] Regional details",
    ]


def test_inspect_docx_rejects_a_file_that_is_not_a_docx(tmp_path: Path) -> None:
    path = tmp_path / "notes.docx"
    path.write_text("plain text, not a Word package", encoding="utf-8")
    assert_one_line_error(run_script("docx", "inspect_docx.py", str(path)), "not a .docx")


# --- xlsx -------------------------------------------------------------------------------------------


def make_openpyxl_workbook(path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sales"
    sheet.append(["Region", "Q1", "Q2", "Total"])
    sheet.append(["North", 10, 20, "=SUM(B2:C2)"])
    sheet.append(["South", 5, 0, "=B3/C3"])
    sheet["E2"] = "='Old Data'!A1"
    sheet["E3"] = "=#REF!+1"
    sheet.freeze_panes = "A2"
    workbook.create_sheet("Summary")["A1"] = "=SUM(Sales!D2:D3)"
    workbook.save(str(path))


def test_inspect_xlsx_lists_sheets_formulas_and_broken_references(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    make_openpyxl_workbook(path)
    result = run_script("xlsx", "inspect_xlsx.py", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sheets (2): Sales, Summary" in out
    assert "== sheet 'Sales' (worksheet, visible) ==" in out
    assert "used range: A1:E3 (3 rows x 5 cols)" in out
    assert "freeze panes at: A2" in out
    assert "D2: '=SUM(B2:C2)' -> (not calculated)" in out
    assert "A1: '=SUM(Sales!D2:D3)' -> (not calculated)" in out
    assert "E2: formula refers to missing sheet 'Old Data'" in out
    assert "E3: formula contains #REF!" in out
    assert "missing sheet 'REF'" not in out
    assert "missing sheet 'Sales'" not in out
    assert "summary: 2 problem(s), 5 formula(s) without a cached value" in out
    strict = run_script("xlsx", "inspect_xlsx.py", str(path), "--strict")
    assert strict.returncode == 1 and strict.stdout == out


def test_inspect_xlsx_shows_cached_values_and_error_values(tmp_path: Path) -> None:
    # xlsxwriter stores a cached result with each formula, as Excel or LibreOffice do after calculating.
    import xlsxwriter

    path = tmp_path / "calculated.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Calc")
    sheet.write("A1", 2)
    sheet.write("A2", 3)
    sheet.write_formula("A3", "=A1+A2", None, 5)
    sheet.write_formula("A4", "=A1/0", None, "#DIV/0!")
    workbook.close()
    result = run_script("xlsx", "inspect_xlsx.py", str(path), "--strict")
    assert result.returncode == 1
    assert "A3: '=A1+A2' -> 5" in result.stdout
    assert "A4: value is #DIV/0!" in result.stdout
    assert "summary: 1 problem(s), 0 formula(s) without a cached value" in result.stdout


def test_inspect_xlsx_strict_passes_a_clean_calculated_workbook(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "clean.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Data")
    sheet.write_row("A1", [1, 2])
    sheet.write_formula("C1", "=A1+B1", None, 3)
    workbook.close()
    result = run_script("xlsx", "inspect_xlsx.py", str(path), "--strict")
    assert result.returncode == 0, result.stdout
    assert "C1: '=A1+B1' -> 3" in result.stdout


def test_inspect_xlsx_unknown_sheet_names_the_real_ones(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    make_openpyxl_workbook(path)
    result = run_script("xlsx", "inspect_xlsx.py", str(path), "--sheet", "Budget")
    assert_one_line_error(result, "no sheet named 'Budget'", "Sales, Summary")


# --- pdf --------------------------------------------------------------------------------------------


def make_pdf(path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle("Invoice 1001")
    pdf.setAuthor("Acme Ltd")
    pdf.drawString(72, 750, "Invoice number 1001")
    pdf.bookmarkPage("first")
    pdf.addOutlineEntry("Invoice", "first")
    pdf.showPage()
    pdf.showPage()  # a page with no text, like a scan
    pdf.drawString(72, 750, "Terms and conditions")
    pdf.showPage()
    pdf.save()


def test_inspect_pdf_reports_pages_metadata_bookmarks_and_text(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    make_pdf(path)
    result = run_script("pdf", "inspect_pdf.py", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "pages: 3 | encrypted: no" in out
    assert "title: Invoice 1001" in out and "author: Acme Ltd" in out
    assert "page sizes: 210x297 mm x3" in out
    assert "- Invoice (page 1)" in out
    assert "--- page 1 ---\nInvoice number 1001" in out
    assert "--- page 3 ---\nTerms and conditions" in out
    assert "pages without text: 2" in out


def test_inspect_pdf_prints_only_selected_pages_and_checks_the_range(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    make_pdf(path)
    result = run_script("pdf", "inspect_pdf.py", str(path), "--pages", "3")
    assert result.returncode == 0
    assert "Terms and conditions" in result.stdout and "Invoice number" not in result.stdout
    assert_one_line_error(run_script("pdf", "inspect_pdf.py", str(path), "--pages", "2-5"), "outside 1-3")


@needs_pdftoppm
def test_render_pages_writes_one_png_per_page(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "invoice.pdf"
    make_pdf(path)
    out = tmp_path / "pages"
    result = run_script("pdf", "render_pages.py", str(path), "--out", str(out), "--dpi", "80")
    assert result.returncode == 0, result.stderr
    listed = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in listed] == ["page-1.png", "page-2.png", "page-3.png"]
    with Image.open(listed[0]) as image:
        assert image.format == "PNG"
        # A4 is 595x842 pt: at 80 dpi about 661x935 px (pdftoppm rounds up).
        assert abs(image.size[0] - 661) <= 1 and abs(image.size[1] - 935) <= 1, image.size
        # The first page has black text on white: the render is not blank.
        assert image.convert("L").getextrema()[0] < 128
    # A second, partial render replaces the first instead of mixing with it.
    again = run_script("pdf", "render_pages.py", str(path), "--out", str(out), "--first", "3", "--last", "3")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["page-3.png"]


def test_render_pages_explains_a_missing_pdftoppm(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    make_pdf(path)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = run_script("pdf", "render_pages.py", str(path), env={"PATH": str(empty_bin)})
    assert_one_line_error(result, "pdftoppm is not installed", "poppler-utils")


def test_render_pages_explains_that_office_files_need_libreoffice(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    make_docx(path)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = run_script("pdf", "render_pages.py", str(path), env={"PATH": str(empty_bin)})
    assert_one_line_error(result, "report.docx is not a PDF", "LibreOffice is not installed")


# --- pptx -------------------------------------------------------------------------------------------


def make_pptx(path: Path, picture: Path) -> None:
    from PIL import Image
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    Image.new("RGB", (40, 20), "red").save(picture)
    deck = Presentation()
    title_slide = deck.slides.add_slide(deck.slide_layouts[0])
    title_slide.shapes.title.text = "Launch plan"
    title_slide.placeholders[1].text = "Q3 roadmap"
    title_slide.notes_slide.notes_text_frame.text = "Mention the budget"
    bullets = deck.slides.add_slide(deck.slide_layouts[1])
    bullets.shapes.title.text = "Why now"
    body = bullets.placeholders[1].text_frame
    body.text = "Market is ready"
    detail = body.add_paragraph()
    detail.text = "Two competitors left"
    detail.level = 1
    numbers = deck.slides.add_slide(deck.slide_layouts[5])
    numbers.shapes.title.text = "Numbers"
    table = numbers.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (row, col), text in {(0, 0): "Metric", (0, 1): "Value", (1, 0): "Users", (1, 1): "1200"}.items():
        table.cell(row, col).text = text
    numbers.shapes.add_picture(str(picture), Inches(8), Inches(6), Inches(3))  # runs past the right edge
    data = CategoryChartData()
    data.categories = ["Q1", "Q2"]
    data.add_series("Revenue", (1.0, 2.0))
    numbers.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(5), Inches(2), Inches(3), Inches(2), data)
    deck.slides.add_slide(deck.slide_layouts[1])  # left empty
    deck.save(str(path))


def test_inspect_pptx_names_layouts_slides_titles_content_and_notes(tmp_path: Path) -> None:
    path = tmp_path / "deck.pptx"
    make_pptx(path, tmp_path / "red.png")
    result = run_script("pptx", "inspect_pptx.py", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "slides: 4 | size: 254x190 mm" in out
    assert "  1 'Title and Content' [0:title, 1:object, 10:date, 11:footer, 12:slide_number]" in out
    assert "--- slide 1 (layout 'Title Slide') ---\ntitle: Launch plan" in out
    assert "[placeholder 1 subtitle] Q3 roadmap" in out
    assert "notes: Mention the budget" in out
    assert "    - Market is ready\n      - Two competitors left" in out
    assert "--- slide 3 (layout 'Title Only') ---\ntitle: Numbers" in out
    assert "| Users | 1200 |" in out
    assert "[picture 'Picture 3'] 76x38 mm image/png, 40x20 px" in out
    assert "[chart 'Chart 4' COLUMN_CLUSTERED] title: '' series: Revenue" in out
    assert "warning: 'Picture 3' runs past the right edge" in out
    assert "--- slide 4 (layout 'Title and Content') ---\ntitle: (none)" in out
    assert "warning: empty placeholder 1 'Content Placeholder 2'" in out


def test_inspect_pptx_selects_slides_and_checks_the_range(tmp_path: Path) -> None:
    path = tmp_path / "deck.pptx"
    make_pptx(path, tmp_path / "red.png")
    result = run_script("pptx", "inspect_pptx.py", str(path), "--slides", "2", "--no-layouts")
    assert result.returncode == 0, result.stderr
    assert "--- slide 2" in result.stdout and "--- slide 1" not in result.stdout
    assert "layouts (" not in result.stdout
    assert_one_line_error(run_script("pptx", "inspect_pptx.py", str(path), "--slides", "7"), "outside 1-4")
