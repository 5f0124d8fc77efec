"""Correct a price of a rate card from an instant in the past: prints what it changes per
customer and period; --apply corrects it and re-rates (billing.corrections)."""

import getpass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.corrections import (
    PriceCorrectionResult,
    price_correction_apply,
    price_correction_preview,
)
from contracts.selectors import rate_card_get
from pricing.cycles import span_text


class Command(BaseCommand):
    help = (
        "Correct PRICE of RATE_CARD from --from (an instant in the past) with --rate "
        "name=amount (and/or --formula), for --reason: prints the difference per customer "
        "and period; --apply makes the correction and re-rates what it reaches."
    )

    def add_arguments(self, parser):
        parser.add_argument("rate_card", help="The rate card's name.")
        parser.add_argument("price", help="The price's name, e.g. gpt-4o.")
        parser.add_argument(
            "--from", dest="effective_from", required=True, help="ISO 8601 with an offset."
        )
        parser.add_argument(
            "--rate",
            action="append",
            default=[],
            metavar="NAME=AMOUNT",
            help="A rate it sets, keeping its unit, e.g. rate_out=5.00 (repeatable).",
        )
        parser.add_argument("--formula", default="", help="A new formula for the price.")
        parser.add_argument("--reason", default="", help="Why (required, kept with it).")
        parser.add_argument(
            "--by", default="", help="Who, as recorded (default: the system user's name)."
        )
        parser.add_argument("--apply", action="store_true", help="Correct and re-rate.")

    def handle(self, *args, rate_card, price, effective_from, rate, formula, reason, by, apply,
               **options):  # fmt: skip
        card = rate_card_get(name=rate_card)
        if card is None:
            raise CommandError(f"No rate card named '{rate_card}'.")
        fields = {
            "rate_card": card,
            "price": price,
            "effective_from": _instant(effective_from),
            "rates": _rates(rate),
            "formula": formula,
            "reason": reason,
            "created_by": by or f"{getpass.getuser()} (manage.py correct_price)",
        }
        try:
            preview = price_correction_preview(**fields)
            self._diff(preview)
            if not apply:
                self.stdout.write("Nothing changed yet: run again with --apply to correct it.")
                return
            applied = price_correction_apply(**fields)
        except ValidationError as error:
            raise CommandError(_refusal(error)) from None
        assert applied.correction is not None
        numbers = ", ".join(f"v{version.number}" for version in applied.versions)
        self.stdout.write(
            self.style.SUCCESS(
                f"Corrected (correction {applied.correction.pk}, {numbers}): "
                f"{applied.events_queued:,} events of {len(applied.queued)} periods queued "
                "for re-rating; closed periods are corrected at the next closing."
            )
        )

    def _diff(self, preview: PriceCorrectionResult) -> None:
        write = self.stdout.write
        rates = ", ".join(f"{name} {_rate_text(value)}" for name, value in preview.rates.items())
        formula = f" formula {preview.formula}" if preview.formula else ""
        write(
            f"{preview.rate_card.name}: {preview.price} from "
            f"{preview.effective_from:%Y-%m-%d %H:%M} UTC: {rates}{formula}"
        )
        for version in preview.versions:
            write(
                f"New version {version.number} from {version.effective_from:%Y-%m-%d %H:%M} "
                f"UTC, a copy of version {version.copies}"
            )
        for customer in preview.customers:
            if not customer.periods:
                write(f"{customer.customer.external_id}: no usage from then on")
            for period in customer.periods:
                diff, closed = period.diff, period.closed
                state = f"closed, {closed.invoice.number}" if closed else "open"
                write(
                    f"{customer.customer.external_id}, period "
                    f"{span_text(diff.period_start, diff.period_end)} ({state}): "
                    f"{diff.events:,} events"
                )
                for line in diff.lines:
                    mark = "*" if line.changed else " "
                    write(
                        f"{mark} {line.label}: {line.old_events:,} events {line.old_amount:f}"
                        f" -> {line.new_events:,} events {line.new_amount:f}"
                        f"  [{line.old_source} -> {line.new_source}]"
                    )
                write(
                    f"Total {diff.old_total:f} -> {diff.new_total:f} {customer.customer.currency}"
                )
                if closed is not None:
                    write(f"At the next closing: {closed.sentence}")


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise CommandError("--from takes an ISO 8601 instant with a timezone.")
    return moment


def _rates(given: list[str]) -> dict[str, str]:
    rates = {}
    for item in given:
        name, sign, amount = item.partition("=")
        if not sign or not name.strip() or not amount.strip():
            raise CommandError(f"--rate takes NAME=AMOUNT, e.g. rate_out=5.00, not '{item}'.")
        rates[name.strip()] = amount.strip()
    return rates


def _rate_text(value) -> str:
    if isinstance(value, dict):
        return f"{value.get('amount')} per {value.get('per')}"
    return str(value)


def _refusal(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    names = {"effective_from": "--from", "rates": "--rate", "reason": "--reason"}
    return " ".join(
        f"{names.get(field, field)}: {message}"
        for field, messages in error.message_dict.items()
        for message in messages
    )
