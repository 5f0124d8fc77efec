"""Stripe's webhooks: verified, stored once, applied in any order; reprocessed from the admin;
a paid top-up grants its credits once."""

import copy
import time
from datetime import UTC, datetime

import pytest
import stripe
from django.urls import reverse

from billing.models import Invoice, StripeEvent, TopUpInvoice
from billing.stripe.push import invoice_push, stripe_push_pending
from wallets.models import CreditGrant, TopUpRequest, Wallet

from .invoice_support import clock_set
from .stripe_support import (
    SECRET,
    D,
    deliver,
    november_closed,
    recorded,
    stripe_on,
    topup_requested,
)


@pytest.fixture
def clock(now, monkeypatch):
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


@pytest.fixture
def fake(settings, stripe_fake):
    return stripe_on(settings, stripe_fake)


@pytest.fixture
def pushed(fake, clock, acme, rate_card) -> Invoice:
    """acme's November invoice (59.03), pushed: open in Stripe."""
    return invoice_push(invoice=november_closed(clock, acme, rate_card))


def state(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return (
        invoice.status,
        invoice.paid_at,
        invoice.voided_at,
        invoice.stripe_status,
        invoice.stripe_error,
        invoice.stripe_event_at,
    )


def stored() -> list[tuple]:
    return list(
        StripeEvent.objects.order_by("pk").values_list("stripe_id", "type", "processed_at", "error")
    )


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_invoice_paid_marks_the_invoice_paid(client, fake, pushed, stripe_client):
    paid = stripe_client.v1.invoices.pay(pushed.stripe_id)
    event = recorded(fake, "invoice.paid")

    response = deliver(client, fake, event)

    assert response.status_code == 200
    assert response.json() == {"id": event["id"], "duplicate": False, "applied": True}
    paid_at = at(paid.status_transitions.paid_at)
    assert state(pushed) == ("paid", paid_at, None, "paid", "", at(event["created"]))
    (row,) = StripeEvent.objects.all()
    assert (row.stripe_id, row.type, row.payload, row.error) == (
        event["id"], "invoice.paid", event, "",
    )  # fmt: skip
    assert row.created == at(event["created"])
    assert row.processed_at is not None


def test_a_repeated_delivery_changes_nothing(client, fake, pushed, stripe_client):
    stripe_client.v1.invoices.pay(pushed.stripe_id)
    event = recorded(fake, "invoice.paid")
    deliver(client, fake, event)
    before, events = state(pushed), stored()

    again = deliver(client, fake, event)

    assert again.status_code == 200
    assert again.json() == {"id": event["id"], "duplicate": True, "applied": None}
    assert (state(pushed), stored()) == (before, events)


def test_events_out_of_order_end_in_the_latest_state(client, fake, pushed, stripe_client):
    # Stripe: finalized (at the push), a declined card, then paid
    fake.inject("card_declined", "POST", f"/v1/invoices/{pushed.stripe_id}/pay")
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(pushed.stripe_id)
    stripe_client.v1.invoices.pay(pushed.stripe_id)
    finalized, failed, paid = (
        recorded(fake, kind)
        for kind in ("invoice.finalized", "invoice.payment_failed", "invoice.paid")
    )

    # delivered newest first
    for event in (paid, failed, finalized):
        assert deliver(client, fake, event).status_code == 200

    paid_at = at(paid["data"]["object"]["status_transitions"]["paid_at"])
    assert state(pushed) == ("paid", paid_at, None, "paid", "", at(paid["created"]))
    assert [(kind, error) for _, kind, _, error in stored()] == [
        ("invoice.paid", ""), ("invoice.payment_failed", ""), ("invoice.finalized", ""),
    ]  # fmt: skip


def test_a_failed_payment_is_noted_until_the_invoice_is_paid(client, fake, pushed, stripe_client):
    fake.inject("card_declined", "POST", f"/v1/invoices/{pushed.stripe_id}/pay")
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(pushed.stripe_id)

    deliver(client, fake, recorded(fake, "invoice.payment_failed"))
    failed = state(pushed)
    stripe_client.v1.invoices.pay(pushed.stripe_id)
    deliver(client, fake, recorded(fake, "invoice.paid"))

    assert failed[0] == "finalized"
    assert failed[3:5] == (
        "open",
        "Payment failed (attempt 1); Stripe tries again on its own schedule.",
    )
    assert state(pushed)[3:5] == ("paid", "")


def test_voided_and_uncollectible_invoices_follow_stripe(client, fake, pushed, stripe_client):
    stripe_client.v1.invoices.mark_uncollectible(pushed.stripe_id)
    deliver(client, fake, recorded(fake, "invoice.marked_uncollectible"))
    uncollectible = state(pushed)
    voided = stripe_client.v1.invoices.void_invoice(pushed.stripe_id)
    deliver(client, fake, recorded(fake, "invoice.voided"))

    assert (uncollectible[0], uncollectible[3]) == ("uncollectible", "uncollectible")
    assert state(pushed)[:4] == (
        "void", None, at(voided.status_transitions.voided_at), "void",
    )  # fmt: skip


def test_a_stripe_status_our_invoice_cannot_follow_is_noted(client, fake, pushed, stripe_client):
    Invoice.objects.filter(pk=pushed.pk).update(status=Invoice.Status.VOID)
    stripe_client.v1.invoices.pay(pushed.stripe_id)

    deliver(client, fake, recorded(fake, "invoice.paid"))

    status, paid_at, _, stripe_status, stripe_error, _ = state(pushed)
    assert (status, paid_at, stripe_status) == ("void", None, "paid")
    assert stripe_error == "Stripe has it paid; here it is void."


# --- refused deliveries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p, h: (p.replace(b'"open"', b'"paid"'), h), id="tampered payload"),
        pytest.param(lambda p, h: (p, {"Stripe-Signature": "t=1,v1=00"}), id="bad signature"),
        pytest.param(lambda p, h: (p, {}), id="no signature"),
    ],
)
def test_a_delivery_stripe_did_not_sign_is_refused_and_nothing_stored(client, fake, pushed, spoil):
    payload, headers = spoil(*fake.sign(recorded(fake, "invoice.finalized"), SECRET))
    before = state(pushed)

    response = client.post(
        "/stripe/webhook", payload, content_type="application/json", headers=headers
    )

    assert response.status_code == 400
    assert (stored(), state(pushed)) == ([], before)


def test_a_delivery_signed_more_than_5_minutes_ago_is_refused(client, fake, pushed, stripe_client):
    stripe_client.v1.invoices.pay(pushed.stripe_id)
    before = state(pushed)
    old = int(time.time()) - 301

    response = deliver(client, fake, recorded(fake, "invoice.paid"), timestamp=old)

    assert response.status_code == 400
    assert b"outside the tolerance zone" in response.content
    assert (stored(), state(pushed)) == ([], before)


def test_without_a_webhook_secret_every_delivery_is_refused(client, fake, pushed, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver(client, fake, recorded(fake, "invoice.finalized"))

    assert (response.status_code, response.content) == (
        400, b"Stripe webhooks are off: STRIPE_WEBHOOK_SECRET is not set.",
    )  # fmt: skip
    assert stored() == []


def test_only_post_is_answered(client):
    assert client.get("/stripe/webhook").status_code == 405


# --- stored, applied later ------------------------------------------------------------------


def test_an_event_about_an_invoice_not_known_yet_is_kept_and_reprocessed_from_the_admin(
    client, admin_client, fake, clock, acme, rate_card, stripe_client
):
    invoice = november_closed(clock, acme, rate_card)
    fake.inject("timeout_after_accept", "POST", "/v1/invoices")
    invoice_push(invoice=invoice)  # Stripe made the invoice; we never heard its id
    (stripe_id,) = fake.invoices
    early = copy.deepcopy(fake.invoices[stripe_id])
    early.update(status="paid")
    early["status_transitions"]["paid_at"] = int(time.time())
    event = fake.event("invoice.paid", early)

    response = deliver(client, fake, event)

    assert response.json() == {"id": event["id"], "duplicate": False, "applied": False}
    error = f"No invoice here has the Stripe invoice {stripe_id} (yet)."
    assert stored() == [(event["id"], "invoice.paid", None, error)]
    assert state(invoice)[:4] == ("finalized", None, None, "")

    invoice_push(invoice=invoice)  # the next push learns the id
    url = reverse("admin:billing_stripeevent_changelist")
    page = admin_client.post(
        url, {"action": "reprocess_selected", "_selected_action": [StripeEvent.objects.get().pk]}
    )

    assert page.status_code == 302
    assert StripeEvent.objects.get().error == ""
    assert StripeEvent.objects.get().processed_at is not None
    paid_at = at(early["status_transitions"]["paid_at"])
    assert state(invoice)[:5] == ("paid", paid_at, None, "paid", "")


def test_the_admin_lists_events_read_only_with_their_filters(admin_client, fake, pushed, client):
    deliver(client, fake, recorded(fake, "invoice.finalized"))
    url = reverse("admin:billing_stripeevent_changelist")

    applied = admin_client.get(url, {"processed": "yes", "type": "invoice.finalized"})
    failing = admin_client.get(url, {"processed": "no"})
    event = StripeEvent.objects.get()
    change = admin_client.get(reverse("admin:billing_stripeevent_change", args=[event.pk]))

    assert applied.status_code == 200
    assert [e.type for e in applied.context["cl"].result_list] == ["invoice.finalized"]
    assert list(failing.context["cl"].result_list) == []
    assert change.status_code == 200
    assert event.stripe_id.encode() in change.content
    assert admin_client.get(reverse("admin:billing_stripeevent_add")).status_code == 403


# --- top-ups --------------------------------------------------------------------------------


@pytest.fixture
def topup(acme) -> TopUpRequest:
    return topup_requested(acme)


def test_a_paid_top_up_invoice_grants_the_credits_once(client, fake, topup, stripe_client):
    stripe_push_pending()
    row = TopUpInvoice.objects.get()
    stripe_client.v1.invoices.pay(row.stripe_id)
    paid = recorded(fake, "invoice.paid")
    also_paid = fake.event("invoice.paid", paid["data"]["object"])  # another event, same news

    for event in (paid, paid, also_paid):
        assert deliver(client, fake, event).status_code == 200

    topup.refresh_from_db()
    row.refresh_from_db()
    assert (topup.status, topup.reference, topup.closed_by) == ("paid", row.stripe_id, "stripe")
    assert (topup.grant.amount, topup.grant.source) == (D(100), "purchased")
    assert Wallet.objects.get().balance == D(105)  # 5.00 left + 100.00, granted once
    assert CreditGrant.objects.filter(source="purchased").count() == 1
    assert row.stripe_status == "paid"
    assert [error for *_, error in stored()] == ["", ""]
