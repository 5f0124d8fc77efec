"""Migration billing/0012 keeps what a closed period billed as its invoice's lines said it:
a period never corrected takes its own lines and its credits line; one corrected since
takes its exact figures rounded half up. Figures by hand: three calls of 0.005 (0.01 each
on the face) paid by 1.00 of prepaid credits."""

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps

from billing.models import BillingPeriod

from .invoice_support import Clock, clock_set
from .test_invoice_face import close_november

D = Decimal
billed_as_lines = importlib.import_module("billing.migrations.0012_credits_settled").billed_as_lines


@pytest.fixture
def clock(now, monkeypatch) -> Clock:
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


def as_before_the_migration(period: BillingPeriod, **changes) -> None:
    """The period's billed figures as they were kept before: its exact money."""
    BillingPeriod.objects.filter(pk=period.pk).update(
        billed_total=D("0.015"), billed_credits=D("0.015"), **changes
    )


def test_a_period_never_corrected_takes_its_invoice_lines(clock, acme, three_models):
    invoice = close_november(clock, acme, three_models, credits="1.00")
    period = BillingPeriod.objects.get()
    as_before_the_migration(period)

    billed_as_lines(apps, None)

    # Lines 0.01 + 0.01 + 0.01 = 0.03, and the credits line -0.03: not the exact 0.015.
    period.refresh_from_db()
    assert (period.billed_total, period.billed_credits) == (D("0.03"), D("0.03"))
    assert invoice.total == D("0.00")


def test_a_period_corrected_since_takes_its_exact_figures_rounded_half_up(
    clock, acme, three_models
):
    close_november(clock, acme, three_models, credits="1.00")
    period = BillingPeriod.objects.get()
    as_before_the_migration(period, billed_until=period.closed_at + timedelta(days=3))

    billed_as_lines(apps, None)

    # 0.015 rounded half up is 0.02, for both.
    period.refresh_from_db()
    assert (period.billed_total, period.billed_credits) == (D("0.02"), D("0.02"))
