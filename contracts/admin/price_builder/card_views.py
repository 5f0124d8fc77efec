"""RateCardAdmin's pages about a whole rate card: cloning it (into another currency too,
with the prices to give), scheduling a new version, and pricing several models at once,
from the catalog with a markup or by hand, on a new card or a version that has rated
nothing.

Each page checks its permission, reads its forms (`card_forms`, `forms`) and makes one
call to a service; what the service refuses is shown on the form, nothing stored. Once
saved, the card's page shows the result.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404
from django.urls import path

from contracts.catalog.services import catalog_prices
from contracts.models import RateCard, RateCardVersion
from contracts.rate_cards import (
    prices_create,
    rate_card_clone,
    rate_card_create,
    rate_card_version_schedule,
)
from contracts.selectors import catalog_models

from .card_forms import CatalogModelsForm, CloneForm, ModelRowFormSet
from .forms import RateCardFieldsForm, ScheduleForm, model_errors_add
from .views import PriceBuilderAdmin, catalog_picker


class RateCardPagesAdmin(PriceBuilderAdmin):
    form_template = "admin/contracts/ratecard/rate_card_form.html"
    clone_template = "admin/contracts/ratecard/clone.html"
    models_template = "admin/contracts/ratecard/price_models.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("models/", wrap(self.models_view), name=f"{name}_models"),
            path(
                "version/<int:version_id>/models/",
                wrap(self.models_view),
                name=f"{name}_version_models",
            ),
            path("<int:rate_card_id>/clone/", wrap(self.clone_view), name=f"{name}_clone"),
            path("<int:rate_card_id>/schedule/", wrap(self.schedule_view), name=f"{name}_schedule"),
            *super().get_urls(),
        ]

    # -- cloning ---------------------------------------------------------------------------
    def clone_view(self, request, rate_card_id):
        if not self.has_clone_permission(request):
            raise PermissionDenied
        rate_card = get_object_or_404(RateCard, pk=rate_card_id)
        source = rate_card.versions.order_by("-number").first()
        form = CloneForm(
            request.POST if request.method == "POST" else None,
            initial={"name": f"{rate_card.name} (copy)", "currency": rate_card.currency},
            rate_card=rate_card,
            source=source,
        )
        if request.method == "POST" and form.is_valid():
            try:
                clone = rate_card_clone(rate_card=rate_card, **form.service_arguments())
            except ValidationError as error:
                form.service_errors_add(error)
            else:
                into = "" if clone.currency == rate_card.currency else f" in {clone.currency}"
                return self._saved(
                    request,
                    clone,
                    log=f"Cloned from “{rate_card.name}”{into}.",
                    message=f"Rate card “{clone.name}” created as a copy of “{rate_card.name}”"
                    f"{into}.",
                    added=True,
                )
        return self._page(
            request,
            self.clone_template,
            title=f"Clone “{rate_card.name}”",
            form=form,
            rate_card=rate_card,
            source=source,
            has_errors=bool(form.errors),
        )

    # -- scheduling ------------------------------------------------------------------------
    def schedule_view(self, request, rate_card_id):
        if not self.has_schedule_permission(request):
            raise PermissionDenied
        rate_card = get_object_or_404(RateCard, pk=rate_card_id)
        form = ScheduleForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                version = rate_card_version_schedule(rate_card=rate_card, **form.cleaned_data)
            except ValidationError as error:
                model_errors_add(form, error, {})
            else:
                return self._saved(
                    request,
                    rate_card,
                    log=f"Scheduled {version} from {version.effective_from:%Y-%m-%d %H:%M} UTC.",
                    message=(
                        f"{version} scheduled from {version.effective_from:%Y-%m-%d %H:%M} UTC "
                        "with the latest version's prices: change them below."
                    ),
                )
        latest = rate_card.versions.order_by("-number").first()
        return self._page(
            request,
            self.form_template,
            title=f"Schedule a new version of “{rate_card.name}”",
            intro=(
                f"The new version starts as a copy of the prices of {latest} (in force from "
                f"{latest.effective_from:%Y-%m-%d %H:%M} UTC) and replaces it from the instant "
                "you choose; change its prices before then."
            ),
            form=form,
            rate_card=rate_card,
            submit="Schedule",
        )

    # -- several models at once --------------------------------------------------------------
    def models_view(self, request, version_id=None):
        """Several models priced on one page: picked from the catalog (list price plus a
        markup) and typed by hand, on a new card or added to a version that has rated
        nothing."""
        version = None
        if version_id is None:
            if not self.has_add_permission(request):
                raise PermissionDenied
        else:
            if not self.has_add_price_permission(request):
                raise PermissionDenied
            version = get_object_or_404(
                RateCardVersion.objects.select_related("rate_card"), pk=version_id
            )
            if version.locked_at is not None:
                return self._locked(request, version)
        data = request.POST if request.method == "POST" else None
        card_form = RateCardFieldsForm(data) if version is None else None
        catalog = CatalogModelsForm(data, catalog=catalog_models())
        rows = ModelRowFormSet(data, prefix="rows")
        forms_valid = [catalog.is_valid(), rows.is_valid()]
        if card_form is not None:
            forms_valid.append(card_form.is_valid())
        if data is not None and all(forms_valid):
            saved = self._models_save(request, version, card_form, catalog, rows)
            if saved is not None:
                return saved
        rate_card = version.rate_card if version else None
        currency = rate_card.currency if rate_card else (card_form["currency"].value() or "USD")
        title = (
            f"Price several models in {version}"
            if version
            else "Price several models: new rate card"
        )
        return self._page(
            request,
            self.models_template,
            title=title,
            card_form=card_form,
            catalog_form=catalog,
            rows=rows,
            version=version,
            rate_card=rate_card,
            currency=currency,
            catalog=catalog_picker(),
            has_errors=bool(
                catalog.errors
                or rows.total_error_count()
                or (card_form is not None and card_form.errors)
            ),
        )

    def _models_save(self, request, version, card_form, catalog, rows):
        """Store what the page says, or put what the services refuse on its forms and
        answer None."""
        chosen = catalog.cleaned_data["models"]
        typed = [form.price_fields for form in rows.forms if form.price_fields]
        currency = version.rate_card.currency if version else card_form.cleaned_data["currency"]
        picked = []
        if chosen:
            try:
                catalog_currency, picked = catalog_prices(
                    markup=catalog.markup_fraction(), models=chosen
                )
            except ValidationError as error:  # a markup below -100 %, a model gone meanwhile
                for key, messages in error.message_dict.items():
                    for message in messages:
                        catalog.add_error("markup" if key == "markup" else "models", message)
                return None
            if catalog_currency != currency:
                catalog.add_error(
                    "models",
                    f"The catalog's prices are in {catalog_currency} and the card in "
                    f"{currency}: money does not convert; type the prices by hand below.",
                )
                return None
        prices = picked + typed
        if not prices:
            catalog.add_error(None, "Pick models from the catalog or type a model's prices.")
            return None
        typed_rows = [index for index, form in enumerate(rows.forms) if form.price_fields]
        try:
            if version is None:
                rate_card = rate_card_create(
                    name=card_form.cleaned_data["rate_card_name"],
                    currency=currency,
                    effective_from=card_form.cleaned_data["effective_from"],
                    prices=prices,
                )
            else:
                rate_card = version.rate_card
                prices_create(version=version, prices=prices)
        except ValidationError as error:
            self._models_refused(error, card_form, catalog, rows, picked, typed_rows)
            return None
        names = ", ".join(price["name"] for price in prices)
        where = version or rate_card.versions.get()
        return self._saved(
            request,
            rate_card,
            log=f"Priced {len(prices)} models in {where}: {names}.",
            message=f"{len(prices)} prices in {where}: {names}.",
            added=version is None,
        )

    @staticmethod
    def _models_refused(error, card_form, catalog, rows, picked, typed_rows) -> None:
        """A refusal of the services onto the page: the card's fields on the card's form, a
        typed row's on that row, a catalog model's by its name above the catalog."""
        for key, messages in error.message_dict.items():
            field, index, where = key, None, ""
            if key.startswith("prices["):
                number, _, where = key.removeprefix("prices[").partition("]")
                index, where = int(number), where.removeprefix(".")
            for message in messages:
                if index is None:
                    target = {"name": "rate_card_name"}.get(field, field)
                    form = card_form if card_form and target in card_form.fields else catalog
                    form.add_error(target if target in form.fields else None, message)
                elif index < len(picked):
                    catalog.add_error("models", f"{picked[index]['name']}: {message}")
                else:
                    row = rows.forms[typed_rows[index - len(picked)]]
                    target = where.split(".")[0]
                    row.add_error(target if target in row.fields else None, message)
