"""PDFs that print any text as written: DejaVu Sans with a CJK fallback, embedded (subset).

fpdf2's core fonts cover Latin-1 only; everything else used to become '?'.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FAMILY = "DejaVu"
FALLBACK = "DroidFallback"


# fpdf (with numpy and fontTools) takes over a second to import: it is imported where a PDF is
# drawn, not by every worker process that loads the task modules.


@functools.cache
def _left_aligned_pdf() -> type[FPDF]:
    from fpdf import FPDF

    class LeftAlignedPDF(FPDF):
        """Text runs ragged-right, in table cells as in paragraphs: fpdf2 justifies by default,
        which strews short lines with gaps ("Checked      the      site;")."""

        def multi_cell(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("align", "LEFT")
            return super().multi_cell(*args, **kwargs)

        def table(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("text_align", "LEFT")
            return super().table(*args, **kwargs)

    return LeftAlignedPDF


def unicode_pdf(**options: Any) -> FPDF:
    """An A4 FPDF whose font family `FAMILY` (regular and bold) covers any Unicode text, its
    text left-aligned."""
    pdf = _left_aligned_pdf()(format="A4", **options)
    pdf.add_font(FAMILY, "", FONT_DIR / "DejaVuSans.ttf")
    pdf.add_font(FAMILY, "B", FONT_DIR / "DejaVuSans-Bold.ttf")
    pdf.add_font(FALLBACK, "", FONT_DIR / "DroidSansFallbackFull.ttf")
    # Bold text in a script DejaVu lacks falls back to the regular CJK face.
    pdf.set_fallback_fonts([FALLBACK], exact_match=False)
    pdf.set_font(FAMILY, size=10)
    return pdf


def heading_style() -> FontFace:
    """Table headings: bold white on dark blue."""
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=(13, 47, 87))
