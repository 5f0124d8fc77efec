"""The customer page holds the whole customer: what each section shows, to the cent and
worked out by hand, and that a staff member without the permissions sees no action and
cannot act."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.auth.models import Permission, User

from billing.invoicing.closing import periods_close_due
from billing.invoicing.credit_notes import credit_note_issue
from billing.models import CreditNote, Invoice
from billing.rating.rater import usage_rate_pending
from contracts.models import Contract, Price, RateCardVersion
from contracts.services import contract_amend, contract_create
from metering.services import events_ingest
from tests.contracts.contract_support import card_create
from wallets.models import CreditGrant
from wallets.services import credit_grant

from .invoice_support import clock_set

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def send(event_id: str, at: datetime, model: str, metrics: dict) -> None:
    item = {"event_id": event_id, "customer_id": "acme", "timestamp": at.isoformat(),
            "model": model, "metrics": metrics}  # fmt: skip
    assert events_ingest(items=[item]).count("accepted") == 1


@pytest.fixture
def acme_set_up(monkeypatch, acme):
    """acme on Standard (gpt-4o at 2.50 in, 10.00 out per 1M) from 1 October: a fee of
    30.00, an allowance of 10.00 and a minimum of 50.00 a month; from 20 November 12.5 %
    off (nothing else changes). October: 10.00 of usage, invoiced (70.00), 2.50 credited.
    November so far: 15.00 of gpt-4o, one llama-3.3-70b call that Standard does not price,
    and 12.00 of credits granted."""
    clock = clock_set(monkeypatch, datetime(2026, 10, 15, tzinfo=UTC))
    card = card_create("Standard")
    contract = contract_create(
        customer=acme, starts_at=OCTOBER, rate_card=card, anchor_day=1,
        fixed_fee=Decimal("30"), included_allowance=Decimal("10"),
        minimum_commitment=Decimal("50"),
    )  # fmt: skip
    contract_amend(
        contract=contract, effective_from=datetime(2026, 11, 20, tzinfo=UTC),
        discount_percent=Decimal("12.5"), note="Volume discount",
    )  # fmt: skip
    send("oct-1", datetime(2026, 10, 10, tzinfo=UTC), "gpt-4o", {"input_tokens": 4_000_000})
    clock.now = NOW
    usage_rate_pending()
    assert periods_close_due(now=NOW) == 1
    october = Invoice.objects.get()
    credit_note_issue(invoice=october, amount=Decimal("2.50"), memo="Outage on 9 October",
                      destination=CreditNote.Destination.NONE, created_by="ops")  # fmt: skip
    credit_grant(customer=acme, amount="12.00", source=CreditGrant.Source.PURCHASED)
    november = datetime(2026, 11, 10, tzinfo=UTC)
    send("nov-1", november, "gpt-4o", {"input_tokens": 2_000_000})  # 5.00
    send("nov-2", november, "gpt-4o", {"output_tokens": 1_000_000})  # 10.00
    send("nov-3", november, "llama-3.3-70b", {"input_tokens": 1_000})
    usage_rate_pending()
    return card, october


def page_of(client, customer) -> str:
    response = client.get(f"/admin/contracts/customer/{customer.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, key: str) -> str:
    found = re.search(rf'<section[^>]* id="tt-{key}".*?</section>', html, re.S)
    assert found, f"no section {key}"
    return found.group(0)


def text(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def rows(fragment: str, part: str = "tbody") -> list[list[str]]:
    return [
        [text(cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for body in re.findall(rf"<{part}>(.*?)</{part}>", fragment, re.S)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def links(fragment: str) -> dict[str, str]:
    return {text(name): unescape(href) for href, name in
            re.findall(r'<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', fragment, re.S)}  # fmt: skip


def test_the_page_shows_the_contract_and_every_set_of_terms(admin_client, acme_set_up, acme):
    contracts = section(page_of(admin_client, acme), "contracts")

    assert rows(contracts) == [
        ["1 now", "2026-10-01 00:00", "Standard", "30.00 USD", "10.00 USD", "50.00 USD", "0 %",
         "arrears", ""],
        ["2", "2026-11-20 00:00", "Standard", "30.00 USD", "10.00 USD", "50.00 USD", "12.5 %",
         "arrears", "Volume discount"],
    ]  # fmt: skip
    assert "Monthly, open-ended; this period 2026-11-01 to 2026-11-30." in text(contracts)
    contract = Contract.objects.get()
    back = f"next=%2Fadmin%2Fcontracts%2Fcustomer%2F{acme.pk}%2Fchange%2F"
    assert {name: links(contracts)[name] for name in ("New contract", "Amend", "End")} == {
        "New contract": f"/admin/contracts/contract/add/?customer={acme.pk}&{back}",
        "Amend": f"/admin/contracts/contract/{contract.pk}/amend/?{back}",
        "End": f"/admin/contracts/contract/{contract.pk}/end/?{back}",
    }


def test_the_page_shows_the_period_so_far_as_closing_would_invoice_it(
    admin_client, acme_set_up, acme
):
    """Fee 30.00; usage 5.00 + 10.00 = 15.00; allowance used min(15, 10) = 10.00; true-up
    50 - 15 = 35.00; the credits paid the billable usage, 15 - 10 = 5.00; due
    30 + 15 - 10 + 35 - 5 = 65.00. The fee and allowance are cut at 20 November into
    19/30 and 11/30, which add up to the whole."""
    period = section(page_of(admin_client, acme), "period")

    assert rows(period) == [
        ["Fixed fees", "30.00 USD"],
        ["Usage", "15.00 USD"],
        ["Included allowance used", "-10.00 USD"],
        ["Minimum commitment true-up", "35.00 USD"],
        ["Prepaid credits applied", "-5.00 USD"],
    ]
    assert rows(period, "tfoot") == [["Amount due", "65.00 USD"]]
    assert "Period 2026-11-01 to 2026-11-30" in text(period)


def test_the_page_shows_the_wallet_with_its_live_grants(admin_client, acme_set_up, acme):
    wallet = section(page_of(admin_client, acme), "wallet")

    assert "Balance 7.00 USD Held 0.00 USD Available 7.00 USD" in text(wallet)
    assert rows(wallet) == [["Purchased", "12.00 USD", "7.00 USD", "0", "never"]]
    assert "No call holds credits now." in text(wallet)
    wallet_id = CreditGrant.objects.get().wallet_id
    back = f"next=%2Fadmin%2Fcontracts%2Fcustomer%2F{acme.pk}%2Fchange%2F"
    assert (links(wallet)["Grant credits"], links(wallet)["Adjust"]) == (
        f"/admin/wallets/wallet/grant/?customer={acme.pk}&{back}",
        f"/admin/wallets/wallet/{wallet_id}/adjust/?{back}",
    )


def test_the_page_shows_unpriced_usage_with_price_this(admin_client, acme_set_up, acme):
    card, _ = acme_set_up

    unpriced = section(page_of(admin_client, acme), "unpriced")

    assert rows(unpriced) == [
        ["2026-11-01 to 2026-11-30", "llama-3.3-70b", "any", "1",
         "Unpriced: no price of Standard v1 matches 'llama-3.3-70b'",
         "Price this (llama-3.3-70b on Standard)"],
    ]  # fmt: skip
    assert links(unpriced)["Price this (llama-3.3-70b on Standard)"] == (
        f"/admin/contracts/ratecard/{card.pk}/price/add-from/?model=llama-3.3-70b"
        f"&from=2026-11-01T00%3A00&next=%2Fadmin%2Fcontracts%2Fcustomer%2F{acme.pk}%2Fchange%2F"
    )


def test_the_page_shows_invoices_and_credit_notes(admin_client, acme_set_up, acme):
    """October: fee 30.00 + usage 10.00 - allowance 10.00 + true-up 50 - 10 = 40.00."""
    _, october = acme_set_up
    note = CreditNote.objects.get()

    invoices = section(page_of(admin_client, acme), "invoices")

    assert rows(invoices) == [
        [october.number, "2026-10-01 to 2026-10-31", "70.00 USD", "Finalized"],
        [note.number, october.number, "2.50 USD", "Goodwill", "2026-11-15 12:00"],
    ]


def test_price_this_adds_the_price_from_the_period_start_and_comes_back(
    admin_client, acme_set_up, acme
):
    """Standard v1 has rated usage, so the price goes into a v2 from 1 November, a copy of
    v1 with llama last; acme's November is rated again and the call is priced: 1,000 input
    tokens at 1.00 per 1M is 0.001, so usage is 15.001 and the invoice's usage line 15.00."""
    card, _ = acme_set_up
    page = f"/admin/contracts/customer/{acme.pk}/change/"
    url = f"/admin/contracts/ratecard/{card.pk}/price/add-from/"
    query = f"?model=llama-3.3-70b&from=2026-11-01T00:00&next={page}"

    form = admin_client.get(url + query)
    assert form.context["form"]["model_pattern"].value() == "llama-3.3-70b"
    assert 'name="effective_from" value="2026-11-01T00:00"' in form.content.decode()
    response = admin_client.post(url + query, {
        "effective_from": "2026-11-01T00:00", "model_pattern": "llama-3.3-70b", "rate_in": "1.00",
        "other-TOTAL_FORMS": "0", "other-INITIAL_FORMS": "0", "currency": "USD",
    })  # fmt: skip

    assert (response.status_code, response["Location"]) == (302, page)
    v2 = RateCardVersion.objects.get(rate_card=card, number=2)
    assert v2.effective_from == datetime(2026, 11, 1, tzinfo=UTC)
    assert list(v2.prices.values_list("name", "position")) == [
        ("gpt-4o", 0), ("embeddings", 1), ("llama-3.3-70b", 2),
    ]  # fmt: skip
    usage_rate_pending()
    html = page_of(admin_client, acme)
    assert "All usage is priced." in text(section(html, "unpriced"))
    assert rows(section(html, "period"))[1] == ["Usage", "15.00 USD"]


# --- who may act --------------------------------------------------------------------------

VIEWING = ("view_customer", "view_contract", "view_wallet", "view_invoice", "view_usagerollup",
           "view_alert", "view_portaluser")  # fmt: skip


def staff_with(*codenames: str) -> User:
    user = User.objects.create_user("looker", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def stored() -> dict:
    return {
        "contracts": list(Contract.objects.values_list("pk", "ends_at")),
        "terms": Contract.objects.get().terms.count(),
        "grants": list(CreditGrant.objects.values_list("pk", "amount", "remaining")),
        "versions": RateCardVersion.objects.count(),
        "prices": Price.objects.count(),
    }


def test_a_staff_member_who_may_only_look_sees_every_section_and_no_action(
    client, acme_set_up, acme
):
    client.force_login(staff_with(*VIEWING))

    html = page_of(client, acme)

    keys = re.findall(r'<section class="module tt-section[^"]*" id="tt-([a-z]+)"', html)
    assert keys == ["contracts", "period", "wallet", "unpriced", "invoices", "alerts", "portal"]
    for action in ("New contract", "Amend", "End", "Grant credits", "Adjust", "Price this",
                   "Invite"):  # fmt: skip
        assert not any(name.startswith(action) for name in links(html)), action


def test_a_staff_member_who_may_only_see_the_customer_sees_no_section(client, acme_set_up, acme):
    client.force_login(staff_with("view_customer"))

    html = page_of(client, acme)

    assert "tt-section" not in html
    assert "Sections of this page" not in html


def test_a_staff_member_without_the_permissions_cannot_act(client, acme_set_up, acme):
    card, _ = acme_set_up
    client.force_login(staff_with(*VIEWING))
    contract = Contract.objects.get()
    wallet_id = CreditGrant.objects.get().wallet_id
    before = stored()

    answers = [
        client.post("/admin/contracts/contract/add/", {"customer": acme.pk}).status_code,
        client.post(f"/admin/contracts/contract/{contract.pk}/amend/", {}).status_code,
        client.post(f"/admin/contracts/contract/{contract.pk}/end/", {}).status_code,
        client.post("/admin/wallets/wallet/grant/",
                    {"customer": acme.pk, "amount": "5", "source": "purchased"}).status_code,
        client.post(f"/admin/wallets/wallet/{wallet_id}/adjust/",
                    {"amount": "5", "reason": "x"}).status_code,
        client.post(f"/admin/contracts/ratecard/{card.pk}/price/add-from/",
                    {"model_pattern": "llama-3.3-70b", "rate_in": "1.00"}).status_code,
    ]  # fmt: skip

    assert answers == [403] * 6
    assert stored() == before


def test_an_action_returns_to_the_page_it_was_opened_from_on_this_site_only(
    admin_client, acme_set_up, acme
):
    page = f"/admin/contracts/customer/{acme.pk}/change/"
    grant = {"customer": acme.pk, "amount": "1.00", "source": "purchased", "priority": "0"}

    home = admin_client.post(f"/admin/wallets/wallet/grant/?next={page}", grant)
    away = admin_client.post("/admin/wallets/wallet/grant/?next=https://elsewhere.example/", grant)

    wallet_id = CreditGrant.objects.first().wallet_id
    wallet_page = f"/admin/wallets/wallet/{wallet_id}/change/"
    assert [home["Location"], away["Location"]] == [page, wallet_page]
    assert CreditGrant.objects.count() == 3


def test_the_contract_form_offers_the_start_of_this_period(admin_client, acme_set_up, acme):
    """November is acme's period on 15 November; with no customer, the calendar month."""
    for customer in (acme.pk, ""):
        response = admin_client.get(f"/admin/contracts/contract/add/?customer={customer}")
        assert 'data-date="2026-11-01" data-time="00:00:00">Start of this period ' in (
            response.content.decode()
        )


def test_an_ended_contract_says_so_and_marks_no_terms_now(monkeypatch, admin_client, acme):
    clock_set(monkeypatch, NOW)
    contract_create(customer=acme, starts_at=datetime(2026, 2, 1, tzinfo=UTC),
                    ends_at=datetime(2026, 6, 1, tzinfo=UTC), rate_card=card_create("Standard"),
                    fixed_fee=Decimal("0.125"))  # fmt: skip

    contracts = section(page_of(admin_client, acme), "contracts")

    assert "Contract from 2026-02-01 00:00 UTC ended" in text(contracts)
    assert rows(contracts) == [
        ["1", "2026-02-01 00:00", "Standard", "0.125 USD", "0.00 USD", "0.00 USD", "0 %",
         "arrears", ""],
    ]  # fmt: skip
