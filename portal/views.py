"""The portal's pages. Each takes the request's customer from `customer_view` and reads
through selectors filtered by it, so another customer's object is a 404."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from billing.selectors import invoice_get, invoice_list
from wallets.alerts import alert_settings_update
from wallets.selectors import alert_settings_for, alerts_recent, grants_live, wallet_for

from .access import customer_view
from .charts import bars_horizontal, bars_vertical
from .forms import AlertSettingsForm
from .selectors import dashboard_for, ledger_entries
from .templatetags.portal import money

LEDGER_PAGE = 25


def _dashboard_context(customer) -> dict:
    dashboard = dashboard_for(customer=customer)
    currency = customer.currency
    usage = dashboard.usage

    def rows(groups):
        return [
            (group.name or "(none)", group.amount, money(group.amount, currency))
            for group in groups
        ]

    return {
        "dashboard": dashboard,
        "currency": currency,
        "chart_model": bars_horizontal(title="Usage by model", rows=rows(usage.by_model)),
        "chart_feature": bars_horizontal(title="Usage by feature", rows=rows(usage.by_feature)),
        "chart_day": bars_vertical(
            title="Usage by day",
            columns=[
                (day.isoformat(), amount, money(amount, currency))
                for day, amount in dashboard.by_day
            ],
        ),
    }


@require_GET
@customer_view
def dashboard(request, customer):
    return render(
        request, "portal/dashboard.html", {**_dashboard_context(customer), "section": "dashboard"}
    )


@require_GET
@customer_view
def dashboard_fragment(request, customer):
    """The dashboard's figures alone, which the page fetches every few seconds."""
    return render(request, "portal/_dashboard_live.html", _dashboard_context(customer))


@require_GET
@customer_view
def invoices(request, customer):
    page = Paginator(invoice_list(customer=customer), 25).get_page(request.GET.get("page"))
    return render(request, "portal/invoices.html", {"page": page, "section": "invoices"})


@require_GET
@customer_view
def invoice_detail(request, customer, number: str):
    invoice = invoice_get(customer=customer, number=number)
    if invoice is None:
        raise Http404("No such invoice.")
    return render(
        request,
        "portal/invoice_detail.html",
        {
            "invoice": invoice,
            "lines": invoice.lines.all(),
            "currency": invoice.currency,
            "section": "invoices",
        },
    )


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
            "alerts": alerts_recent(customer=customer, limit=50),
            "currency": customer.currency,
            "section": "alerts",
        },
    )
