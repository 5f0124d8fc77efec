"""GET/PUT /api/v1/customers/{id}/alert-settings and GET /api/v1/customers/{id}/alerts."""

from decimal import Decimal

from wallets.models import AlertSettings, CreditGrant
from wallets.services import credit_grant, wallet_draw_down

URL = "/api/v1/customers/acme/alert-settings"
DEFAULTS = {
    "budget": None,
    "budget_shares": [50, 75, 90, 100],
    "credit_shares": [50, 75, 90, 100],
    "balance_below": None,
    "emails": "",
    "webhook_url": "",
    "topup_below": None,
    "topup_amount": None,
}


def test_a_customer_without_settings_has_the_defaults(acme, api):
    body = api.get(URL).json()

    assert {name: body[name] for name in DEFAULTS} == DEFAULTS
    assert AlertSettings.objects.count() == 0


def test_put_replaces_the_settings_and_answers_them(acme, api):
    api.put(URL, {"balance_below": "5", "emails": "ops@acme.example"}, format="json")

    answer = api.put(
        URL,
        {"budget": "250.50", "budget_shares": [80, 100], "webhook_url": "https://h.example/t"},
        format="json",
    )

    assert answer.status_code == 200
    body = answer.json()
    secret = AlertSettings.objects.get().webhook_secret
    assert body == {
        **DEFAULTS,
        "budget": "250.500000000000",
        "budget_shares": [80, 100],
        "webhook_url": "https://h.example/t",
        "webhook_secret": secret,
    }
    assert api.get(URL).json() == body
    saved = AlertSettings.objects.get()
    assert (saved.budget, saved.balance_below, saved.emails) == (Decimal("250.5"), None, "")


def test_wrong_settings_are_refused_and_nothing_is_stored(acme, api):
    answers = [
        api.put(URL, body, format="json")
        for body in (
            {"budget": 250.5},
            {"budget": "-1", "credit_shares": [0, 50]},
            {"topup_below": "10"},
            {"webhook_secret": "mine", "colour": "red"},
        )
    ]

    assert [answer.status_code for answer in answers] == [400, 400, 400, 400]
    assert [answer.json() for answer in answers] == [
        {"budget": ['Write the amount as a string, e.g. "500.00": money is never a JSON number.']},
        {
            "budget": ["Must be greater than 0."],
            "credit_shares": [
                "Give a list of whole percentages from 1 to 100, e.g. [50, 75, 90, 100]; an "
                "empty list [] turns these alerts off."
            ],
        },
        {"topup_amount": ["Set both the top-up threshold and amount, or neither."]},
        {"colour": ["Unknown field."]},
    ]
    assert AlertSettings.objects.count() == 0


def test_alerts_are_listed_newest_first_with_their_deliveries(acme, api):
    grant = credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    wallet_draw_down(wallet=grant.wallet, amount="8")

    body = api.get("/api/v1/customers/acme/alerts", {"limit": 1}).json()

    assert [(alert["share"], alert["amount"], alert["grant"]) for alert in body] == [
        (75, "8.000000000000", grant.pk)
    ]
    assert body[0]["message"] == "acme: 75 % of your 10.00 USD purchased credits used"
    assert [(d["channel"], d["target"], d["status"]) for d in body[0]["deliveries"]] == [
        ("email", "billing@acme.example", "pending")
    ]
    assert len(api.get("/api/v1/customers/acme/alerts").json()) == 2
    assert api.get("/api/v1/customers/acme/alerts", {"kind": "budget"}).json() == []


def test_unknown_customers_and_missing_keys_are_refused(db, api, client):
    assert api.get("/api/v1/customers/nobody/alerts").status_code == 404
    assert api.put("/api/v1/customers/nobody/alert-settings", {}, format="json").status_code == 404
    assert client.get("/api/v1/customers/nobody/alert-settings").status_code == 401
