"""Rating benchmark: throughput, memory, the usage endpoint, and ingest-to-money latency.

Run from the project root (PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379):

    .venv/bin/python benchmarks/bench_rating.py            # the full run (about 5 minutes)
    .venv/bin/python benchmarks/bench_rating.py --quick    # a smoke test (about a minute)

What it does, in order:

1. Drops and creates the PostgreSQL database ``tokentill_bench_rating``, migrates it, loads
   the price catalog, and through the real services creates a rate card from it (+20 %),
   six customers on monthly contracts whose current period started 10 days ago, a
   "bench-probe" customer, and an API key; "bench-big" gets 20 grants of 500.00 in
   prepaid credits, which its usage draws down as it is rated.
2. Backlog: N events (default 1,000,000) for one customer, spread over its current period,
   written straight into the log with one INSERT ... SELECT and queued for rating, as
   after a long downtime. Then R rater processes run ``usage_rate_pending`` at once until
   the queue is empty: events/s, and each rater's peak memory (ru_maxrss).
3. The usage endpoint for that customer (N events in the period), and its wallet
   endpoint, through gunicorn over HTTP: p50 and p99 of 200 reads each.
4. Re-rating preview of that period (reads all N events in bounded batches): time and
   peak memory.
5. Latency: gunicorn (3 sync workers) and a Celery worker on Redis (db 12, 2 processes)
   run as in production. Four client threads POST batches of 500 fresh events, at the
   target rate in all (5,000 events/s), for five customers; meanwhile a probe sends one
   event every 0.25 s for "bench-probe", each with a feature of its own, and polls the
   usage endpoint every 50 ms until that feature's money shows. Latency = from the 202
   answer to the first read that shows it. Prints the achieved ingest rate and the
   probes' p50/p99/max.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    CUSTOMERS,
    RATER,
    Api,
    CeleryWorker,
    Gunicorn,
    broker_flush,
    database_fresh,
    django_env,
    log_dir,
    machine_info,
    p50_p99_ms,
    percentile,
    pg_connect,
    python_run,
    shell_answer,
    summary_print,
    vacuum_analyze,
)

DB_NAME = "tokentill_bench_rating"
BIG = "bench-big"
PROBE = "bench-probe"
BROKER = "redis://127.0.0.1:6379/12"
PRICED_MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]
TARGET_LATENCY_P99_S = 1.0
LOADERS, BATCH = 4, 500
POLL_SECONDS = 0.05  # the probe's reads cost the server CPU too: not more often than this
TARGET_ENDPOINT_MS = 50.0


def setup(env: dict) -> str:
    database_fresh(env, DB_NAME, ("load_price_catalog",))
    code = f"""
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from contracts.models import Customer
from contracts.services import *
from contracts.rate_cards import *
from contracts.catalog.services import *
card = rate_card_create_from_catalog(name="Bench list +20%", markup=Decimal("0.20"))
start = (timezone.now() - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
card.versions.update(effective_from=start - timedelta(days=30))  # list prices since then
for ext in {[*CUSTOMERS, BIG, PROBE]!r}:
    customer = customer_create(external_id=ext, name=ext, currency="USD")
    contract_create(customer=customer, starts_at=start - timedelta(days=30), rate_card=card,
                    anchor_day=start.day, fixed_fee=Decimal("100"),
                    included_allowance=Decimal("50"))
_, key = api_key_create(name="rating benchmark")
from wallets.services import credit_grant
big = Customer.objects.get(external_id="bench-big")
for n in range(20):  # prepaid credits that its usage draws down as it is rated
    credit_grant(customer=big, amount="500", source="purchased", priority=n % 3,
                 expires_at=timezone.now() + timedelta(days=30 + n))
from billing.rating.rater import usage_rate_pending
usage_rate_pending()  # the new contracts' changes, applied before the backlog arrives
print("BENCH-KEY " + key)
"""
    return shell_answer(env, code, "BENCH-KEY ")


def backlog_load(events: int) -> float:
    """N events for BIG in its current period, written and queued in SQL; seconds taken."""
    started = time.perf_counter()
    models = "ARRAY[" + ", ".join(f"'{model}'" for model in PRICED_MODELS) + "]"
    with pg_connect(DB_NAME) as conn:
        (customer,) = conn.execute(
            "SELECT id FROM contracts_customer WHERE external_id = %s", [BIG]
        ).fetchone()
        conn.execute(
            f"""
            INSERT INTO metering_usageevent (customer_id, event_id, timestamp, model, feature,
                metrics, properties, counting, provider, received_at, content_hash, seal_id)
            SELECT %(customer)s, 'big-' || n,
                   now() - (n::float / %(events)s) * interval '9 days',
                   ({models})[1 + n %% 4], (ARRAY['chat', 'search', 'agent'])[1 + n %% 3],
                   jsonb_build_object('input_tokens', 200 + n %% 1800,
                                      'output_tokens', 50 + n %% 700,
                                      'cached_input_tokens', (n %% 5) * 300),
                   '{{}}'::jsonb, 'reported', '', now(), md5(n::text), gen_random_uuid()
            FROM generate_series(1, %(events)s) AS n
            """,
            {"customer": customer, "events": events},
        )
        conn.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent WHERE customer_id = %s",
            [customer],
        )
        conn.commit()
    vacuum_analyze(DB_NAME)
    return time.perf_counter() - started


PREVIEW = """
import json, resource, time, django
django.setup()
from django.utils import timezone
from billing.rating.rerating import period_rerate
from contracts.models import Customer
customer = Customer.objects.get(external_id=%r)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
diff = period_rerate(customer=customer, at=timezone.now())
print(json.dumps({"events": diff.events, "seconds": time.perf_counter() - started,
                  "changed": len(diff.changed), "rss_before_mb": rss_before,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def endpoint_measure(port: int, key: str, reads: int, path: str) -> tuple[list[float], dict]:
    api, times, body = Api(port, key), [], b""
    for _ in range(reads + 5):
        started = time.perf_counter()
        status, body = api.call("GET", path)
        times.append(time.perf_counter() - started)
        assert status == 200, body[:300]
    return times[5:], json.loads(body)


def load_run(port: int, key: str, rate: int, seconds: float, stop: threading.Event, sent: list):
    """POST batches of BATCH fresh events at `rate` events/s until `seconds` pass."""
    api, batch, number, mine = Api(port, key), BATCH, 0, 0
    interval = batch / rate
    started = time.perf_counter()
    while not stop.is_set() and time.perf_counter() - started < seconds:
        moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        events = []
        for _ in range(batch):
            number += 1
            events.append(
                {
                    "event_id": f"load-{threading.get_ident()}-{number}",
                    "customer_id": CUSTOMERS[number % len(CUSTOMERS)],
                    "timestamp": moment,
                    "model": PRICED_MODELS[number % len(PRICED_MODELS)],
                    "metrics": {"input_tokens": 800 + number % 900, "output_tokens": 200},
                }
            )
        status, answer = api.call("POST", "/api/v1/events", json.dumps({"events": events}).encode())
        assert status == 202, answer[:300]
        sent.append(batch)
        mine += 1
        delay = started + mine * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def probe_run(port: int, key: str, stop: threading.Event, latencies: list[float]) -> None:
    """One probe event every 0.25 s (or as soon as the last one showed) until `stop`."""
    api, number = Api(port, key), -1
    while not stop.is_set():
        number += 1
        feature = f"probe-{number}"
        event = {
            "event_id": f"probe-{number}",
            "customer_id": PROBE,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "model": "gpt-4o",
            "feature": feature,
            "metrics": {"input_tokens": 1000, "output_tokens": 500},
        }
        status, answer = api.call("POST", "/api/v1/events", json.dumps(event).encode())
        assert status == 202, answer[:300]
        accepted = time.perf_counter()
        while True:
            _, body = api.call("GET", f"/api/v1/customers/{PROBE}/usage")
            usage = json.loads(body)
            if any(g["name"] == feature and g["events"] for g in usage["by_feature"]):
                latencies.append(time.perf_counter() - accepted)
                break
            if time.perf_counter() - accepted > 30:
                latencies.append(float("inf"))
                break
            time.sleep(POLL_SECONDS)
        time.sleep(max(0.0, 0.25 - (time.perf_counter() - accepted)))


def latency_measure(key: str, rate: int, seconds: float, logdir: Path) -> dict:
    env = django_env(DB_NAME, CELERY_BROKER_URL=BROKER)
    broker_flush(BROKER, capture_output=True)
    with (
        CeleryWorker(env, logdir),
        Gunicorn(env, {"worker_class": "sync", "workers": 3, "threads": 1}, logdir) as server,
    ):
        time.sleep(3)  # the worker connects to the broker
        stop, sent, latencies = threading.Event(), [], []
        loaders = [  # four, so that a slow answer does not hold the rate back
            threading.Thread(
                target=load_run, args=(server.port, key, rate // LOADERS, seconds, stop, sent)
            )
            for _ in range(LOADERS)
        ]
        probe = threading.Thread(target=probe_run, args=(server.port, key, stop, latencies))
        started = time.perf_counter()
        for thread in [*loaders, probe]:
            thread.start()
        for thread in loaders:
            thread.join()  # they stop after `seconds`
        elapsed = time.perf_counter() - started
        stop.set()
        probe.join()
    return {"ingested_per_s": sum(sent) / elapsed, "latencies": latencies}


def backlog_phase(env: dict, options) -> str:
    print(f"2. backlog: {options.events:,} events queued ...", flush=True)
    loaded = backlog_load(options.events)
    print(f"   written, queued and analysed in {loaded:.1f} s; {options.raters} raters start")
    started = time.perf_counter()
    raters = python_run(env, RATER, options.raters)
    seconds = time.perf_counter() - started
    vacuum_analyze(DB_NAME)  # rollups were updated once per batch
    rated = sum(rater["rated"] for rater in raters)
    peak = max(rater["max_rss_mb"] for rater in raters)
    print(f"   rated {rated:,} events in {seconds:.1f} s", flush=True)
    return f"{rated / seconds:,.0f} events/s with {options.raters} raters, peak {peak:.0f} MB each"


def endpoint_phase(env: dict, key: str, logdir: Path, options) -> str:
    print(f"3. usage endpoint for {BIG} ({options.events:,} events in the period) ...")
    with Gunicorn(env, {"worker_class": "sync", "workers": 1, "threads": 1}, logdir) as server:
        times, usage = endpoint_measure(server.port, key, 200, f"/api/v1/customers/{BIG}/usage")
        wallet_times, wallet = endpoint_measure(
            server.port, key, 200, f"/api/v1/customers/{BIG}/wallet"
        )
    w50, w99 = p50_p99_ms(wallet_times)
    print(
        f"   wallet: balance {wallet['balance']} USD, {len(wallet['grants'])} live grants; "
        f"p50 {w50:.1f} ms, p99 {w99:.1f} ms (target p50 < 10 ms): "
        f"{'met' if w50 < 10 else 'MISSED'}",
        flush=True,
    )
    p50, p99 = p50_p99_ms(times)
    events = sum(group["events"] for group in usage["by_model"])
    print(f"   {events:,} events in the answer, total {usage['total']} USD", flush=True)
    verdict = "met" if p99 < TARGET_ENDPOINT_MS else "MISSED"
    return (
        f"usage p50 {p50:.1f} ms, p99 {p99:.1f} ms for {events:,} events "
        f"(target < {TARGET_ENDPOINT_MS:.0f} ms): {verdict}; wallet p50 {w50:.1f} ms, "
        f"p99 {w99:.1f} ms (target p50 < 10 ms): {'met' if w50 < 10 else 'MISSED'}"
    )


def preview_phase(env: dict) -> str:
    print("4. re-rating preview of that period ...", flush=True)
    (preview,) = python_run(env, PREVIEW % BIG)
    print(f"   {preview['changed']} lines changed", flush=True)
    return (
        f"{preview['events']:,} events in {preview['seconds']:.1f} s "
        f"({preview['events'] / preview['seconds']:,.0f} events/s), peak "
        f"{preview['max_rss_mb']:.0f} MB (after start-up {preview['rss_before_mb']:.0f} MB)"
    )


def latency_phase(key: str, logdir: Path, options) -> str:
    print(f"5. latency at {options.rate:,} events/s for {options.seconds:.0f} s ...", flush=True)
    result = latency_measure(key, options.rate, options.seconds, logdir)
    latencies, rate = result["latencies"], result["ingested_per_s"]
    lat50, lat99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    met = lat99 < TARGET_LATENCY_P99_S and rate >= 0.95 * options.rate
    return (
        f"{len(latencies)} probes at {rate:,.0f} events/s ingested: acceptance to money p50 "
        f"{lat50 * 1000:.0f} ms, p99 {lat99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"(target p99 < {TARGET_LATENCY_P99_S * 1000:.0f} ms at {options.rate:,}): "
        f"{'met' if met else 'MISSED'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--raters", type=int, default=2)
    parser.add_argument("--rate", type=int, default=5_000, help="ingest events/s")
    parser.add_argument("--seconds", type=float, default=40.0, help="latency phase length")
    parser.add_argument("--quick", action="store_true", help="100k events, 15 s of load")
    parser.add_argument("--latency-only", action="store_true", help="set up, then phase 5")
    options = parser.parse_args()
    if options.quick:
        options.events, options.seconds = 100_000, 15.0
    logdir = log_dir()
    env = django_env(DB_NAME)
    figures = dict(machine_info())

    print(f"1. setup: database {DB_NAME}, catalog rate card, contracts ...", flush=True)
    key = setup(env)
    if not options.latency_only:
        figures["rating"] = backlog_phase(env, options)
        figures["endpoint"] = endpoint_phase(env, key, logdir, options)
        figures["re-rating"] = preview_phase(env)
    figures["latency"] = latency_phase(key, logdir, options)

    summary_print(figures, 11)
    return 0


if __name__ == "__main__":
    sys.exit(main())
