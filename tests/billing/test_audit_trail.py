"""Each kind of change billing ops make over the API is in the audit trail, with the
operator key as who and the object after (and before, for a change): contracts and
amendments, ends, alert settings, re-rating, credit notes and voids. The trail's own
rules (who, refusals, the API) are tests/common/test_audit.py's."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import Invoice
from common.models import AuditEntry
from contracts.models import ApiKey

from . import test_invoices as scenario

clock = scenario.clock
amended = scenario.amended


def actions(customer: str = "acme") -> list[str]:
    return list(AuditEntry.objects.filter(customer=customer).values_list("action", flat=True))


@pytest.fixture
def operator(operator_key) -> str:
    return f"key:test operator ({ApiKey.objects.get(name='test operator').prefix})"


def test_a_contract_its_amendment_and_its_end(api, acme, rate_card, operator):
    url = "/api/v1/customers/acme/contracts"
    made = api.post(
        url, {"starts_at": "2026-11-01T00:00:00Z", "rate_card": "Standard", "fixed_fee": "30"},
        format="json",
    ).json()  # fmt: skip
    api.post(
        f"{url}/{made['id']}/amendments",
        {"effective_from": "2026-11-16T00:00:00Z", "fixed_fee": "60"},
        format="json",
    )
    api.post(f"{url}/{made['id']}/end", {"ends_at": "2027-01-01T00:00:00Z"}, format="json")

    assert actions() == ["contract.create", "contract.amend", "contract.end"]
    create, amend, end = AuditEntry.objects.order_by("id")
    assert {create.actor, amend.actor, end.actor} == {operator}
    assert (create.after["terms.fixed_fee"], create.after["starts_at"]) == (
        "30",
        "2026-11-01T00:00:00+00:00",
    )
    assert (Decimal(amend.before["fixed_fee"]), amend.after["fixed_fee"]) == (Decimal(30), "60")
    assert (end.before["ends_at"], end.after["ends_at"]) == (None, "2027-01-01T00:00:00+00:00")


def test_alert_settings(api, acme):
    api.put(
        "/api/v1/customers/acme/alert-settings",
        {"balance_below": "5", "emails": "ops@acme.example"},
        format="json",
    )

    entry = AuditEntry.objects.get()
    assert entry.action == "alert_settings.change"
    assert (entry.before["balance_below"], entry.after["balance_below"]) == (None, "5")


def test_a_re_rating_applied(api, clock, amended):
    scenario.november_usage(clock)
    api.post(
        "/api/v1/customers/acme/usage/rerate", {"at": "2026-11-10T00:00:00Z", "apply": True},
        format="json",
    )  # fmt: skip

    entry = AuditEntry.objects.get(action="period.rerate")
    assert entry.after["period_start"] == "2026-11-01T00:00:00+00:00"
    assert entry.after["events"] == 3


def test_a_credit_note_and_a_void_with_their_memo_as_why(api, clock, amended):
    scenario.november_usage(clock)
    clock.now = scenario.DECEMBER + timedelta(hours=25)
    api.post("/api/v1/periods/close", {}, format="json")
    invoice = Invoice.objects.get()
    url = f"/api/v1/customers/acme/invoices/{invoice.number}/credit-notes"

    api.post(url, {"reason": "goodwill", "amount": "2.50", "memo": "Outage",
                   "destination": "none"}, format="json")  # fmt: skip
    api.post(url, {"reason": "void", "memo": "Billed twice", "destination": "none"},
             format="json")  # fmt: skip

    notes = AuditEntry.objects.filter(action__in=["credit_note.create", "invoice.void"])
    assert list(notes.order_by("id").values_list("action", "reason")) == [
        ("credit_note.create", "Outage"),
        ("invoice.void", "Billed twice"),
    ]
    assert actions()[:1] == ["billing_period.close"]
    assert datetime.fromisoformat(notes.first().after["created_at"]) == clock.now.astimezone(UTC)
