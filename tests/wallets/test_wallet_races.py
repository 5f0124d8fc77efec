"""Draw-downs racing for the last credits, and a grant sent twice at once, on PostgreSQL with
real threads."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from common.models import AuditEntry
from wallets.models import CreditGrant, Wallet
from wallets.services import InsufficientCredits, credit_grant, wallet_draw_down

from .test_wallets import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)
THREADS, EACH = 20, 10  # 200 draw-downs of 10.00 against 1,000.00: exactly 100 can succeed


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")


def test_200_draw_downs_race_for_1000_and_exactly_100_succeed(acme):
    # given 1,000.00 in two grants
    credit_grant(customer=acme, amount="600.00", source=CreditGrant.Source.PURCHASED)
    wallet = credit_grant(customer=acme, amount="400.00", source=CreditGrant.Source.PROMOTIONAL)
    wallet = Wallet.objects.get()
    outcomes, barrier = [], threading.Barrier(THREADS)

    def draw(thread: int) -> None:
        try:
            barrier.wait(timeout=30)
            for attempt in range(EACH):
                try:
                    wallet_draw_down(
                        wallet=wallet, amount="10.00", reference=f"{thread}:{attempt}",
                        partial=False,
                    )  # fmt: skip
                    outcomes.append("drawn")
                except InsufficientCredits:
                    outcomes.append("refused")
        finally:
            connections.close_all()

    # when 20 threads draw 10 times each, all at once
    threads = [threading.Thread(target=draw, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then exactly 100 succeeded, the wallet is empty and never went below zero
    assert (outcomes.count("drawn"), outcomes.count("refused")) == (100, 100)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal(0)
    assert wallet.entries.filter(kind="draw_down").count() == 100
    assert len(set(wallet.entries.values_list("reference", flat=True))) == 101  # + the grants
    assert_consistent(wallet)


def test_two_identical_grants_with_one_idempotency_key_at_once_grant_once(acme, operator_key):
    """Two POSTs of the same grant under the same Idempotency-Key at the same instant: the
    second waits on the key's row for the first to commit, then answers as it did."""
    body = {"amount": "250.00", "source": "purchased", "reason": "PO 77"}
    answers, barrier = [], threading.Barrier(2)

    def send() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator_key}")
            barrier.wait(timeout=30)
            url = "/api/v1/customers/acme/wallet/grants"
            key = {"HTTP_IDEMPOTENCY_KEY": "po-77"}
            answers.append(client.post(url, body, format="json", **key))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [answer.status_code for answer in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert [answer.get("Idempotent-Replayed") for answer in answers].count("true") == 1
    grant = CreditGrant.objects.get()
    assert (grant.amount, answers[0].json()["id"]) == (Decimal("250"), grant.pk)
    wallet = Wallet.objects.get()
    assert (wallet.balance, wallet.entries.count()) == (Decimal("250"), 1)
    assert AuditEntry.objects.filter(action="credit_grant.create").count() == 1
    assert_consistent(wallet)
