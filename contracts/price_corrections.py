"""Price corrections: a price of a rate card corrected from an instant in the past, with
who did it and why (`PriceCorrection`), as new versions that supersede from then on.

Re-rating what a correction reaches, and the diff shown before it is applied, are
billing's (`billing.corrections`).
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from common.audit import audit_record

from .models import PriceCorrection, RateCard, RateCardVersion
from .rate_cards import prices_copy, rate_card_lock, rates_merged
from .validation import Errors, instant_errors, when


def price_correction_create(
    *,
    rate_card: RateCard,
    price: str,
    effective_from: datetime,
    rates: Mapping[str, Any] | None = None,
    formula: str = "",
    reason: str,
    created_by: str,
) -> PriceCorrection:
    """Correct the price named `price` from `effective_from`, an instant in the past, on:
    recorded with who (`created_by`) and why (`reason`), both required.

    `rates` are the rates it sets: an amount as text keeps the rate's unit
    (`{"rate_out": "5.00"}`), `{"amount": "5.00", "per": 1000000}` sets both (and may add
    a rate that `formula` uses); `formula`, when given, replaces the price's formula.

    The correction supersedes from the instant on and changes nothing else: for each
    version in force from then on (the one in force at the instant, then each that starts
    later, scheduled ones included), a new version is made, a copy of it with the price
    corrected, starting where it does (the first at the instant). Every other price, and
    this one's rates that are not given, stay what they were at every instant. Usage
    already rated keeps its money until it is re-rated (billing's price correction
    re-rates it).

    Refused with nothing stored: no reason; an instant without its offset, in the future
    or before the card's first version; a price the version in force at the instant does
    not have; no rates and no formula; an amount that is not text; a rate the price does
    not have without its unit; a price that would not validate; a correction that changes
    nothing.
    """
    errors: Errors = instant_errors(effective_from=effective_from, required=("effective_from",))
    if not reason.strip():
        errors["reason"] = "Say why the price is corrected: the reason is kept with it."
    if not created_by.strip():
        errors["created_by"] = "Say who corrects the price."
    given = {name: _rate_given(value) for name, value in (rates or {}).items()}
    if not given and not formula.strip():
        errors["rates"] = "Give the rates to correct (or a formula)."
    for name, value in given.items():
        if value is None:
            errors["rates"] = (
                f"'{name}': write the amount as text, e.g. \"5.00\" (money is never a float)."
            )
    if "effective_from" not in errors and effective_from > timezone.now():
        errors["effective_from"] = (
            "A correction starts in the past: to change prices from a later instant, "
            "schedule a new version."
        )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        rate_card_lock(rate_card)
        versions = list(rate_card.versions.order_by("number"))
        first = min(versions, key=lambda version: version.effective_from)
        if effective_from < first.effective_from:
            raise ValidationError(
                {
                    "effective_from": (
                        f"{rate_card.name} has no prices before {when(first.effective_from)} "
                        f"({first}): a correction starts then or later."
                    )
                }
            )
        segments = _versions_in_force_from(versions, effective_from)
        in_force = segments[0][1]
        names = list(in_force.prices.values_list("name", flat=True))
        if price not in names:
            has = f"its prices: {', '.join(names)}" if names else "it has no prices"
            raise ValidationError(
                {
                    "price": (
                        f"{in_force} (in force at {when(effective_from)}) has no price "
                        f"named '{price}' ({has})."
                    )
                }
            )
        correction = PriceCorrection(
            rate_card=rate_card,
            price_name=price,
            effective_from=effective_from,
            rates=given,
            formula=formula.strip(),
            reason=reason.strip(),
            created_by=created_by.strip()[:150],
        )
        correction.save()
        note = f"Correction of {price} from {when(effective_from)}: {correction.reason}"
        number, changed = versions[-1].number, False
        for start, source in segments:
            number += 1
            version = RateCardVersion.objects.create(
                rate_card=rate_card,
                number=number,
                effective_from=start,
                note=note[:200],
                correction=correction,
            )
            prices_copy(source=source, target=version)
            row = version.prices.filter(name=price).first()
            if row is None:  # a later version without the price: copied as it is
                continue
            where = f"{price} of {source}: " if len(segments) > 1 else ""
            corrected = rates_merged(row.rates, given, where=where)
            new_formula = correction.formula or row.formula
            changed = changed or (corrected, new_formula) != (row.rates, row.formula)
            row.rates, row.formula = corrected, new_formula
            try:
                row.full_clean()
            except ValidationError as error:
                raise ValidationError(
                    {
                        field: [f"{where}{message}" for message in messages]
                        for field, messages in error.message_dict.items()
                    }
                ) from None
            row.save(update_fields=["rates", "formula"])
        if not changed:
            raise ValidationError(
                {
                    "rates": (
                        f"This changes nothing: {price} already has these rates and formula "
                        f"from {when(effective_from)} on."
                    )
                }
            )
        audit_record("price_correction.create", correction, reason=correction.reason)
    return correction


def _versions_in_force_from(
    versions: list[RateCardVersion], at: datetime
) -> list[tuple[datetime, RateCardVersion]]:
    """The versions in force from `at` on, each with the instant it takes over from: the one
    in force at `at` (the highest-numbered started by then), then each that takes over
    later. The version in force changes only where a version starts."""

    def in_force(moment: datetime) -> RateCardVersion:
        started = [version for version in versions if version.effective_from <= moment]
        return max(started, key=lambda version: version.number)

    instants = [at, *sorted({v.effective_from for v in versions if v.effective_from > at})]
    segments: list[tuple[datetime, RateCardVersion]] = []
    for moment in instants:
        version = in_force(moment)
        if not segments or segments[-1][1].pk != version.pk:
            segments.append((moment, version))
    return segments


def _rate_given(value: object) -> str | dict[str, Any] | None:
    """A corrected rate as given: an amount (text, a Decimal or a whole number) as text, or
    {"amount", "per"} as it is (the price's check reads it); None for anything else (a
    float: money is never a float)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, str) or type(value) is int:
        return str(value)
    return None
