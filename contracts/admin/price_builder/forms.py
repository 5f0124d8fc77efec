"""What the price builder's pages read: its fields, forms and formset, and a stored
price read back into them.

Everything a person can get wrong is checked here, before any service is called, so the
page shows every mistake at once: the prices and the formula (`PricingForm`, which the
preview checks too), which calls a price charges (`PriceBuilderForm`), and the model's own
`full_clean`, whose errors are put on the fields they are about.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms import formset_factory
from django.utils import timezone

from contracts.models import Price, RateCard, RateCardVersion, validate_currency
from pricing.formula import Formula, FormulaError, formula_parse
from pricing.metrics import METRIC_NAME, STANDARD_METRICS
from pricing.money import RATED_PLACES
from pricing.standard import RATE_NAME_PATTERN, STANDARD_RATES, formula_for_rates

PER_1M = 1_000_000
MAX_AMOUNT = Decimal(10) ** 12
MAX_PLACES = RATED_PLACES
MAX_OTHER_RATES = 20
_AMOUNT = re.compile(r"^(\d+(\.\d*)?|\.\d+)$", re.ASCII)
_DATETIME_INPUT = "%Y-%m-%dT%H:%M"

# --- fields ------------------------------------------------------------------------------


class AmountField(forms.CharField):
    """A price as typed, read into an exact Decimal: `2.50` stays 2.50 and is stored as
    the text "2.50"; floats, exponents and thousands separators are refused, since a
    misread comma would change a price a thousandfold."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        attrs = {"inputmode": "decimal", "autocomplete": "off", "size": 10, "class": "tt-amount"}
        kwargs.setdefault("widget", forms.TextInput(attrs=attrs))
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        if not _AMOUNT.match(text):
            raise ValidationError(
                f"'{text}' is not an amount: write it like 2.50 (digits and a point)."
            )
        amount = Decimal(text)
        if amount >= MAX_AMOUNT:
            raise ValidationError("The amount is too large.")
        if -amount.as_tuple().exponent > MAX_PLACES:
            raise ValidationError(f"Use at most {MAX_PLACES} decimal places.")
        return amount


class InstantInput(forms.DateTimeInput):
    """The browser's own date and time picker; the admin's time zone is UTC."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=_DATETIME_INPUT)


class InstantField(forms.DateTimeField):
    """When something takes effect, picked in the browser (InstantInput), in UTC.

    `initial` is a function, called each time the page is drawn, so the form offers an
    instant counted from when it was opened (this minute, the next midnight)."""

    widget = InstantInput

    def __init__(self, *, initial, label="Effective from (UTC)", **kwargs):
        super().__init__(initial=initial, label=label, **kwargs)


def _this_minute() -> datetime:
    return timezone.now().replace(second=0, microsecond=0)


def _next_midnight() -> datetime:
    return (timezone.now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


# --- forms -------------------------------------------------------------------------------


class RateCardFieldsForm(forms.Form):
    """The new rate card: a name, its currency and when its first version starts."""

    rate_card_name = forms.CharField(
        label="Rate card name", max_length=200, help_text="For example “List prices 2026”."
    )
    currency = forms.CharField(
        max_length=3,
        initial="USD",
        help_text="ISO code such as USD or EUR; every price on the card is in it.",
        widget=forms.TextInput(attrs={"size": 4, "autocomplete": "off"}),
    )
    effective_from = InstantField(
        initial=_this_minute,
        required=False,
        help_text="Usage from this instant on is priced by this card; the past too (the 1st "
        "of the month). Empty: now.",
    )

    def clean_currency(self):
        currency = self.cleaned_data["currency"].strip().upper()
        validate_currency(currency)
        return currency

    def clean(self):
        cleaned = super().clean()
        if "rate_card_name" in cleaned and "currency" in cleaned:
            card = RateCard(name=cleaned["rate_card_name"], currency=cleaned["currency"])
            try:
                card.full_clean()
            except ValidationError as error:
                model_errors_add(self, error, {"name": "rate_card_name"})
        return cleaned


class OtherRateForm(forms.Form):
    """A row for a metric beyond the four token prices: web searches, images, audio..."""

    metric = forms.CharField(
        required=False,
        max_length=63,
        widget=forms.TextInput(attrs={"list": "tt-metric-names", "autocomplete": "off"}),
    )
    amount = AmountField(label="Price")
    per = forms.TypedChoiceField(
        label="Unit",
        choices=[(PER_1M, "per 1M"), (1_000, "per 1K"), (1, "per unit")],
        coerce=int,
        initial=PER_1M,
    )
    rate = forms.CharField(
        label="Rate name",
        required=False,
        max_length=45,
        widget=forms.TextInput(attrs={"placeholder": "rate_ + metric", "autocomplete": "off"}),
    )

    def clean_metric(self):
        metric = self.cleaned_data["metric"].strip()
        if metric and not METRIC_NAME.match(metric):
            raise ValidationError(
                f"'{metric}' is not a metric name: lowercase letters, digits and _, "
                "starting with a letter."
            )
        if metric in STANDARD_RATES.values():
            raise ValidationError(f"{metric} has its own price above.")
        return metric

    def clean(self):
        cleaned = super().clean()
        metric, amount = cleaned.get("metric"), cleaned.get("amount")
        rate = (cleaned.get("rate") or "").strip() or (f"rate_{metric}" if metric else "")
        if "metric" in self.errors or "amount" in self.errors:
            return cleaned
        if amount is None and (metric or cleaned.get("rate")):
            self.add_error("amount", f"Enter the price of {metric or rate}.")
        elif amount is not None and not rate:
            self.add_error("metric", "Which metric does this price charge?")
        elif rate and not re.match(RATE_NAME_PATTERN, rate):
            field = "rate" if cleaned.get("rate") else "metric"
            self.add_error(
                field, f"'{rate}' cannot name a rate: use rate_ and up to 40 of a-z, 0-9, _."
            )
        cleaned["rate"] = rate
        return cleaned


class BaseOtherRateFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        rows = {}
        for number, form in enumerate(self.forms, 1):
            rate = form.cleaned_data.get("rate")
            if rate and rate in rows:
                raise ValidationError(
                    f"Rows {rows[rate]} and {number} both price {rate}: keep one of them."
                )
            rows.setdefault(rate, number)

    def rows(self) -> list[dict]:
        """The filled rows: metric (may be empty with a hand-written formula), rate, amount, per."""
        return [form.cleaned_data for form in self.forms if form.cleaned_data.get("rate")]


OtherRateFormSet = formset_factory(
    OtherRateForm,
    formset=BaseOtherRateFormSet,
    extra=1,
    max_num=MAX_OTHER_RATES,
    validate_max=True,
)


@dataclass(frozen=True)
class Pricing:
    """What the rate fields and the formula add up to, ready to store on a Price."""

    rates: dict[str, dict]
    written_formula: str
    formula: str
    extra_metrics: list[str]
    parsed: Formula


class PricingForm(forms.Form):
    """The prices and the formula: all the preview needs, and the heart of the builder."""

    rate_in = AmountField(label="Input price", help_text="per 1M input tokens")
    rate_out = AmountField(label="Output price", help_text="per 1M output tokens")
    rate_cached = AmountField(
        label="Cached input price", help_text="per 1M input tokens read from a prompt cache"
    )
    rate_cache_write = AmountField(
        label="Cache write price", help_text="per 1M input tokens written to a prompt cache"
    )
    custom_formula = forms.BooleanField(
        label="Write the formula myself",
        required=False,
        help_text="Ticked, the formula below is saved exactly as typed; "
        "otherwise it is written from the prices.",
    )
    formula = forms.CharField(
        required=False,
        max_length=2_000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"}),
        help_text="Metrics times rates, e.g. input_tokens * rate_in; with min, max, ceil, "
        "floor, round and if(condition, then, else). In the formula a rate is the price of "
        "one unit: 2.50 per 1M is 0.0000025.",
    )
    extra_metrics = forms.CharField(
        label="Other metrics the formula uses",
        required=False,
        help_text="Metric names separated by commas, for a formula that uses "
        "a metric without a price row.",
    )

    def __init__(self, *args: Any, other_rates: BaseOtherRateFormSet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.other_rates = other_rates
        self.pricing: Pricing | None = None
        self.formula_error: FormulaError | None = None
        self.written_formula: str | None = None  # None: the prices are not readable yet

    def is_valid(self) -> bool:
        # The other-metric rows are part of the price: a bad row makes the whole form bad.
        return super().is_valid() and self.other_rates.is_valid()

    def clean_extra_metrics(self):
        names = [name for name in re.split(r"[\s,]+", self.cleaned_data["extra_metrics"]) if name]
        for name in names:
            if not METRIC_NAME.match(name):
                raise ValidationError(f"'{name}' is not a metric name.")
        return names

    def clean(self):
        cleaned = super().clean()
        if not self.other_rates.is_valid() or any(
            name in self.errors for name in (*STANDARD_RATES, "extra_metrics")
        ):
            return cleaned
        custom = cleaned.get("custom_formula", False)
        rates, rate_metrics = {}, {}
        for rate, metric in STANDARD_RATES.items():
            if cleaned.get(rate) is not None:
                rates[rate] = {"amount": f"{cleaned[rate]:f}", "per": PER_1M}
                rate_metrics[rate] = metric
        for row in self.other_rates.rows():
            if row["rate"] in rates:
                label = self.fields[row["rate"]].label.lower()
                self.add_error(
                    None, f"{row['rate']} is priced twice, as the {label} and in a row: keep one."
                )
                return cleaned
            rates[row["rate"]] = {"amount": f"{row['amount']:f}", "per": row["per"]}
            if row["metric"]:
                rate_metrics[row["rate"]] = row["metric"]
            elif not custom:
                self.add_error(
                    None, f"Say which metric {row['rate']} charges, or write the formula yourself."
                )
                return cleaned
        self.written_formula = formula_for_rates(rate_metrics)
        metrics = {*STANDARD_METRICS, *cleaned["extra_metrics"], *rate_metrics.values()}
        extra = sorted(metrics - set(STANDARD_METRICS))
        formula = cleaned.get("formula", "") if custom else self.written_formula
        if not formula.strip():
            if custom:
                self.add_error("formula", "Write a formula, or untick “Write the formula myself”.")
            else:
                self.add_error(None, "Enter at least one price.")
            return cleaned
        try:
            parsed = formula_parse(formula, allowed_names=[*metrics, *STANDARD_RATES, *rates])
            unpriced = sorted(parsed.names & (set(STANDARD_RATES) - set(rates)))
            if unpriced:
                fields = ", ".join(self.fields[name].label.lower() for name in unpriced)
                raise FormulaError(f"the formula uses {', '.join(unpriced)}: enter the {fields}")
        except FormulaError as error:
            self.formula_error = error
            self.add_error("formula" if custom else None, f"Formula: {error}")
            return cleaned
        self.pricing = Pricing(
            rates=rates,
            written_formula=self.written_formula,
            formula=formula,
            extra_metrics=extra,
            parsed=parsed,
        )
        return cleaned


class PriceBuilderForm(PricingForm):
    """A whole price: which calls it charges (model, feature, properties) and how."""

    model_pattern = forms.CharField(
        label="Model",
        max_length=200,
        help_text="A model name such as gpt-4o, or a pattern with * such as gpt-4o*.",
        widget=forms.TextInput(
            attrs={"list": "tt-catalog-models", "autocomplete": "off", "size": 30}
        ),
    )
    name = forms.CharField(
        label="Price name",
        required=False,
        max_length=200,
        help_text="Empty: the model. Unique within the version.",
    )
    display_name = forms.CharField(
        label="Name on invoices",
        required=False,
        max_length=200,
        help_text="What the customer's invoice lines call it, e.g. GPT-4o. Empty: the price "
        "name. Never the rate card's name or markup.",
    )
    feature = forms.CharField(
        required=False, max_length=200, help_text="Only calls for this feature. Empty: any."
    )
    property_filters = forms.CharField(
        label="Properties",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 40, "spellcheck": "false"}),
        help_text="Only calls with these properties, one per line, e.g. inference=batch.",
    )

    field_order = ["model_pattern", "name", "display_name", "feature", "property_filters"]

    def __init__(self, *args, version: RateCardVersion | None = None, price=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.version, self.price = version, price
        self.price_fields: dict | None = None

    def clean_model_pattern(self):
        return self.cleaned_data["model_pattern"].strip()

    def clean_property_filters(self):
        filters = {}
        for number, line in enumerate(self.cleaned_data["property_filters"].splitlines(), 1):
            if not line.strip():
                continue
            key, equals, value = line.partition("=")
            if not equals or not key.strip():
                raise ValidationError(f"Line {number}: write name=value, e.g. inference=batch.")
            if key.strip() in filters:
                raise ValidationError(f"Line {number}: {key.strip()} is given twice.")
            filters[key.strip()] = value.strip()
        return filters

    def clean(self):
        cleaned = super().clean()
        if self.pricing is None or self.errors:
            return cleaned
        name = cleaned["name"].strip() or cleaned["model_pattern"]
        self.price_fields = {
            "name": name,
            "display_name": cleaned["display_name"],
            "model_pattern": cleaned["model_pattern"],
            "feature": cleaned["feature"].strip(),
            "property_filters": cleaned["property_filters"],
            "rates": self.pricing.rates,
            "extra_metrics": self.pricing.extra_metrics,
            "formula": self.pricing.formula,
        }
        if self.version is not None:
            others = self.version.prices.filter(name=name)
            if self.price is not None:
                others = others.exclude(pk=self.price.pk)
            if others.exists():
                self.add_error(
                    "name" if cleaned["name"].strip() else "model_pattern",
                    f"Version {self.version.number} already has a price named “{name}”: "
                    "give this one another Price name.",
                )
                return cleaned
        candidate = Price(version=self.version, kind=Price.Kind.PER_EVENT, **self.price_fields)
        try:
            candidate.full_clean(exclude=["version"], validate_constraints=False)
        except ValidationError as error:
            model_errors_add(self, error, {"rates": None})
        return cleaned


class PriceFromForm(forms.Form):
    """When a price added to a card for calls it leaves unpriced starts ("price this")."""

    effective_from = InstantField(
        initial=_this_minute,
        help_text="Calls from this instant on get the price, those already rated included "
        "(they are rated again). The past is allowed.",
    )


class ScheduleForm(forms.Form):
    effective_from = InstantField(
        initial=_next_midnight,
        help_text="Usage from this instant on is priced by the new version.",
    )
    note = forms.CharField(
        required=False, max_length=200, help_text="Why the prices change, for the record."
    )


# --- errors from the models and the services ------------------------------------------


def model_errors_add(form: forms.Form, error: ValidationError, renames: dict) -> None:
    """A model's ValidationError onto the form's fields (`renames`: model -> form field).

    Unlike `common.admin.form_errors_add`, a message about a field the form does not show
    says which field it is about: the person could not tell otherwise."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for field, messages_ in error.message_dict.items():
        target = renames.get(field, field)
        if target == NON_FIELD_ERRORS or target not in form.fields:
            target = None
        for message in messages_:
            label = "" if target or field == NON_FIELD_ERRORS else f"{field}: "
            form.add_error(target, f"{label}{message}")


def service_errors_add(form: forms.Form, error: ValidationError, unprefix: str = "") -> None:
    """What a service refused (a race the form could not see, a version locked meanwhile),
    above the form and starting "Not saved.": the form was valid, so the person must be
    told that nothing was stored. `unprefix`: what the service puts before the fields of
    the form's one price (`prices[0].`)."""
    if hasattr(error, "error_dict"):
        for field, messages_ in error.message_dict.items():
            field = field.removeprefix(unprefix)
            for message in messages_:
                where = "" if field == NON_FIELD_ERRORS else f"{field.replace('_', ' ')}: "
                form.add_error(None, f"Not saved. {where}{message}")
    else:
        for message in error.messages:
            form.add_error(None, f"Not saved. {message}")


# --- a stored price, read back ---------------------------------------------------------


def price_initial(price: Price) -> tuple[dict, list[dict]]:
    """A stored price as the builder shows it: the form's initial data and its other rows."""
    initial: dict[str, object] = {
        "model_pattern": price.model_pattern,
        "name": price.name if price.name != price.model_pattern else "",
        "display_name": price.display_name,
        "feature": price.feature,
        "property_filters": "\n".join(f"{k}={v}" for k, v in price.property_filters.items()),
        "extra_metrics": ", ".join(price.extra_metrics),
    }
    rows, rate_metrics = [], {}
    for rate, spec in rates_in_order(price.rates, price.formula):
        amount = f"{Decimal(spec['amount']):f}"  # "9E+1" is 90 to a person
        if rate in STANDARD_RATES and spec["per"] == PER_1M:
            initial[rate] = amount
            rate_metrics[rate] = STANDARD_RATES[rate]
            continue
        metric = rate.removeprefix("rate_")
        if metric not in STANDARD_METRICS and metric not in price.extra_metrics:
            metric = ""
        rows.append({"metric": metric, "amount": amount, "per": spec["per"], "rate": rate})
        if metric:
            rate_metrics[rate] = metric
    written = formula_for_rates(rate_metrics)
    initial["formula"] = price.formula
    initial["custom_formula"] = price.formula.strip() != written
    return initial, rows


def rates_in_order(rates: dict, formula: str) -> list[tuple[str, dict]]:
    """A price's rates in the builder's order: the token prices, then the others as the
    formula first names them.

    The order a price was typed in is not kept by every database (PostgreSQL's jsonb
    sorts keys), so it is worked out again here, the same on every backend.
    """

    def place(item):
        name = item[0]
        if name in STANDARD_RATES:
            return (0, list(STANDARD_RATES).index(name), name)
        found = re.search(rf"\b{re.escape(name)}\b", formula)
        return (1, found.start() if found else len(formula), name)

    return sorted(rates.items(), key=place)


def rates_text(rates: dict, formula: str) -> str:
    """A price's rates as people read them: `rate_in 2.50/1M, rate_out 10.00/1M`."""
    units = {PER_1M: "/1M", 1_000: "/1K", 1: ""}
    return ", ".join(
        f"{name} {Decimal(rate['amount']):f}{units.get(rate['per'], '')}"
        for name, rate in rates_in_order(rates, formula)
    )
