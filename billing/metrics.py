"""Billing's Prometheus figures, read at scrape time (common/metrics.py;
docs/operations/metrics.md): the credit draw-down queue and Stripe pushes that failed.

Rating and drawing credits are two transactions: a rating batch queues each period it
touched (`DrawDownDue`), and the draw-down pass takes the queue between batches and when
the rating queue is empty (billing.rating.draw_down). What waits there is usage rated and
visible, whose credits are not drawn yet: its age is the draw-down lag. How much money it
is would take each queued period's money (billing.periods), too dear for a scrape.
"""

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from common.metrics import gauge, metrics_collector_register

from .models import CreditNote, DrawDownDue, Invoice, TopUpInvoice


def now() -> datetime:
    return timezone.now()  # a function of its own, so tests can name the instant of a scrape


#: The draw-down queue is counted up to this many entries (as metering's rating queue).
COUNT_CAP = 1_000_000


def draw_down_queue_oldest() -> tuple[int, datetime | None]:
    """Entries on the draw-down queue (at most COUNT_CAP), and when the oldest was queued:
    the smallest id (ids follow the queue's order; the pass takes it oldest first), the
    first entry of the primary key. The count reads the queue, which the pass empties
    every half second while rating runs: about 3 ms per 20,000 entries on PostgreSQL."""
    oldest = DrawDownDue.objects.order_by("id").values_list("queued_at", flat=True).first()
    if oldest is None:
        return 0, None
    return DrawDownDue.objects.all()[:COUNT_CAP].count(), oldest


def draw_down_collect() -> Iterable[Metric]:
    waiting, oldest = draw_down_queue_oldest()
    yield gauge(
        "tokentill_draw_down_queue_entries",
        "Periods queued by rating whose credits are not drawn yet (one entry per rating "
        "batch and period; several may name one period), counted up to 1,000,000.",
        waiting,
    )
    yield gauge(
        "tokentill_draw_down_lag_seconds",
        "How long the oldest entry on the draw-down queue has waited: rated usage whose "
        "prepaid credits are not drawn yet. 0 when the queue is empty.",
        max(0.0, (now() - oldest).total_seconds()) if oldest else 0.0,
    )


def stripe_push_failures() -> dict[str, int]:
    """What Stripe refused or never answered, by object: rows whose `stripe_error` says
    so (a later push that succeeds clears it). Invoices, credit notes and top-up invoices
    are a few rows per customer and period: each count reads its table."""
    return {
        "invoice": Invoice.objects.exclude(stripe_error="").count(),
        "credit_note": CreditNote.objects.exclude(stripe_error="").count(),
        "topup": TopUpInvoice.objects.exclude(stripe_error="").count(),
    }


def stripe_collect() -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "tokentill_stripe_push_failures",
        "Invoices, credit notes and top-up invoices whose last push to Stripe failed (or "
        "whose total Stripe disagrees with); beat pushes them again every 5 minutes.",
        labels=["object"],
    )
    for kind, count in stripe_push_failures().items():
        family.add_metric([kind], count)
    yield family


def billing_collect() -> Iterable[Metric]:
    yield from draw_down_collect()
    yield from stripe_collect()


metrics_collector_register("billing", billing_collect)
