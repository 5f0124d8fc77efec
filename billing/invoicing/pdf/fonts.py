"""The TrueType fonts the documents embed, found where Debian's packages install them.

DejaVu Sans (`fonts-dejavu-core`) prints Latin, Greek and Cyrillic; Droid Sans Fallback
(`fonts-droid-fallback`, TrueType outlines, so fpdf2 can embed it) prints Chinese and
Japanese and is loaded only for a document that has a character DejaVu lacks (it takes
half a second to read). fpdf2 embeds only the glyphs a document uses, so a one-page
invoice stays near 20 KB. Settings name other files (`TOKENTILL_PDF_FONT`,
`TOKENTILL_PDF_FONT_BOLD`, `TOKENTILL_PDF_FONT_CJK`); a font that is missing stops the
document with an error naming the package to install, never a "?" in a customer's name.
"""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class PdfFontMissing(ImproperlyConfigured):
    """A font the documents need is not installed."""


@dataclass(frozen=True)
class FontFile:
    role: str  # what it prints, for the error
    setting: str
    package: str
    candidates: tuple[str, ...]

    def path(self) -> Path:
        """The configured file, else the first candidate installed; PdfFontMissing if none."""
        configured = getattr(settings, self.setting, "")
        paths = [Path(configured)] if configured else [Path(each) for each in self.candidates]
        for path in paths:
            if path.is_file():
                return path
        where = ", ".join(str(path) for path in paths)
        raise PdfFontMissing(
            f"The {self.role} font for invoice PDFs is missing (looked at {where}). Install "
            f"Debian's {self.package} (apt-get install {self.package}), or set {self.setting} "
            "to a TrueType (.ttf) file."
        )


_DEJAVU = "/usr/share/fonts/truetype/dejavu"
REGULAR = FontFile(
    "text",
    "TOKENTILL_PDF_FONT",
    "fonts-dejavu-core",
    (f"{_DEJAVU}/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)
BOLD = FontFile(
    "bold text",
    "TOKENTILL_PDF_FONT_BOLD",
    "fonts-dejavu-core",
    (f"{_DEJAVU}/DejaVuSans-Bold.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
)
CJK = FontFile(
    "Chinese and Japanese",
    "TOKENTILL_PDF_FONT_CJK",
    "fonts-droid-fallback",
    (
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        "/usr/share/fonts-droid-fallback/truetype/DroidSansFallbackFull.ttf",
    ),
)
ALL = (REGULAR, BOLD, CJK)


def fonts_missing() -> list[str]:
    """What each missing font's error says (the system check lists them)."""
    missing = []
    for font in ALL:
        try:
            font.path()
        except PdfFontMissing as error:
            missing.append(str(error))
    return missing
