"""Writes for the public model price catalog (`prices.json`, beside this module): loading
it, and rate cards priced from it at list price plus a markup.

`catalog_prices` turns chosen catalog models into prices (the list price times 1 + the
markup, the formula written for the model by `pricing.standard`), so a card made from the
catalog (`rate_card_create_from_catalog`, the API) and prices added from it to a version
(the admin's page for several models) are the same prices.
"""

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pricing.standard import catalog_price_formula, catalog_price_rates

from ..models import CatalogPrice, RateCard
from ..rate_cards import rate_card_create
from ..selectors import catalog_models
from ..validation import Errors

CATALOG_PATH = Path(__file__).resolve().parent / "prices.json"
#: The lowest markup: -1 gives every price 0 (list price less 100 %).
MARKUP_LOWEST = Decimal(-1)


def catalog_load(*, path: Path = CATALOG_PATH) -> tuple[int, int]:
    """Load the shipped catalog: (created, updated). Safe to run again."""
    data = json.loads(path.read_text())
    created = updated = 0
    with transaction.atomic():
        for entry in data["models"]:
            _, was_created = CatalogPrice.objects.update_or_create(
                provider=entry["provider"],
                model=entry["model"],
                effective_from=date.fromisoformat(entry["effective_from"]),
                defaults={
                    "match": entry["match"],
                    "currency": data["currency"],
                    "rates": entry["rates"],
                    "long_context": entry.get("long_context"),
                    "batch_discount": entry.get("batch_discount"),
                    "source": entry.get("source", ""),
                    "notes": entry.get("notes", ""),
                },
            )
            created += was_created
            updated += not was_created
    return created, updated


def catalog_prices(
    *,
    markup: Decimal,
    models: Sequence[str] = (),
    providers: Sequence[str] = (),
    on: date | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The currency and the prices (Price's fields each) of the chosen catalog models at
    their list price in force `on` (today) times (1 + markup): `markup=Decimal("0.20")`
    is list price + 20 %. `providers` choose all their models and `models` one each (by
    the catalog's model name); neither chooses every model.

    Refused, naming what: a markup below -1 or not a number; a provider or model the
    catalog does not have then; nothing chosen in the catalog; models priced in two
    currencies (a rate card has one).
    """
    errors: Errors = {}
    if not isinstance(markup, Decimal) or not markup.is_finite() or markup < MARKUP_LOWEST:
        errors["markup"] = 'Give the markup as a fraction of at least -1, e.g. "0.20" for +20 %.'
    entries = catalog_models(on=on)
    known_providers = sorted({entry.provider for entry in entries})
    known_models = {entry.model for entry in entries}
    for index, provider in enumerate(providers):
        if provider not in known_providers:
            errors[f"providers[{index}]"] = (
                f"The catalog has no provider '{provider}' (it has {', '.join(known_providers)})."
            )
    for index, model in enumerate(models):
        if model not in known_models:
            errors[f"models[{index}]"] = f"The catalog has no model '{model}'."
    if errors:
        raise ValidationError(errors)
    if providers or models:
        entries = [e for e in entries if e.provider in providers or e.model in models]
    if not entries:
        raise ValidationError("The catalog has no prices for that choice: run load_price_catalog.")
    currencies = sorted({entry.currency for entry in entries})
    if len(currencies) != 1:
        raise ValidationError(
            f"The chosen catalog prices are in {', '.join(currencies)}: "
            "a rate card has one currency, so choose providers priced in one."
        )
    prices = [
        {
            "name": entry.model,
            "model_pattern": entry.match,
            "rates": catalog_price_rates(entry.rates, entry.long_context, markup=markup),
            "formula": catalog_price_formula(entry.rates, entry.long_context),
        }
        for entry in entries
    ]
    return currencies[0], prices


def rate_card_create_from_catalog(
    *,
    name: str,
    markup: Decimal,
    providers: Sequence[str] = (),
    models: Sequence[str] = (),
    on: date | None = None,
    effective_from: datetime | None = None,
    description: str | None = None,
) -> RateCard:
    """A rate card in the catalog's currency with one price per chosen catalog model
    (`catalog_prices`), from `effective_from` (now; the past too, as `rate_card_create`)."""
    on = on or timezone.now().date()
    currency, prices = catalog_prices(markup=markup, models=models, providers=providers, on=on)
    if description is None:
        description = f"Catalog list prices on {on:%Y-%m-%d} plus {markup * 100:f} %."
    return rate_card_create(
        name=name,
        currency=currency,
        description=description,
        effective_from=effective_from,
        prices=prices,
    )
