"""The admin's own date and time pickers, with quick choices beside them.

A quick choice fills the date and time boxes in UTC, as every instant in the admin is:

- `{"data-at": "2026-12-01T00:00:00Z"}`: an instant the server worked out (the start or
  end of a contract's current period);
- `{"data-days": "30"}`: now plus that many days, to the minute (a grant's expiry);
- `{"data-period": "billing_cycle anchor_day anchor_month"}`: the start of the billing
  period holding now, from the cycle and anchors the form has so far (its fields of those
  names), by pricing.cycles' rule: an empty anchor day is the 1st, an empty anchor month
  January (so quarters and years are the calendar's).

The script (contracts/quick_dates.js) is plain JavaScript beside the admin's own
calendar.js and DateTimeShortcuts.js.
"""

from collections.abc import Iterable
from datetime import UTC, datetime

from django.contrib.admin.widgets import AdminSplitDateTime
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join

QuickChoice = tuple[str, dict[str, str]]


def at_choice(label: str, at: datetime) -> QuickChoice:
    """A quick choice of one instant, written in UTC."""
    return label, {"data-at": f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"}


class QuickDateTimeWidget(AdminSplitDateTime):
    """AdminSplitDateTime (a date with its calendar, a time with its clock) and a line of
    quick choices under it. The choices may be set per form, as `widget.quick`."""

    class Media:
        js = ["contracts/quick_dates.js"]

    def __init__(self, quick: Iterable[QuickChoice] = (), attrs=None):
        super().__init__(attrs)
        self.quick = list(quick)

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        if not self.quick:
            return html
        boxes = (attrs or {}).get("id") or f"id_{name}"  # the boxes are <boxes>_0 and _1
        links = format_html_join(
            " | ",
            '<a href="#" role="button" data-quick-for="{}"{}>{}</a>',
            ((boxes, flatatt(data), label) for label, data in self.quick),
        )
        return format_html(
            '<div>{}<p class="tt-quick-dates" style="margin: 4px 0 0">Or: {}</p></div>',
            html,
            links,
        )
