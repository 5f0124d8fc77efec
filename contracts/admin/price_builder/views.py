"""The price builder's pages, as RateCardAdmin's own: the builder (a new card with its
first price, a price added to or changed in a version) and its preview. The pages about a
whole card (cloning, scheduling, several models at once) are `card_views`.

Each page checks its own permission and reads a form from `forms`; a page that stores
makes one call to `contracts.services`, and a refusal the form could not foresee (a race,
a version locked meanwhile) is shown on the form with nothing stored.
"""

from datetime import UTC, datetime, timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from common.admin import next_url
from contracts.models import Price, RateCard, RateCardVersion
from contracts.rate_cards import price_add_from, price_create, price_update, rate_card_create
from contracts.selectors import catalog_models
from pricing.metrics import STANDARD_METRICS
from pricing.standard import STANDARD_RATES

from .forms import (
    OtherRateFormSet,
    PriceBuilderForm,
    PriceFromForm,
    PricingForm,
    RateCardFieldsForm,
    ScheduleForm,
    price_initial,
    service_errors_add,
)
from .preview import SAMPLE_DEFAULTS, SAMPLE_LABELS, preview_payload


class PriceBuilderAdmin(admin.ModelAdmin):
    """RateCardAdmin's pages for pricing one price: the builder (a new card with its first
    price, a price added to or changed in a version) and its preview; the permissions and
    helpers every pricing page shares."""

    builder_template = "admin/contracts/ratecard/price_builder.html"
    locked_template = "admin/contracts/ratecard/version_locked.html"

    # -- permissions ---------------------------------------------------------------------
    def has_add_permission(self, request):
        # A new rate card is made with its first price, in one page.
        user = request.user
        return user.has_perm("contracts.add_ratecard") and user.has_perm("contracts.add_price")

    def has_add_price_permission(self, request) -> bool:
        return request.user.has_perm("contracts.add_price")

    def has_change_price_permission(self, request) -> bool:
        return request.user.has_perm("contracts.change_price")

    def has_clone_permission(self, request) -> bool:
        return self.has_add_permission(request)

    def has_schedule_permission(self, request) -> bool:
        return request.user.has_perm("contracts.add_ratecardversion")

    # -- urls ----------------------------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("preview/", wrap(self.preview_view), name=f"{name}_preview"),
            path(
                "version/<int:version_id>/price/add/",
                wrap(self.price_add_view),
                name=f"{name}_price_add",
            ),
            path(
                "price/<int:price_id>/change/",
                wrap(self.price_change_view),
                name=f"{name}_price_change",
            ),
            path(
                "<int:rate_card_id>/price/add-from/",
                wrap(self.price_add_from_view),
                name=f"{name}_price_add_from",
            ),
            *super().get_urls(),
        ]

    # -- the builder ---------------------------------------------------------------------
    def add_view(self, request, form_url="", extra_context=None):
        """A new rate card and its first price, from one page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else None
        card_form = RateCardFieldsForm(data)
        other_rates = OtherRateFormSet(data, prefix="other")
        form = PriceBuilderForm(data, other_rates=other_rates)
        if data is not None and all([card_form.is_valid(), form.is_valid()]):
            try:
                rate_card = rate_card_create(
                    name=card_form.cleaned_data["rate_card_name"],
                    currency=card_form.cleaned_data["currency"],
                    effective_from=card_form.cleaned_data["effective_from"],
                    prices=[form.price_fields],
                )
            except ValidationError as error:
                service_errors_add(form, error, unprefix="prices[0].")
            else:
                price = rate_card.versions.get().prices.get()
                return self._saved(
                    request,
                    rate_card,
                    log=f"Created with the price “{price}”.",
                    message=(
                        f"Rate card “{rate_card.name}” created: version 1 prices "
                        f"{price.model_pattern} from "
                        f"{price.version.effective_from:%Y-%m-%d %H:%M} UTC."
                    ),
                    added=True,
                )
        return self._builder(
            request,
            title="Price a model: new rate card",
            card_form=card_form,
            form=form,
            currency=card_form["currency"].value() or "USD",
        )

    def price_add_view(self, request, version_id):
        if not self.has_add_price_permission(request):
            raise PermissionDenied
        version = get_object_or_404(
            RateCardVersion.objects.select_related("rate_card"), pk=version_id
        )
        if version.locked_at is not None:
            return self._locked(request, version)
        data = request.POST if request.method == "POST" else None
        other_rates = OtherRateFormSet(data, prefix="other")
        form = PriceBuilderForm(
            data, other_rates=other_rates, version=version, initial=_prefilled(request)
        )
        if data is not None and form.is_valid():
            try:
                price = price_create(version=version, **form.price_fields)
            except ValidationError as error:
                service_errors_add(form, error)
            else:
                return self._saved(
                    request,
                    version.rate_card,
                    log=f"Added the price “{price}” to {version}.",
                    message=f"Price “{price}” added to {version}.",
                )
        return self._builder(
            request,
            title=f"Add a price to {version}",
            form=form,
            version=version,
            currency=version.rate_card.currency,
        )

    def price_add_from_view(self, request, rate_card_id):
        """A price for calls the card leaves unpriced, from an instant (the past included):
        "price this" on a customer's page opens it with the model and the period's start
        (`price_add_from`). The usage of the card's customers from then on is rated again."""
        if not (self.has_add_price_permission(request) and self.has_schedule_permission(request)):
            raise PermissionDenied
        rate_card = get_object_or_404(RateCard, pk=rate_card_id)
        latest = rate_card.versions.order_by("-number").first()
        data = request.POST if request.method == "POST" else None
        other_rates = OtherRateFormSet(data, prefix="other")
        form = PriceBuilderForm(
            data, other_rates=other_rates, version=latest, initial=_prefilled(request)
        )
        from_form = PriceFromForm(
            data, initial={"effective_from": _from_initial(request, latest.effective_from)}
        )
        if data is not None and all([from_form.is_valid(), form.is_valid()]):
            try:
                price = price_add_from(
                    rate_card=rate_card,
                    effective_from=from_form.cleaned_data["effective_from"],
                    **form.price_fields,
                )
            except ValidationError as error:
                service_errors_add(form, error)
            else:
                when = f"{from_form.cleaned_data['effective_from']:%Y-%m-%d %H:%M} UTC"
                return self._saved(
                    request,
                    rate_card,
                    log=f"Added the price “{price}” to {price.version} from {when}.",
                    message=(
                        f"Price “{price}” added to {price.version}: calls from {when} on get "
                        "it, and the usage already rated from then is rated again."
                    ),
                )
        return self._builder(
            request,
            title=f"Price {form['model_pattern'].value() or 'a model'} on “{rate_card.name}”",
            form=form,
            version=latest,
            currency=rate_card.currency,
            from_form=from_form,
        )

    def price_change_view(self, request, price_id):
        if not self.has_change_price_permission(request):
            raise PermissionDenied
        price = get_object_or_404(Price.objects.select_related("version__rate_card"), pk=price_id)
        version = price.version
        if version.locked_at is not None:
            return self._locked(request, version, price=price)
        if price.kind != Price.Kind.PER_EVENT:
            self.message_user(
                request,
                f"“{price}” is a {price.get_kind_display().lower()} price: the builder edits "
                "per-event prices only.",
                messages.WARNING,
            )
            return HttpResponseRedirect(self._card_url(version.rate_card))
        if request.method == "POST":
            other_rates = OtherRateFormSet(request.POST, prefix="other")
            form = PriceBuilderForm(
                request.POST, other_rates=other_rates, version=version, price=price
            )
        else:
            initial, rows = price_initial(price)
            other_rates = OtherRateFormSet(initial=rows, prefix="other")
            form = PriceBuilderForm(
                initial=initial, other_rates=other_rates, version=version, price=price
            )
        if request.method == "POST" and form.is_valid():
            try:
                price = price_update(price=price, **form.price_fields)
            except ValidationError as error:
                service_errors_add(form, error)
            else:
                return self._saved(
                    request,
                    version.rate_card,
                    log=f"Changed the price “{price}” in {version}.",
                    message=f"Price “{price}” of {version} saved.",
                )
        return self._builder(
            request,
            title=f"Change the price “{price}” of {version}",
            form=form,
            version=version,
            price=price,
            currency=version.rate_card.currency,
        )

    def _builder(
        self,
        request,
        *,
        title,
        form,
        currency,
        card_form=None,
        version=None,
        price=None,
        from_form=None,
    ):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "card_form": card_form,
            "from_form": from_form,
            "next": next_url(request, ""),
            "form": form,
            "other_rates": form.other_rates,
            "version": version,
            "rate_card": version.rate_card if version else None,
            "price": price,
            "currency": currency,
            "catalog": catalog_picker(),
            "metric_names": [m for m in STANDARD_METRICS if m not in STANDARD_RATES.values()],
            "samples": [
                {
                    "metric": metric,
                    "field": f"sample_{metric}",
                    "label": SAMPLE_LABELS[metric],
                    "value": count,
                }
                for metric, count in SAMPLE_DEFAULTS.items()
            ],
            "advanced_open": bool(
                form.errors.get("formula")
                or form.errors.get("extra_metrics")
                or form["custom_formula"].value()
                or form.other_rates.total_error_count()
            ),
            "has_errors": bool(
                form.errors
                or form.other_rates.total_error_count()
                or (card_form and card_form.errors)
                or (from_form and from_form.errors)
            ),
        }
        return TemplateResponse(request, self.builder_template, context)

    def _locked(self, request, version, price=None):
        """A version with rated usage never changes: say so and offer a new version."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{version} has rated usage and cannot change",
            "version": version,
            "rate_card": version.rate_card,
            "price": price,
            "schedule_form": ScheduleForm() if self.has_schedule_permission(request) else None,
        }
        status = 409 if request.method == "POST" else 200
        return TemplateResponse(request, self.locked_template, context, status=status)

    # -- the preview ---------------------------------------------------------------------
    def preview_view(self, request):
        """The live preview's answer for the builder's current fields, as JSON."""
        if not (
            self.has_add_price_permission(request) or self.has_change_price_permission(request)
        ):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        other_rates = OtherRateFormSet(request.POST, prefix="other")
        form = PricingForm(request.POST, other_rates=other_rates)
        return JsonResponse(preview_payload(form, request.POST))

    def _page(self, request, template: str, **context) -> TemplateResponse:
        """An admin page of the rate card's, with the admin's own context."""
        context = {**self.admin_site.each_context(request), "opts": self.opts, **context}
        return TemplateResponse(request, template, context)

    def _saved(
        self, request, rate_card: RateCard, *, log: str, message: str, added: bool = False
    ) -> HttpResponseRedirect:
        """What every page does once a service has stored: the card's history records it
        (as the card's addition or a change to it), the user is told, and the card's page
        shows the result."""
        if added:
            self.log_addition(request, rate_card, log)
        else:
            self.log_change(request, rate_card, log)
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(next_url(request, self._card_url(rate_card)))

    def _card_url(self, rate_card: RateCard) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[rate_card.pk]
        )


def catalog_picker() -> list[dict]:
    """The catalog's models as the model fields suggest them, with their list prices."""
    return [
        {"match": entry.match, "label": f"{entry.provider} {entry.model}", "rates": entry.rates}
        for entry in catalog_models()
    ]


def _prefilled(request) -> dict:
    """The builder opened for a model ("price this": `?model=llama-3.3-70b`)."""
    model = request.GET.get("model", "").strip()
    return {"model_pattern": model} if model else {}


def _from_initial(request, earliest: datetime) -> datetime:
    """The instant a price added from a customer's page starts: the `from` it was opened
    with (the start of the unpriced usage's period), not before the card's latest version
    (which would hide it), else now."""
    try:
        wanted = datetime.strptime(request.GET.get("from", ""), "%Y-%m-%dT%H:%M")
        wanted = wanted.replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    earliest = earliest.astimezone(UTC)
    whole = earliest.replace(second=0, microsecond=0)
    # The field takes whole minutes: the latest version's start, rounded up to one.
    return max(wanted, whole if whole == earliest else whole + timedelta(minutes=1))
