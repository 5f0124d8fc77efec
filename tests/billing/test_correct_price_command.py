"""manage.py correct_price: the diff per customer and period, then with --apply the
correction and its re-rating; a refusal stores nothing. The scenario: correction_support."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from contracts.models import PriceCorrection

from .conftest import rate
from .correction_support import REASON, clock_set, stored, two_customers

ARGS = ["Standard", "gpt-4o", "--from", "2026-11-27T00:00:00Z", "--rate", "rate_out=5.00"]


@pytest.fixture
def clock(now, monkeypatch):
    return clock_set(monkeypatch)


@pytest.fixture
def globex(clock, acme, rate_card):
    return two_customers(clock, acme, rate_card)


DIFF = [
    "Standard: gpt-4o from 2026-11-27 00:00 UTC: rate_out 5.00",
    "New version 2 from 2026-11-27 00:00 UTC, a copy of version 1",
    "acme, period 2026-11-01 to 2026-11-30 (closed, INV-000001): 3 events",
    "* gpt-4o · gpt-4o: 3 events 30.000000000000 -> 3 events 20.000000000000"
    "  [Standard v1, terms 1 -> Standard v1, terms 1; Standard v2, terms 1]",
    "Total 60.000000000000 -> 50.000000000000 USD",
    "At the next closing: a credit note of 10.00 USD on INV-000001 (recorded on the "
    "invoice, lowering what is due).",
    "acme, period 2026-12-01 to 2026-12-31 (open): 1 events",
    "* gpt-4o · gpt-4o: 1 events 10.000000000000 -> 1 events 5.000000000000"
    "  [Standard v1, terms 1 -> Standard v2, terms 1]",
    "Total 40.000000000000 -> 35.000000000000 USD",
    "globex, period 2026-12-01 to 2026-12-31 (open): 1 events",
    "* gpt-4o · gpt-4o: 1 events 20.000000000000 -> 1 events 10.000000000000"
    "  [Standard v1, terms 1 -> Standard v2, terms 1]",
    "Total 20.000000000000 -> 10.000000000000 USD",
]


def test_the_command_prints_the_diff_and_stores_nothing(globex, capsys):
    before = stored()

    call_command("correct_price", *ARGS, "--reason", REASON)

    assert capsys.readouterr().out.splitlines() == [
        *DIFF,
        "Nothing changed yet: run again with --apply to correct it.",
    ]
    assert stored() == before


def test_with_apply_it_corrects_and_re_rates(globex, capsys):
    call_command("correct_price", *ARGS, "--reason", REASON, "--by", "ann", "--apply")

    record = PriceCorrection.objects.get()
    assert capsys.readouterr().out.splitlines() == [
        *DIFF,
        f"Corrected (correction {record.pk}, v2): 5 events of 3 periods queued for "
        "re-rating; closed periods are corrected at the next closing.",
    ]
    assert (record.created_by, record.reason) == ("ann", REASON)
    assert rate() == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*ARGS], "--reason: Say why the price is corrected: the reason is kept with it."),
        (
            ["Standard", "gpt-5", "--from", "2026-11-27T00:00:00Z", "--rate", "rate_out=5",
             "--reason", "x"],
            "price: Standard v1 (in force at 2026-11-27 00:00 UTC) has no price named "
            "'gpt-5' (its prices: gpt-4o).",
        ),
        ([*ARGS[:3], "2026-11-27", *ARGS[4:], "--reason", "x"],
         "--from takes an ISO 8601 instant with a timezone."),
        ([*ARGS[:5], "rate_out", "--reason", "x"],
         "--rate takes NAME=AMOUNT, e.g. rate_out=5.00, not 'rate_out'."),
        (["Gold", *ARGS[1:], "--reason", "x"], "No rate card named 'Gold'."),
    ],
)  # fmt: skip
def test_a_refusal_says_why_and_stores_nothing(globex, args, message):
    before = stored()

    with pytest.raises(CommandError) as refused:
        call_command("correct_price", *args, "--apply")

    assert str(refused.value) == message
    assert stored() == before
