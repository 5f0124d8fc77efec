"""A customer's usage as CSV, one line per event, for any span of time.

The events are read a chunk at a time in (timestamp, id) order, each chunk its own short
query that starts after the last row of the one before (keyset pagination), so a million
events stream in constant memory, hold no cursor open between chunks, and come out in
one stable order. An event that waits to be rated again is pending, as in the usage
endpoint (docs/guide/usage.md, "Reads while events wait"): its earlier rating no longer
holds.
"""

import csv
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Exists, OuterRef

from contracts.models import Customer
from metering.models import UnratedEvent, UsageEvent
from pricing.money import exact_text

from .models import TOKEN_COLUMNS
from .periods import rerating_since

CHUNK_SIZE = 2000
#: Not rated yet, or waiting to be rated again: rating runs within about a second.
PENDING = "pending"
COLUMNS = (
    "event_id",
    "timestamp",
    "model",
    "feature",
    *TOKEN_COLUMNS,
    "status",
    "price",
    "rate_card",
    "version",
    "amount",
    "quantity",
)


def usage_csv(
    *, customer: Customer, start: datetime, end: datetime, chunk_size: int = CHUNK_SIZE
) -> Iterator[str]:
    """The header, then one CSV line per event of `customer` timestamped in [start, end),
    oldest first: its tokens, how it was rated (`status` rated, unpriced, failed or
    pending; the price, rate card and version) and what it was rated at: `amount` for
    per-event prices, `quantity` for tiered ones, both with 12 decimal places as the
    usage API gives them. Each line ends with CRLF, as CSV does."""
    out = _Line()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    yield out.take()
    since = rerating_since(customer_id=customer.pk)
    events = (
        UsageEvent.objects.filter(customer=customer, timestamp__gte=start, timestamp__lt=end)
        .select_related("rating__rollup__price__version__rate_card")
        .annotate(queued=Exists(UnratedEvent.objects.filter(event_id=OuterRef("pk"))))
        .order_by("timestamp", "id")
    )
    after = None
    while True:
        chunk = events
        if after is not None:
            chunk = chunk.filter(timestamp__gte=after.timestamp).exclude(
                timestamp=after.timestamp, id__lte=after.id
            )
        rows = list(chunk[:chunk_size])
        for event in rows:
            waiting = event.queued or (since is not None and event.timestamp >= since)
            writer.writerow(_row(event, waiting=waiting))
            yield out.take()
        if len(rows) < chunk_size:
            return
        after = rows[-1]


def _row(event: UsageEvent, *, waiting: bool) -> list:
    rating = None if waiting else getattr(event, "rating", None)
    price = rating.rollup.price if rating else None
    version = price.version if price else None
    return [
        _text(event.event_id),
        event.timestamp.isoformat().replace("+00:00", "Z"),
        _text(event.model),
        _text(event.feature),
        *(event.metrics.get(name, 0) for name in TOKEN_COLUMNS),
        rating.rollup.status if rating else PENDING,
        _text(price.name) if price else "",
        _text(version.rate_card.name) if version else "",
        version.number if version else "",
        _exact(rating.amount if rating else None),
        _exact(rating.quantity if rating else None),
    ]


def _exact(value) -> str:
    return "" if value is None else exact_text(value)


def _text(value: str) -> str:
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is kept as text."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


class _Line:
    """What csv.writer writes, taken a line at a time."""

    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def take(self) -> str:
        text, self.text = self.text, ""
        return text
