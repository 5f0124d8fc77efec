"""The date ranges the dashboard's usage charts offer, read from the page's query string.

`?range=` is one of `period` (this billing period, the default), `last-period`, `7d`
(the last 7 days, today included), `30d` (the last 30) or `custom` with `from` and `to`
(YYYY-MM-DD, both included). Days are UTC days, as the per-day usage is kept; a billing
period's range is the days it touches. A range the page cannot show raises `RangeError`
with a message saying what is wrong, which the page shows (status 400).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from billing.periods import period_of
from contracts.models import Customer

CHOICES = [
    ("period", "This period"),
    ("last-period", "Last period"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom dates"),
]
#: The longest custom range: a year and a day, so a leap year fits.
LONGEST = 366


class RangeError(ValueError):
    """A range the page cannot show; the message says why, to the customer."""


@dataclass(frozen=True)
class DateRange:
    """The days `first` to `last`, both included (UTC), as chosen (`choice`)."""

    choice: str
    first: date
    last: date

    @property
    def label(self) -> str:
        name = dict(CHOICES)[self.choice]
        if self.choice == "custom":
            name = "From"
        return f"{name} {self.first.isoformat()} to {self.last.isoformat()} (UTC)"

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def range_from_query(query, *, customer: Customer, now: datetime) -> DateRange:
    """The range a query string (a QueryDict or dict) asks for, at `now`."""
    choice = (query.get("range") or "period").strip()
    today = now.astimezone(UTC).date()
    if choice == "period":
        return _period_range(choice, *period_of(customer=customer, at=now))
    if choice == "last-period":
        start, _ = period_of(customer=customer, at=now)
        return _period_range(choice, *period_of(customer=customer, at=start - timedelta(0, 0, 1)))
    if choice in ("7d", "30d"):
        return DateRange(choice, today - timedelta(days=int(choice[:-1]) - 1), today)
    if choice == "custom":
        first, last = _day(query, "from"), _day(query, "to")
        if first > last:
            raise RangeError(
                f"The range starts after it ends: from {first.isoformat()} to {last.isoformat()}."
            )
        if (last - first).days + 1 > LONGEST:
            raise RangeError(f"A custom range is at most {LONGEST} days long.")
        return DateRange(choice, first, last)
    known = ", ".join(value for value, _ in CHOICES)
    raise RangeError(f"Unknown range {choice!r}: choose one of {known}.")


def _period_range(choice: str, start: datetime, end: datetime) -> DateRange:
    last_instant = end - timedelta(microseconds=1)
    return DateRange(choice, start.astimezone(UTC).date(), last_instant.astimezone(UTC).date())


def _day(query, name: str) -> date:
    text = (query.get(name) or "").strip()
    label = "start" if name == "from" else "end"
    if not text:
        raise RangeError(f"A custom range needs its {label} date ({name}), as YYYY-MM-DD.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeError(
            f"The {label} date ({name}) must be a date as YYYY-MM-DD: {text[:40]!r}."
        ) from None
