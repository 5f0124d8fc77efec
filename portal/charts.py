"""Bar charts as inline SVG, drawn on the server: no script, no CDN.

Each chart is an `<svg role="img">` with a title; every bar carries its label and value
as text (and a `<title>` for a pointer's tooltip), so a screen reader and a phone read
the figures, not just the shapes. Widths are in a viewBox, so a chart scales to the page.
"""

from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

_ZERO = Decimal(0)
WIDTH = 600
ROW = 28


def bars_horizontal(*, title: str, rows: list[tuple[str, Decimal, str]]) -> SafeString:
    """One horizontal bar per (label, value, shown value), longest for the largest value."""
    if not rows:
        return mark_safe('<p class="empty">No usage yet.</p>')
    top = max((value for _, value, _ in rows), default=_ZERO)
    label_width, value_width = 180, 110
    bar_space = WIDTH - label_width - value_width
    height = ROW * len(rows)
    bars = format_html_join(
        "",
        "<g><title>{}: {}</title>"
        '<text x="0" y="{}" class="label">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" class="bar"></rect>'
        '<text x="{}" y="{}" class="value" text-anchor="end">{}</text></g>',
        (
            (
                label,
                shown,
                index * ROW + 18,
                _short(label),
                label_width,
                index * ROW + 6,
                _share(value, top, bar_space),
                ROW - 10,
                WIDTH,
                index * ROW + 18,
                shown,
            )
            for index, (label, value, shown) in enumerate(rows)
        ),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        WIDTH,
        height,
        title,
        title,
        bars,
    )


def bars_vertical(*, title: str, columns: list[tuple[str, Decimal, str]]) -> SafeString:
    """One column per (label, value, shown value), left to right, e.g. per day."""
    if not columns:
        return mark_safe('<p class="empty">No usage yet.</p>')
    top = max((value for _, value, _ in columns), default=_ZERO)
    height, base = 200, 180
    step = WIDTH / max(len(columns), 1)
    bar = min(step * 0.7, 40)
    bars = format_html_join(
        "",
        '<g><title>{}: {}</title><rect x="{}" y="{}" width="{}" height="{}" class="bar"></rect>'
        '<text x="{}" y="198" class="axis" text-anchor="middle">{}</text></g>',
        (
            (
                label,
                shown,
                f"{index * step + (step - bar) / 2:.1f}",
                f"{base - _share(value, top, base - 10):.1f}",
                f"{bar:.1f}",
                f"{_share(value, top, base - 10):.1f}",
                f"{index * step + step / 2:.1f}",
                label[-2:] if len(columns) > 1 else label,
            )
            for index, (label, value, shown) in enumerate(columns)
        ),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        WIDTH,
        height,
        title,
        title,
        bars,
    )


def _share(value: Decimal, top: Decimal, space: float) -> float:
    if top <= 0 or value <= 0:
        return 0.0
    return round(float(value / top) * space, 1)


def _short(label: str) -> str:
    return label if len(label) <= 24 else label[:23] + "…"
