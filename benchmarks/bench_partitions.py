"""What the monthly partitions and the key table cost the ingest statement (PostgreSQL).

Run from the project root:

    .venv/bin/python benchmarks/bench_partitions.py            # 60 rounds of 1,000 events
    .venv/bin/python benchmarks/bench_partitions.py --rounds 10

Two databases, migrated by the project: ``tokentill_bench_parts`` as it is (the log
partitioned by month, the key table beside it) and ``tokentill_bench_parts_plain``
migrated back to metering 0006 (one plain table with its unique (customer, event_id)
index: the reference). Each round stores one batch of 1,000 fresh events in each, in
alternating order, with the statement ingest runs: the production statement
(``metering.services._insert_sql``) on the partitioned database, the one it replaced on
the plain one; one transaction and commit per batch, the seal left out (it is the same
on both). Both databases share the machine and the moment, so other load weighs on both.
Prints events/s for each and their ratio.
"""

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime

import orjson
from harness import CUSTOMERS, ROOT, database_fresh, django_env, event_make, manage, pg_connect
from harness import shell_answer as answer

sys.path.insert(0, str(ROOT))  # metering.canonical is pure Python: no Django needed

from metering.canonical import event_content_hash

PARTITIONED, PLAIN = "tokentill_bench_parts", "tokentill_bench_parts_plain"

# The statement of metering/services.py before the partitions (one table, its unique index).
PLAIN_SQL = """
WITH numbered AS MATERIALIZED (
    SELECT nextval('metering_usageevent_id_seq'::regclass) AS id, {select}
    FROM ROWS FROM (json_to_recordset(%s::json) AS ({record}))
    WITH ORDINALITY AS r({select}, position) ORDER BY position),
inserted AS (
    INSERT INTO metering_usageevent (id, {select}, "received_at", "seal_id")
    SELECT id, {select}, %s, %s FROM numbered ORDER BY customer_id, event_id
    ON CONFLICT (customer_id, event_id) DO NOTHING RETURNING id, customer_id, event_id),
queued AS (INSERT INTO metering_unratedevent (event_id, customer_id)
    SELECT id, customer_id FROM inserted)
SELECT id, customer_id, event_id FROM inserted
"""
COLUMNS = {
    "customer_id": "bigint",
    "event_id": "text",
    "timestamp": "timestamptz",
    "model": "text",
    "feature": "text",
    "metrics": "jsonb",
    "properties": "jsonb",
    "counting": "text",
    "provider": "text",
    "content_hash": "text",
}
SEED = f"""
from contracts.services import customer_create
for external_id in {CUSTOMERS!r}:
    customer_create(external_id=external_id, name=external_id, currency="USD",
                    email=external_id + "@bench.example")
from metering.services import _insert_sql
print("SQL " + _insert_sql("postgresql"))
"""


def batch_rows(rng: random.Random, tag: str, customers: dict[str, int]) -> str:
    now = datetime.now(UTC)
    rows = []
    for number in range(1000):
        event = event_make(rng, f"{tag}-{number}", now)
        moment = datetime.fromisoformat(event["timestamp"])
        row = {
            "customer_id": customers[event["customer_id"]],
            "event_id": event["event_id"],
            "timestamp": event["timestamp"],
            "model": event["model"],
            "feature": event.get("feature", ""),
            "metrics": event["metrics"],
            "properties": event["properties"],
            "counting": "reported",
            "provider": "",
            "tokenizer": "",  # the production statement names these; the plain one does not
            "estimated": False,
        }
        row["content_hash"] = event_content_hash(
            customer_pk=row["customer_id"],
            event_id=row["event_id"],
            timestamp=moment,
            model=row["model"],
            feature=row["feature"],
            metrics=row["metrics"],
            properties=row["properties"],
            counting="reported",
            provider="",
        )
        rows.append(row)
    return orjson.dumps(rows).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=60)
    rounds = parser.parse_args().rounds
    print(f"load average at start: {os.getloadavg()}")
    statements = {}
    for name in (PARTITIONED, PLAIN):
        env = django_env(name, CELERY_BROKER_URL="")
        print(f"[1] database {name}: drop, create, migrate, seed", flush=True)
        database_fresh(env, name)
        if name == PLAIN:
            manage(env, "migrate", "metering", "0006")
        statements[name] = answer(env, SEED, "SQL ")
    select = ", ".join(f'"{column}"' for column in COLUMNS)
    record = ", ".join(f'"{column}" {kind}' for column, kind in COLUMNS.items())
    statements[PLAIN] = PLAIN_SQL.format(select=select, record=record)
    params = {
        PARTITIONED: lambda body, seal: [body, seal, datetime.now(UTC), seal],
        PLAIN: lambda body, seal: [body, datetime.now(UTC), seal],
    }

    connections = {name: pg_connect(name) for name in (PARTITIONED, PLAIN)}
    customers = {}
    for name, conn in connections.items():
        rows = conn.execute("SELECT external_id, id FROM contracts_customer").fetchall()
        customers[name] = dict(rows)
        conn.commit()
    rng = random.Random("bench-partitions")
    seconds = {PARTITIONED: 0.0, PLAIN: 0.0}
    print(f"[2] {rounds} rounds of 1,000 events into each, alternating", flush=True)
    for number in range(rounds):
        order = (PARTITIONED, PLAIN) if number % 2 == 0 else (PLAIN, PARTITIONED)
        for name in order:
            body = batch_rows(rng, f"r{number}-{name[-5:]}", customers[name])
            seal = os.urandom(16).hex()
            conn = connections[name]
            started = time.perf_counter()
            stored = conn.execute(statements[name], params[name](body, seal)).fetchall()
            conn.commit()
            seconds[name] += time.perf_counter() - started
            assert len(stored) == 1000, (name, len(stored))
    for conn in connections.values():
        conn.close()
    events = rounds * 1000
    partitioned, plain = events / seconds[PARTITIONED], events / seconds[PLAIN]
    print(f"plain table, unique index (reference)   {plain:>10,.0f} events/s")
    print(f"partitioned by month, key table         {partitioned:>10,.0f} events/s")
    print(f"partitioned / plain                     {partitioned / plain:>10.2f}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
