"""The page every customer document shares: A4, the seller and the document's facts at the
top, who it is billed to beneath, "Page N of M" at the foot of every page.

Text goes through fpdf2 with embedded TrueType fonts (`fonts`), so any name prints as it
is written. What a block prints comes in as plain text (money already as
`pricing.money.money_label`); nothing here computes a figure.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fpdf import FPDF
from fpdf.fonts import TTFFont

from contracts.models import Customer

from ...selectors import Seller
from .fonts import BOLD, CJK, REGULAR

FAMILY = "body"
_FALLBACK = "cjk"
MARGIN = 15  # mm on every side of A4's 210 x 297
WIDTH = 210 - 2 * MARGIN
_GREY = (90, 90, 90)
_RIGHT = 92  # mm from the left margin to the facts' column
_LABEL = 28  # mm of a fact's label


@dataclass(frozen=True)
class Fact:
    """A label and its value in the document's facts (number, dates)."""

    label: str
    value: str


class Document(FPDF):
    """An A4 document whose footer reads "<footer> · Page N of M" on every page."""

    def __init__(self, *, title: str, footer: str, created: datetime) -> None:
        super().__init__(format="A4")
        self.add_font(FAMILY, "", REGULAR.path())
        self.add_font(FAMILY, "B", BOLD.path())
        regular = self.fonts[FAMILY]
        assert isinstance(regular, TTFFont)
        self._glyphs = set(regular.cmap)
        self._fallback = False
        self._footer = footer
        self.set_title(title)
        self.set_creation_date(created)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + 5)
        self.add_page()

    def normalize_text(self, text: str) -> str:
        """fpdf2 calls this on every text it lays out: the first character DejaVu lacks
        brings in the CJK font as the fallback, before fpdf2 picks glyphs for it."""
        if not self._fallback and any(
            ord(char) >= 32 and ord(char) not in self._glyphs for char in text
        ):
            self.add_font(_FALLBACK, "", CJK.path())
            self.set_fallback_fonts([_FALLBACK], exact_match=False)
            self._fallback = True
        return str(super().normalize_text(text))

    def footer(self) -> None:
        self.set_y(-MARGIN)
        self.use(8, color=_GREY)
        self.cell(0, 5, f"{self._footer} · Page {self.page_no()} of {{nb}}", align="C")

    # --- writing ---

    def use(
        self, size: float, *, bold: bool = False, color: tuple[int, int, int] = (0, 0, 0)
    ) -> None:
        self.set_font(FAMILY, "B" if bold else "", size)
        self.set_text_color(*color)

    def line_of(
        self, text: str, *, size: float = 10, bold: bool = False, height: float = 5
    ) -> None:
        """A paragraph across the page, wrapped."""
        self.use(size, bold=bold)
        self.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")

    def heading(self, text: str) -> None:
        self.ln(3)
        self.line_of(text, size=11, bold=True, height=7)

    def block(self, x: float, y: float, width: float, lines: Sequence[tuple[str, bool]]) -> float:
        """Lines (text, bold) from (x, y) in a column `width` wide; the y below them."""
        self.set_xy(x, y)
        for text, bold in lines:
            self.use(10, bold=bold)
            self.set_x(x)
            self.multi_cell(width, 5, text, new_x="LEFT", new_y="NEXT")
        return float(self.get_y())

    def facts(self, x: float, y: float, facts: Sequence[Fact]) -> float:
        """Label and value pairs in two columns from (x, y); the y below them."""
        self.set_xy(x, y)
        for fact in facts:
            self.set_x(x)
            self.use(9, color=_GREY)
            self.cell(_LABEL, 5.5, fact.label)
            self.use(10, bold=True)
            self.multi_cell(
                MARGIN + WIDTH - x - _LABEL, 5.5, fact.value, new_x="LEFT", new_y="NEXT"
            )
        return float(self.get_y())

    def sums(self, rows: Sequence[tuple[str, str, bool]]) -> None:
        """Right-aligned label and amount rows (label, amount, bold), e.g. the totals."""
        for label, amount, bold in rows:
            self.use(10, bold=bold)
            self.set_x(MARGIN + WIDTH - 125)
            self.cell(90, 6, label, align="R")
            self.cell(35, 6, amount, align="R", new_x="LMARGIN", new_y="NEXT")

    def rule(self) -> None:
        self.set_draw_color(180, 180, 180)
        self.line(MARGIN, self.get_y(), MARGIN + WIDTH, self.get_y())

    def output_bytes(self) -> bytes:
        return bytes(self.output())


def header(doc: Document, *, seller: Seller, title: str, facts: Sequence[Fact]) -> None:
    """The seller (left) and the document's title and facts (right), then a rule."""
    seller_lines = [(seller.name, True), *((line, False) for line in seller.address_lines)]
    if seller.tax_id:
        seller_lines.append((f"Tax ID: {seller.tax_id}", False))
    if seller.email:
        seller_lines.append((seller.email, False))
    top = doc.get_y()
    left_end = doc.block(MARGIN, top, _RIGHT - 5, seller_lines)
    doc.set_xy(MARGIN + _RIGHT, top)
    doc.use(18, bold=True)
    doc.cell(WIDTH - _RIGHT, 9, title, new_x="LEFT", new_y="NEXT")
    right_end = doc.facts(MARGIN + _RIGHT, doc.get_y() + 1, facts)
    doc.set_y(max(left_end, right_end) + 4)
    doc.rule()
    doc.ln(4)


def bill_to(doc: Document, customer: Customer) -> None:
    """Who the document is made out to: the legal name (else the name), the billing
    address, tax id and billing email, and the customer's id."""
    lines = [(customer.billed_name, True)]
    lines += [
        (line.strip(), False) for line in customer.billing_address.splitlines() if line.strip()
    ]
    if customer.tax_id:
        lines.append((f"Tax ID: {customer.tax_id}", False))
    if customer.email:
        lines.append((customer.email, False))
    lines.append((f"Customer ID: {customer.external_id}", False))
    doc.use(9, bold=True, color=_GREY)
    doc.cell(0, 5, "BILL TO", new_x="LMARGIN", new_y="NEXT")
    doc.set_y(doc.block(MARGIN, doc.get_y(), 100, lines) + 4)


def day(moment: datetime | None) -> str:
    """A date as documents print it, in UTC: 2026-12-02."""
    return "" if moment is None else f"{moment:%Y-%m-%d}"
