"""The customer page's billing sections (contracts.admin.customers draws them): the
current period's invoice as closing would make it now, unpriced and failed usage with
"price this", and the customer's invoices and credit notes. Money with the currency's
minor places and code (pricing.money.money_label)."""

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Max, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from contracts.admin.customers import customer_page_section, with_next
from contracts.models import Customer, RateCardVersion
from pricing.cycles import span_text
from pricing.money import money_label

from ..invoicing.preview import invoice_preview
from ..models import CreditNote, InvoiceLine, UsageRollup
from ..selectors import invoice_list

Kind = InvoiceLine.Kind
#: The preview's figures, in an invoice's order; a kind not listed here shows only when
#: the period has it.
PREVIEW_FIGURES = (
    (Kind.FIXED_FEE, "Fixed fees", True),
    (Kind.USAGE, "Usage", True),
    (Kind.DISCOUNT, "Discount", False),
    (Kind.ALLOWANCE, "Included allowance used", True),
    (Kind.MINIMUM, "Minimum commitment true-up", True),
    (Kind.LATE_USAGE, "Late usage of earlier periods", False),
    (Kind.CREDITS, "Prepaid credits applied", True),
)
USAGE_ROWS_SHOWN = 50
USAGE_COLUMNS = ("period_start", "period_end", "status", "model", "feature", "reason",
                 "terms__rate_card_id", "terms__rate_card__name")  # fmt: skip
INVOICES_SHOWN = 10


@customer_page_section(
    key="period",
    order=20,
    title="This period's invoice so far",
    template="admin/contracts/customer/section_period.html",
)
def period_section(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    """What closing the current period would invoice now (billing.invoicing.preview)."""
    if not request.user.has_perm("billing.view_invoice"):
        return None
    preview = invoice_preview(customer=customer, at=timezone.now())
    currency = customer.currency
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    for line in preview.lines:
        by_kind[line.kind] += line.amount
    figures = [
        {"kind": kind.value, "label": label, "amount": money_label(by_kind[kind], currency)}
        for kind, label, always in PREVIEW_FIGURES
        if always or kind in by_kind
    ]
    invoice = preview.invoice
    return {
        "period": span_text(invoice.period_start, invoice.period_end),
        "figures": figures,
        "total": money_label(invoice.total, currency),
        "lines_url": reverse("admin:billing_invoice_preview", args=[customer.pk]),
    }


@customer_page_section(
    key="unpriced",
    order=40,
    title="Unpriced and failed usage",
    template="admin/contracts/customer/section_unpriced.html",
)
def unpriced_section(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    """Usage that is in no total, by period, model, feature and reason, latest first; an
    unpriced model under a contract has "price this": the price builder for that model on
    the rate card of the terms it was rated under, from the period's start, coming back
    here once the price is saved."""
    user = request.user
    if not user.has_perm("billing.view_usagerollup"):
        return None
    may_price = user.has_perm("contracts.add_price") and user.has_perm(
        "contracts.add_ratecardversion"
    )
    rows = (
        UsageRollup.objects.filter(
            customer=customer,
            status__in=(UsageRollup.Status.UNPRICED, UsageRollup.Status.FAILED),
            event_count__gt=0,
        )
        .values(*USAGE_COLUMNS)
        .annotate(events=Sum("event_count"), last_event_at=Max("last_event_at"))
        .order_by("-period_start", "status", "model", "feature", "reason")
    )
    shown = list(rows[:USAGE_ROWS_SHOWN])
    # A price added to a card starts no earlier than its latest version (price_add_from):
    # usage that all came before that is not priced by it, so it gets no "price this".
    latest_start = dict(
        RateCardVersion.objects.filter(
            rate_card_id__in={row["terms__rate_card_id"] for row in shown}
        )
        .order_by("rate_card_id", "number")
        .values_list("rate_card_id", "effective_from")
    )  # the highest-numbered version of each card, the one price_add_from starts from
    usage = []
    for row in shown:
        card_id = row["terms__rate_card_id"]
        price_url = ""
        if (
            may_price
            and row["status"] == UsageRollup.Status.UNPRICED
            and card_id
            and row["last_event_at"] >= latest_start[card_id]
        ):
            price_url = with_next(
                reverse("admin:contracts_ratecard_price_add_from", args=[card_id]),
                customer,
                model=row["model"],
                **{"from": row["period_start"].strftime("%Y-%m-%dT%H:%M")},
            )
        usage.append(
            {
                **row,
                "period": span_text(row["period_start"], row["period_end"]),
                "status_label": UsageRollup.Status(row["status"]).label,
                "rate_card": row["terms__rate_card__name"] or "",
                "price_url": price_url,
            }
        )
    rollups_url = reverse("admin:billing_usagerollup_changelist")
    return {
        "usage": usage,
        "more": rows.count() > USAGE_ROWS_SHOWN,
        "all_url": f"{rollups_url}?q={customer.external_id}",
    }


@customer_page_section(
    key="invoices",
    order=50,
    title="Invoices and credit notes",
    template="admin/contracts/customer/section_invoices.html",
)
def invoices_section(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    if not request.user.has_perm("billing.view_invoice"):
        return None
    invoices = [
        {
            "invoice": invoice,
            "period": span_text(invoice.period_start, invoice.period_end),
            "total": money_label(invoice.total, invoice.currency),
        }
        for invoice in invoice_list(customer=customer)[:INVOICES_SHOWN]
    ]
    notes = (
        CreditNote.objects.filter(invoice__customer=customer)
        .select_related("invoice")
        .order_by("-created_at", "-id")[:INVOICES_SHOWN]
    )
    return {
        "invoices": invoices,
        "credit_notes": [
            {"note": note, "amount": money_label(note.amount, note.invoice.currency)}
            for note in notes
        ],
        "invoices_url": (
            f"{reverse('admin:billing_invoice_changelist')}?customer__id__exact={customer.pk}"
        ),
        "credit_notes_url": (
            f"{reverse('admin:billing_creditnote_changelist')}?q={customer.external_id}"
        ),
    }
