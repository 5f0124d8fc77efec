"""The reference for single-event ingest: the least a WSGI app can do for the same write.

``bench_ingest.py`` serves this module under the same gunicorn settings as tokentill
(``gunicorn --pythonpath benchmarks ingest_reference:application``) and sends it the same
requests, so tokentill's requests/s can be printed beside it, with the ratio. No Django,
no DRF: a plain WSGI callable and one psycopg connection per worker, which for each
``POST /api/v1/events`` with one event:

1. checks ``Authorization: Bearer <key>`` as tokentill does (contracts.selectors.
   api_key_get_active): the key's shape, one indexed SELECT of the active key by its
   prefix, and a constant-time comparison of SHA-256 of the whole key with the stored hash;
   401 otherwise;
2. reads the body with orjson and computes the event's content hash
   (``metering.canonical.event_content_hash``, what the event log is verified with);
3. inserts the event's key and row as tokentill does, in one statement: ``INSERT ... ON
   CONFLICT (customer_id, event_id) DO NOTHING RETURNING`` into the key table that keeps
   ids unique across the monthly partitions, and the event row with the same columns for
   a new key (autocommit: the statement is its own transaction, one round trip). The
   customer's pk (in the row and its hash) comes from a map of all customers read once per
   worker, as tokentill keeps them per process (customer_ids_by_external_id);
4. answers 202 with tokentill's answer shape (``{"accepted": 1, "duplicates": 0, ...}``).

It leaves out what tokentill's endpoint also does, which is the difference the ratio
measures: validation of every field and its item-level answer, rate limiting, the rating
queue, the seal, middleware, logging. All its rows carry one seal id given by the
benchmark (``REFERENCE_SEAL_ID``), which seals them once the phase is over (untimed), so
the event log stays verifiable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metering.canonical import event_content_hash  # pure Python, no Django

KEY_PATTERN = re.compile(r"^tt_([a-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")  # contracts.models
SEAL_ID = uuid.UUID(os.environ.get("REFERENCE_SEAL_ID", "00000000-0000-0000-0000-000000000000"))
KEY_QUERY = "SELECT id, key_hash FROM contracts_apikey WHERE prefix = %s AND revoked_at IS NULL"
# As tokentill's insert: the key table (customer, event_id), which keeps ids unique across
# the event log's monthly partitions, decides; the event follows only when its key was new.
INSERT = (
    "WITH keyed AS (INSERT INTO metering_usageeventkey "
    "(customer_id, event_id, event_pk, seal_id, timestamp, content_hash) "
    "VALUES (%(customer)s, %(event_id)s, "
    "nextval('metering_usageevent_id_seq'::regclass), %(seal)s, %(timestamp)s, "
    "%(hash)s) ON CONFLICT (customer_id, event_id) DO NOTHING RETURNING event_pk) "
    "INSERT INTO metering_usageevent (id, customer_id, event_id, timestamp, model, feature, "
    "metrics, properties, counting, provider, content_hash, received_at, seal_id) "
    "SELECT event_pk, %(customer)s, %(event_id)s, %(timestamp)s, %(model)s, %(feature)s, "
    "%(metrics)s, %(properties)s, 'reported', '', %(hash)s, %(received)s, %(seal)s "
    "FROM keyed RETURNING id"
)
ACCEPTED = b'{"accepted":1,"duplicates":0,"rejected":0,"items":[{"index":0,"event_id":%s,'
DUPLICATE = b'{"accepted":0,"duplicates":1,"rejected":0,"items":[{"index":0,"event_id":%s,'
STATUS = {ACCEPTED: b'"status":"accepted"}]}', DUPLICATE: b'"status":"duplicate"}]}'}
JSON = [("Content-Type", "application/json")]

_connection: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    """One connection per worker process, opened on its first request and kept; in
    autocommit, since each request runs one SELECT and one INSERT (no BEGIN, no COMMIT)."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return _connection


def key_valid(header: str, conn: psycopg.Connection) -> bool:
    scheme, _, key = header.partition(" ")
    match = KEY_PATTERN.match(key.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        return False
    row = conn.execute(KEY_QUERY, (match.group(1),)).fetchone()
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    return row is not None and hmac.compare_digest(row[1], digest)


def answer(start_response, status: str, body: bytes) -> list[bytes]:
    start_response(status, [*JSON, ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST" or environ["PATH_INFO"] != "/api/v1/events":
        return answer(start_response, "405 Method Not Allowed", b'{"detail":"POST only"}')
    conn = connection()
    try:
        if not key_valid(environ.get("HTTP_AUTHORIZATION", ""), conn):
            return answer(start_response, "401 Unauthorized", b'{"detail":"Invalid API key."}')
        length = int(environ.get("CONTENT_LENGTH") or 0)
        event = orjson.loads(environ["wsgi.input"].read(length))
        moment = datetime.fromisoformat(event["timestamp"])
        feature = event.get("feature", "")
        metrics, properties = event["metrics"], event.get("properties", {})
        customer_pk = customer_pks(conn).get(event["customer_id"])
        if customer_pk is None:
            return answer(start_response, "422 Unprocessable Entity", b'{"detail":"customer"}')
        content_hash = event_content_hash(
            customer_pk=customer_pk,
            event_id=event["event_id"],
            timestamp=moment,
            model=event["model"],
            feature=feature,
            metrics=metrics,
            properties=properties,
            counting="reported",
            provider="",
        )
        row = conn.execute(
            INSERT,
            {
                "customer": customer_pk,
                "event_id": event["event_id"],
                "timestamp": moment,
                "model": event["model"],
                "feature": feature,
                "metrics": orjson.dumps(metrics).decode(),
                "properties": orjson.dumps(properties).decode(),
                "hash": content_hash,
                "received": datetime.now(UTC),
                "seal": SEAL_ID,
            },
        ).fetchone()
    except psycopg.OperationalError:
        conn.close()  # a connection lost: the next request opens another
        raise
    head = ACCEPTED if row else DUPLICATE
    body = head % orjson.dumps(event["event_id"]) + STATUS[head]
    return answer(start_response, "202 Accepted", body)


_customers: dict[str, int] = {}


def customer_pks(conn: psycopg.Connection) -> dict[str, int]:
    """The customers' pks by external id, read once per worker (they never change here)."""
    if not _customers:
        rows = conn.execute("SELECT external_id, id FROM contracts_customer").fetchall()
        _customers.update(rows)
    return _customers
