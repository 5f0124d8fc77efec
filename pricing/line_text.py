"""What an invoice line says to the customer (pure: no Django).

A line is written in the customer's words: what it bills and the days it covers, never
the rate card, its version, its markup or the contract terms' number (ops see those
beside the line, from its price and terms). Dates are the first and last day included
(`cycles.span_text`), on every line the same way.

A usage line also lists what it billed per metric (`usage_details`): the tokens, and the
rate of each where one rate per metric holds, so the customer can check quantity times rate.
docs/guide/invoices.md, "What each line says".
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypedDict

from .cycles import span_text
from .money import money_label, plain

#: The metrics a usage line counts (its rollups' sums), in the order a line lists them,
#: each with its name in plain words.
METRIC_LABELS = {
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cached_input_tokens": "Cached input tokens",
    "cache_creation_input_tokens": "Cache write tokens",
    "reasoning_tokens": "Reasoning tokens",
}
_CYCLE_FEES = {"monthly": "Monthly fee", "quarterly": "Quarterly fee", "yearly": "Yearly fee"}
_UNITS = {1: "token", 1_000: "1K tokens", 1_000_000: "1M tokens"}


class LineDetail(TypedDict):
    """One metric a usage line billed: `quantity` as plain digits, `rate` as a plain
    decimal (at least the currency's minor places) `per` so many units, both None where
    no single rate holds."""

    metric: str
    label: str
    quantity: str
    rate: str | None
    per: str | None


# --- usage ------------------------------------------------------------------------------


def usage_text(name: str, span: tuple[datetime, datetime] | None = None) -> str:
    """A usage line: the price's display name, and its days when the period has another
    line of the same name."""
    return name if span is None else f"{name}, {span_text(*span)}"


def usage_details(
    *,
    formula: str,
    names: Iterable[str],
    per_event: bool,
    rates: Mapping[str, Mapping[str, object]],
    quantities: Mapping[str, int],
    minor_places: int,
) -> list[LineDetail]:
    """What a usage line billed, per metric: each metric of `METRIC_LABELS` that the
    price's formula uses (`names`: every name it uses) and that is not zero.

    A metric's rate is given when the price is charged per event by a plain sum of
    metric-times-rate terms over those metrics alone (`single_rates`): then the line's money
    is the sum of quantity times rate. Otherwise (tiers, packages, conditions, rounding,
    metrics the line does not count) every rate is None."""
    used = set(names)
    single = single_rates(formula, rates) if per_event else None
    details: list[LineDetail] = []
    for metric, label in METRIC_LABELS.items():
        quantity = quantities.get(metric, 0)
        if metric not in used or not quantity:
            continue
        rate, per = None, None
        if single is not None:
            spec = rates[single[metric]]
            rate = plain(Decimal(str(spec["amount"])), minor_places)
            per = per_text(int(str(spec["per"])))
        details.append(
            LineDetail(metric=metric, label=label, quantity=str(quantity), rate=rate, per=per)
        )
    return details


def per_text(per: int) -> str:
    """A rate's unit as a price list reads it: 1M tokens, 1K tokens, token."""
    return _UNITS.get(per, f"{per:,} tokens")


def single_rates(formula: str, rates: Mapping[str, object]) -> dict[str, str] | None:
    """metric -> the rate that charges it, when `formula` is a plain sum of terms each a
    metric (or a sum of metrics in brackets) times a rate, every metric one a usage line
    counts (`METRIC_LABELS`) and in one term only: `input_tokens * rate_in +
    (output_tokens + reasoning_tokens) * rate_out`. None for any other formula, which has
    no single rate per metric (a condition, a rounding, a factor, a subtraction)."""
    try:
        tree = ast.parse(f"(\n{formula}\n)", mode="eval").body
    except SyntaxError:  # if(...), which the formula language reads itself
        return None
    found: dict[str, str] = {}
    for term in _addends(tree):
        charged = _term(term, rates)
        if charged is None:
            return None
        metrics, rate = charged
        for metric in metrics:
            if metric in found:
                return None
            found[metric] = rate
    return found or None


def _addends(node: ast.expr) -> list[ast.expr]:
    """The terms of a sum (`a + b + c`); a subtraction is one term, refused by `_term`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [*_addends(node.left), *_addends(node.right)]
    return [node]


def _term(node: ast.expr, rates: Mapping[str, object]) -> tuple[list[str], str] | None:
    """(metrics, rate) of `metrics * rate` or `rate * metrics`; None for anything else."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return None
    for metrics, rate in ((node.left, node.right), (node.right, node.left)):
        if isinstance(rate, ast.Name) and rate.id in rates:
            summed = _metric_sum(metrics)
            if summed is not None:
                return summed, rate.id
    return None


def _metric_sum(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id] if node.id in METRIC_LABELS else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _metric_sum(node.left), _metric_sum(node.right)
        return None if left is None or right is None else [*left, *right]
    return None


def in_force_span(
    versions: Iterable[tuple[int, datetime]], number: int
) -> tuple[datetime, datetime | None] | None:
    """When the version numbered `number` of a rate card, given every version as (number,
    effective_from), prices usage: from its start until a higher-numbered version starts
    (None: still); None when a higher-numbered version started first (a correction hides
    it, or `number` is not among them). The version in force at an instant is the
    highest-numbered one started by then."""
    versions = list(versions)
    starts = [effective_from for found, effective_from in versions if found == number]
    if not starts:
        return None
    start = starts[0]
    later = [effective_from for found, effective_from in versions if found > number]
    end = min(later, default=None)
    if end is not None and end <= start:
        return None
    return start, end


# --- the other lines --------------------------------------------------------------------


def fee_text(cycle: str, start: datetime, end: datetime) -> str:
    """A fixed fee for the days [start, end) of a period of the contract's `cycle`."""
    return f"{_CYCLE_FEES.get(cycle, 'Fixed fee')}, {span_text(start, end)}"


def discount_text(percent: Decimal, start: datetime, end: datetime) -> str:
    return f"Discount {plain(percent)} % on usage, {span_text(start, end)}"


def allowance_text(
    used: Decimal, included: Decimal, currency: str, start: datetime, end: datetime
) -> str:
    """The included allowance used, of the period's allowance (prorated as it is)."""
    amounts = f"{money_label(used, currency)} of {money_label(included, currency)}"
    return f"Included usage allowance: {amounts} used, {span_text(start, end)}"


def minimum_text(minimum: Decimal, currency: str, start: datetime, end: datetime) -> str:
    return (
        f"Top-up to the minimum commitment of {money_label(minimum, currency)}, "
        f"{span_text(start, end)}"
    )


def credits_text(applied: Decimal, start: datetime, end: datetime) -> str:
    """Prepaid credits applied to a period's usage (or, below zero, given back for it)."""
    what = "applied" if applied > 0 else "returned to your wallet"
    return f"Prepaid credits {what}, {span_text(start, end)}"


def correction_text(
    *,
    invoice: str,
    start: datetime,
    end: datetime,
    events: int,
    terms_changed: bool,
    charges_changed: bool,
) -> str:
    """A correction of the period [start, end) billed on `invoice`: what changed since, in
    words: calls received late (or no longer billed), the contract's terms, usage priced
    again, or only the prepaid credits that paid it."""
    reasons = []
    if events:
        calls = f"{abs(events):,} call{'' if abs(events) == 1 else 's'}"
        reasons.append(f"{calls} received late" if events > 0 else f"{calls} no longer billed")
    if terms_changed:
        reasons.append("contract terms changed")
    if not reasons:
        reasons.append("usage repriced" if charges_changed else "prepaid credits adjusted")
    return f"Correction of invoice {invoice}, {span_text(start, end)}: {', '.join(reasons)}"


def correction_beyond_text(correction: str, invoice: str) -> str:
    """The part of a correction owed back that `invoice` has nothing left to credit for."""
    return f"{correction}, beyond what is left to credit on {invoice}"


def usage_span(
    segment: tuple[datetime, datetime],
    in_force: tuple[datetime, datetime | None] | None,
    events: tuple[datetime | None, datetime | None],
) -> tuple[datetime, datetime]:
    """The days [start, end) a usage line covers, to tell it from another of the same
    name: the part of its terms' `segment` in which its price's version priced usage
    (`in_force_span`); where that version prices none of it (a correction superseded it
    before its usage was rated again), its events' first and last days."""
    start, end = segment
    if in_force is not None:
        since, until = (
            max(start, in_force[0]),
            end if in_force[1] is None else min(end, in_force[1]),
        )
        if since < until:
            return since, until
    first, last = events
    if first is not None and last is not None:
        return max(first, start), min(last + timedelta(microseconds=1), end)
    return segment
