"""The portal's pages. Each takes the request's customer from `customer_view` and reads
through selectors filtered by it, so another customer's object is a 404."""

from datetime import UTC, date
from decimal import Decimal
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from billing.exports import usage_csv as usage_csv_lines
from billing.invoicing.pdf.credit_note import credit_note_pdf as credit_note_pdf_bytes
from billing.invoicing.pdf.invoice import invoice_pdf as invoice_pdf_bytes
from billing.periods import period_of
from billing.selectors import invoice_face, invoice_get, invoice_list
from common.throttling import EXPORTS, budget_words, window_take
from contracts.models import ApiKey
from contracts.selectors import customer_api_key_list
from contracts.services import customer_api_key_create, customer_api_key_revoke
from pricing.money import minor_places
from wallets.alerts import alert_settings_update
from wallets.selectors import alert_settings_for, alerts_recent, grants_live, wallet_for

from .access import customer_view
from .charts import bars_horizontal, bars_vertical
from .forms import AlertSettingsForm, ApiKeyCreateForm
from .ranges import CHOICES as RANGE_CHOICES
from .ranges import RangeError, range_from_query
from .selectors import (
    dashboard_for,
    ledger_entries,
    usage_in_range,
    usage_period_starting,
    usage_periods,
)
from .templatetags.portal import money

LEDGER_PAGE = 25


def _dashboard_context(request, customer) -> tuple[dict, int]:
    """The dashboard's figures and the charts of the range the query string asks for;
    with the status: 400, and the message instead of the charts, for a range it cannot
    show."""
    now = timezone.now()
    dashboard = dashboard_for(customer=customer, at=now)
    currency = customer.currency
    context = {
        "dashboard": dashboard,
        "currency": currency,
        "range_choices": RANGE_CHOICES,
        "range_query": request.GET.urlencode(),
        "chosen": {key: request.GET.get(key, "") for key in ("range", "from", "to")},
    }
    try:
        days = range_from_query(request.GET, customer=customer, now=now)
    except RangeError as error:
        return {**context, "range_error": str(error)}, 400
    usage = usage_in_range(customer=customer, days=days, today=now.astimezone(UTC).date())
    context["chosen"]["range"] = days.choice
    if days.choice == "custom":
        context["chosen"].update({"from": days.first.isoformat(), "to": days.last.isoformat()})

    def shown(amount):
        return money(amount, currency)

    def rows(totals):
        return [(total.name or "(none)", total.amount, shown(total.amount)) for total in totals]

    context.update(
        usage=usage,
        chart_model=bars_horizontal(title="Usage by model", rows=rows(usage.by_model)),
        chart_feature=bars_horizontal(title="Usage by feature", rows=rows(usage.by_feature)),
        chart_day=bars_vertical(
            title="Usage by day",
            columns=[
                (day.isoformat(), _day_label(day, days), total.amount, shown(total.amount))
                for day, total in usage.by_day
            ],
            axis_label=shown,
            least=Decimal(4).scaleb(-minor_places(currency)),
        ),
    )
    return context, 200


def _day_label(day: date, days) -> str:
    """A day under its column: the day of the month, with the month where one begins."""
    if day.day == 1 or day == days.first:
        return f"{day:%b} {day.day}"
    return str(day.day)


@require_GET
@customer_view
def dashboard(request, customer):
    context, status = _dashboard_context(request, customer)
    return render(
        request, "portal/dashboard.html", {**context, "section": "dashboard"}, status=status
    )


@require_GET
@customer_view
def dashboard_fragment(request, customer):
    """The dashboard's figures alone, which the page fetches every few seconds."""
    context, status = _dashboard_context(request, customer)
    return render(request, "portal/_dashboard_live.html", context, status=status)


@require_GET
@customer_view
def invoices(request, customer):
    page = Paginator(invoice_list(customer=customer), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/invoices.html",
        {"page": page, "periods": usage_periods(customer=customer), "section": "invoices"},
    )


def exports_budget(view):
    """A download counts against the portal user's exports budget (common.throttling);
    past it, 429 with `Retry-After` and a line saying when to try again."""

    @wraps(view)
    def wrapped(request, customer, *args, **kwargs):
        wait = window_take(f"user:{request.user.pk}", EXPORTS)
        if wait is not None:
            return HttpResponse(
                f"Too many downloads: the limit is {budget_words(EXPORTS)}. "
                f"Try again in {wait} second{'s' if wait != 1 else ''}.",
                status=429,
                content_type="text/plain; charset=utf-8",
                headers={"Retry-After": str(wait)},
            )
        return view(request, customer, *args, **kwargs)

    return wrapped


def _invoice_or_404(customer, number: str):
    invoice = invoice_get(customer=customer, number=number)
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


@require_GET
@customer_view
def invoice_detail(request, customer, number: str):
    invoice = _invoice_or_404(customer, number)
    face = invoice_face(invoice=invoice)
    return render(
        request,
        "portal/invoice_detail.html",
        {
            "invoice": invoice,
            "lines": face.lines,
            "face": face,
            "currency": invoice.currency,
            "section": "invoices",
        },
    )


@require_GET
@customer_view
@exports_budget
def invoice_pdf(request, customer, number: str):
    invoice = _invoice_or_404(customer, number)
    return HttpResponse(
        invoice_pdf_bytes(invoice=invoice),
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'},
    )


def _credit_note_or_404(customer, number: str, note_number: str):
    invoice = _invoice_or_404(customer, number)
    note = next((note for note in invoice.credit_notes.all() if note.number == note_number), None)
    if note is None:
        raise Http404("No such credit note.")
    return invoice, note


@require_GET
@customer_view
def credit_note_detail(request, customer, number: str, note_number: str):
    invoice, note = _credit_note_or_404(customer, number, note_number)
    return render(
        request,
        "portal/credit_note.html",
        {"invoice": invoice, "note": note, "currency": invoice.currency, "section": "invoices"},
    )


@require_GET
@customer_view
@exports_budget
def credit_note_pdf(request, customer, number: str, note_number: str):
    _, note = _credit_note_or_404(customer, number, note_number)
    return HttpResponse(
        credit_note_pdf_bytes(credit_note=note),
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{note.number}.pdf"'},
    )


@require_GET
@customer_view
@exports_budget
def usage_csv(request, customer):
    """The events of one billing period as CSV: `?period=` the day it starts (YYYY-MM-DD),
    by default the current period."""
    text = request.GET.get("period", "").strip()
    if not text:
        start, end = period_of(customer=customer, at=timezone.now())
    else:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return _bad_request(f"The period must be the day it starts, as YYYY-MM-DD: {text!r}.")
        found = usage_period_starting(customer=customer, day=day)
        if found is None:
            return _bad_request(f"No billing period of yours starts on {day.isoformat()}.")
        start, end = found
        if start > timezone.now():
            return _bad_request(f"The period starting on {day.isoformat()} has not begun yet.")
    name = f"usage-{customer.external_id}-{start.astimezone(UTC):%Y-%m-%d}.csv"
    return StreamingHttpResponse(
        usage_csv_lines(customer=customer, start=start, end=end),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _bad_request(message: str) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


@require_GET
@customer_view
def wallet(request, customer):
    found = wallet_for(customer=customer)
    context = {"wallet": found, "currency": customer.currency, "section": "wallet"}
    if found is not None:
        context["grants"] = grants_live(wallet=found)
        context["page"] = Paginator(ledger_entries(wallet=found), LEDGER_PAGE).get_page(
            request.GET.get("page")
        )
    return render(request, "portal/wallet.html", context)


@require_http_methods(["GET", "POST"])
@customer_view(admin_for_post=True)
def alerts(request, customer):
    alert_settings = alert_settings_for(customer=customer)
    if request.method == "POST":
        form = AlertSettingsForm(request.POST)
        if form.is_valid():
            try:
                alert_settings_update(customer=customer, **form.cleaned_data)
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Alert settings saved.")
                return redirect("portal:alerts")
    else:
        form = AlertSettingsForm(initial=AlertSettingsForm.initial_from(alert_settings))
    return render(
        request,
        "portal/alerts.html",
        {
            "form": form,
            "can_edit": request.portal_user.is_admin,
            "alert_settings": alert_settings,
            # Where an alert fired now would go: the delivery's own rule (wallets.alerts).
            "recipients": alert_settings.recipients(),
            "alerts": alerts_recent(customer=customer, limit=50),
            "currency": customer.currency,
            "section": "alerts",
        },
    )


@require_http_methods(["GET", "POST"])
@customer_view(admin_for_post=True)
def api_keys(request, customer):
    """The customer's read-only API keys; an admin creates one here and sees it once."""
    form = ApiKeyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        api_key, key = customer_api_key_create(
            customer=customer,
            name=form.cleaned_data["name"],
            created_by=f"portal: {request.user.email or request.user.get_username()}",
        )
        response = render(
            request,
            "portal/api_key_created.html",
            {"api_key": api_key, "key": key, "section": "api_keys"},
        )
        response["Cache-Control"] = "no-store"
        return response
    return render(
        request,
        "portal/api_keys.html",
        {
            "form": form,
            "can_edit": request.portal_user.is_admin,
            "api_keys": customer_api_key_list(customer=customer),
            "section": "api_keys",
        },
    )


@require_http_methods(["GET", "POST"])
@customer_view(admin_for_post=True)
def api_key_revoke(request, customer, prefix: str):
    """Asks to confirm (GET), then revokes (POST); another customer's key is a 404."""
    api_key = customer_api_key_list(customer=customer).filter(prefix=prefix).first()
    if api_key is None:
        raise Http404("No such API key.")
    if not request.portal_user.is_admin:
        raise PermissionDenied("Only the customer's portal admins may revoke keys.")
    if request.method == "POST":
        try:
            customer_api_key_revoke(customer=customer, prefix=prefix)
        except ApiKey.DoesNotExist:
            raise Http404("No such API key.") from None
        messages.success(request, f"The key {api_key} is revoked.")
        return redirect("portal:api_keys")
    return render(
        request, "portal/api_key_revoke.html", {"api_key": api_key, "section": "api_keys"}
    )
