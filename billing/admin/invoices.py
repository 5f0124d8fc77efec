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
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from common.admin import ReadOnlyAdmin, ReadOnlyInline, form_errors_add
from contracts.models import Customer
from contracts.selectors import customer_get
from pricing.cycles import span_text
from pricing.money import RATED_PLACES, money_label

from ..invoicing.credit_notes import (
    CREDITABLE,
    credit_note_issue,
    invoice_credit_left,
    invoice_void,
)
from ..invoicing.preview import invoice_preview
from ..models import BillingPeriod, CreditNote, Invoice, InvoiceLine
from ..reports import COLUMNS, revenue_report, revenue_report_csv
from ..selectors import LINES_WITH_EVENTS, line_events

EVENTS_PER_PAGE = 100


class InvoicePartInline(ReadOnlyInline):
    """Lines and credit notes are part of the invoice: whoever may see it sees them."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("billing.view_invoice")


class LineInline(InvoicePartInline):
    model = InvoiceLine
    fields = ("position", "kind", "description", "quantity", "unit_price", "exact_amount",
              "amount_billed", "event_count", "first_event_at", "last_event_at",
              "events")  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="amount")
    def amount_billed(self, line: InvoiceLine) -> str:
        return money_label(line.amount, line.invoice.currency)

    @admin.display(description="events")
    def events(self, line: InvoiceLine) -> str:
        if line.kind not in LINES_WITH_EVENTS:
            return "—"
        url = reverse("admin:billing_invoice_line_events", args=[line.invoice_id, line.position])
        return format_html('<a href="{}">List the events</a>', url)


class CreditNoteInline(InvoicePartInline):
    model = CreditNote
    fields = ("number", "reason", "amount", "destination", "memo", "created_by", "created_at",
              "stripe_id")  # fmt: skip
    readonly_fields = fields


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
    list_display = ("number", "customer_shown", "period", "total_shown", "status",
                    "stripe_status")  # fmt: skip
    list_filter = ("status", "stripe_status", "currency", "period_start")
    list_select_related = ("customer",)
    search_fields = ("=number", "=customer__external_id", "customer__name")
    search_help_text = "An invoice number or a customer's external id (exactly), or a name."
    ordering = ("-period_start", "-id")
    fields = ("number", "customer", "status", "currency", "period_start", "period_end",
              "total_shown", "created_at", "finalized_at", "paid_at", "voided_at", "stripe_id",
              "stripe_status", "stripe_pushed_at", "stripe_error")  # fmt: skip
    readonly_fields = fields
    inlines = [LineInline, CreditNoteInline]
    change_form_template = "admin/billing/invoice/change_form.html"
    change_list_template = "admin/billing/invoice/change_list.html"

    @admin.display(description="customer", ordering="customer__external_id")
    def customer_shown(self, invoice: Invoice) -> str:
        return invoice.customer.external_id

    @admin.display(description="period", ordering="period_start")
    def period(self, invoice: Invoice) -> str:
        return span_text(invoice.period_start, invoice.period_end)

    @admin.display(description="total", ordering="total")
    def total_shown(self, invoice: Invoice) -> str:
        return money_label(invoice.total, invoice.currency)

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
        return self._page(
            request,
            "line_events.html",
            f"Events of {line.invoice}, line {line.position}",
            original=line.invoice,
            line=line,
            events=rows[:EVENTS_PER_PAGE],
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
            invoice=preview.invoice,
            lines=preview.lines,
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
        """The report on the page, and as a CSV download (the same figures)."""
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
            columns=COLUMNS,
            rows=None if rows is None else [row.as_csv() for row in rows],
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


@admin.register(BillingPeriod)
class BillingPeriodAdmin(ReadOnlyAdmin):
    list_display = ("customer", "start", "end", "invoice", "closed_at", "billed_total",
                    "billed_credits", "billed_events", "billed_until")  # fmt: skip
    list_select_related = ("customer", "invoice")
    list_filter = ("start",)
    search_fields = ("=customer__external_id", "=invoice__number")
    search_help_text = "A customer's external id or an invoice number, exactly."
    ordering = ("-start", "customer__external_id")
    readonly_fields = [field.name for field in BillingPeriod._meta.fields]


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ("number", "invoice", "customer", "reason", "amount", "destination",
                    "created_by", "created_at", "stripe_id")  # fmt: skip
    list_select_related = ("invoice__customer",)
    list_filter = ("reason", "destination", "created_at")
    search_fields = ("=number", "=invoice__number", "=invoice__customer__external_id")
    search_help_text = "A credit note or invoice number, or a customer's external id, exactly."
    ordering = ("-created_at", "-id")
    readonly_fields = [field.name for field in CreditNote._meta.fields]

    @admin.display(description="customer", ordering="invoice__customer__external_id")
    def customer(self, note: CreditNote) -> str:
        return note.invoice.customer.external_id
