"""What a customer's invoice lines say: the price's display name and the tokens it billed,
never the rate card, its version, its markup or the terms' number; lines of the same name
told apart by their days. Worked by hand; amounts are as they always were."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader

from billing.invoicing.closing import periods_close_due
from billing.invoicing.pdf.invoice import invoice_pdf
from billing.invoicing.preview import invoice_preview
from billing.models import Invoice
from contracts.catalog.services import catalog_load, rate_card_create_from_catalog
from contracts.rate_cards import price_update, rate_card_version_schedule
from contracts.services import contract_amend, contract_create

from .conftest import NOVEMBER, event, ingest, rate, tiered_card
from .invoice_support import HALFWAY, Clock, clock_set

D = Decimal
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
CLOSING = DECEMBER + timedelta(hours=25)  # past the 24 hours of grace
NOV = "2026-11-01 to 2026-11-30"


@pytest.fixture
def clock(now, monkeypatch) -> Clock:
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


def tokens(metric: str, label: str, quantity: str, rate: str | None, per: str | None) -> dict:
    return {"metric": metric, "label": label, "quantity": quantity, "rate": rate, "per": per}


def lines_of(invoice: Invoice) -> list[tuple]:
    return list(invoice.lines.values_list("kind", "description", "amount", "details"))


def closed(clock) -> Invoice:
    clock.now = CLOSING
    assert periods_close_due() == 1
    return Invoice.objects.get()


def test_a_standard_rate_line_says_the_display_name_and_its_tokens_at_their_rates(
    clock, acme, rate_card
):
    price = rate_card.versions.get().prices.get()
    price_update(price=price, display_name="GPT-4o")
    contract_create(customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    metrics = {"input_tokens": 1_200_000, "output_tokens": 300_000}
    ingest(event("a", datetime(2026, 11, 5, tzinfo=UTC), metrics=metrics))
    rate()
    preview = invoice_preview(customer=acme, at=clock.now)

    invoice = closed(clock)

    # 1,200,000 x 2.50/1M + 300,000 x 10.00/1M = 3.00 + 3.00 = 6.00; gpt-4o also charges
    # cached input, but none was sent, so it is not listed.
    expected = [
        tokens("input_tokens", "Input tokens", "1200000", "2.50", "1M tokens"),
        tokens("output_tokens", "Output tokens", "300000", "10.00", "1M tokens"),
    ]
    assert lines_of(invoice) == [("usage", "GPT-4o", D("6.00"), expected)]
    line = invoice.lines.get()
    assert (line.quantity, line.unit_price, line.exact_amount) == (D(1), D(6), D(6))
    assert invoice.total == D("6.00")
    # the preview says the same as closing
    assert [(shown.description, shown.details) for shown in preview.lines] == [("GPT-4o", expected)]


def test_a_tiered_line_lists_its_tokens_with_no_single_rate(clock, acme):
    version = tiered_card("Tiered", NOVEMBER)
    contract_create(customer=acme, starts_at=NOVEMBER, rate_card=version.rate_card, anchor_day=1)
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    metrics = {"input_tokens": 250_000}
    ingest(event("a", datetime(2026, 11, 5, tzinfo=UTC), model="embed-3", metrics=metrics))
    rate()

    invoice = closed(clock)

    # 250,000 input tokens = 250 units: 100 x 0.02 + 150 x 0.01 = 2.00 + 1.50 = 3.50, by
    # the tiers: no rate per token holds.
    assert lines_of(invoice) == [
        ("usage", "embeddings", D("3.50"),
         [tokens("input_tokens", "Input tokens", "250000", None, None)]),
    ]  # fmt: skip


def test_two_versions_in_one_period_are_told_apart_by_their_days(clock, acme, rate_card):
    price_update(price=rate_card.versions.get().prices.get(), display_name="GPT-4o")
    contract_create(customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    rate_card_version_schedule(
        rate_card=rate_card, effective_from=HALFWAY, prices=[{"name": "gpt-4o", "rates":
        {"rate_out": "8.00"}}],
    )  # fmt: skip
    clock.now = datetime(2026, 11, 25, tzinfo=UTC)
    million_out = {"output_tokens": 1_000_000}
    ingest(
        event("before", datetime(2026, 11, 5, tzinfo=UTC), metrics=million_out),
        event("after", datetime(2026, 11, 20, tzinfo=UTC), metrics=million_out),
    )
    rate()

    invoice = closed(clock)

    # 1M output at 10.00 under version 1 (to the 15th), at 8.00 under version 2 (the
    # display name copied into it): one terms segment, the days each version priced.
    assert lines_of(invoice) == [
        ("usage", "GPT-4o, 2026-11-01 to 2026-11-15", D("10.00"),
         [tokens("output_tokens", "Output tokens", "1000000", "10.00", "1M tokens")]),
        ("usage", "GPT-4o, 2026-11-16 to 2026-11-30", D("8.00"),
         [tokens("output_tokens", "Output tokens", "1000000", "8.00", "1M tokens")]),
    ]  # fmt: skip


def test_no_line_names_the_rate_card_its_version_markup_or_terms(clock, acme):
    catalog_load()
    card = rate_card_create_from_catalog(
        name="List price + 20%", markup=D("0.20"), models=["gpt-4o"], on=date(2026, 11, 1),
        effective_from=NOVEMBER,
    )  # fmt: skip
    contract = contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=card, anchor_day=1, fixed_fee=D("30"),
        included_allowance=D("1"), minimum_commitment=D("50"),
    )  # fmt: skip
    contract_amend(contract=contract, effective_from=HALFWAY, discount_percent=D("10"))
    clock.now = datetime(2026, 11, 25, tzinfo=UTC)
    ingest(
        event("a", datetime(2026, 11, 5, tzinfo=UTC), metrics={"input_tokens": 1_000_000}),
        event("b", datetime(2026, 11, 20, tzinfo=UTC), metrics={"input_tokens": 1_000_000}),
    )
    rate()

    invoice = closed(clock)

    # gpt-4o at list + 20 %: 3.00 per 1M input (2.50 x 1.2). Fees 15.00 + 15.00; usage 3.00
    # + 3.00; 10 % of the second 3.00 is 0.30; the allowance (1.00 a month) covers 1.00 of
    # the 5.70 left; the minimum of 50.00 tops 5.70 up by 44.30.
    assert [(kind, text, amount) for kind, text, amount, _ in lines_of(invoice)] == [
        ("fixed_fee", "Monthly fee, 2026-11-01 to 2026-11-15", D("15.00")),
        ("fixed_fee", "Monthly fee, 2026-11-16 to 2026-11-30", D("15.00")),
        ("usage", "gpt-4o, 2026-11-01 to 2026-11-15", D("3.00")),
        ("usage", "gpt-4o, 2026-11-16 to 2026-11-30", D("3.00")),
        ("discount", "Discount 10 % on usage, 2026-11-16 to 2026-11-30", D("-0.30")),
        ("allowance", f"Included usage allowance: 1.00 USD of 1.00 USD used, {NOV}", D("-1.00")),
        ("minimum", f"Top-up to the minimum commitment of 50.00 USD, {NOV}", D("44.30")),
    ]
    assert invoice.total == D("79.00")  # 30 + 6 - 0.30 - 1 + 44.30
    assert invoice.lines.filter(kind="usage").first().details == [
        tokens("input_tokens", "Input tokens", "1000000", "3.00", "1M tokens")
    ]
    pdf = PdfReader(BytesIO(invoice_pdf(invoice=invoice)))
    document = " ".join(page.extract_text() for page in pdf.pages)
    assert "gpt-4o, 2026-11-01 to 2026-11-15" in document
    for said in [document, *(f"{line.description} {line.details}" for line in invoice.lines.all())]:
        for internal in ("List price", "20%", "20 %", "v1", "terms", "amendment"):
            assert internal not in said, (internal, said)
