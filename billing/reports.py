"""The revenue report for finance: per customer and closed billing period, what was earned,
what is still owed to the customer in prepaid credits, and what expired unused.

Read from the invoices, their lines and the wallet ledger, nothing else, so every figure
ties to one of them. A row is a closed period (BillingPeriod) and the invoice it closed
into; money is in the invoice's currency; rounded figures are sums of rounded invoice
lines or notes, `*_exact` figures keep the 12 places of the rated money or the ledger.

- `fixed_fees`: the invoice's fixed-fee lines.
- `usage_revenue`: revenue recognised as the usage is consumed: the invoice's usage lines
  plus its late usage (usage of earlier periods rated after they closed, recognised when
  it is billed), less discounts and the included allowance used, plus the minimum
  commitment true-up. `usage_revenue_exact` is the same from the lines' exact amounts.
- `credits_applied`: what prepaid credits paid on the invoice (its credits lines, negated):
  what the ledger drew for the period, settled to the minor unit when the invoice was
  made, plus credits drawn for late usage.
- `invoice_total` = fixed_fees + usage_revenue - credits_applied: what is billed in cash.
- `credit_notes`: credit notes issued within the period (on any of the customer's invoices).
- `deferred_revenue`: the prepaid credits liability at the period's end, i.e. the wallet's
  balance at that instant: the sum of its money entries (grants, draw-downs, expiries,
  adjustments; never holds) made before the end. Credits from every source count
  (purchased, promotional, allowance, refund, adjustment): all of them may still be drawn.
- `breakage`: credits that expired unused within the period (its expiry entries, negated).

Ledger sums run in SQL on PostgreSQL and in Python on SQLite, where exact money is text.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum

from contracts.models import Customer
from pricing.money import exact_text, minor_text, money_round
from wallets.models import LedgerEntry, Wallet

from .models import BillingPeriod, CreditNote, InvoiceLine

_ZERO = Decimal(0)
Kind = InvoiceLine.Kind
#: The lines whose sum is the usage revenue of an invoice.
USAGE_KINDS = (Kind.USAGE, Kind.LATE_USAGE, Kind.DISCOUNT, Kind.ALLOWANCE, Kind.MINIMUM)
COLUMNS = (
    "customer",
    "currency",
    "period_start",
    "period_end",
    "invoice",
    "invoice_status",
    "fixed_fees",
    "usage_revenue",
    "usage_revenue_exact",
    "credits_applied",
    "invoice_total",
    "credit_notes",
    "deferred_revenue",
    "deferred_revenue_exact",
    "breakage",
    "breakage_exact",
)


@dataclass(frozen=True)
class RevenueRow:
    """One customer's closed period, its figures as the module's docstring defines them."""

    customer: str
    currency: str
    period_start: datetime
    period_end: datetime
    invoice: str
    invoice_status: str
    fixed_fees: Decimal
    usage_revenue: Decimal
    usage_revenue_exact: Decimal
    credits_applied: Decimal
    invoice_total: Decimal
    credit_notes: Decimal
    deferred_revenue_exact: Decimal
    breakage_exact: Decimal

    @property
    def deferred_revenue(self) -> Decimal:
        return money_round(self.deferred_revenue_exact, self.currency)

    @property
    def breakage(self) -> Decimal:
        return money_round(self.breakage_exact, self.currency)

    def as_csv(self) -> list[str]:
        values = {name: getattr(self, name) for name in COLUMNS}
        for name, value in values.items():
            if isinstance(value, datetime):
                values[name] = f"{value.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
            elif isinstance(value, Decimal):
                exact = name.endswith("_exact")
                values[name] = exact_text(value) if exact else minor_text(value, self.currency)
        return [values[name] for name in COLUMNS]


def revenue_report(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    customer: Customer | None = None,
) -> list[RevenueRow]:
    """A row per customer and closed period starting in [start, end) (all when not given),
    by customer, then period."""
    periods = BillingPeriod.objects.select_related("customer", "invoice")
    if start is not None:
        periods = periods.filter(start__gte=start)
    if end is not None:
        periods = periods.filter(start__lt=end)
    if customer is not None:
        periods = periods.filter(customer=customer)
    lines = defaultdict(list)
    for invoice_id, kind, exact, amount in InvoiceLine.objects.filter(
        invoice__in=periods.values("invoice_id")
    ).values_list("invoice_id", "kind", "exact_amount", "amount"):
        lines[invoice_id].append((kind, exact, amount))
    customer_ids = periods.values("customer_id")
    notes = defaultdict(list)
    for customer_id, currency, created_at, amount in CreditNote.objects.filter(
        invoice__customer__in=customer_ids
    ).values_list("invoice__customer_id", "invoice__currency", "created_at", "amount"):
        notes[customer_id, currency].append((created_at, amount))
    wallets = {
        (customer_id, currency): pk
        for customer_id, currency, pk in Wallet.objects.filter(
            customer__in=customer_ids
        ).values_list("customer_id", "currency", "pk")
    }
    ordered = periods.order_by("customer__external_id", "start")
    return [_row(period, lines, notes, wallets) for period in ordered]


def revenue_report_csv(*, rows: list[RevenueRow], out) -> None:
    """The rows as CSV (a header, then a line a row) written to the text stream `out`."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row.as_csv() for row in rows)


def _row(period: BillingPeriod, lines, notes, wallets) -> RevenueRow:
    invoice = period.invoice
    assert invoice.number is not None  # closing numbers every invoice it stores
    own = lines[invoice.pk]

    def rounded(*kinds) -> Decimal:
        return sum((amount for kind, _, amount in own if kind in kinds), _ZERO)

    wallet_id = wallets.get((period.customer_id, invoice.currency))
    liability, expired = _ledger(wallet_id, period.start, period.end)
    return RevenueRow(
        customer=period.customer.external_id,
        currency=invoice.currency,
        period_start=period.start,
        period_end=period.end,
        invoice=invoice.number,
        invoice_status=invoice.status,
        fixed_fees=rounded(Kind.FIXED_FEE),
        usage_revenue=rounded(*USAGE_KINDS),
        usage_revenue_exact=sum((exact for kind, exact, _ in own if kind in USAGE_KINDS), _ZERO),
        credits_applied=-rounded(Kind.CREDITS),
        invoice_total=invoice.total,
        credit_notes=sum(
            (
                amount
                for created_at, amount in notes[period.customer_id, invoice.currency]
                if period.start <= created_at < period.end
            ),
            _ZERO,
        ),
        deferred_revenue_exact=liability,
        breakage_exact=expired,
    )


def _ledger(wallet_id: int | None, start: datetime, end: datetime) -> tuple[Decimal, Decimal]:
    """(the wallet's balance at `end`, what expired in [start, end)) from its ledger."""
    if wallet_id is None:
        return _ZERO, _ZERO
    entries = LedgerEntry.objects.filter(wallet_id=wallet_id, created_at__lt=end).exclude(
        kind__in=LedgerEntry.HOLD_KINDS
    )
    expiries = Q(kind=LedgerEntry.Kind.EXPIRY, created_at__gte=start)
    if connection.vendor == "postgresql":
        sums = entries.aggregate(balance=Sum("amount"), expired=Sum("amount", filter=expiries))
        return sums["balance"] or _ZERO, -(sums["expired"] or _ZERO)
    balance = expired = _ZERO
    for kind, created_at, amount in entries.values_list("kind", "created_at", "amount"):
        balance += amount
        if kind == LedgerEntry.Kind.EXPIRY and created_at >= start:
            expired -= amount
    return balance, expired
