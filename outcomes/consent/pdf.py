"""The PDF snapshot of a consent: exactly what the patient was shown and answered.

Written with fpdf2's built-in Helvetica (Latin-1: English and Danish) and without stream
compression, so the text in the file is the text shown, readable by any PDF tool; the
consent stores the SHA-256 of these bytes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from fpdf import FPDF


class NotLatin1(ValueError):
    """Text the snapshot's font cannot show (outside Latin-1)."""


@dataclass(frozen=True)
class Shown:
    """The consent page as shown: every text in the order it appeared, and the answers."""

    title: str
    version_line: str
    paragraphs: list[str]
    answers: list[tuple[str, bool]]  # (question as shown, ticked)
    signature_line: str
    given_line: str


def check_latin1(text: str) -> None:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as error:
        raise NotLatin1(text) from error


def render_pdf(shown: Shown, *, created: datetime.datetime) -> bytes:
    """The snapshot as PDF bytes (deterministic for the same ``shown`` and ``created``)."""
    for text in [shown.title, shown.version_line, *shown.paragraphs, shown.signature_line]:
        check_latin1(text)
    pdf = FPDF(format="A4")
    pdf.compress = False
    pdf.set_creation_date(created)
    pdf.set_title(shown.title)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 8, shown.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 6, shown.version_line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 11)
    for paragraph in shown.paragraphs:
        pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    for question, ticked in shown.answers:
        pdf.multi_cell(
            0, 6, f"[{'X' if ticked else ' '}] {question}", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 6, shown.signature_line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 6, shown.given_line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
