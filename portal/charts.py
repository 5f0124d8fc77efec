"""Bar charts as inline SVG, drawn on the server: no script, no CDN.

Each chart is an `<svg role="img">` with a title; every bar carries its value as text
where it fits and as a `<title>` (a pointer's tooltip, a screen reader's label), and the
page puts a table of the same figures beside it, so no figure is only a shape. Columns
stand on a value axis with a few gridlines labelled in money. Widths are in a viewBox,
so a chart scales to the page. Values arrive exact; `shown` is each as the page writes it.
"""

from collections.abc import Callable
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

_ZERO = Decimal(0)
WIDTH = 600
#: Horizontal bars sit in half the page on a desktop: a narrower viewBox, larger text.
ROWS_WIDTH = 420
ROW = 28
#: Room for the value axis' labels, left of the columns.
AXIS = 64
#: Columns narrower than this have no value written over them (their `<title>` and the
#: table beside the chart still give it).
VALUE_TEXT_MIN = 36


def bars_horizontal(*, title: str, rows: list[tuple[str, Decimal, str]]) -> SafeString:
    """One horizontal bar per (label, value, shown value), longest for the largest value,
    the value written at the row's end."""
    if not rows:
        return mark_safe('<p class="empty">No usage in this range.</p>')
    top = max((value for _, value, _ in rows), default=_ZERO)
    width, label_width, value_width = ROWS_WIDTH, 150, 100
    bar_space = width - label_width - value_width
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
                width,
                index * ROW + 18,
                shown,
            )
            for index, (label, value, shown) in enumerate(rows)
        ),
    )
    return _svg(title, height, bars, width)


def bars_vertical(
    *,
    title: str,
    columns: list[tuple[str, str, Decimal, str]],
    axis_label: Callable[[Decimal], str],
    least: Decimal = _ZERO,
) -> SafeString:
    """One column per (name, axis label, value, shown value), left to right, e.g. per day,
    on a value axis whose gridlines `axis_label` writes (money, in the minor unit). The
    axis reaches at least `least` (four minor units: gridlines a unit apart, never two
    labelled alike)."""
    if not columns:
        return mark_safe('<p class="empty">No usage in this range.</p>')
    top_value = max((value for _, _, value, _ in columns), default=_ZERO)
    top = axis_top(max(top_value, least) if top_value > 0 else top_value)
    height, base, plot_top = 230, 196, 14
    space = base - plot_top
    step = (WIDTH - AXIS) / len(columns)
    bar = min(step * 0.7, 40)
    every = max(1, round(len(columns) / 15))  # at most about 15 day labels
    grid = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"></line>'
        '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text>',
        (
            (AXIS, WIDTH, f"{y:.1f}", f"{y:.1f}", AXIS - 6, f"{y + 4:.1f}", axis_label(value))
            for value, y in ((top * n / 4, base - space * n / 4) for n in range(5) if top or n == 0)
        ),
    )
    bars = format_html_join(
        "",
        '<g><title>{}: {}</title><rect x="{}" y="{}" width="{}" height="{}" class="bar"></rect>'
        "{}{}</g>",
        (
            (
                name,
                shown,
                f"{AXIS + index * step + (step - bar) / 2:.1f}",
                f"{base - _share(value, top, space):.1f}",
                f"{bar:.1f}",
                f"{_share(value, top, space):.1f}",
                _value_text(AXIS + index * step + step / 2, base - _share(value, top, space), shown)
                if step >= VALUE_TEXT_MIN and value > 0
                else "",
                format_html(
                    '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>',
                    f"{AXIS + index * step + step / 2:.1f}",
                    base + 16,
                    label,
                )
                if index % every == 0
                else "",
            )
            for index, (name, label, value, shown) in enumerate(columns)
        ),
    )
    return _svg(title, height, format_html("{}{}", grid, bars))


def axis_top(value: Decimal) -> Decimal:
    """The value axis' top: the smallest 1, 2, 2.5 or 5 times a power of ten, times 4 (four
    gridlines above zero), at or above `value`; 0 when there is nothing to draw."""
    if value <= 0:
        return _ZERO
    exponent = (value / 4).adjusted()
    for power in (exponent, exponent + 1):
        for mantissa in (1, 2, Decimal("2.5"), 5):
            step = Decimal(mantissa).scaleb(power)
            if step * 4 >= value:
                return step * 4
    return Decimal(10).scaleb(exponent + 1) * 4  # unreachable: 1 x 10^(e+1) x 4 > value


def _value_text(x: float, y: float, shown: str) -> SafeString:
    return format_html(
        '<text x="{}" y="{}" class="value" text-anchor="middle">{}</text>', f"{x:.1f}", y - 3, shown
    )


def _svg(title: str, height: int, body: SafeString, width: int = WIDTH) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        width,
        height,
        title,
        title,
        body,
    )


def _share(value: Decimal, top: Decimal, space: float) -> float:
    if top <= 0 or value <= 0:
        return 0.0
    return round(float(value / top) * space, 1)


def _short(label: str) -> str:
    return label if len(label) <= 24 else label[:23] + "…"
