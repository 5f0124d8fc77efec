"""Invoices in the admin: read-only, each usage line's events a click away, the current
period's preview of a customer, credit notes (goodwill or void) and the revenue report.

Invoices, billing periods and credit notes are never added, changed or deleted by hand:
closing writes them, and a credit note is issued on its own page through
billing.invoicing.credit_notes (permission "billing.add_creditnote"; the user is recorded as
`created_by`). Seeing invoices, their events, previews and the revenue report takes
"billing.view_invoice".
"""

from datetime import UTC, datetime, time

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from common.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    count_text,
    customer_display,
    form_errors_add,
    instant_display,
    money_display,
)
from contracts.models import Customer
from contracts.selectors import customer_get
from pricing.cycles import span_text
from pricing.money import RATED_PLACES, exact_label, money_label

from ..invoicing.credit_notes import (
    CREDITABLE,
    credit_note_issue,
    invoice_credit_left,
    invoice_void,
)
from ..invoicing.preview import invoice_preview
from ..models import BilledEvent, BillingPeriod, CreditNote, Invoice, InvoiceLine
from ..reports import RevenueRow, revenue_report, revenue_report_csv
from ..selectors import LINES_WITH_EVENTS, line_events

EVENTS_PER_PAGE = 100


class InvoicePartInline(ReadOnlyInline):
    """Lines and credit notes are part of the invoice: whoever may see it sees them."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("billing.view_invoice")


class LineInline(InvoicePartInline):
    """The lines as the customer reads them: billed money only. Quantities, unit prices
    and the exact figures explain a usage line on its events page, a click away. Beside
    each description, for ops only, what priced it (`line_source`), which the customer's
    words leave out: under it rather than in a column, so a phone still shows the amount."""

    model = InvoiceLine
    verbose_name_plural = "lines"
    fields = ("number", "description_shown", "events", "amount_shown")
    readonly_fields = fields
    amount_shown = money_display("amount", "invoice.currency", description="amount")

    def get_queryset(self, request):
        related = ("invoice", "price__version__rate_card", "terms")
        return super().get_queryset(request).select_related(*related)

    @admin.display(description="#")
    def number(self, line: InvoiceLine) -> int:
        return line.position

    @admin.display(description="description")
    def description_shown(self, line: InvoiceLine) -> str:
        source = line_source(line)
        if source is None:
            return line.description
        return format_html('{}\n<div class="help">priced by {}</div>', line.description, source)

    @admin.display(description="events")
    def events(self, line: InvoiceLine) -> str:
        return line_events_link(line)


def line_source(line: InvoiceLine) -> str | None:
    """What priced a line, as ops know it: its price's rate card and version, and its
    contract terms' number ("Standard v1, terms 1"); None for a line of neither."""
    parts = []
    if line.price is not None:
        version = line.price.version
        parts.append(f"{version.rate_card.name} v{version.number}")
    if line.terms is not None:
        parts.append(f"terms {line.terms.number}")
    return ", ".join(parts) or None


def line_events_link(line: InvoiceLine) -> str:
    """A usage line's events, counted, as a link to their page; "—" for other lines."""
    if line.kind not in LINES_WITH_EVENTS:
        return "—"
    url = reverse("admin:billing_invoice_line_events", args=[line.invoice_id, line.position])
    count = line.event_count
    return format_html('<a href="{}">{} event{}</a>', url, count_text(count), pluralize(count))


class CreditNoteInline(InvoicePartInline):
    model = CreditNote
    fields = ("number", "reason", "amount_shown", "destination", "memo", "created_shown",
              "created_by")  # fmt: skip
    readonly_fields = fields
    amount_shown = money_display("amount", "invoice.currency", description="amount")
    created_shown = instant_display("created_at", description="created (UTC)")


class CreditNoteForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[
            (CreditNote.Reason.GOODWILL, "Goodwill: credit an amount"),
            (CreditNote.Reason.VOID, "Void the invoice: credit what is left of it"),
        ]
    )
    amount = forms.DecimalField(required=False, max_digits=20, decimal_places=RATED_PLACES)
    destination = forms.ChoiceField(
        choices=[("", "---------"), *CreditNote.Destination.choices],
        help_text="Wallet: granted back as prepaid credits at once. Stripe: credited against "
        "the invoice in Stripe by the Stripe sync. Recorded only: nowhere else.",
    )
    memo = forms.CharField(max_length=300, help_text="Why: printed on the credit note.")

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        left = money_label(invoice_credit_left(invoice=invoice), invoice.currency)
        self.fields["amount"].help_text = f"Goodwill only. At most {left} is left to credit."

    def clean(self):
        data = super().clean()
        if data.get("reason") == CreditNote.Reason.GOODWILL and data.get("amount") is None:
            self.add_error("amount", "Give the amount to credit.")
        if data.get("reason") == CreditNote.Reason.VOID and data.get("amount") is not None:
            self.add_error("amount", "A void credits what is left: leave this empty.")
        return data


class RevenueReportForm(forms.Form):
    start = forms.DateField(
        label="From", required=False, help_text="Periods starting on or after this day (UTC)."
    )
    end = forms.DateField(label="To", required=False, help_text="Periods starting before it.")
    customer = forms.CharField(
        required=False, max_length=255, help_text="A customer's external id; empty for all."
    )

    def clean_customer(self):
        external_id = self.cleaned_data["customer"].strip()
        if not external_id:
            return None
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise ValidationError(f"No customer with external id '{external_id}'.")
        return customer

    def report(self):
        data = self.cleaned_data
        return revenue_report(
            start=_midnight(data["start"]), end=_midnight(data["end"]), customer=data["customer"]
        )


def _midnight(day) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """An invoice's page shows who, when, its status and total, then its lines and credit
    notes, then its dates and, folded, what Stripe knows of it (open when Stripe
    refused it)."""

    list_display = ("number", "customer_shown", "period", "total_shown", "status",
                    "stripe_status")  # fmt: skip
    list_filter = ("status", "stripe_status", "currency", "period_start")
    list_select_related = ("customer",)
    search_fields = ("=number", "=customer__external_id", "customer__name")
    search_help_text = "An invoice number or a customer's external id (exactly), or a name."
    ordering = ("-period_start", "-id")
    readonly_fields = ("customer", "status", "period", "total_shown", "created_shown",
                       "finalized_shown", "due_shown", "emailed_shown", "paid_shown",
                       "voided_shown", "stripe_id", "stripe_status", "stripe_hosted_url",
                       "stripe_pushed_shown", "stripe_event_shown",
                       "stripe_error")  # fmt: skip
    inlines = [LineInline, CreditNoteInline]
    change_form_template = "admin/billing/invoice/change_form.html"
    change_list_template = "admin/billing/invoice/change_list.html"
    customer_shown = customer_display()
    total_shown = money_display("total", "currency", description="total")
    created_shown = instant_display("created_at", description="created (UTC)")
    finalized_shown = instant_display("finalized_at", description="finalized (UTC)")
    due_shown = instant_display("due_at", description="due (UTC)")
    emailed_shown = instant_display("emailed_at", description="emailed (UTC)")
    paid_shown = instant_display("paid_at", description="paid (UTC)")
    voided_shown = instant_display("voided_at", description="voided (UTC)")
    stripe_pushed_shown = instant_display("stripe_pushed_at", description="pushed (UTC)")
    stripe_event_shown = instant_display("stripe_event_at", description="last Stripe event (UTC)")

    def get_fieldsets(self, request, obj=None):
        stripe = "Stripe: not pushed"
        if obj is not None and obj.stripe_id:
            stripe = f"Stripe: {obj.stripe_id} ({obj.stripe_status or 'no status yet'})"
        refused = obj is not None and bool(obj.stripe_error)
        if refused:
            stripe = "Stripe: refused, see the error"
        return [
            (None, {"fields": [("customer", "status"), ("period", "total_shown")]}),
            ("Dates", {"fields": [("created_shown", "finalized_shown"),
                                  ("due_shown", "emailed_shown"),
                                  ("paid_shown", "voided_shown")]}),
            (stripe, {
                "classes": [] if refused else ["collapse"],
                "fields": ["stripe_id", "stripe_status", "stripe_hosted_url", "stripe_error",
                           ("stripe_pushed_shown", "stripe_event_shown")],
            }),
        ]  # fmt: skip

    @admin.display(description="period", ordering="period_start")
    def period(self, invoice: Invoice) -> str:
        return span_text(invoice.period_start, invoice.period_end)

    def has_credit_note_permission(self, request) -> bool:
        return request.user.has_perm("billing.add_creditnote")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        may_credit = (
            invoice is not None
            and invoice.status in CREDITABLE
            and self.has_credit_note_permission(request)
        )
        extra_context = {**(extra_context or {}), "may_credit": may_credit}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:invoice_id>/lines/<int:position>/events/",
                view(self.line_events_view),
                name="billing_invoice_line_events",
            ),
            path(
                "<int:invoice_id>/credit-note/",
                view(self.credit_note_view),
                name="billing_invoice_credit_note",
            ),
            path(
                "preview/<int:customer_id>/",
                view(self.preview_view),
                name="billing_invoice_preview",
            ),
            path(
                "revenue-report/",
                view(self.revenue_report_view),
                name="billing_revenue_report",
            ),
            *super().get_urls(),
        ]

    def line_events_view(self, request, invoice_id: int, position: int):
        """The events a usage line covers, a page at a time (no count of them all: the
        line says how many)."""
        self._check_view(request)
        line = get_object_or_404(
            InvoiceLine.objects.select_related("invoice__customer"),
            invoice_id=invoice_id,
            position=position,
            kind__in=LINES_WITH_EVENTS,
        )
        try:
            page = max(int(request.GET.get("p", 1)), 1)
        except ValueError:
            page = 1
        offset = (page - 1) * EVENTS_PER_PAGE
        rows = list(line_events(line=line)[offset : offset + EVENTS_PER_PAGE + 1])
        currency = line.invoice.currency
        return self._page(
            request,
            "line_events.html",
            f"Events of {line.invoice}, line {line.position}",
            original=line.invoice,
            line=line,
            count=count_text(line.event_count),
            quantity=count_text(line.quantity),
            unit_price=exact_label(line.unit_price, currency),
            exact_amount=exact_label(line.exact_amount, currency),
            events=[_event_shown(billed, currency) for billed in rows[:EVENTS_PER_PAGE]],
            page=page,
            first=offset + 1,
            last=offset + min(len(rows), EVENTS_PER_PAGE),
            has_next=len(rows) > EVENTS_PER_PAGE,
        )

    def preview_view(self, request, customer_id: int):
        """The invoice the customer's current period would produce now."""
        self._check_view(request)
        customer = get_object_or_404(Customer, pk=customer_id)
        preview = invoice_preview(customer=customer, at=timezone.now())
        return self._page(
            request,
            "preview.html",
            f"Preview of {customer.external_id}'s current period",
            customer=customer,
            lines=[_line_shown(line, customer.currency) for line in preview.lines],
            period=span_text(preview.invoice.period_start, preview.invoice.period_end),
            total=money_label(preview.invoice.total, customer.currency),
        )

    def credit_note_view(self, request, invoice_id: int):
        self._check_view(request)
        if not self.has_credit_note_permission(request):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice.objects.select_related("customer"), pk=invoice_id)
        form = CreditNoteForm(request.POST or None, invoice=invoice)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            by = request.user.get_username()
            try:
                if data["reason"] == CreditNote.Reason.VOID:
                    note = invoice_void(
                        invoice=invoice, memo=data["memo"], destination=data["destination"],
                        created_by=by,
                    )  # fmt: skip
                else:
                    note = credit_note_issue(
                        invoice=invoice, amount=data["amount"], memo=data["memo"],
                        destination=data["destination"], created_by=by,
                    )  # fmt: skip
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                messages.success(
                    request,
                    f"Credit note {note.number} of {money_label(note.amount, invoice.currency)} "
                    f"issued on {invoice}.",
                )
                return redirect(reverse("admin:billing_invoice_change", args=[invoice.pk]))
        return TemplateResponse(
            request,
            "admin/wallets/wallet/form.html",
            {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
             "title": f"Credit note on {invoice}", "original": invoice},
        )  # fmt: skip

    def revenue_report_view(self, request):
        """The report on the page, billed figures as people read them, and as a CSV
        download (the same figures, plus the exact ones, as a program reads them)."""
        self._check_view(request)
        form = RevenueReportForm(request.GET or None)
        rows = form.report() if form.is_valid() else None
        if rows is not None and "csv" in request.GET:
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="revenue-report.csv"'
            revenue_report_csv(rows=rows, out=response)
            return response
        return self._page(
            request,
            "revenue_report.html",
            "Revenue report",
            form=form,
            columns=[label for _, label in REPORT_PAGE_MONEY],
            rows=None if rows is None else [_report_row(row) for row in rows],
        )

    def _check_view(self, request) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def _page(self, request, template: str, title: str, **context):
        return TemplateResponse(
            request,
            f"admin/billing/invoice/{template}",
            {**self.admin_site.each_context(request), "opts": self.opts, "title": title,
             **context},
        )  # fmt: skip


#: The money columns of the revenue report's page, in the report's order (the CSV's
#: `*_exact` columns are left to the download).
REPORT_PAGE_MONEY = (
    ("fixed_fees", "fixed fees"),
    ("usage_revenue", "usage revenue"),
    ("credits_applied", "credits applied"),
    ("invoice_total", "invoice total"),
    ("credit_notes", "credit notes"),
    ("deferred_revenue", "deferred revenue"),
    ("breakage", "breakage"),
)


def _report_row(row: RevenueRow) -> dict:
    return {
        "customer": row.customer,
        "period": span_text(row.period_start, row.period_end),
        "invoice": row.invoice,
        "status": row.invoice_status,
        "money": [money_label(getattr(row, name), row.currency) for name, _ in REPORT_PAGE_MONEY],
    }


def _line_shown(line: InvoiceLine, currency: str) -> InvoiceLine:
    """A previewed line with its figures as the page writes them (display attributes, not
    fields of the model)."""
    events = count_text(line.event_count) if line.kind in LINES_WITH_EVENTS else "—"
    line.events_text = events  # type: ignore[attr-defined]
    line.amount_text = money_label(line.amount, currency)  # type: ignore[attr-defined]
    return line


def _event_shown(billed: BilledEvent, currency: str) -> BilledEvent:
    """A line's event with its exact amount as the page writes it (a display attribute)."""
    amount = "—" if billed.amount is None else exact_label(billed.amount, currency)
    billed.amount_text = amount  # type: ignore[attr-defined]
    return billed


@admin.register(BillingPeriod)
class BillingPeriodAdmin(ReadOnlyAdmin):
    """Closed periods and what their invoices billed so far, in the minor unit."""

    list_display = ("customer_shown", "period", "invoice", "billed_total_shown",
                    "billed_credits_shown", "events")  # fmt: skip
    list_select_related = ("customer", "invoice")
    list_filter = ("start",)
    search_fields = ("=customer__external_id", "=invoice__number")
    search_help_text = "A customer's external id or an invoice number, exactly."
    ordering = ("-start", "customer__external_id")
    fields = ("customer", "contract", "period", "invoice", "closed_shown", "billed_total_shown",
              "billed_credits_shown", "events", "billed_until_shown")  # fmt: skip
    readonly_fields = fields
    customer_shown = customer_display()
    billed_total_shown = money_display(
        "billed_total", "invoice.currency", description="charges billed"
    )
    billed_credits_shown = money_display(
        "billed_credits", "invoice.currency", description="credits applied"
    )
    closed_shown = instant_display("closed_at", description="closed (UTC)")
    billed_until_shown = instant_display("billed_until", description="usage billed until (UTC)")

    @admin.display(description="period", ordering="start")
    def period(self, period: BillingPeriod) -> str:
        return span_text(period.start, period.end)

    @admin.display(description="events", ordering="billed_events")
    def events(self, period: BillingPeriod) -> str:
        return count_text(period.billed_events)


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ("number", "invoice", "customer_shown", "amount_shown", "reason", "destination",
                    "created_day")  # fmt: skip
    list_select_related = ("invoice__customer",)
    list_filter = ("reason", "destination", "created_at")
    search_fields = ("=number", "=invoice__number", "=invoice__customer__external_id")
    search_help_text = "A credit note or invoice number, or a customer's external id, exactly."
    ordering = ("-created_at", "-id")
    fields = ("number", "invoice", "reason", "amount_shown", "destination", "memo", "created_by",
              "created_shown", "stripe_id", "stripe_error")  # fmt: skip
    readonly_fields = fields
    amount_shown = money_display("amount", "invoice.currency", description="amount")
    created_shown = instant_display("created_at", description="created (UTC)")

    customer_shown = customer_display("invoice.customer")
    created_day = instant_display("created_at", description="created", day=True)
