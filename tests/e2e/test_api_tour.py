"""The README's API tour (scripts/api_tour.py) against a live tokentill: billing set up
from nothing through the operator API alone, down to a signed `invoice.finalized` at a
webhook receiver. Figures by hand."""

import importlib.util
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from wallets.models import CreditGrant

TOUR = Path(__file__).resolve().parents[2] / "scripts" / "api_tour.py"


def tour_module():
    spec = importlib.util.spec_from_file_location("api_tour", TOUR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db(transaction=True)
def test_the_api_tour_bills_a_month_and_is_told_so_by_a_signed_webhook(live_server, operator_key):
    if datetime.now(UTC).day == 1:
        pytest.skip("last month's period closes a day after it ends: the tour needs the 2nd on")

    result = tour_module().main(["--url", live_server.url, "--key", operator_key, "--wait", "30"])

    # 4 calls of 100,000 input at 2.50 and 50,000 output at 10.00 per 1M: 4 x 0.75 = 3.00;
    # 250,000 embedding tokens are 250 units: 100 x 0.02 + 150 x 0.01 = 3.50; a fee of
    # 10.00; the 5.00 of credits (granted once) pay 5.00 of the 6.50 of usage.
    lines = [(line["kind"], line["amount"]) for line in result["invoice"]["lines"]]
    assert lines == [
        ("fixed_fee", "10.00"),
        ("usage", "3.50"),  # embeddings
        ("usage", "3.00"),  # gpt-4o
        ("credits", "-5.00"),
    ]
    assert result["invoice"]["total"] == "11.50"
    assert (result["grants"], result["replayed"]) == (1, True)
    assert CreditGrant.objects.get().amount == Decimal("5.00")
    assert result["event"]["type"] == "invoice.finalized"
    assert result["event"]["data"]["total"] == "11.50"
    assert result["signature_valid"] is True
