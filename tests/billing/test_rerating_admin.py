"""Price corrections and re-rating in the admin, for staff who are not superusers: the diff
per customer and period first (stored nowhere), applied only on confirmation, recorded with
the user and the reason; refused without the permissions, with nothing stored.

The scenario and its figures: correction_support (gpt-4o's output 10.00 -> 5.00 per 1M
from last week, November 27).
"""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from billing.invoicing.closing import periods_close_due
from billing.models import CreditNote
from contracts.models import PriceCorrection
from contracts.price_corrections import price_correction_create

from .conftest import event, ingest, rate, usage_of
from .correction_support import (
    JANUARY,
    LAST_WEEK,
    NOV,
    NOW,
    REASON,
    D,
    clock_set,
    stored,
    two_customers,
)

CORRECTS = ("view_ratecard", "add_pricecorrection")
RERATES = ("view_customer", "view_ratecard", "view_usagerollup", "change_usagerollup")
FORM = {
    "price": "gpt-4o",
    "effective_from": "2026-11-27T00:00",
    "rate_in": "2.50",
    "rate_out": "5.00",
    "rate_cached": "1.25",
    "reason": REASON,
    "formula": "",
}


@pytest.fixture
def clock(now, monkeypatch):
    return clock_set(monkeypatch)


@pytest.fixture
def globex(clock, acme, rate_card):
    return two_customers(clock, acme, rate_card)


def staff(client, *codenames) -> User:
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def correct_url(rate_card) -> str:
    return reverse("admin:billing_usagerollup_correct", args=[rate_card.pk])


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_billing_ops_correct_gpt_4o_from_last_week_read_the_diff_and_apply_it(
    client, clock, rate_card, acme, globex, api
):
    staff(client, *CORRECTS)
    card_page = client.get(reverse("admin:contracts_ratecard_change", args=[rate_card.pk]))
    assert "Correct a price from…" in text(card_page)

    # The page asks for gpt-4o's rates as they are now, from a week ago at midnight.
    page = client.get(correct_url(rate_card))
    form = page.context["form"]
    assert page.status_code == 200
    assert form["effective_from"].value() == LAST_WEEK.replace(tzinfo=None)  # shown in UTC
    assert [(f.name, f.value()) for f in form.rate_fields()] == [
        ("rate_in", "2.50"),
        ("rate_out", "10.00"),
        ("rate_cached", "1.25"),
    ]

    # Preview: the diff per customer and period, by hand (correction_support), and nothing
    # stored.
    before = stored()
    preview = client.post(correct_url(rate_card), {**FORM, "preview": "Preview"})
    assert preview.status_code == 200
    assert stored() == before
    shown = preview.context["shown"]
    assert [entry["customer"].external_id for entry in shown["customers"]] == ["acme", "globex"]
    (november, december), (globex_december,) = (e["periods"] for e in shown["customers"])
    assert (november.span, november.invoice, november.events) == (NOV, "INV-000001", 3)
    assert [(line.old, line.new) for line in november.lines] == [("30.00 USD", "20.00 USD")]
    assert (november.old_total, november.new_total) == ("60.00 USD", "50.00 USD")
    assert november.outcome == (
        "a credit note of 10.00 USD on INV-000001 (recorded on the invoice, lowering what is due)."
    )
    assert (december.invoice, december.old_total, december.new_total) == (
        "",
        "40.00 USD",
        "35.00 USD",
    )
    assert (globex_december.old_total, globex_december.new_total) == (
        "20.00 USD",
        "10.00 USD",
    )
    page_text = text(preview)
    assert "A new version 2 from 2026-11-27 00:00 UTC: version 1's prices" in page_text
    assert "2 customers, 3 periods (1 already invoiced), 5 events re-rated." in page_text
    assert "closed, invoice INV-000001" in page_text
    assert "At the next closing:</strong> a credit note of 10.00 USD on INV-000001" in page_text
    confirm = preview.context["confirm"]

    # Apply: the correction is recorded with the user and the reason, and re-rates.
    applied = client.post(
        correct_url(rate_card),
        {**dict(confirm["fields"]), "previewed": confirm["fingerprint"], "apply": "Apply"},
    )
    assert applied.status_code == 302
    assert applied["Location"] == reverse("admin:contracts_ratecard_change", args=[rate_card.pk])
    correction = PriceCorrection.objects.get()
    assert (correction.created_by, correction.reason, correction.rates) == (
        "ops",
        REASON,
        {"rate_out": "5.00"},
    )
    log = LogEntry.objects.get()
    assert (log.object_id, log.user.username) == (str(rate_card.pk), "ops")
    assert log.get_change_message() == (
        f"Corrected gpt-4o from 2026-11-27 00:00 UTC (correction {correction.pk}, v2): {REASON}"
    )
    card_page = client.get(applied["Location"])
    assert (
        "Correction applied: gpt-4o from 2026-11-27 00:00 UTC (v2). 5 events of 3 periods are "
        "being re-rated; 1 invoiced period will be corrected at the next closing."
    ) in text(card_page)
    corrections = text(card_page).split('id="tt-corrections"')[1]
    assert f"“{REASON}”" in corrections
    assert "By ops, 2026-12-04 12:00 UTC" in corrections

    # The open period is re-rated; the closed one is credited at the next closing, once.
    assert rate() == 5
    assert usage_of(api, at="2026-12-04T00:00:00Z")["total"] == "35.000000000000"
    clock.now = JANUARY + timedelta(hours=25)
    periods_close_due()
    clock.now += timedelta(days=31)
    periods_close_due()
    note = CreditNote.objects.get()
    assert (note.invoice.number, note.amount) == ("INV-000001", D("10.00"))


def test_apply_takes_only_what_was_previewed(client, rate_card, globex):
    staff(client, *CORRECTS)
    preview = client.post(correct_url(rate_card), {**FORM, "preview": "Preview"})
    confirm = preview.context["confirm"]
    before = stored()

    # The output price was changed after the preview: shown again, not applied.
    changed = {**dict(confirm["fields"]), "rate_out": "4.00"}
    response = client.post(
        correct_url(rate_card),
        {**changed, "previewed": confirm["fingerprint"], "apply": "Apply"},
    )

    assert response.status_code == 200
    assert "The correction changed since its diff was shown" in text(response)
    november = response.context["shown"]["customers"][0]["periods"][0]
    assert november.new_total == "48.00 USD"  # 10.00 + 2 x 4.00 + the fee of 30.00
    assert stored() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": ""}, "This field is required."),
        (
            {"effective_from": "2026-10-31T00:00"},
            "Standard has no prices before 2026-11-01 00:00 UTC (Standard v1): a correction "
            "starts then or later.",
        ),
        ({"rate_out": "five"}, "&#x27;five&#x27; is not an amount"),
        ({"rate_out": "10.00"}, "Nothing to correct: change a rate (or the formula)"),
    ],
)
@pytest.mark.parametrize("button", ["preview", "apply"])
def test_a_refused_correction_says_why_and_stores_nothing(
    client, rate_card, globex, change, message, button
):
    staff(client, *CORRECTS)
    before = stored()

    response = client.post(correct_url(rate_card), {**FORM, **change, button: "x"})

    assert response.status_code == 200
    assert "Nothing was stored" in text(response)
    assert message in response.content.decode()
    assert stored() == before


def test_an_unknown_price_is_said_and_the_prices_offered(client, rate_card, globex):
    staff(client, *CORRECTS)

    response = client.get(correct_url(rate_card), {"price": "gpt-5"})

    assert "“Standard” has no price named “gpt-5”." in text(response)
    assert '<a href="?price=gpt-4o">gpt-4o</a>' in response.content.decode()


def test_without_the_permission_the_correction_is_refused_and_nothing_stored(
    client, rate_card, globex
):
    staff(client, "view_ratecard", "view_usagerollup")
    before = stored()

    card_page = client.get(reverse("admin:contracts_ratecard_change", args=[rate_card.pk]))
    response = client.post(correct_url(rate_card), {**FORM, "apply": "x", "previewed": "x"})

    assert "Correct a price from…" not in text(card_page)
    assert response.status_code == 403
    assert stored() == before


def rerate_customer_url(customer) -> str:
    return reverse("admin:billing_usagerollup_rerate_customer", args=[customer.pk])


def test_billing_ops_re_rate_a_customer_s_period_from_the_admin(client, rate_card, acme, globex):
    # Given the card corrected from last week, without re-rating what it reaches
    price_correction_create(
        rate_card=rate_card, price="gpt-4o", effective_from=LAST_WEEK,
        rates={"rate_out": "5.00"}, reason=REASON, created_by="ops",
    )  # fmt: skip
    staff(client, *RERATES)
    customer_page = client.get(reverse("admin:contracts_customer_change", args=[acme.pk]))
    assert "Re-rate a period…" in text(customer_page)
    before = stored()

    # The page opens on the current period: December, 40.00 -> 35.00.
    page = client.get(rerate_customer_url(acme))
    period = page.context["period"]
    assert (period.span, period.old_total, period.new_total) == (
        "2026-12-01 to 2026-12-31",
        "40.00 USD",
        "35.00 USD",
    )
    # November, picked by an instant in it: invoiced, usage 30.00 -> 20.00, so 10.00 back
    # at the next closing.
    november = client.get(rerate_customer_url(acme), {"at": "2026-11-28T00:00"})
    period = november.context["period"]
    assert (period.span, period.old_total, period.new_total) == (NOV, "60.00 USD", "50.00 USD")
    assert (period.invoice, period.outcome) == (
        "INV-000001",
        "a credit note of 10.00 USD on INV-000001 (recorded on the invoice, lowering what is due).",
    )
    assert stored() == before

    applied = client.post(rerate_customer_url(acme), {"at": "2026-11-28T00:00"})

    assert applied.status_code == 302
    assert rate() == 3
    log = LogEntry.objects.get()
    assert (log.object_id, log.get_change_message()) == (
        str(acme.pk),
        f"Re-rated the period {NOV} (3 events).",
    )


def test_looking_is_not_re_rating(client, rate_card, acme, globex):
    staff(client, "view_customer", "view_usagerollup")
    before = stored()

    page = client.get(rerate_customer_url(acme))
    refused = client.post(rerate_customer_url(acme), {"at": "2026-11-28T00:00"})

    assert "Re-rate this period" not in text(page)
    assert "billing | usage rollup | Can change usage rollup" in text(page)
    assert refused.status_code == 403
    assert stored() == before


def test_every_customer_of_a_card_is_re_rated_from_its_page(client, rate_card, acme, globex):
    price_correction_create(
        rate_card=rate_card, price="gpt-4o", effective_from=LAST_WEEK,
        rates={"rate_out": "5.00"}, reason=REASON, created_by="ops",
    )  # fmt: skip
    staff(client, *RERATES)
    url = reverse("admin:billing_usagerollup_rerate_card", args=[rate_card.pk])
    before = stored()

    page = client.get(url, {"at": "2026-12-04T12:00"})

    assert [
        (e["customer"].external_id, e["period"].old_total, e["period"].new_total)
        for e in page.context["customers"]
    ] == [("acme", "40.00 USD", "35.00 USD"), ("globex", "20.00 USD", "10.00 USD")]
    assert "Re-rate 2 customers" in text(page)
    assert stored() == before

    assert client.post(url, {"at": "2026-12-04T12:00"}).status_code == 302
    assert rate() == 2
    assert LogEntry.objects.get().get_change_message() == (
        "Re-rated the periods holding 2026-12-04 12:00 UTC of acme, globex (2 events)."
    )


def test_the_diff_is_in_billed_money_only_as_the_invoice_would_bill_it(
    client, rate_card, acme, globex
):
    # Given globex's December at 20.00 and 1,500 more output tokens: 0.015 at 10.00 per
    # 1M, so exactly 20.015; corrected to 5.00 per 1M it is 10.0075.
    ingest(event("globex-sub-cent", NOW - timedelta(hours=1), metrics={"output_tokens": 1_500},
                 customer="globex"))  # fmt: skip
    rate()
    price_correction_create(
        rate_card=rate_card, price="gpt-4o", effective_from=LAST_WEEK,
        rates={"rate_out": "5.00"}, reason=REASON, created_by="ops",
    )  # fmt: skip
    staff(client, *RERATES)

    page = client.get(rerate_customer_url(globex))

    # Each figure is what an invoice line bills, rounded half up: 20.015 -> 20.02, 10.0075
    # -> 10.01; the exact figures are nowhere on the page.
    period = page.context["period"]
    assert [(line.old, line.new) for line in period.lines] == [("20.02 USD", "10.01 USD")]
    assert (period.old_total, period.new_total) == ("20.02 USD", "10.01 USD")
    html = page.content.decode()
    assert "20.015" not in html and "10.0075" not in html
