"""The rate card's admin page: who is on the card, and which price a call gets."""

from django.urls import reverse

from contracts.rate_cards import price_create
from contracts.services import contract_create, customer_create
from pricing.matching import Selector, selectors_competing

from .contract_support import card_create, utc

RATES = {"rate_in": {"amount": "1", "per": 1_000_000}}


def test_competing_selectors_name_the_winner_and_why():
    selectors = [
        Selector("gpt-4o*"),
        Selector("gpt-4o-mini"),
        Selector("claude-*"),
        Selector("gpt-4o*", feature="chat"),
        Selector("gpt-4*"),
        Selector("gpt-4o*"),
    ]

    assert selectors_competing(selectors) == [
        (1, 0, "it has an exact model"),
        (3, 0, "it has a feature of its own"),
        (0, 4, "it has more literal characters"),
        (0, 5, "equally specific, it is listed first"),
        (1, 3, "it has an exact model"),
        (1, 4, "it has an exact model"),
        (1, 5, "it has an exact model"),
        (3, 4, "it has more literal characters"),
        (3, 5, "it has a feature of its own"),
        (5, 4, "it has more literal characters"),
    ]


def test_the_page_lists_the_customers_on_the_card_and_which_price_wins(admin_client):
    card = card_create("Standard")
    other = card_create("Other")
    version = card.versions.get()
    price_create(
        version=version, name="GPT-4o family", model_pattern="gpt-4o*", rates=RATES,
        formula="input_tokens * rate_in",
    )  # fmt: skip
    price_create(
        version=version, name="Mini", model_pattern="gpt-4o-mini", rates=RATES,
        formula="input_tokens * rate_in",
    )  # fmt: skip
    for external_id, rate_card in (("acme", card), ("globex", other)):
        customer = customer_create(external_id=external_id, name=external_id, currency="USD")
        contract_create(customer=customer, starts_at=utc(2025, 2, 1), rate_card=rate_card)

    page = admin_client.get(reverse("admin:contracts_ratecard_change", args=[card.pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert "acme (acme)</a>" in text and "globex" not in text
    assert (
        "A call both “Mini” (gpt-4o-mini) and “GPT-4o family” (gpt-4o*) match gets “Mini”: "
        "it has an exact model." in text
    )
