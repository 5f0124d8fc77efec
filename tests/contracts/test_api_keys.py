"""Operator API keys: authentication rules, storage, use tracking and the command."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from contracts import selectors as contract_selectors
from contracts.models import ApiKey, Customer
from contracts.services import api_key_create, api_key_revoke

from .support import T0, api_keys_snapshot, customers_snapshot

LIST_URL = "/api/v1/customers"
NEW_CUSTOMER = {"external_id": "acme", "name": "Acme Corp", "currency": "USD"}
BAD_HEADER = "Use 'Authorization: Bearer <API key>'."
BAD_KEY = "Invalid or revoked API key."


def client_with(authorization: str | None) -> APIClient:
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client


def test_a_valid_key_is_accepted(api):
    response = api.get(LIST_URL)

    assert response.status_code == 200


def test_no_authorization_header_is_401_with_a_bearer_challenge(db):
    response = client_with(None).post(LIST_URL, NEW_CUSTOMER, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert customers_snapshot() == []


def _wrong_secret(key: str) -> str:
    """The same key with the last character of its secret changed."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.mark.parametrize(
    ("make_header", "detail"),
    [
        pytest.param(lambda key: f"Basic {key}", BAD_HEADER, id="basic-scheme"),
        pytest.param(lambda key: f"Token {key}", BAD_HEADER, id="token-scheme"),
        pytest.param(lambda key: key, BAD_HEADER, id="no-scheme"),
        pytest.param(lambda key: "Bearer", BAD_HEADER, id="no-key"),
        pytest.param(lambda key: "Bearer   ", BAD_HEADER, id="blank-key"),
        pytest.param(lambda key: "Bearer not-a-key", BAD_KEY, id="malformed"),
        pytest.param(lambda key: f"Bearer {key[:20]}", BAD_KEY, id="truncated"),
        pytest.param(lambda key: f"Bearer {key.upper()}", BAD_KEY, id="upper-cased"),
        pytest.param(lambda key: "Bearer tt_zzzzzzzz_" + "a" * 43, BAD_KEY, id="unknown-prefix"),
        pytest.param(lambda key: f"Bearer {_wrong_secret(key)}", BAD_KEY, id="wrong-secret"),
    ],
)
def test_a_bad_credential_is_401_and_writes_nothing(operator_key, make_header, detail):
    keys_before = api_keys_snapshot()
    client = client_with(make_header(operator_key))

    read = client.get(LIST_URL)
    write = client.post(LIST_URL, NEW_CUSTOMER, format="json")

    for response in (read, write):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
        assert response.json() == {"detail": detail}
    assert customers_snapshot() == []
    assert api_keys_snapshot() == keys_before


def test_a_revoked_key_is_401_and_writes_nothing(clock, db):
    api_key, key = api_key_create(name="retired")
    api_key_revoke(api_key=api_key)
    keys_before = api_keys_snapshot()
    client = client_with(f"Bearer {key}")

    read = client.get(LIST_URL)
    write = client.post(LIST_URL, NEW_CUSTOMER, format="json")

    for response in (read, write):
        assert response.status_code == 401
        assert response.json() == {"detail": BAD_KEY}
    assert customers_snapshot() == []
    assert api_keys_snapshot() == keys_before
    assert keys_before[0]["last_used_at"] is None


def test_revoking_one_key_leaves_the_others_working(db):
    _, kept_key = api_key_create(name="kept")
    revoked, revoked_key = api_key_create(name="revoked")

    api_key_revoke(api_key=revoked)

    assert client_with(f"Bearer {kept_key}").get(LIST_URL).status_code == 200
    assert client_with(f"Bearer {revoked_key}").get(LIST_URL).status_code == 401


def test_the_key_is_stored_only_as_its_hash(db):
    api_key, key = api_key_create(name="ingest")
    secret = key.split("_", 2)[2]

    row = ApiKey.objects.filter(pk=api_key.pk).values().get()

    assert key.startswith(f"tt_{row['prefix']}_")
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert [
        column for column, value in row.items() if key in str(value) or secret in str(value)
    ] == []


def test_keys_are_distinct_and_well_formed(db):
    keys = [api_key_create(name=f"key {n}")[1] for n in range(20)]

    assert len(set(keys)) == 20
    assert len({key[3:11] for key in keys}) == 20
    assert all(len(key) == 3 + 8 + 1 + 43 for key in keys)


def test_last_used_at_is_set_on_first_use_and_at_most_once_a_minute(clock, db):
    api_key, key = api_key_create(name="ingest")
    client = client_with(f"Bearer {key}")
    assert api_key.last_used_at is None

    client.get(LIST_URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at == T0

    clock.advance(seconds=59)
    client.get(LIST_URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at == T0

    later = clock.advance(seconds=1)
    client.get(LIST_URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at == later


def test_create_api_key_command_prints_a_working_key_once(db):
    out, err = StringIO(), StringIO()

    call_command("create_api_key", "ingest-prod", stdout=out, stderr=err)

    key = out.getvalue().splitlines()[-1]
    api_key = ApiKey.objects.get()
    assert api_key.name == "ingest-prod"
    assert key.startswith(f"tt_{api_key.prefix}_")
    assert err.getvalue() == (
        f"Created API key “ingest-prod” (tt_{api_key.prefix}_…). Copy it now: it will not "
        "be shown again.\n"
    )
    assert key not in err.getvalue()
    response = client_with(f"Bearer {key}").post(LIST_URL, NEW_CUSTOMER, format="json")
    assert response.status_code == 201
    assert Customer.objects.get().external_id == "acme"


def test_create_api_key_command_requires_a_name(db):
    with pytest.raises(CommandError, match="the following arguments are required: name"):
        call_command("create_api_key")

    assert api_keys_snapshot() == []


def _revoked_by_another_process(api_key: ApiKey) -> None:
    """The row as another web process's api_key_revoke leaves it; this process's memory
    of the key is not told."""
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=T0)


def test_a_key_revoked_here_is_refused_at_once_though_it_was_just_used(
    db, django_capture_on_commit_callbacks
):
    api_key, key = api_key_create(name="retiring")
    client = client_with(f"Bearer {key}")
    # The first call records the key's first use, after which its row is read again once:
    # the second leaves it kept in this process.
    assert [client.get(LIST_URL).status_code for _ in range(2)] == [200, 200]

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=api_key)

    assert client.get(LIST_URL).status_code == 401


def test_a_key_revoked_by_another_process_is_refused_once_the_cache_seconds_pass(
    db, settings, monkeypatch
):
    settings.TOKENTILL_API_KEY_CACHE_SECONDS = 1.0
    now = [1000.0]
    monkeypatch.setattr(contract_selectors, "clock", lambda: now[0])
    api_key, key = api_key_create(name="retiring")
    client = client_with(f"Bearer {key}")
    # The first call records the key's first use, after which its row is read again once.
    assert [client.get(LIST_URL).status_code for _ in range(2)] == [200, 200]

    _revoked_by_another_process(api_key)
    now[0] += 0.999
    still_kept = client.get(LIST_URL)
    now[0] += 0.001
    refused = client.get(LIST_URL)

    assert still_kept.status_code == 200
    assert refused.status_code == 401
    assert refused.json() == {"detail": BAD_KEY}


def test_with_no_cache_seconds_every_call_reads_the_key(db, settings):
    settings.TOKENTILL_API_KEY_CACHE_SECONDS = 0
    api_key, key = api_key_create(name="retiring")
    client = client_with(f"Bearer {key}")
    assert client.get(LIST_URL).status_code == 200

    _revoked_by_another_process(api_key)

    assert client.get(LIST_URL).status_code == 401


def test_a_wrong_secret_is_refused_while_its_key_is_kept(db):
    _, key = api_key_create(name="kept")
    assert client_with(f"Bearer {key}").get(LIST_URL).status_code == 200

    response = client_with(f"Bearer {_wrong_secret(key)}").get(LIST_URL)

    assert response.status_code == 401
    assert response.json() == {"detail": BAD_KEY}
