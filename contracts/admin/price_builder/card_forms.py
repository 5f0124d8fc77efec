"""What the pages about a whole rate card read: a clone (in its currency or another, with
the prices to give), and several models priced at once (from the catalog with a markup,
or typed by hand).

As in `forms`, everything a person can get wrong is checked before a service is called;
what only the service can tell (money missing in another currency, a name taken) comes
back keyed by price (`prices[2].rates.rate_in`) and is put on the field it is about.
"""

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory

from contracts.models import CatalogPrice, Price, RateCard, RateCardVersion, validate_currency
from pricing.money import minor_places, plain
from pricing.standard import STANDARD_RATES, formula_for_rates

from .forms import PER_1M, AmountField, InstantField, _this_minute, rates_in_order

UNIT_LABELS = {PER_1M: "per 1M", 1_000: "per 1K", 1: "per unit"}
_PRICE_KEY = re.compile(r"^prices\[(\d+)\](?:\.(.+))?$")


# --- cloning -------------------------------------------------------------------------------


class CloneForm(forms.Form):
    """A copy of a card's latest prices under a new name, in its currency or another.

    Below the name, a field for each amount of money of each price (its rates; a tiered
    price's tiers; a package's price), showing what it is now. In the card's currency an
    empty field keeps the amount; in another currency money does not convert, so every
    one must be given (the service refuses what is missing, field by field)."""

    name = forms.CharField(label="New rate card name", max_length=200)
    currency = forms.CharField(
        max_length=3,
        required=False,
        help_text="Empty: the card's. In another currency, give every price below in it.",
        widget=forms.TextInput(attrs={"size": 4, "autocomplete": "off"}),
    )
    effective_from = InstantField(
        initial=_this_minute,
        required=False,
        help_text="When the copy's first version starts; the past too. Empty: now.",
    )

    def __init__(self, *args: Any, rate_card: RateCard, source: RateCardVersion, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rate_card = rate_card
        self.prices = list(source.prices.all())
        #: For each price, the names of its money fields, in the order shown.
        self.money: list[list[str]] = []
        for index, price in enumerate(self.prices):
            self.money.append(self._money_fields(index, price))

    def _money_fields(self, index: int, price: Price) -> list[str]:
        names = []
        currency = self.rate_card.currency
        places = minor_places(currency)

        def add(name: str, label: str, now: object) -> None:
            # Every digit the amount has, and at least the currency's minor places.
            shown = plain(Decimal(str(now)), places=places)
            self.fields[name] = AmountField(label=label, help_text=f"now {shown} {currency}")
            names.append(name)

        if price.kind == Price.Kind.PER_EVENT:
            for rate, spec in rates_in_order(price.rates, price.formula):
                unit = UNIT_LABELS.get(spec["per"], f"per {spec['per']}")
                add(f"p{index}_{rate}", f"{rate} ({unit})", spec["amount"])
        elif price.kind == Price.Kind.PACKAGE:
            add(f"p{index}_package_price", "package price", price.package_price)
        else:
            for number, tier in enumerate(price.tiers):
                up_to = "and above" if tier.get("up_to") is None else f"up to {tier['up_to']}"
                add(f"p{index}_t{number}_unit", f"tier {number + 1} ({up_to}), unit price",
                    tier["unit_price"])  # fmt: skip
                add(f"p{index}_t{number}_fee", f"tier {number + 1}, flat fee",
                    tier.get("flat_fee", "0"))  # fmt: skip
        return names

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        try:
            RateCard(name=name, currency="USD").full_clean()
        except ValidationError as error:
            if "name" in error.message_dict:
                raise ValidationError(error.message_dict["name"]) from None
        return name

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper() or self.rate_card.currency
        validate_currency(currency)
        return currency

    def price_groups(self) -> list[tuple[Price, list[forms.BoundField]]]:
        """Each price with its money fields, as the page shows them."""
        return [
            (price, [self[name] for name in names])
            for price, names in zip(self.prices, self.money, strict=True)
        ]

    def service_arguments(self) -> dict[str, Any]:
        """What `rate_card_clone` is called with: the name, currency, start, and a change
        for each price given money (every price, in another currency, so that the service
        says which amounts are missing)."""
        data = self.cleaned_data
        converted = data["currency"] != self.rate_card.currency
        self.changed: list[int] = []  # the price each change is about
        changes = []
        for index, price in enumerate(self.prices):
            change = self._change(index, price, converted=converted)
            if change is not None:
                self.changed.append(index)
                changes.append(change)
        return {
            "name": data["name"],
            "currency": data["currency"],
            "effective_from": data["effective_from"],
            "prices": changes,
        }

    def _change(self, index: int, price: Price, *, converted: bool) -> dict[str, Any] | None:
        given = {name: self.cleaned_data.get(name) for name in self.money[index]}
        if not converted and all(value is None for value in given.values()):
            return None
        change: dict[str, Any] = {"name": price.name}
        prefix = f"p{index}_"
        if price.kind == Price.Kind.PER_EVENT:
            change["rates"] = {
                name.removeprefix(prefix): f"{value:f}"
                for name, value in given.items()
                if value is not None
            }
        elif price.kind == Price.Kind.PACKAGE:
            if given[f"{prefix}package_price"] is not None:
                change["package_price"] = given[f"{prefix}package_price"]
        elif not converted or all(value is not None for value in given.values()):
            change["tiers"] = [
                {
                    "up_to": tier.get("up_to"),
                    "unit_price": _text(given[f"{prefix}t{number}_unit"], tier["unit_price"]),
                    "flat_fee": _text(given[f"{prefix}t{number}_fee"], tier.get("flat_fee", "0")),
                }
                for number, tier in enumerate(price.tiers)
            ]
        return change

    def service_errors_add(self, error: ValidationError) -> None:
        """What `rate_card_clone` refused, on the field it is about: `prices[k].rates.rate_in`
        on that rate's field, the name and the currency on theirs; the rest above the form,
        naming its price."""
        for key, messages in error.message_dict.items():
            found = _PRICE_KEY.match(key)
            target, about = (key, "") if key in self.fields else (None, "")
            if found:
                index = self.changed[int(found[1])]
                target = self._field_for(index, found[2] or "")
                about = "" if target else f"{self.prices[index].name}: "
            for message in messages:
                self.add_error(target, f"{about}{message}")

    def _field_for(self, index: int, where: str) -> str | None:
        """The field of price `index` that a refusal about `where` (`rates.rate_in`,
        `tiers`, `package_price`) is about."""
        prefix = f"p{index}_"
        if where.startswith("rates."):
            name = prefix + where.removeprefix("rates.")
        elif where == "tiers":
            blank = [n for n in self.money[index] if self.cleaned_data.get(n) is None]
            name = (blank or self.money[index] or [""])[0]
        else:
            name = prefix + where
        return name if name in self.fields else None


def _text(given: Decimal | None, now: object) -> str:
    return f"{given:f}" if given is not None else str(now)


# --- several models at once ------------------------------------------------------------------


class CatalogModelsForm(forms.Form):
    """Models picked from the catalog, priced at their list price plus a markup."""

    markup = forms.DecimalField(
        label="Markup (%)",
        max_digits=9,
        decimal_places=4,
        min_value=Decimal(-100),
        initial=Decimal(0),
        required=False,
        help_text="Over the catalog's list price: 20 for list price + 20 %, 0 at list price.",
    )
    models = forms.MultipleChoiceField(
        label="Catalog models",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each gets the catalog's list price in force today, cache, audio and "
        "long-context rates included, times 1 + the markup.",
    )

    def __init__(self, *args: Any, catalog: Sequence[CatalogPrice], **kwargs: Any):
        super().__init__(*args, **kwargs)
        groups: dict[str, list[tuple[str, str]]] = {}
        for entry in catalog:
            groups.setdefault(entry.provider, []).append((entry.model, catalog_label(entry)))
        models = self.fields["models"]
        assert isinstance(models, forms.MultipleChoiceField)
        models.choices = list(groups.items())

    def markup_fraction(self) -> Decimal:
        percent = self.cleaned_data.get("markup")
        return (percent or Decimal(0)).scaleb(-2)


def catalog_label(entry: CatalogPrice) -> str:
    """`gpt-4o: 2.50 in, 10.00 out, 1.25 cached per 1M USD`."""
    words = {"input": "in", "output": "out", "cached_input": "cached"}
    shown = [f"{entry.rates[key]} {word}" for key, word in words.items() if key in entry.rates]
    return f"{entry.model}: {', '.join(shown)} per 1M {entry.currency}"


class ModelRowForm(forms.Form):
    """A model priced by hand: its pattern and its token prices per 1M."""

    model_pattern = forms.CharField(
        label="Model",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"list": "tt-catalog-models", "autocomplete": "off"}),
    )
    name = forms.CharField(label="Price name", required=False, max_length=200)
    rate_in = AmountField(label="Input")
    rate_out = AmountField(label="Output")
    rate_cached = AmountField(label="Cached input")
    rate_cache_write = AmountField(label="Cache write")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.price_fields: dict[str, Any] | None = None  # an empty row prices nothing

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        model = cleaned["model_pattern"].strip()
        typed = {rate: cleaned[rate] for rate in STANDARD_RATES if cleaned.get(rate) is not None}
        if not model and (typed or cleaned["name"].strip()):
            self.add_error("model_pattern", "Which model does this row price?")
        elif model and not typed:
            self.add_error("rate_in", f"Enter at least one price of {model}.")
        if model and typed and not self.errors:
            rates = {rate: {"amount": f"{value:f}", "per": PER_1M} for rate, value in typed.items()}
            self.price_fields = {
                "name": cleaned["name"].strip() or model,
                "model_pattern": model,
                "rates": rates,
                "formula": formula_for_rates({rate: STANDARD_RATES[rate] for rate in typed}),
            }
        return cleaned


ModelRowFormSet = formset_factory(ModelRowForm, extra=3, max_num=50, validate_max=True)
