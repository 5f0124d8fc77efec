"""The fake Stripe server, driven by the real ``stripe`` library as tokentill will drive it."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import stripe

from tests.fakes.stripe_server import form_parse, line_amount, signature_header

SECRET = "whsec_tokentill_test"


def a_customer(client: stripe.StripeClient, **params) -> stripe.Customer:
    return client.v1.customers.create(
        params={"email": "billing@acme.example", "name": "Acme Corp", **params}
    )


def a_draft(client: stripe.StripeClient, customer_id: str, **params) -> stripe.Invoice:
    return client.v1.invoices.create(
        params={
            "customer": customer_id,
            "currency": "usd",
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "pending_invoice_items_behavior": "exclude",
            **params,
        }
    )


def an_item(client, customer_id: str, invoice_id: str, **params) -> stripe.InvoiceItem:
    return client.v1.invoice_items.create(
        params={"customer": customer_id, "invoice": invoice_id, **params}
    )


def an_open_invoice(client, stripe_fake) -> stripe.Invoice:
    customer = a_customer(client)
    draft = a_draft(client, customer.id)
    an_item(client, customer.id, draft.id, unit_amount_decimal="250", quantity=4)
    return client.v1.invoices.finalize_invoice(draft.id)


# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "unit_amount_decimal", "amount"),
    [
        ("1000", "0.123456789012", 123),  # 123.456789012
        ("30", "0.05", 2),  # Stripe's own example: 1.5 is rounded up to 2 cents
        ("1", "0.5", 1),
        ("1", "-0.5", -1),  # a negative half goes away from zero too
        ("3", "0.166666666666", 0),  # 0.499999999998
        ("3", "0.166666666667", 1),  # 0.500000000001
        ("2.5", "3", 8),  # 7.5, a decimal quantity
        ("0", "99", 0),
        # 49999999999900000.499999999999: exact past Decimal's default 28 digits
        ("100000000000000001", "0.499999999999", 49999999999900000),
    ],
)
def test_line_amount_is_the_exact_product_rounded_once_half_away_from_zero(
    quantity, unit_amount_decimal, amount
):
    assert line_amount(Decimal(quantity), Decimal(unit_amount_decimal)) == amount


@pytest.mark.parametrize(
    ("pairs", "params"),
    [
        (
            [("metadata[plan]", "pro"), ("metadata[7]", "x")],
            {"metadata": {"plan": "pro", "7": "x"}},
        ),
        ([("expand[0]", "customer"), ("expand[1]", "lines")], {"expand": ["customer", "lines"]}),
        ([("expand[]", "customer"), ("expand[]", "lines")], {"expand": ["customer", "lines"]}),
        (
            [("lines[0][type]", "custom_line_item"), ("lines[0][amount]", "5")],
            {"lines": [{"type": "custom_line_item", "amount": "5"}]},
        ),
        ([("period[start]", "1"), ("period[end]", "2")], {"period": {"start": "1", "end": "2"}}),
        ([("description", "")], {"description": ""}),
    ],
)
def test_form_parse_reads_stripes_nested_form_encoding(pairs, params):
    assert form_parse(pairs) == params


def test_signature_header_is_the_one_the_library_computes():
    payload = b'{"id": "evt_1"}'

    header = signature_header(payload, SECRET, timestamp=1_700_000_000)

    expected = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), SECRET, timestamp=1_700_000_000
    )
    assert header == expected


# --- an invoice from customer to paid -------------------------------------------------------


def test_an_invoice_from_customer_to_paid_with_exact_totals(stripe_client, stripe_fake):
    customer = a_customer(stripe_client, metadata={"tokentill_customer": "42"})
    draft = a_draft(stripe_client, customer.id, metadata={"tokentill_invoice": "7"})

    tokens = an_item(
        stripe_client,
        customer.id,
        draft.id,
        unit_amount_decimal="0.123456789012",
        quantity=1000,
        description="gpt-4o input tokens",
        period={"start": 1_767_225_600, "end": 1_769_904_000},
        metadata={"tokentill_line": "1"},
    )
    halves = an_item(stripe_client, customer.id, draft.id, unit_amount_decimal="0.5", quantity=3)
    fee = an_item(stripe_client, customer.id, draft.id, amount=500, description="Platform fee")
    draft = stripe_client.v1.invoices.retrieve(draft.id)
    opened = stripe_client.v1.invoices.finalize_invoice(draft.id)
    paid = stripe_client.v1.invoices.pay(draft.id)

    assert (tokens.amount, halves.amount, fee.amount) == (123, 2, 500)
    assert tokens.pricing.unit_amount_decimal == Decimal("0.123456789012")
    assert tokens.period.start == 1_767_225_600
    assert tokens.metadata.to_dict() == {"tokentill_line": "1"}
    assert [line.amount for line in draft.lines.data] == [123, 2, 500]
    assert [line.parent.invoice_item_details.invoice_item for line in draft.lines.data] == [
        tokens.id,
        halves.id,
        fee.id,
    ]
    assert (draft.status, draft.number, draft.subtotal, draft.total) == ("draft", None, 625, 625)
    assert draft.metadata.to_dict() == {"tokentill_invoice": "7"}
    assert opened.status == "open"
    assert opened.number == f"{customer.invoice_prefix}-0001"
    assert opened.amount_due == 625
    assert opened.due_date == opened.status_transitions.finalized_at + 30 * 86400
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 625, 0)
    assert paid.status_transitions.paid_at is not None
    assert stripe_fake.invoices[draft.id]["status"] == "paid"
    assert [event["type"] for event in stripe_fake.events] == [
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    assert stripe_fake.events[1]["data"]["object"]["id"] == draft.id
    assert stripe_fake.customers[customer.id]["next_invoice_sequence"] == 2


def test_the_module_level_api_works_too_and_replays_by_idempotency_key(stripe_fake):
    customer = stripe.Customer.create(email="billing@acme.example")

    first = stripe.Invoice.create(customer=customer.id, currency="usd", idempotency_key="inv-1")
    again = stripe.Invoice.create(customer=customer.id, currency="usd", idempotency_key="inv-1")

    assert again.id == first.id
    assert list(stripe_fake.invoices) == [first.id]
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert [(r.path, r.idempotency_key, r.replayed) for r in stripe_fake.requests[1:]] == [
        ("/v1/invoices", "inv-1", False),
        ("/v1/invoices", "inv-1", True),
    ]


def test_a_draft_can_take_the_customers_pending_items(stripe_client, stripe_fake):
    customer = a_customer(stripe_client)
    pending = stripe_client.v1.invoice_items.create(
        params={"customer": customer.id, "currency": "usd", "amount": 700}
    )

    excluded = a_draft(stripe_client, customer.id)
    included = a_draft(stripe_client, customer.id, pending_invoice_items_behavior="include")

    assert (excluded.total, included.total) == (0, 700)
    assert stripe_fake.invoice_items[pending.id]["invoice"] == included.id


def test_an_invoice_with_nothing_to_pay_is_paid_when_finalized(stripe_client, stripe_fake):
    customer = a_customer(stripe_client)
    draft = a_draft(stripe_client, customer.id)

    invoice = stripe_client.v1.invoices.finalize_invoice(draft.id)

    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("paid", 0, 0)
    assert [event["type"] for event in stripe_fake.events] == [
        "invoice.finalized",
        "invoice.paid",
    ]


def test_expand_replaces_an_id_with_its_object(stripe_client):
    customer = a_customer(stripe_client)
    draft = a_draft(stripe_client, customer.id)

    invoice = stripe_client.v1.invoices.retrieve(draft.id, params={"expand": ["customer"]})
    listed = stripe_client.v1.invoices.list(
        params={"customer": customer.id, "expand": ["data.customer"]}
    )

    assert invoice.customer.email == "billing@acme.example"
    assert listed.data[0].customer.id == customer.id


def test_lists_are_newest_first_and_page(stripe_client):
    customer = a_customer(stripe_client)
    other = a_customer(stripe_client, email="ops@globex.example")
    drafts = [a_draft(stripe_client, customer.id) for _ in range(3)]
    a_draft(stripe_client, other.id)

    first = stripe_client.v1.invoices.list(params={"customer": customer.id, "limit": 2})
    rest = stripe_client.v1.invoices.list(
        params={"customer": customer.id, "limit": 2, "starting_after": first.data[-1].id}
    )
    by_email = stripe_client.v1.customers.list(params={"email": "ops@globex.example"})

    assert [i.id for i in first.data] == [drafts[2].id, drafts[1].id]
    assert first.has_more is True
    assert [i.id for i in rest.data] == [drafts[0].id]
    assert rest.has_more is False
    assert [c.id for c in by_email.data] == [other.id]


def test_customers_are_updated_as_stripe_merges_metadata(stripe_client, stripe_fake):
    customer = a_customer(stripe_client, metadata={"plan": "pro", "region": "eu"})

    updated = stripe_client.v1.customers.update(
        customer.id, params={"name": "Acme Inc", "metadata": {"plan": "", "tier": "gold"}}
    )

    assert updated.name == "Acme Inc"
    assert updated.email == "billing@acme.example"
    assert stripe_fake.customers[customer.id]["metadata"] == {"region": "eu", "tier": "gold"}


# --- errors ---------------------------------------------------------------------------------


def test_state_machine_errors_are_invalid_request_errors_that_change_nothing(
    stripe_client, stripe_fake
):
    invoice = an_open_invoice(stripe_client, stripe_fake)
    paid = stripe_client.v1.invoices.pay(invoice.id)
    before = json.dumps(stripe_fake.invoices[invoice.id], sort_keys=True)

    with pytest.raises(stripe.InvalidRequestError) as refinalize:
        stripe_client.v1.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.InvalidRequestError) as void:
        stripe_client.v1.invoices.void_invoice(invoice.id)
    with pytest.raises(stripe.InvalidRequestError) as add:
        an_item(stripe_client, paid.customer, invoice.id, amount=100)

    assert refinalize.value.http_status == 400
    assert refinalize.value.user_message == (
        "This invoice is already finalized, you can't re-finalize a non-draft invoice."
    )
    assert void.value.user_message == (
        f"You can only void an open or uncollectible invoice; {invoice.id} is paid."
    )
    assert (add.value.code, add.value.param) == ("invoice_not_editable", "invoice")
    assert json.dumps(stripe_fake.invoices[invoice.id], sort_keys=True) == before
    assert len(stripe_fake.invoice_items) == 1


def test_void_and_mark_uncollectible_follow_stripes_states(stripe_client, stripe_fake):
    voided = stripe_client.v1.invoices.void_invoice(an_open_invoice(stripe_client, stripe_fake).id)
    lost = an_open_invoice(stripe_client, stripe_fake)
    uncollectible = stripe_client.v1.invoices.mark_uncollectible(lost.id)
    paid_later = stripe_client.v1.invoices.pay(lost.id, params={"paid_out_of_band": True})

    assert voided.status == "void"
    assert voided.status_transitions.voided_at is not None
    assert uncollectible.status == "uncollectible"
    assert paid_later.status == "paid"
    assert [e["type"] for e in stripe_fake.events if e["type"] != "invoice.finalized"] == [
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.paid",
    ]


def test_unknown_ids_are_404_resource_missing(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.invoices.retrieve("in_missing")

    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    assert missing.value.user_message == "No such invoice: 'in_missing'"


def test_an_unknown_customer_in_a_parameter_is_a_400(stripe_client, stripe_fake):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        a_draft(stripe_client, "cus_missing")

    assert (missing.value.http_status, missing.value.code) == (400, "resource_missing")
    assert missing.value.param == "customer"
    assert stripe_fake.invoices == {}


def test_an_api_key_is_required(stripe_fake):
    wrong = stripe.StripeClient("sk_live_nope", base_addresses={"api": stripe_fake.url})
    request = urllib.request.Request(stripe_fake.url + "/v1/customers")  # noqa: S310

    with pytest.raises(stripe.AuthenticationError) as invalid:
        wrong.v1.customers.list()
    with pytest.raises(urllib.error.HTTPError) as none:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310

    assert invalid.value.http_status == 401
    assert none.value.code == 401
    assert json.loads(none.value.read())["error"]["type"] == "invalid_request_error"


def test_an_unknown_parameter_is_refused_and_its_key_can_be_used_again(stripe_client, stripe_fake):
    customer = a_customer(stripe_client)
    options = {"idempotency_key": "inv-unknown"}

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.invoices.create(
            params={"customer": customer.id, "colour": "red"}, options=options
        )
    invoice = stripe_client.v1.invoices.create(params={"customer": customer.id}, options=options)

    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "colour")
    assert list(stripe_fake.invoices) == [invoice.id]


def test_decimals_in_exponent_form_are_refused(stripe_client, stripe_fake):
    """The library sends a Decimal as str(), and str(Decimal("0.0000001")) is "1E-7": send
    format(value, "f") instead."""
    customer = a_customer(stripe_client)
    draft = a_draft(stripe_client, customer.id)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        an_item(stripe_client, customer.id, draft.id, unit_amount_decimal=Decimal("0.0000001"))
    item = an_item(stripe_client, customer.id, draft.id, unit_amount_decimal="0.000000100000")

    assert stripe_fake.requests[-2].params["unit_amount_decimal"] == "1E-7"
    assert refused.value.param == "unit_amount_decimal"
    assert item.pricing.unit_amount_decimal == Decimal("0.0000001")
    assert list(stripe_fake.invoice_items) == [item.id]


# --- idempotency --------------------------------------------------------------------------


def test_the_same_key_with_other_parameters_is_an_idempotency_error(stripe_client, stripe_fake):
    customer = a_customer(stripe_client)
    invoice = a_draft(stripe_client, customer.id, metadata={"n": "1"})
    key = stripe_fake.requests[-1].idempotency_key

    with pytest.raises(stripe.IdempotencyError) as other_params:
        stripe_client.v1.invoices.create(
            params={"customer": customer.id, "metadata": {"n": "2"}},
            options={"idempotency_key": key},
        )
    with pytest.raises(stripe.IdempotencyError) as other_endpoint:
        stripe_client.v1.customers.create(options={"idempotency_key": key})

    assert other_params.value.http_status == 400
    assert f"Try using a key other than '{key}'" in other_params.value.user_message
    assert "same endpoint" in other_endpoint.value.user_message
    assert list(stripe_fake.invoices) == [invoice.id]
    assert list(stripe_fake.customers) == [customer.id]


def test_errors_from_an_endpoint_are_replayed_too(stripe_client, stripe_fake):
    invoice = an_open_invoice(stripe_client, stripe_fake)
    stripe_client.v1.invoices.pay(invoice.id)
    options = {"idempotency_key": "void-1"}

    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.void_invoice(invoice.id, options=options)
    with pytest.raises(stripe.InvalidRequestError) as replayed:
        stripe_client.v1.invoices.void_invoice(invoice.id, options=options)

    assert replayed.value.headers["Idempotent-Replayed"] == "true"
    assert stripe_fake.requests[-1].replayed is True


def test_an_accepted_request_that_timed_out_is_retried_into_one_invoice(stripe_client, stripe_fake):
    customer = a_customer(stripe_client)
    fault = stripe_fake.inject("timeout_after_accept", "POST", "/v1/invoices")
    params = {"customer": customer.id, "currency": "usd", "metadata": {"period": "2026-01"}}
    options = {"idempotency_key": "tokentill-invoice-17"}

    with pytest.raises(stripe.APIConnectionError):
        stripe_client.v1.invoices.create(params=params, options=options)
    created_while_timing_out = list(stripe_fake.invoices)
    retried = stripe_client.v1.invoices.create(params=params, options=options)

    assert fault.remaining == 0
    assert created_while_timing_out == [retried.id]
    assert list(stripe_fake.invoices) == [retried.id]
    assert [(r.fault, r.replayed) for r in stripe_fake.requests[1:]] == [
        ("timeout_after_accept", False),
        (None, True),
    ]


def test_a_held_answer_is_the_clients_read_timeout(stripe_fake):
    client = stripe.StripeClient(
        stripe_fake.api_key,
        base_addresses={"api": stripe_fake.url},
        http_client=stripe.RequestsClient(timeout=0.3),
        max_network_retries=0,
    )
    stripe_fake.inject("timeout_after_accept", "POST", "/v1/customers", hold=30)
    started = time.monotonic()

    with pytest.raises(stripe.APIConnectionError) as timed_out:
        client.v1.customers.create(params={"email": "billing@acme.example"})

    assert "Read timed out" in str(timed_out.value)
    assert time.monotonic() - started < 5
    assert len(stripe_fake.customers) == 1


def test_the_library_retries_with_its_own_key_and_gets_the_saved_answer(stripe_fake):
    client = stripe.StripeClient(
        stripe_fake.api_key, base_addresses={"api": stripe_fake.url}, max_network_retries=1
    )
    customer = a_customer(client)
    stripe_fake.inject("timeout_after_accept", "POST", "/v1/invoices")

    invoice = client.v1.invoices.create(params={"customer": customer.id})

    first, retry = stripe_fake.requests[1:]
    assert list(stripe_fake.invoices) == [invoice.id]
    assert first.idempotency_key == retry.idempotency_key
    assert (first.fault, retry.replayed) == ("timeout_after_accept", True)


def test_a_500_is_an_api_error_and_nothing_is_done_or_saved(stripe_client, stripe_fake):
    customer = a_customer(stripe_client)
    stripe_fake.inject("error_500", "POST", "/v1/invoices")
    options = {"idempotency_key": "inv-500"}

    with pytest.raises(stripe.APIError) as failed:
        stripe_client.v1.invoices.create(params={"customer": customer.id}, options=options)
    nothing = dict(stripe_fake.invoices)
    invoice = stripe_client.v1.invoices.create(params={"customer": customer.id}, options=options)

    assert type(failed.value) is stripe.APIError
    assert failed.value.http_status == 500
    assert nothing == {}
    assert list(stripe_fake.invoices) == [invoice.id]
    assert stripe_fake.requests[-1].replayed is False


def test_a_429_is_a_rate_limit_error(stripe_client, stripe_fake):
    stripe_fake.inject("rate_limit_429", "GET", "/v1/customers", times=2)

    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as limited:
            stripe_client.v1.customers.list()
    answered = stripe_client.v1.customers.list()

    assert limited.value.http_status == 429
    assert limited.value.json_body["error"]["code"] == "rate_limit"
    assert answered.data == []
    assert [r.status for r in stripe_fake.requests] == [429, 429, 200]


def test_a_declined_card_is_a_card_error_and_payment_failed_is_recorded(stripe_client, stripe_fake):
    invoice = an_open_invoice(stripe_client, stripe_fake)
    stripe_fake.inject("card_declined", "POST", f"/v1/invoices/{invoice.id}/pay")

    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.invoices.pay(invoice.id)
    after_decline = dict(stripe_fake.invoices[invoice.id])
    paid = stripe_client.v1.invoices.pay(invoice.id)

    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    assert (after_decline["status"], after_decline["attempt_count"]) == ("open", 1)
    assert (paid.status, paid.attempt_count) == ("paid", 2)
    assert [event["type"] for event in stripe_fake.events[1:]] == [
        "invoice.payment_failed",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


# --- credit notes ---------------------------------------------------------------------------


def test_credit_notes_lower_an_open_invoice_or_credit_after_payment(stripe_client, stripe_fake):
    open_invoice = an_open_invoice(stripe_client, stripe_fake)
    paid_invoice = an_open_invoice(stripe_client, stripe_fake)
    stripe_client.v1.invoices.pay(paid_invoice.id)
    line = paid_invoice.lines.data[0]

    partial = stripe_client.v1.credit_notes.create(
        params={"invoice": open_invoice.id, "amount": 300, "reason": "order_change"}
    )
    lowered = stripe_client.v1.invoices.retrieve(open_invoice.id)
    rest = stripe_client.v1.credit_notes.create(params={"invoice": open_invoice.id, "amount": 700})
    settled = stripe_client.v1.invoices.retrieve(open_invoice.id)
    after_payment = stripe_client.v1.credit_notes.create(
        params={
            "invoice": paid_invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": 1}],
            "memo": "One unit back",
        }
    )

    assert (partial.type, partial.total, partial.number) == (
        "pre_payment",
        300,
        f"{open_invoice.number}-CN-01",
    )
    assert (lowered.amount_due, lowered.amount_remaining, lowered.status) == (700, 700, "open")
    assert rest.number == f"{open_invoice.number}-CN-02"
    assert (settled.status, settled.amount_due) == ("paid", 0)
    assert (after_payment.type, after_payment.total) == ("post_payment", 250)
    assert after_payment.lines.data[0].invoice_line_item == line.id
    assert stripe_fake.customers[paid_invoice.customer]["balance"] == -250
    assert stripe_client.v1.credit_notes.retrieve(after_payment.id).memo == "One unit back"


def test_a_credit_note_cannot_exceed_what_is_left(stripe_client, stripe_fake):
    invoice = an_open_invoice(stripe_client, stripe_fake)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1001})

    assert too_much.value.param == "amount"
    assert stripe_fake.credit_notes == {}
    assert stripe_fake.invoices[invoice.id]["amount_due"] == 1000


# --- webhooks -------------------------------------------------------------------------------


def test_a_recorded_event_signed_passes_construct_event(stripe_client, stripe_fake):
    invoice = an_open_invoice(stripe_client, stripe_fake)
    stripe_client.v1.invoices.pay(invoice.id)
    paid = next(e for e in stripe_fake.events if e["type"] == "invoice.paid")

    payload, headers = stripe_fake.sign(paid, SECRET)
    event = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], SECRET)

    assert (event.id, event.type) == (paid["id"], "invoice.paid")
    assert (event.data.object.id, event.data.object.status) == (invoice.id, "paid")
    assert event.request.idempotency_key == stripe_fake.requests[-1].idempotency_key


def test_signed_event_builds_an_event_about_any_object(stripe_fake):
    invoice = {"id": "in_test", "object": "invoice", "status": "void"}

    payload, headers = stripe_fake.signed_event("invoice.voided", invoice, SECRET)
    event = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], SECRET)

    assert event.id.startswith("evt_")
    assert (event.object, event.type, event.livemode) == ("event", "invoice.voided", False)
    assert event.data.object.to_dict() == invoice


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p, h: (p.replace(b"paid", b"void"), h), id="tampered payload"),
        pytest.param(
            lambda p, h: (p, {"Stripe-Signature": h["Stripe-Signature"].replace("v1=", "v1=0")}),
            id="tampered signature",
        ),
    ],
)
def test_a_tampered_event_fails_construct_event(stripe_fake, spoil):
    payload, headers = spoil(
        *stripe_fake.signed_event("invoice.paid", {"id": "in_1", "status": "paid"}, SECRET)
    )

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], SECRET)


def test_an_old_timestamp_or_another_secret_fails_construct_event(stripe_fake):
    obj = {"id": "in_1", "status": "paid"}
    old, old_headers = stripe_fake.signed_event(
        "invoice.paid", obj, SECRET, timestamp=int(time.time()) - 301
    )
    other, other_headers = stripe_fake.signed_event("invoice.paid", obj, "whsec_other")

    with pytest.raises(stripe.SignatureVerificationError, match="outside the tolerance zone"):
        stripe.Webhook.construct_event(old, old_headers["Stripe-Signature"], SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(other, other_headers["Stripe-Signature"], SECRET)


def test_deliver_posts_a_signed_event_to_a_live_url(stripe_fake):
    received = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["Stripe-Signature"], self.headers["Content-Type"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    event = stripe_fake.event("invoice.paid", {"id": "in_1", "status": "paid"})
    try:
        status, _ = stripe_fake.deliver(
            f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook", event, SECRET
        )
    finally:
        server.shutdown()
        server.server_close()

    [(body, signature, content_type)] = received
    assert status == 200
    assert content_type == "application/json; charset=utf-8"
    assert stripe.Webhook.construct_event(body, signature, SECRET).id == event["id"]


# --- standalone ---------------------------------------------------------------------------


def test_it_runs_standalone_on_a_given_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "tests.fakes.stripe_server", "--port", str(port), "--quiet"]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()
        client = stripe.StripeClient(
            "sk_test_standalone", base_addresses={"api": f"http://127.0.0.1:{port}"}
        )
        customer = client.v1.customers.create(params={"email": "billing@acme.example"})
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert banner.startswith(f"Fake Stripe API on http://127.0.0.1:{port} ")
    assert customer.id.startswith("cus_")
