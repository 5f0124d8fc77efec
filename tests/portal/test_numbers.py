"""The portal's numbers are the API's and the invoice's, to the cent.

NOW is 2026-11-15 12:00 UTC: 14.5 of November's 30 days have passed.
"""

import re
from decimal import Decimal as D

from pricing.money import money_round

from .conftest import logged_in, table, text_of


def cents(text: str) -> str:
    return f"{money_round(D(text), 'USD'):.2f}"


def label(text: str) -> str:
    """Money as the page writes a figure on its own: 27.01 USD."""
    return f"{cents(text)} USD"


def test_the_dashboard_shows_the_usage_apis_spend_allowance_and_the_wallets_credits(
    client, api, acme_viewer, usage
):
    usage_api = api.get("/api/v1/customers/acme/usage").json()
    wallet_api = api.get("/api/v1/customers/acme/wallet").json()

    page = logged_in(client, acme_viewer).get("/portal/")

    # Spend is usage after discount: 30.008755 - 3.0008755 = 27.0078795
    assert text_of(page, "spend") == label(D(usage_api["usage"]) - D(usage_api["discount"]))
    assert text_of(page, "spend") == "27.01 USD"
    assert text_of(page, "allowance-used") == label(usage_api["allowance"]["used"])
    assert text_of(page, "allowance-used") == "5.00 USD"
    assert text_of(page, "allowance-left") == label(usage_api["allowance"]["remaining"])
    assert text_of(page, "allowance-left") == "0.00 USD"
    # 50.00 of credits paid the billable usage: 27.0078795 - 5.00 allowance = 22.0078795
    assert text_of(page, "credits-balance") == label(wallet_api["balance"]) == "27.99 USD"
    assert text_of(page, "credits-available") == label(wallet_api["available"]) == "27.99 USD"


def test_the_projection_carries_the_usage_lines_and_applies_fee_discount_and_allowance(
    client, acme_viewer, usage
):
    page = logged_in(client, acme_viewer).get("/portal/")

    # The usage line is 30.01 (30.008755); 14.5 of 30 days: 30.01 x 30 / 14.5 = 62.0896...
    # -> 62.09; 10 % off: 6.209 -> 6.21; the allowance 5.00; the fee 30.00:
    # 30.00 + 62.09 - 6.21 - 5.00 = 80.88
    assert text_of(page, "projected") == "80.88 USD"


def test_the_dashboard_shows_the_budget_and_its_share(client, acme_viewer, acme, usage):
    from wallets.alerts import alert_settings_update

    alert_settings_update(customer=acme, budget=D("100"))

    page = logged_in(client, acme_viewer).get("/portal/")

    # Usage after discount, 27.0078795, against 100.00: 27 %
    assert text_of(page, "budget") == "100.00 USD"
    assert text_of(page, "budget-share") == "27 %"


def test_charts_by_model_feature_and_day_carry_their_amounts(client, acme_viewer, usage):
    html = logged_in(client, acme_viewer).get("/portal/dashboard/fragment").content.decode()

    # Before discount: by model gpt-4o 30.008755; by feature chat 20.00, search 10.008755
    assert "<title>gpt-4o: 30.01</title>" in html
    assert "<title>chat: 20.00</title>" in html
    assert "<title>search: 10.01</title>" in html
    # By day: two calls on the 3rd, one on the 14th, one on the 15th; every day of the
    # period up to today (the 15th) has its column
    assert "<title>2026-11-03: 20.00</title>" in html
    assert "<title>2026-11-14: 10.00</title>" in html
    assert "<title>2026-11-15: 0.01</title>" in html
    assert "<title>2026-11-02: 0.00</title>" in html
    assert html.count('<rect x="') == 1 + 2 + 15


def test_the_latest_events_are_listed_newest_first(client, acme_viewer, usage):
    page = logged_in(client, acme_viewer).get("/portal/")

    rows = table(page, "events")[1:]
    # Costs in the minor unit: 0.008755 is 0.01
    assert [row[:3] + row[5:] for row in rows] == [
        ["2026-11-15 11:00:00", "gpt-4o", "search", "0.01"],
        ["2026-11-14 08:00:00", "gpt-4o", "search", "10.00"],
        ["2026-11-03 10:00:00", "gpt-4o", "chat", "10.00"],
        ["2026-11-03 09:00:00", "gpt-4o", "chat", "10.00"],
    ]


def test_the_invoice_page_shows_the_invoice_apis_lines_and_total(
    client, api, acme_viewer, invoices
):
    number = invoices["acme"].number
    invoice_api = api.get(f"/api/v1/customers/acme/invoices/{number}").json()

    page = logged_in(client, acme_viewer).get(f"/portal/invoices/{number}/")

    rows = table(page, "invoice-lines")
    body, foot = rows[1:-3], rows[-3:]
    assert [(row[0], row[4]) for row in body] == [
        (str(line["position"]), line["amount"]) for line in invoice_api["lines"]
    ]
    # Each line's description, then a usage line's events and its tokens per metric
    assert [row[1].split(" (")[0] for row in body] == [
        line["description"] for line in invoice_api["lines"]
    ]
    usage = next(line for line in invoice_api["lines"] if line["kind"] == "usage")
    usage_row = body[invoice_api["lines"].index(usage)][1]
    for detail in usage["details"]:
        assert (
            f"{detail['label']}: {int(detail['quantity']):,} at {detail['rate']} USD" in usage_row
        )
    # The subtotal is the lines before the credits; the credits line is the last line
    credits = invoice_api["lines"][-1]
    assert credits["kind"] == "credits"
    subtotal = sum(D(line["amount"]) for line in invoice_api["lines"][:-1])
    assert foot == [
        ["Subtotal", f"{subtotal:.2f}"],
        ["Prepaid credits applied", credits["amount"]],
        ["Total", invoice_api["total"]],
    ]
    assert text_of(page, "invoice-total") == f"{invoice_api['total']} USD"
    # And the lines add up to the total, as billed
    assert sum(D(row[4]) for row in body) == D(invoice_api["total"])


def test_the_invoice_list_shows_each_total_as_the_api_does(client, api, acme_viewer, invoices):
    listed = api.get("/api/v1/customers/acme/invoices").json()["results"]

    page = logged_in(client, acme_viewer).get("/portal/invoices/")

    assert [(row[0], row[3]) for row in table(page, "")[1:]] == [
        (invoice["number"], f"{invoice['total']} USD") for invoice in listed
    ]


def test_the_wallet_page_shows_balance_grants_and_ledger(client, api, acme_viewer, usage):
    wallet_api = api.get("/api/v1/customers/acme/wallet").json()

    page = logged_in(client, acme_viewer).get("/portal/wallet/")

    assert text_of(page, "wallet-balance") == f"{cents(wallet_api['balance'])} USD"
    assert text_of(page, "wallet-available") == f"{cents(wallet_api['available'])} USD"
    assert table(page, "grants")[1:] == [["Purchased", "2026-11-15", "50.00", "27.99", "Never"]]
    ledger = table(page, "ledger")[1:]
    assert [row[1] for row in ledger][-1] == "Grant"
    # Billed money, as every page but a line's events: the grant's 50.00 and the draws of
    # 22.0078795 in all (the API's exact balance is 27.9921205), each to the cent
    assert wallet_api["balance"] == "27.992120500000"
    assert all(re.fullmatch(r"-?\d+\.\d\d", row[3]) for row in ledger)
    assert ledger[-1][3] == "50.00"
    assert sum(D(row[3]) for row in ledger) == D("27.99")


def test_the_ledger_is_paged(client, acme_viewer, acme, clock):
    from wallets.models import CreditGrant
    from wallets.services import credit_grant

    for _ in range(30):
        credit_grant(customer=acme, amount="1", source=CreditGrant.Source.PROMOTIONAL)
    client = logged_in(client, acme_viewer)

    first, second = client.get("/portal/wallet/"), client.get("/portal/wallet/?page=2")

    assert len(table(first, "ledger")) - 1 == 25
    assert len(table(second, "ledger")) - 1 == 5
    assert "Page 2 of 2" in second.content.decode()
