"""The dashboard's estimate is the invoice preview to the cent; its ranges; its charts'
values and axes; where alerts go; an invoice line's details.

NOW is 2026-11-15 12:00 UTC: 14.5 of November's 30 days have passed.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from rest_framework.test import APIClient

from billing.invoicing.closing import periods_close_due
from billing.invoicing.credit_notes import credit_note_issue
from billing.models import Invoice, InvoiceLine
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create, customer_api_key_create, customer_create
from portal.charts import axis_top
from portal.models import PortalUser
from portal.ranges import RangeError, range_from_query
from tests.billing.conftest import GPT_4O_FORMULA, GPT_4O_RATES, NOVEMBER, NOW, event, ingest
from tests.billing.conftest import rate as rate_pending
from wallets.alerts import alert_settings_update
from wallets.models import CreditGrant
from wallets.services import credit_grant

from .conftest import DECEMBER, MILLION_OUT, SMALL, logged_in, portal_user, table, text_of


@pytest.fixture
def initech(db, rate_card):
    """A fee of 100.00, an allowance of 20.00, a minimum of 200.00 and 30.00 of credits;
    two calls of 10.00 and one of 0.008755 in November so far."""
    customer = customer_create(
        external_id="initech", name="Initech", currency="USD", email="ap@initech.example"
    )
    contract_create(
        customer=customer,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        fixed_fee=D("100"),
        included_allowance=D("20"),
        minimum_commitment=D("200"),
    )
    credit_grant(customer=customer, amount="30", source=CreditGrant.Source.PURCHASED)
    ingest(
        event("i1", datetime(2026, 11, 2, 9, tzinfo=UTC), metrics=MILLION_OUT, customer="initech"),
        event("i2", datetime(2026, 11, 9, 9, tzinfo=UTC), metrics=MILLION_OUT, customer="initech"),
        event("i3", datetime(2026, 11, 9, 10, tzinfo=UTC), metrics=SMALL, customer="initech"),
    )
    rate_pending()
    return customer


@pytest.fixture
def ian(initech, clock) -> PortalUser:
    return portal_user(initech, "ian@initech.example")


def key_client(customer) -> APIClient:
    _, key = customer_api_key_create(customer=customer, name="dashboards", created_by="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_the_estimate_is_the_invoice_preview_to_the_cent(client, initech, ian, globex):
    # The customer's own read-only key reads its preview; another customer's key does not
    preview = key_client(initech).get("/api/v1/customers/initech/invoice-preview")
    assert preview.status_code == 200
    other = key_client(globex).get("/api/v1/customers/initech/invoice-preview")
    assert other.status_code == 404

    page = logged_in(client, ian).get("/portal/")

    lines = preview.json()["lines"]
    # By hand: fee 100.00; usage 10 + 10 + 0.008755 = 20.008755 -> 20.01; allowance
    # min(20.01, 20.00) = 20.00; true-up 200.00 - 20.01 = 179.99; before credits
    # 100.00 + 20.01 - 20.00 + 179.99 = 280.00. The credits paid the billable usage,
    # 20.008755 - 20 = 0.008755, which is 0.01 on the face: -0.01. Due 279.99.
    assert [(line["kind"], line["amount"]) for line in lines] == [
        ("fixed_fee", "100.00"),
        ("usage", "20.01"),
        ("allowance", "-20.00"),
        ("minimum", "179.99"),
        ("credits", "-0.01"),
    ]
    assert preview.json()["total"] == "279.99"
    assert table(page, "estimate")[1:] == [
        ["Fixed fees", "100.00 USD"],
        ["Usage", "20.01 USD"],
        ["Included allowance used", "-20.00 USD"],
        ["Minimum commitment true-up", "179.99 USD"],
        ["Prepaid credits applied", "-0.01 USD"],
        ["Amount due", "279.99 USD"],
    ]
    assert text_of(page, "estimate-total") == "279.99 USD"
    # The period's last day is written as invoices write it: included
    assert "Billing period 2026-11-01 to 2026-11-30 (UTC)" in " ".join(
        page.content.decode().split()
    )
    assert [row[1] for row in table(page, "estimate-lines")[1:]] == [
        line["amount"] for line in lines
    ]


def test_with_nothing_more_used_the_invoice_is_the_estimate(client, clock, initech, ian):
    estimate = text_of(logged_in(client, ian).get("/portal/"), "estimate-total")

    # The period closes a day after its end, with no more usage
    clock.now = DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 1

    invoice = Invoice.objects.get(customer=initech)
    assert (estimate, invoice.total) == ("279.99 USD", D("279.99"))
    assert list(invoice.lines.values_list("kind", "amount")) == [
        ("fixed_fee", D("100.00")),
        ("usage", D("20.01")),
        ("allowance", D("-20.00")),
        ("minimum", D("179.99")),
        ("credits", D("-0.01")),
    ]


def test_the_projection_carries_usage_and_keeps_the_fee_and_the_minimum(client, initech, ian):
    page = logged_in(client, ian).get("/portal/")

    # Usage 20.01 x 30 / 14.5 = 41.40; allowance 20.00; true-up 200.00 - 41.40 = 158.60;
    # 100.00 + 41.40 - 20.00 + 158.60 = 280.00 (before credits)
    assert text_of(page, "projected") == "280.00 USD"
    # The budget counts usage after discount, before the allowance: 20.008755
    assert text_of(page, "spend") == "20.01 USD"


def test_the_budget_is_compared_with_usage_after_discount(client, initech, ian):
    alert_settings_update(customer=initech, budget=D("80"))

    page = logged_in(client, ian).get("/portal/")

    # 20.008755 / 80 = 25.01 % -> 25 %
    assert (text_of(page, "budget"), text_of(page, "budget-share")) == ("80.00 USD", "25 %")


def test_the_usage_figures_are_the_estimates_lines_not_a_rounding_of_their_sum(db, client, clock):
    # Given two models priced alike and 500 output tokens on each: 0.005 exactly each,
    # 0.01 on each usage line, so the estimate's usage is 0.02 (the exact 0.01 is not shown)
    card = rate_card_create(name="Two models", currency="USD", effective_from=NOVEMBER)
    for model in ("gpt-4o", "gpt-4o-mini"):
        price_create(version=card.versions.get(), name=model, model_pattern=model,
                     rates=GPT_4O_RATES, formula=GPT_4O_FORMULA)  # fmt: skip
    umbrella = customer_create(external_id="umbrella", name="Umbrella", currency="USD")
    contract_create(customer=umbrella, starts_at=NOVEMBER, rate_card=card, anchor_day=1)
    alert_settings_update(customer=umbrella, budget=D("1"))
    half_cent = {"output_tokens": 500}
    ingest(
        *(
            event(f"u-{model}", datetime(2026, 11, 3, tzinfo=UTC), model=model,
                  metrics=half_cent, customer="umbrella")
            for model in ("gpt-4o", "gpt-4o-mini")
        )
    )  # fmt: skip
    rate_pending()

    page = logged_in(client, portal_user(umbrella, "una@umbrella.example")).get("/portal/")

    assert table(page, "estimate")[1:3] == [["Usage", "0.02 USD"], ["Amount due", "0.02 USD"]]
    # 0.02 of a 1.00 budget: 2 %
    assert (text_of(page, "spend"), text_of(page, "budget-share")) == ("0.02 USD", "2 %")


# --- Ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first", "last"),
    [
        ({}, date(2026, 11, 1), date(2026, 11, 30)),
        ({"range": "period"}, date(2026, 11, 1), date(2026, 11, 30)),
        ({"range": "last-period"}, date(2026, 10, 1), date(2026, 10, 31)),
        ({"range": "7d"}, date(2026, 11, 9), date(2026, 11, 15)),
        ({"range": "30d"}, date(2026, 10, 17), date(2026, 11, 15)),
        (
            {"range": "custom", "from": "2026-11-02", "to": "2026-11-09"},
            date(2026, 11, 2),
            date(2026, 11, 9),
        ),
        (
            {"range": "custom", "from": "2025-11-15", "to": "2026-11-15"},
            date(2025, 11, 15),
            date(2026, 11, 15),
        ),  # 366 days, the longest
    ],
)
def test_each_range_gives_its_days(initech, query, first, last):
    days = range_from_query(query, customer=initech, now=NOW)

    assert (days.first, days.last) == (first, last)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"range": "week"},
            "Unknown range 'week': choose one of period, last-period, 7d, 30d, custom.",
        ),
        (
            {"range": "custom", "to": "2026-11-09"},
            "A custom range needs its start date (from), as YYYY-MM-DD.",
        ),
        (
            {"range": "custom", "from": "2026-11-02"},
            "A custom range needs its end date (to), as YYYY-MM-DD.",
        ),
        (
            {"range": "custom", "from": "2026-11-31", "to": "2026-12-02"},
            "The start date (from) must be a date as YYYY-MM-DD: '2026-11-31'.",
        ),
        (
            {"range": "custom", "from": "2026-11-09", "to": "2026-11-02"},
            "The range starts after it ends: from 2026-11-09 to 2026-11-02.",
        ),
        (
            {"range": "custom", "from": "2025-11-14", "to": "2026-11-15"},
            "A custom range is at most 366 days long.",
        ),
    ],
)
def test_a_bad_range_says_what_is_wrong(initech, query, message):
    with pytest.raises(RangeError) as error:
        range_from_query(query, customer=initech, now=NOW)

    assert str(error.value) == message


def test_a_custom_range_charts_its_days_and_keeps_the_estimate_of_the_period(client, initech, ian):
    page = logged_in(client, ian).get("/portal/?range=custom&from=2026-11-08&to=2026-11-10")

    assert page.status_code == 200
    html = page.content.decode()
    # Only the 9th's calls: 10.00 + 0.008755 = 10.008755; three columns, the 8th to the 10th
    assert table(page, "usage-by-day")[1:] == [["2026-11-09", "2", "10.01"], ["Total", "", "10.01"]]
    assert table(page, "usage-by-model")[1:] == [["gpt-4o", "2", "10.01"]]
    assert "<title>2026-11-08: 0.00</title>" in html
    assert "<title>2026-11-09: 10.01</title>" in html
    assert "<title>2026-11-10: 0.00</title>" in html
    assert 'value="2026-11-08"' in html and 'value="2026-11-10"' in html
    assert text_of(page, "estimate-total") == "279.99 USD"


def test_a_bad_range_is_a_400_with_the_message_and_the_estimate(client, initech, ian):
    page = logged_in(client, ian).get("/portal/?range=custom&from=2026-11-10&to=nonsense")

    assert page.status_code == 400
    assert text_of(page, "range-error") == (
        "The end date (to) must be a date as YYYY-MM-DD: &#x27;nonsense&#x27;."
    )
    assert "usage-by-day" not in page.content.decode()
    assert text_of(page, "estimate-total") == "279.99 USD"


def test_the_by_day_chart_has_a_value_axis_day_labels_and_values(client, initech, ian):
    html = logged_in(client, ian).get("/portal/?range=7d").content.decode()

    # The 9th to the 15th; the top, 10.008755, is above 4 x 2.50, so the axis ends at
    # 4 x 5.00 = 20.00, with gridlines every 5.00
    for label in ("0.00", "5.00", "10.00", "15.00", "20.00"):
        assert f'class="axis" text-anchor="end">{label}</text>' in html
    assert ">Nov 9</text>" in html and ">15</text>" in html
    # Wide columns carry their value over them
    assert 'class="value" text-anchor="middle">10.01</text>' in html


@pytest.mark.parametrize(
    ("top", "axis"),
    [("0.03", "0.04"), ("10.01", "20"), ("10", "10"), ("2279.2", "4000"), ("0", "0")],
)
def test_the_value_axis_ends_at_four_round_steps(top, axis):
    assert axis_top(D(top)) == D(axis)


# --- Alerts and invoices -----------------------------------------------------------------


def test_alerts_say_they_go_to_the_billing_email_by_default(client, initech, ian):
    page = logged_in(client, ian).get("/portal/alerts/")

    assert text_of(page, "alert-emails") == "ap@initech.example"
    assert "(your billing email: no alert addresses are set)" in page.content.decode()
    assert text_of(page, "alert-webhook") == "None"


def test_alerts_name_the_addresses_and_the_webhook_set(client, initech, ian):
    alert_settings_update(
        customer=initech,
        emails="ops@initech.example, cfo@initech.example",
        webhook_url="https://hooks.initech.example/alerts",
    )

    page = logged_in(client, ian).get("/portal/alerts/")

    assert text_of(page, "alert-emails") == "ops@initech.example, cfo@initech.example"
    assert "your billing email" not in page.content.decode()
    assert "<code>https://hooks.initech.example/alerts</code>" in page.content.decode()


def test_an_invoice_shows_each_lines_details_subtotal_credits_and_total(client, initech, ian):
    invoice = Invoice.objects.create(
        customer=initech,
        number="INV-DETAILS-1",
        currency="USD",
        status=Invoice.Status.FINALIZED,
        period_start=datetime(2026, 10, 1, tzinfo=UTC),
        period_end=NOVEMBER,
        total=D("103.50"),
        created_at=NOW,
        finalized_at=NOW,
    )
    common = {"period_start": invoice.period_start, "period_end": invoice.period_end}
    InvoiceLine.objects.create(
        invoice=invoice, position=1, kind="fixed_fee",
        description="Monthly fee, 2026-10-01 to 2026-10-31",
        exact_amount=D("100"), amount=D("100"), unit_price=D("100"), **common,
    )  # fmt: skip
    InvoiceLine.objects.create(
        invoice=invoice, position=2, kind="usage", description="gpt-4o",
        exact_amount=D("5"), amount=D("5"), unit_price=D("5"), event_count=3, **common,
        details=[
            {"label": "Input tokens", "quantity": "1200000", "rate": "2.50", "per": "1M tokens"},
            {"label": "Embedding units", "quantity": "150", "rate": None, "per": "unit"},
        ],
    )  # fmt: skip
    InvoiceLine.objects.create(
        invoice=invoice, position=3, kind="credits", description="Prepaid credits applied",
        exact_amount=D("-1.5"), amount=D("-1.50"), unit_price=D("-1.5"), **common,
    )  # fmt: skip

    page = logged_in(client, ian).get("/portal/invoices/INV-DETAILS-1/")

    rows, html = table(page, "invoice-lines"), page.content.decode()
    assert rows[2][1].startswith("gpt-4o (3 events)")
    # Under the usage line, what it billed per metric; a rate of null is no rate
    assert "<li>Input tokens: 1,200,000 at 2.50 USD per 1M tokens</li>" in html
    assert "<li>Embedding units: 150</li>" in html
    # 100.00 + 5.00 = 105.00 before the credits; 105.00 - 1.50 = 103.50
    assert rows[-3:] == [
        ["Subtotal", "105.00"],
        ["Prepaid credits applied", "-1.50"],
        ["Total", "103.50"],
    ]
    assert 'href="/portal/invoices/INV-DETAILS-1.pdf"' in html

    # A credit note of 3.50 leaves 103.50 - 3.50 = 100.00 to pay, as the PDF says
    credit_note_issue(
        invoice=invoice, amount=D("3.50"), memo="Outage", destination="none", created_by="ops"
    )
    page = logged_in(client, ian).get("/portal/invoices/INV-DETAILS-1/")
    assert table(page, "invoice-lines")[-2:] == [
        ["Total", "103.50"],
        ["Amount due, after credit notes", "100.00"],
    ]
