"""Page-by-page PDF layout for reports: a font that draws what it can, text that always wraps, and
tables that stream.

ReportLab keeps every page of a canvas in memory until it is saved, so a report of 100,000 entries
drawn on one canvas grows with its length. `PageWriter` therefore draws `PART_PAGES` pages per
canvas into part files in a private temporary directory and joins them part by part
(`compliance.pdf_writer.concatenate`), so memory stays flat however long the report.

Table cells are drawn with `drawString`, which takes text literally: no markup is ever parsed there.
Text that goes into a `Paragraph` must pass through `markup` (escaped) first.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from compliance.pdf_writer import concatenate

__all__ = ["FONT", "FONT_BOLD", "MARGIN", "PART_PAGES", "Column", "PageWriter", "TableWriter", "markup",
           "printable", "register_fonts", "wrap"]

FONT = "CaseledgerSans"
FONT_BOLD = "CaseledgerSans-Bold"
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
        elif ch.isprintable() and ord(ch) in drawable:
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


def wrap(text: str, width: float, font: str, size: float) -> list[str]:
    """`text` broken into lines no wider than `width`: at spaces where it can, inside a word where it must.

    Line breaks in `text` are kept; the result always has at least one line, and never raises
    however long or unbroken the text.
    """
    def measure(s: str) -> float:
        return float(pdfmetrics.stringWidth(s, font, size))

    lines: list[str] = []
    for raw in text.split("\n"):
        para = printable(raw)
        if measure(para) <= width:
            lines.append(para)
            continue
        space = measure(" ")
        line, line_w = "", 0.0
        for word in para.split(" "):
            word_w = measure(word)
            if line and line_w + space + word_w <= width:
                line, line_w = f"{line} {word}", line_w + space + word_w
                continue
            if line:
                lines.append(line)
            line, line_w = word, word_w
            while line_w > width and len(line) > 1:
                cut, cut_w = _fitting_prefix(line, width, measure)
                lines.append(line[:cut])
                line, line_w = line[cut:], line_w - cut_w
        lines.append(line)
    return lines


def _fitting_prefix(word: str, width: float, measure: Callable[[str], float]) -> tuple[int, float]:
    """The length (at least 1) and width of the longest prefix of `word` that fits `width`."""
    total = 0.0
    for i, ch in enumerate(word):
        w = measure(ch)
        if total + w > width and i > 0:
            return i, total
        total += w
    return len(word), total


class PageWriter:
    """Pages drawn one at a time, footer on each, `PART_PAGES` per canvas; `finish` joins them into one PDF."""

    def __init__(self, out_path: Path, footer: str, *, title: str) -> None:
        register_fonts()
        self._out_path = out_path
        self._footer = printable(footer)
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
        c.setFont(FONT, _FOOTER_SIZE)
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
        c.setFont(FONT_BOLD, self.SIZE)
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
        wrapped = [wrap(text, col.width - 2 * self.PAD, FONT, self.SIZE) for text, col in zip(cells, self._columns,
                                                                                           strict=True)]
        remaining = max(len(lines) for lines in wrapped)
        start = 0
        while remaining:
            fit = int((self._y - self._bottom() - 2 * self.PAD) // self.LEADING)
            if remaining > fit and self._page_rows and (start or remaining <= self._capacity or fit < 3):
                self._new_page()  # keep a row whole when a page can hold it; never start one on a scrap
                continue
            take = min(fit, remaining)
            self._draw_slice(wrapped, start, take)
            start += take
            remaining -= take
        self.rows += 1

    def _draw_slice(self, wrapped: list[list[str]], start: int, count: int) -> None:
        c = self._pages.canvas
        c.setFont(FONT, self.SIZE)
        top = self._y
        x = MARGIN
        for lines, col in zip(wrapped, self._columns, strict=True):
            y = top - self.PAD - self.SIZE
            for line in lines[start:start + count]:
                c.drawString(x + self.PAD, y, line)
                y -= self.LEADING
            x += col.width
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
