"""The event log is append-only, and its seal chain names the first thing that was changed."""

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.utils import InternalError, ProgrammingError

from metering.models import AppendOnlyError, EventSeal, UsageEvent
from metering.sealing import events_seal
from metering.selectors import event_log_verify
from metering.services import events_ingest
from tests.db_split import owner_connection
from tests.metering.test_ingest_api import an_event


@pytest.fixture
def logged(acme):
    """Three sealed batches: 2, 3 and 1 events."""
    for batch in (["a1", "a2"], ["b1", "b2", "b3"], ["c1"]):
        result = events_ingest(items=[an_event(event_id=event_id) for event_id in batch])
        assert result.count("accepted") == len(batch)
    events_seal()
    return acme


def tamper(sql: str, params) -> None:
    """Change a row as a database superuser would, past the append-only triggers: on the
    owner's connection (the runtime role may not), so the tests that tamper commit."""
    with owner_connection() as owner, owner.cursor() as cursor:
        if owner.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if owner.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_an_intact_log_verifies(logged, capsys):
    result = event_log_verify()

    assert (result.ok, result.seals, result.events) == (True, 3, 6)
    call_command("verify_event_log")
    assert "Event log intact: 3 seals, 6 events verified." in capsys.readouterr().out


def test_seals_chain_in_order(logged):
    seals = list(EventSeal.objects.order_by("sequence"))

    assert [seal.event_count for seal in seals] == [2, 3, 1]
    assert seals[0].previous_hash == "0" * 64
    assert [seal.previous_hash for seal in seals[1:]] == [seal.hash for seal in seals[:-1]]


@pytest.mark.django_db(transaction=True)
def test_an_edited_metric_is_named(logged):
    event = UsageEvent.objects.get(event_id="b2")
    tamper(
        f"UPDATE metering_usageevent SET metrics = {_json_param()} WHERE id = %s",  # noqa: S608
        ['{"input_tokens": 1, "output_tokens": 350, "cached_input_tokens": 1000}', event.pk],
    )

    result = event_log_verify()

    assert not result.ok
    assert result.problem == (
        f"event {event.pk} (event_id 'b2') no longer matches its content hash: "
        "it was changed after it was stored"
    )
    with pytest.raises(CommandError, match=f"event {event.pk} .event_id 'b2'"):
        call_command("verify_event_log")


@pytest.mark.django_db(transaction=True)
def test_an_edit_that_also_rewrites_the_content_hash_is_caught_by_the_seal(logged):
    from metering.canonical import event_content_hash

    event = UsageEvent.objects.get(event_id="b2")
    forged = event_content_hash(
        customer_pk=event.customer_id,
        event_id=event.event_id,
        timestamp=event.timestamp,
        model="gpt-4o-mini",
        feature=event.feature,
        metrics=event.metrics,
        properties=event.properties,
        counting=event.counting,
        provider=event.provider,
    )
    tamper(
        "UPDATE metering_usageevent SET model = %s, content_hash = %s WHERE id = %s",
        ["gpt-4o-mini", forged, event.pk],
    )

    result = event_log_verify()

    assert result.problem == "seal #2 no longer matches its events"


@pytest.mark.django_db(transaction=True)
def test_a_deleted_event_is_caught(logged):
    event = UsageEvent.objects.get(event_id="c1")
    tamper("DELETE FROM metering_usageevent WHERE id = %s", [event.pk])

    assert event_log_verify().problem == "seal #3 covers 1 events but 0 are stored"


def test_an_event_slipped_in_without_a_seal_is_caught(logged):
    sealed = UsageEvent.objects.get(event_id="c1")
    UsageEvent.objects.bulk_create(
        [
            UsageEvent(
                customer=sealed.customer,
                event_id="forged",
                timestamp=sealed.timestamp,
                model="gpt-4o",
                metrics={"input_tokens": 1},
                counting="reported",
                received_at=sealed.received_at,
                content_hash="f" * 64,
                seal_id=uuid.uuid4(),
            )
        ]
    )

    forged = UsageEvent.objects.get(event_id="forged")
    assert event_log_verify().problem == (
        f"event {forged.pk} has no valid seal and its batch awaits none"
    )


def test_the_model_refuses_updates_and_deletes(logged):
    event = UsageEvent.objects.get(event_id="a1")
    event.model = "changed"

    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        UsageEvent.objects.filter(pk=event.pk).update(model="changed")
    with pytest.raises(AppendOnlyError):
        UsageEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        EventSeal.objects.all().delete()
    assert UsageEvent.objects.get(event_id="a1").model == "gpt-4o"
    assert event_log_verify().ok


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE metering_usageevent SET model = 'changed'",
        "DELETE FROM metering_usageevent",
        "UPDATE metering_eventseal SET event_count = 0",
        "DELETE FROM metering_eventseal",
    ],
)
@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_updates_and_deletes_in_the_database(logged, sql):
    """Even the owner, who holds every privilege on the tables, is refused by the triggers
    (the runtime role is refused before them: tests/common/test_db_roles.py)."""
    if connection.vendor != "postgresql":
        pytest.skip("the append-only triggers are PostgreSQL's")

    refused = pytest.raises((InternalError, ProgrammingError), match="is append-only")
    with owner_connection() as owner, refused, owner.cursor() as cursor:
        cursor.execute(sql)

    assert UsageEvent.objects.filter(model="gpt-4o").count() == 6
    assert event_log_verify().ok


def _json_param() -> str:
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"
