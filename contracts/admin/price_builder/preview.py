"""The price builder's live preview: what a sample call costs under the fields as typed.

The page posts its fields on every change and shows the JSON answer beside the form: the
written formula, each term and the total as decimal strings (never floats), or what is
wrong and where, down to a formula error's line and column. The pricing is
`pricing.preview`, the rating rule itself; this module only reads the sample call and
turns the form's answer into JSON.
"""

import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS

from pricing.formula import FormulaError
from pricing.metrics import METRIC_NAME
from pricing.money import plain
from pricing.preview import price_preview
from pricing.rating import Rate

from .forms import MAX_AMOUNT, PricingForm

#: The sample call the preview prices until the user changes it.
SAMPLE_DEFAULTS = {
    "input_tokens": 1_000,
    "output_tokens": 500,
    "cached_input_tokens": 2_000,
    "cache_creation_input_tokens": 0,
}
SAMPLE_LABELS = {
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cached_input_tokens": "Cached input tokens",
    "cache_creation_input_tokens": "Cache-write tokens",
}
_COUNT = re.compile(r"^(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$", re.ASCII)


def samples_parse(data) -> tuple[dict[str, Decimal], list[dict]]:
    """The sample call from `sample_<metric>` fields (missing: the defaults; 1,000 allowed)."""
    samples = {metric: Decimal(count) for metric, count in SAMPLE_DEFAULTS.items()}
    errors = []
    for key, value in data.items():
        if not key.startswith("sample_"):
            continue
        metric, text = key.removeprefix("sample_"), value.strip()
        if not METRIC_NAME.match(metric):
            continue
        if not text:
            samples[metric] = Decimal(0)
        elif _COUNT.match(text) and Decimal(text.replace(",", "")) <= MAX_AMOUNT:
            samples[metric] = Decimal(text.replace(",", ""))
        else:
            errors.append(
                {
                    "field": key,
                    "label": f"Sample {metric.replace('_', ' ')}",
                    "message": f"'{text}' is not a count: write it like 1000 or 1,000.",
                }
            )
    return samples, errors


def preview_payload(form: PricingForm, data) -> dict:
    """The preview's JSON: the written formula, each term and the total as decimal strings,
    or what is wrong and where (a formula error's line and column)."""
    samples, errors = samples_parse(data)
    currency = str(data.get("currency", "")).strip().upper()
    payload: dict[str, Any] = {
        "ok": False,
        "currency": currency if re.fullmatch(r"[A-Z]{3}", currency) else "",
        "written_formula": "",
        "formula": "",
        "terms": [],
        "total": None,
        "rated_total": None,
        "samples": [],
        "warnings": [],
        "errors": errors,
    }
    valid = form.is_valid()  # also checks the other-rates formset
    payload["written_formula"] = form.written_formula
    metrics_used = list(SAMPLE_DEFAULTS)
    if form.pricing is not None:
        payload["formula"] = form.pricing.formula
        metrics_used += sorted(
            form.pricing.parsed.names - set(form.pricing.rates) - set(SAMPLE_DEFAULTS)
        )
    payload["samples"] = [
        {
            "metric": metric,
            "field": f"sample_{metric}",
            "label": SAMPLE_LABELS.get(metric, metric.replace("_", " ").capitalize()),
            "value": f"{samples.get(metric, Decimal(0)):f}",
        }
        for metric in metrics_used
    ]
    if not valid:
        payload["errors"] += _form_errors(form)
    if form.pricing is None or payload["errors"]:
        return payload
    pricing = form.pricing
    rates = {
        name: Rate(Decimal(spec["amount"]), spec["per"]) for name, spec in pricing.rates.items()
    }
    try:
        preview = price_preview(formula=pricing.parsed, rates=rates, metrics=samples)
    except FormulaError as error:
        payload["errors"].append(_formula_error(error, "formula"))
        return payload
    payload.update(
        ok=True,
        terms=[
            {"label": term.label, "text": term.text, "amount": plain(term.amount, places=2)}
            for term in preview.terms
        ],
        total=plain(preview.total, places=2),
        rated_total=plain(preview.rated_total, places=2),
    )
    if preview.total < 0:
        payload["warnings"].append(
            "This call would cost less than nothing: rating refuses a negative amount."
        )
    return payload


def _form_errors(form: PricingForm) -> list[dict]:
    found = []
    for field, errors in form.errors.items():
        for message in errors:
            if form.formula_error is not None and message == f"Formula: {form.formula_error}":
                found.append(_formula_error(form.formula_error, field))
            elif field == NON_FIELD_ERRORS:
                found.append({"field": None, "label": "", "message": message})
            else:
                found.append(
                    {"field": field, "label": form.fields[field].label or field, "message": message}
                )
    for number, row in enumerate(form.other_rates.forms, 1):
        for field, errors in row.errors.items():
            for message in errors:
                found.append(
                    {
                        "field": f"other-{number - 1}-{field}",
                        "label": f"Other metric {number}",
                        "message": message,
                    }
                )
    for message in form.other_rates.non_form_errors():
        found.append({"field": None, "label": "Other metrics", "message": message})
    return found


def _formula_error(error: FormulaError, field: str | None) -> dict:
    line, column = error.position or (None, None)
    return {
        "field": field if field != NON_FIELD_ERRORS else None,
        "label": "Formula",
        "message": f"Formula: {error}",
        "what": error.message,
        "line": line,
        "column": column,
        "hint": error.hint,
        "text": error.text,
    }
