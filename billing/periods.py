"""A billing period's money, from its rollups: the one reading of a period that rating's
draw-down, the usage endpoint, authorizations, invoices and re-rating all share.

A period is cut where terms change (`TermsSegment`: a segment and the terms in force
there, None where no contract is), each rated rollup gets its money (a per-event price's
own amount; a tiered line's charge shared by quantity) and the period's charges follow
from the rules of `pricing.rating`. Rollups are a few rows per price, model and feature,
so this reads a few rows whatever the number of events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, TypeAlias

from contracts.models import Contract, ContractTerms, Customer
from pricing.cycles import period_holding
from pricing.rating import PeriodCharges, Segment, charge_shares, period_charges, tiered_charges

from .models import UsageRollup
from .terms import price_terms

_ZERO = Decimal(0)
TIERED = ("graduated", "volume", "package")
#: Where a tiered rollup's quantity is priced: (segment index, version number, price pk).
_Place: TypeAlias = tuple[int, int, int]


class TermsSegment(NamedTuple):
    """A stretch of a period under one set of terms (None: under no contract)."""

    segment: Segment
    terms: ContractTerms | None


class PeriodMoney(NamedTuple):
    """A period's segments, each rated rollup's money by rollup key, and its charges."""

    segments: list[TermsSegment]
    amounts: dict[str, Decimal]
    charges: PeriodCharges


def period_of(*, customer: Customer, at: datetime) -> tuple[datetime, datetime]:
    """The billing period holding `at`: a contract's, or outside them the calendar month
    (pricing.cycles.period_holding, the rule rating uses)."""
    return period_holding(Contract.objects.filter(customer=customer), at)


def period_rollups(*, customer_id: int, start: datetime) -> list[UsageRollup]:
    """The period's rollups that hold events, with what `period_money` reads of them."""
    return list(
        UsageRollup.objects.filter(
            customer_id=customer_id, period_start=start, event_count__gt=0
        ).select_related("price__version__rate_card", "terms", "customer")
    )


def period_money(
    *, customer: Customer, start: datetime, end: datetime, rollups: list[UsageRollup]
) -> PeriodMoney:
    """The period's terms segments, each rated rollup's money by key (tiered lines
    allocated) and the period's charges, for these rollups (stored or hypothetical)."""
    segments = _segments(customer, start, end)
    index_of_terms = {terms.pk: index for index, (_, terms) in enumerate(segments) if terms}
    amounts = _amounts(rollups, index_of_terms)
    usage_by_segment = [_ZERO] * len(segments)
    for rollup in rollups:
        if rollup.status == UsageRollup.Status.RATED:
            assert rollup.terms_id is not None  # a rated rollup has its terms
            usage_by_segment[index_of_terms[rollup.terms_id]] += amounts[rollup.key]
    charges = period_charges(
        period_start=start,
        period_end=end,
        segments=[piece.segment for piece in segments],
        usage_by_segment=usage_by_segment,
    )
    return PeriodMoney(segments, amounts, charges)


def _segments(customer: Customer, start: datetime, end: datetime) -> list[TermsSegment]:
    """The period cut where terms change, each piece with its terms (None: no contract)."""
    terms_rows = list(
        ContractTerms.objects.filter(contract__customer=customer, effective_from__lt=end)
        .select_related("contract")
        .order_by("effective_from")
    )
    spans, cursor = [], start
    for number, terms in enumerate(terms_rows):
        following = terms_rows[number + 1].effective_from if number + 1 < len(terms_rows) else end
        stops = [following, end] + ([terms.contract.ends_at] if terms.contract.ends_at else [])
        piece_start, piece_end = max(terms.effective_from, start), min(stops)
        if piece_start >= piece_end:
            continue
        if piece_start > cursor:
            spans.append(TermsSegment(Segment(start=cursor, end=piece_start), None))
        segment = Segment(
            start=piece_start,
            end=piece_end,
            fixed_fee=terms.fixed_fee,
            included_allowance=terms.included_allowance,
            discount=terms.discount,
            minimum_commitment=terms.minimum_commitment,
        )
        spans.append(TermsSegment(segment, terms))
        cursor = piece_end
    if cursor < end:
        spans.append(TermsSegment(Segment(start=cursor, end=end), None))
    return spans


def _amounts(rollups: list[UsageRollup], index_of_terms: dict[int, int]) -> dict[str, Decimal]:
    """Each rated rollup's money, by key: its own amount for per-event prices; for tiered
    prices, its share of its line's charge in its segment, by quantity
    (`pricing.rating.charge_shares`)."""
    amounts: dict[str, Decimal] = {}
    lines: dict[str, dict[_Place, list[UsageRollup]]] = defaultdict(lambda: defaultdict(list))
    for rollup in rollups:
        if rollup.status != UsageRollup.Status.RATED:
            continue
        assert rollup.price is not None and rollup.terms_id is not None  # rated: both set
        if rollup.price.kind in TIERED:
            place = (index_of_terms[rollup.terms_id], rollup.price.version.number, rollup.price.pk)
            lines[rollup.line][place].append(rollup)
        else:
            amounts[rollup.key] = rollup.amount
    for places in lines.values():
        ordered = sorted(places)
        pieces = []
        for place in ordered:
            first = places[place][0]
            assert first.price is not None and first.terms is not None  # rated: both set
            quantity = sum((rollup.quantity for rollup in places[place]), _ZERO)
            pieces.append((quantity, price_terms(first.price, first.terms.price_overrides)))
        for place, charge in zip(ordered, tiered_charges(pieces), strict=True):
            members = places[place]
            shares = charge_shares(charge, [rollup.quantity for rollup in members])
            amounts.update(zip((rollup.key for rollup in members), shares, strict=True))
    return amounts
