"""Python client benchmark: events a second through the client (record, then flush) beside
a hand-written loop that POSTs the same batches, and what `record` costs its caller.

Run from the project root (PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379):

    .venv/bin/python benchmarks/bench_client.py
    .venv/bin/python benchmarks/bench_client.py --events 5000 --rounds 2   # quicker

What it does:

1. Drops and creates the PostgreSQL database ``tokentill_bench_client``, migrates it and
   creates the harness's customers and an API key.
2. Starts gunicorn (2 sync workers) and, in alternating rounds, sends ``--events``
   realistic events in batches of ``--batch``:
   a. the reference: one kept-alive connection POSTing each batch's JSON in turn, no
      queue, no thread, no retry (the least a service can do);
   b. the client: ``Tokentill.record`` for each event, then ``flush``.
   Each round prints events a second for both, and the client's as a share of the
   reference's, measured in the same round.
3. Times ``record`` alone (the caller's cost per event, the thread sending meanwhile)
   beside ``json.dumps`` of the same event, the least any client does per event.
4. Checks that every event sent is stored once.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    EVENTS_PATH,
    Api,
    Gunicorn,
    broker_flush,
    database_with_customers,
    django_env,
    event_make,
    log_dir,
    machine_info,
    shell_answer,
    summary_print,
)

from tokentill_client import Tokentill

DB_NAME = "tokentill_bench_client"


def events_make(count: int, prefix: str, seed: int) -> list[dict]:
    rng, now = random.Random(seed), datetime.now(UTC)
    return [event_make(rng, f"{prefix}-{n}", now) for n in range(count)]


def reference_send(port: int, key: str, events: list[dict], batch: int) -> float:
    """Seconds to POST every batch in turn over one kept-alive connection."""
    api = Api(port, key)
    started = time.perf_counter()
    for first in range(0, len(events), batch):
        body = json.dumps({"events": events[first : first + batch]}).encode()
        status, answer = api.call("POST", EVENTS_PATH, body)
        if status != 202 or json.loads(answer)["accepted"] != len(events[first : first + batch]):
            raise SystemExit(f"unexpected answer {status}: {answer[:300]!r}")
    return time.perf_counter() - started


def as_record(event: dict) -> dict:
    """The event as `record`'s arguments."""
    fields = dict(event)
    fields["timestamp"] = datetime.fromisoformat(fields["timestamp"])
    return fields


def client_send(url: str, key: str, events: list[dict], batch: int) -> tuple[float, float]:
    """Seconds to record every event and flush, and of them the seconds in `record`."""
    calls = [as_record(event) for event in events]
    failures: list = []
    client = Tokentill(key, url, batch_size=batch, on_error=failures.append)
    started = time.perf_counter()
    for fields in calls:
        client.record(**fields)
    recorded = time.perf_counter()
    if not client.flush(timeout=600):
        raise SystemExit("the client did not flush within 600 s")
    elapsed = time.perf_counter() - started
    client.close()
    counts = client.counts()
    if failures or counts["accepted"] != len(events):
        raise SystemExit(f"the client did not store every event: {counts}, {failures[:3]}")
    return elapsed, recorded - started


def dumps_seconds(events: list[dict]) -> float:
    started = time.perf_counter()
    for event in events:
        json.dumps(event)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="per round and sender")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    options = parser.parse_args()
    env = django_env(DB_NAME)
    figures = dict(machine_info())

    print(f"1. setup: database {DB_NAME}, customers, an API key ...", flush=True)
    key = database_with_customers(env, DB_NAME, "client benchmark")
    print(f"2. gunicorn (2 sync workers), {options.events:,} events a round ...", flush=True)
    ratios, ours, theirs, record_us, dumps_us = [], [], [], [], []
    with Gunicorn(env, {"worker_class": "sync", "workers": 2, "threads": 1}, log_dir()) as server:
        url = f"http://127.0.0.1:{server.port}"
        warm = events_make(500, "warm", 0)
        reference_send(server.port, key, warm, options.batch)
        for round_ in range(options.rounds):
            events = events_make(options.events, f"ref{round_}", round_ + 1)
            reference = options.events / reference_send(server.port, key, events, options.batch)
            events = events_make(options.events, f"cli{round_}", round_ + 1)
            elapsed, in_record = client_send(url, key, events, options.batch)
            client = options.events / elapsed
            ratios.append(client / reference)
            ours.append(client)
            theirs.append(reference)
            record_us.append(in_record / options.events * 1e6)
            dumps_us.append(dumps_seconds(events) / options.events * 1e6)
            print(
                f"   round {round_ + 1}: reference {reference:,.0f} events/s, client "
                f"{client:,.0f} events/s ({client / reference:.2f} of it); record "
                f"{record_us[-1]:.1f} µs an event, json.dumps {dumps_us[-1]:.1f} µs",
                flush=True,
            )
    broker_flush(env["CELERY_BROKER_URL"], capture_output=True)

    check = "from metering.models import UsageEvent as E; print('BENCH-COUNT', E.objects.count())"
    stored = int(shell_answer(env, check, "BENCH-COUNT "))
    expected = 500 + 2 * options.rounds * options.events
    verdict = "once each" if stored == expected else "WRONG"
    print(f"3. stored {stored:,} events of {expected:,} sent: {verdict}")
    if stored != expected:
        return 1
    figures["reference (hand-written loop)"] = f"{statistics.median(theirs):,.0f} events/s (median)"
    figures["client (record + flush)"] = (
        f"{statistics.median(ours):,.0f} events/s (median), "
        f"{statistics.median(ratios):.2f} of the reference (median of the rounds' ratios)"
    )
    figures["record, caller's cost"] = (
        f"{statistics.median(record_us):.1f} µs an event; json.dumps of it "
        f"{statistics.median(dumps_us):.1f} µs"
    )
    summary_print(figures, 30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
