"""Page-by-page PDF layout for reports: a font that draws what it can, text that always wraps, and
tables that stream.

ReportLab keeps every page of a canvas in memory until it is saved, so a report of 100,000 entries
drawn on one canvas grows with its length. `PageWriter` therefore draws `PART_PAGES` pages per
canvas into part files in a private temporary directory and joins them part by part
(`compliance.pdf_writer.concatenate`), so memory stays flat however long the report.

Table cells are drawn as text objects, which take text literally: no markup is ever parsed there.
Text that goes into a `Paragraph` must pass through `markup` (escaped) first.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from compliance.pdf_writer import concatenate

__all__ = ["FONT", "FONT_BOLD", "MARGIN", "PART_PAGES", "PLAIN_BOLD", "PLAIN_FONT", "Column", "PageWriter",
           "TableWriter", "cell_lines", "markup", "printable", "register_fonts", "wrap"]

FONT = "CaseledgerSans"
FONT_BOLD = "CaseledgerSans-Bold"
#: the standard Type 1 fonts, for table text they can draw (WinAnsi): ReportLab draws them several times
#: faster than an embedded TrueType subset, which it maps character by character in Python
PLAIN_FONT = "Helvetica"
PLAIN_BOLD = "Helvetica-Bold"
MARGIN = 36.0
#: pages per ReportLab canvas before it is saved to a part file and a new one begun
PART_PAGES = 100

_FONT_FILES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    # Bitstream Vera ships with ReportLab: fewer scripts, always there
    (str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"),
     str(Path(reportlab.__file__).parent / "fonts" / "VeraBd.ttf")),
)
_FOOTER_SIZE = 7.0


@functools.cache
def register_fonts() -> frozenset[int]:
    """Register FONT and FONT_BOLD (DejaVu Sans where installed, else Vera); return the code points both draw."""
    regular, bold = next((r, b) for r, b in _FONT_FILES if Path(r).is_file() and Path(b).is_file())
    fonts = [TTFont(FONT, regular), TTFont(FONT_BOLD, bold)]
    for font in fonts:
        pdfmetrics.registerFont(font)
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)
    return frozenset(fonts[0].face.charToGlyph) & frozenset(fonts[1].face.charToGlyph)


def printable(text: str) -> str:
    """`text` as the report font can draw it, on one line.

    Why: a character the font lacks would draw as an empty box or nothing at all, silently changing
    what the reader sees; it is shown as ``[U+XXXX]`` instead, as are control characters. Tabs and line
    breaks become spaces (callers split lines first where lines matter).
    """
    if text.isascii() and text.isprintable():
        return text
    drawable = register_fonts()
    out = []
    for ch in text:
        if ch in "\t\r\n":
            out.append(" ")
        elif ch.isprintable() and ord(ch) <= 0xFFFF and ord(ch) in drawable:  # ReportLab maps no astral char
            out.append(ch)
        else:
            out.append(f"[U+{ord(ch):04X}]")
    return "".join(out)


def markup(text: str) -> str:
    """User text made safe for a ReportLab `Paragraph`: drawable, and every ``<`` ``>`` ``&`` escaped.

    Why: Paragraph parses its text as markup and evaluates some attributes (CVE-2023-33733); escaped,
    a ``<font color=…>``, ``<img src=…>`` or ``<a href=…>`` is shown as text and never acted on.
    """
    return escape(printable(text))


def cell_lines(text: str, width: float, size: float) -> tuple[str, list[str]]:
    """The font for `text` (standard Type 1 where WinAnsi holds it, else FONT) and its lines wrapped to `width`."""
    shown = "\n".join(printable(line) for line in text.split("\n"))
    try:
        shown.encode("cp1252")
        font = PLAIN_FONT
    except UnicodeEncodeError:
        font = FONT
    return font, wrap(shown, width, font, size)


def wrap(text: str, width: float, font: str, size: float) -> list[str]:
    """`text` broken into lines no wider than `width`: at spaces where it can, inside a word where it must.

    Line breaks in `text` are kept; the result always has at least one line, and never raises
    however long or unbroken the text. `text` must be drawable in `font` (`cell_lines` sees to it).
    Widths are summed from the font's advances (ReportLab applies no kerning), one pass per
    paragraph, so wrapping costs no more than measuring.
    """
    advances = _advances(font)
    limit = width * 1000 / size
    lines: list[str] = []
    for raw in text.split("\n"):
        para = printable(raw)
        cum = [0.0, *accumulate(advances(para))]
        start, n = 0, len(para)
        while cum[n] - cum[start] > limit:
            end = max(bisect_right(cum, cum[start] + limit) - 1, start + 1)  # para[start:end] fits (or is 1 char)
            space = para.rfind(" ", start + 1, end + 1)
            if space > start:
                lines.append(para[start:space])
                start = space + 1
            else:
                lines.append(para[start:end])
                start = end
        lines.append(para[start:])
    return lines


@functools.cache
def _advances(font: str) -> Callable[[str], list[float]]:
    """Per-character advance widths (1/1000 em) in `font`, as ReportLab's stringWidth sums them."""
    face = pdfmetrics.getFont(font)
    if isinstance(face, TTFont):
        table, default = face.face.charWidths, face.face.defaultWidth
        return lambda s: [table.get(ord(ch), default) for ch in s]
    widths = face.widths  # a standard font in WinAnsi: callers hand it only cp1252 text
    return lambda s: [widths[b] for b in s.encode("cp1252")]


class PageWriter:
    """Pages drawn one at a time, footer on each, `PART_PAGES` per canvas; `finish` joins them into one PDF."""

    def __init__(self, out_path: Path, footer: str, *, title: str) -> None:
        register_fonts()
        self._out_path = out_path
        self._footer_font, (self._footer, *_) = cell_lines(footer, float("inf"), _FOOTER_SIZE)
        self._title = title
        self._dir = Path(tempfile.mkdtemp(prefix="caseledger-report-"))
        self._parts: list[Path] = []
        self._canvas: Canvas | None = None
        self.page_no = 0
        self.size: tuple[float, float] = A4

    @property
    def canvas(self) -> Canvas:
        if self._canvas is None:
            raise RuntimeError("no page is open")
        return self._canvas

    def start_page(self, size: tuple[float, float]) -> None:
        if self._canvas is None:
            part = self._dir / f"part-{len(self._parts):05d}.pdf"
            self._parts.append(part)
            self._canvas = Canvas(str(part), pagesize=size, pageCompression=1, invariant=1)
        self.page_no += 1
        self.size = size
        self._canvas.setPageSize(size)

    def end_page(self) -> None:
        c = self.canvas
        width = self.size[0]
        c.setFont(self._footer_font, _FOOTER_SIZE)
        c.setFillGray(0.3)
        c.drawString(MARGIN, MARGIN / 2, self._footer)
        c.drawRightString(width - MARGIN, MARGIN / 2, f"page {self.page_no}")
        c.setFillGray(0)
        c.showPage()
        if self.page_no % PART_PAGES == 0:
            c.save()
            self._canvas = None

    def finish(self) -> int:
        """Write the joined PDF to the output path; return the number of pages."""
        try:
            if self._canvas is not None:
                self._canvas.save()
                self._canvas = None
            concatenate(self._parts, self._out_path, title=self._title, creator="caseledger")
        finally:
            self.discard()
        return self.page_no

    def discard(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass(frozen=True)
class Column:
    title: str
    width: float


class TableWriter:
    """A table drawn row by row across as many pages as it takes, its title and header on every page.

    A row taller than a page is split between pages; nothing is held beyond the current row.
    """

    SIZE = 7.5
    LEADING = 9.0
    PAD = 2.5

    def __init__(self, pages: PageWriter, title: str, columns: Sequence[Column],
                 page_size: tuple[float, float]) -> None:
        self._pages = pages
        self._title = printable(title)
        self._columns = list(columns)
        self._page_size = page_size
        self._y = 0.0
        self._open = False
        self._page_rows = 0
        self._capacity = 0
        self.rows = 0

    def _bottom(self) -> float:
        return MARGIN + 6

    def _new_page(self) -> None:
        if self._open:
            self._pages.end_page()
        self._pages.start_page(self._page_size)
        self._open = True
        c = self._pages.canvas
        top = self._page_size[1] - MARGIN
        c.setFont(FONT_BOLD, 12)
        c.drawString(MARGIN, top - 12, self._title + (" (continued)" if self.rows else ""))
        y = top - 22
        height = self.LEADING + 2 * self.PAD
        c.setFillGray(0.88)
        c.rect(MARGIN, y - height, sum(col.width for col in self._columns), height, stroke=0, fill=1)
        c.setFillGray(0)
        c.setFont(PLAIN_BOLD, self.SIZE)
        x = MARGIN
        for col in self._columns:
            c.drawString(x + self.PAD, y - self.PAD - self.SIZE, col.title)
            x += col.width
        self._y = y - height
        self._page_rows = 0
        self._capacity = int((self._y - self._bottom() - 2 * self.PAD) // self.LEADING)

    def add(self, cells: Sequence[str]) -> None:
        """Draw one row; `cells` is plain text (never markup), one string per column."""
        if not self._open:
            self._new_page()
        cells_ = [cell_lines(text, col.width - 2 * self.PAD, self.SIZE)
                  for text, col in zip(cells, self._columns, strict=True)]
        remaining = max(len(lines) for _, lines in cells_)
        start = 0
        while remaining:
            fit = int((self._y - self._bottom() - 2 * self.PAD) // self.LEADING)
            if remaining > fit and self._page_rows and (start or remaining <= self._capacity or fit < 3):
                self._new_page()  # keep a row whole when a page can hold it; never start one on a scrap
                continue
            take = min(fit, remaining)
            self._draw_slice(cells_, start, take)
            start += take
            remaining -= take
        self.rows += 1

    def _draw_slice(self, cells: list[tuple[str, list[str]]], start: int, count: int) -> None:
        c = self._pages.canvas
        text = c.beginText()  # one text object per row: far fewer operators than one per string
        current = ""
        top = self._y
        x = MARGIN
        for (font, lines), col in zip(cells, self._columns, strict=True):
            y = top - self.PAD - self.SIZE
            if font != current:
                text.setFont(font, self.SIZE)
                current = font
            for line in lines[start:start + count]:
                if line:
                    text.setTextOrigin(x + self.PAD, y)
                    text.textOut(line)
                y -= self.LEADING
            x += col.width
        c.drawText(text)
        self._y = top - count * self.LEADING - 2 * self.PAD
        c.setStrokeGray(0.75)
        c.setLineWidth(0.3)
        c.line(MARGIN, self._y, MARGIN + sum(col.width for col in self._columns), self._y)
        self._page_rows += 1

    def close(self, empty_note: str) -> None:
        """End the table's last page; a table without rows says `empty_note` instead."""
        if not self._open:
            self._new_page()
        if not self.rows:
            c = self._pages.canvas
            c.setFont(FONT, 9)
            c.drawString(MARGIN, self._y - 14, printable(empty_note))
        self._pages.end_page()
        self._open = False
