"""Idempotency-Key on the POSTs that move money or create billing objects (Stripe's rule):
the same key and body answer as the first time and do nothing again; another body is 422;
a refused request keeps nothing; keys are per caller and kept TOKENTILL_IDEMPOTENCY_HOURS."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from common.idempotency import idempotency_keys_forget
from common.models import IdempotencyKey
from contracts.models import Customer
from contracts.services import api_key_create

ACME = {"external_id": "acme", "name": "Acme Corp", "currency": "USD"}


def create(api, body: dict, key: str = "k-1"):
    return api.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_answer_as_the_first_time_and_create_once(api):
    first = create(api, ACME)
    again = create(api, {"currency": "USD", "name": "Acme Corp", "external_id": "acme"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Customer.objects.count() == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(api):
    create(api, ACME)

    answer = create(api, {**ACME, "external_id": "globex", "name": "Globex"})

    assert answer.status_code == 422
    assert "used with another request" in answer.json()["detail"]
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["acme"]


def test_a_refused_request_keeps_nothing_and_its_key_serves_the_corrected_one(api):
    refused = create(api, {**ACME, "currency": "XXX"})

    assert refused.status_code == 400
    assert (IdempotencyKey.objects.count(), Customer.objects.count()) == (0, 0)
    assert create(api, ACME).status_code == 201


def test_keys_are_per_caller(api):
    _, other_key = api_key_create(name="another operator")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    create(api, ACME)

    # the other caller's "k-1" is its own: its request is done (and refused: acme exists)
    answer = create(other, ACME)

    assert answer.status_code == 400
    assert answer.json() == {"external_id": ["A customer with this external_id already exists."]}


def test_a_key_older_than_its_retention_counts_as_new(api, settings):
    settings.TOKENTILL_IDEMPOTENCY_HOURS = 24
    create(api, ACME)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    answer = create(api, ACME)

    assert answer.status_code == 400  # done again, and acme exists


def test_keys_are_forgotten_after_their_retention_and_never_before_24_hours(api, settings):
    settings.TOKENTILL_IDEMPOTENCY_HOURS = 1  # below the floor: 24 hours still
    create(api, ACME, key="old")
    create(api, {**ACME, "external_id": "globex"}, key="recent")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyKey.objects.filter(key="recent").update(
        created_at=timezone.now() - timedelta(hours=23)
    )

    assert idempotency_keys_forget() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]


@pytest.mark.parametrize("key", ["", " ", "x" * 256])
def test_a_key_that_is_empty_or_too_long_is_refused(api, key):
    answer = create(api, ACME, key=key)

    assert answer.status_code == 400
    assert answer.json() == {"detail": "Idempotency-Key must be 1 to 255 characters."}
    assert Customer.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_the_same_instant_create_one_object(operator_key):
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")
    barrier, answers = threading.Barrier(8), []

    def send() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator_key}")
            barrier.wait(timeout=30)
            answers.append(create(client, ACME, key="same-instant"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [answer.status_code for answer in answers] == [201] * 8
    assert len({answer.content for answer in answers}) == 1
    assert sum(answer.get("Idempotent-Replayed") == "true" for answer in answers) == 7
    assert Customer.objects.count() == 1
