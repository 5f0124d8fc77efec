"""Rating benchmark: throughput, memory, the usage endpoint, and ingest-to-money latency.

Run from the project root (PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379):

    .venv/bin/python benchmarks/bench_rating.py            # the full run (about 10 minutes)
    .venv/bin/python benchmarks/bench_rating.py --quick    # a smoke test (about 5 minutes)

``--rating-only`` stops after phase 2b, ``--latency-only`` runs phase 5 alone; ``--database``
and ``--broker`` name a PostgreSQL database (dropped and created) and a Redis database
(emptied) of your own, on a machine others share.

What it does, in order:

1. Drops and creates the PostgreSQL database (``tokentill_bench_rating``), migrates it,
   loads the price catalog, and through the real services creates a rate card from it
   (+20 %), six customers on monthly contracts whose current period started 10 days ago,
   a "bench-probe" customer, and an API key; "bench-big" gets 20 grants of 500.00 in
   prepaid credits, which its usage draws down as it is rated; 1,000 customers
   ("many-0000" on, ``--customers``) and ten probe customers ("bench-probe-0" on) on the
   same card with no allowance get 100,000.00 of credits each, so each rated event draws.
2. Backlog: N events (default 1,000,000) for one customer, spread over its current period,
   written straight into the log with one INSERT ... SELECT and queued for rating, as
   after a long downtime. Then R rater processes run ``usage_rate_pending`` at once until
   the queue is empty: events/s, and each rater's peak memory (ru_maxrss).
2b. The same over the 1,000 customers: M events (``--many-events``, default 200,000)
   spread over them in turn, rated by R raters: events/s, its ratio to phase 2's rate
   (target 0.7) and the raters' peak memory.
3. The usage endpoint for that customer (N events in the period), and its wallet
   endpoint, through gunicorn over HTTP: p50 and p99 of 200 reads each.
4. Re-rating preview of that period (reads all N events in bounded batches): time and
   peak memory.
5. Latency: gunicorn (3 sync workers) and Celery workers on Redis (db 12) run as in
   production: the raters' (the `rating` queue, 2 processes) and one process for the
   sealer and the rest (`sealing`, `celery`), so a seal run never holds up a rater.
   Four client threads POST batches of 500 fresh events, at the target rate in all
   (5,000 events/s), spread over the 1,000 customers; meanwhile three probes, each with
   probe customers of its own, send one event at a time (every 0.25 s at most) to their
   customers in turn, each with a feature of its own, and poll every 50 ms until that
   feature's money shows in the usage endpoint, then until the customer's balance has
   fallen (so a probe waits for the draw-down before its next event, and three of them
   give a p99 from more than a handful of events). Prints the achieved ingest rate, both
   latencies' p50/p99/max from the 202, and the raters' memory before and after the
   load and at their peak (VmHWM). The probes start 5 s into the load, once the raters
   have met every customer (the first moments measure a cold start, not the pace).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    CUSTOMERS,
    PRICED_MODELS,
    RATER,
    Api,
    CeleryWorker,
    Gunicorn,
    broker_flush,
    children_of,
    database_fresh,
    django_env,
    events_spread_sql,
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
TARGET_LATENCY_P99_S = 1.0
LOADERS, BATCH = 4, 500
POLL_SECONDS = 0.05  # the probe's reads cost the server CPU too: not more often than this
TARGET_ENDPOINT_MS = 50.0
TARGET_RATIO = 0.7  # rating over many customers with credits, against one customer's rate
#: Customers the probe's sample events go to: with credits and no allowance, and no other
#: usage, so a probe's money shows both in their usage and as a fall of their balance.
PROBES = [f"bench-probe-{n}" for n in range(10)]
PROBE_THREADS = 3  # each probes its own customers; more would load the server with reads
# The probes start this long after the load: the raters' first batches and draw-down pass
# meet a thousand customers' terms, prices and draw-down records for the first time.
WARM_UP_SECONDS = 5.0


def many_names(count: int) -> list[str]:
    """The many customers with prepaid credits, the rating and latency load's."""
    return [f"many-{n:04d}" for n in range(count)]


def setup(env: dict, customers: int) -> str:
    database_fresh(env, DB_NAME, ("load_price_catalog",))
    many = [*many_names(customers), *PROBES]
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
for ext in {many!r}:  # with prepaid credits and no allowance: every rated event draws
    customer = customer_create(external_id=ext, name=ext, currency="USD")
    contract_create(customer=customer, starts_at=start - timedelta(days=30), rate_card=card,
                    anchor_day=start.day, fixed_fee=Decimal("100"))
    credit_grant(customer=customer, amount="100000", source="purchased")
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
    with pg_connect(DB_NAME) as conn:
        (customer,) = conn.execute(
            "SELECT id FROM contracts_customer WHERE external_id = %s", [BIG]
        ).fetchone()
        conn.execute(
            events_spread_sql(),
            {"ids": [customer], "count": 1, "events": events, "tag": "big-"},
        )
        conn.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent WHERE customer_id = %s",
            [customer],
        )
        conn.commit()
    vacuum_analyze(DB_NAME)
    return time.perf_counter() - started


def many_load(events: int, customers: int) -> float:
    """N events spread over the many customers in turn (as ingestion interleaves them),
    4 models and 3 features each, over their current period, written and queued in SQL;
    seconds taken."""
    started = time.perf_counter()
    with pg_connect(DB_NAME) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM contracts_customer WHERE external_id LIKE 'many-%%' ORDER BY id"
            ).fetchall()
        ][:customers]
        conn.execute(
            events_spread_sql(),
            {"ids": ids, "count": len(ids), "events": events, "tag": "many-"},
        )
        conn.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent WHERE event_id LIKE 'many-%%' "
            "ORDER BY id"
        )
        conn.commit()
    vacuum_analyze(DB_NAME)
    return time.perf_counter() - started


def ledger_count() -> int:
    with pg_connect(DB_NAME) as conn:
        return conn.execute("SELECT count(*) FROM wallets_ledgerentry").fetchone()[0]


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


def load_run(
    port: int,
    key: str,
    rate: int,
    seconds: float,
    stop: threading.Event,
    sent: list,
    customers: list[str],
):
    """POST batches of BATCH fresh events at `rate` events/s until `seconds` pass, spread
    over `customers` in turn."""
    api, batch, number, mine = Api(port, key), BATCH, 0, 0
    interval = batch / rate
    offset = threading.get_ident() % len(customers)
    started = time.perf_counter()
    while not stop.is_set() and time.perf_counter() - started < seconds:
        moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        events = []
        for _ in range(batch):
            number += 1
            events.append(
                {
                    "event_id": f"load-{threading.get_ident()}-{number}",
                    "customer_id": customers[(offset + number) % len(customers)],
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


def probe_run(
    port: int,
    key: str,
    stop: threading.Event,
    latencies: list[float],
    drawn: list[float],
    probe: int = 0,
) -> None:
    """One probe event every 0.25 s (or as soon as the last one showed) until `stop`, to
    each of probe number `probe`'s customers (every PROBE_THREADS-th of PROBES) in turn:
    the time from the 202 (the ingest committed) until its money shows in the customer's
    usage (its rollup), and until their balance has fallen by it (the draw-down)."""
    api, number, customers = Api(port, key), -1, PROBES[probe::PROBE_THREADS]
    stop.wait(WARM_UP_SECONDS)
    while not stop.is_set():
        number += 1
        customer = customers[number % len(customers)]
        feature = f"probe-{probe}-{number}"
        _, body = api.call("GET", f"/api/v1/customers/{customer}/wallet")
        balance = Decimal(json.loads(body)["balance"])
        event = {
            "event_id": feature,
            "customer_id": customer,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "model": "gpt-4o",
            "feature": feature,
            "metrics": {"input_tokens": 1000, "output_tokens": 500},
        }
        status, answer = api.call("POST", "/api/v1/events", json.dumps(event).encode())
        assert status == 202, answer[:300]
        accepted = time.perf_counter()
        shown = False
        while True:
            waited = time.perf_counter() - accepted
            if not shown:
                _, body = api.call("GET", f"/api/v1/customers/{customer}/usage")
                usage = json.loads(body)
                if any(g["name"] == feature and g["events"] for g in usage["by_feature"]):
                    latencies.append(waited)
                    shown = True
            if shown:
                _, body = api.call("GET", f"/api/v1/customers/{customer}/wallet")
                if Decimal(json.loads(body)["balance"]) < balance:
                    drawn.append(time.perf_counter() - accepted)
                    break
            if waited > 30:
                latencies += [] if shown else [float("inf")]
                drawn.append(float("inf"))
                break
            time.sleep(POLL_SECONDS)
        time.sleep(max(0.0, 0.25 - (time.perf_counter() - accepted)))


def memory_mb(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def worker_memory(worker: CeleryWorker) -> list[tuple[float, float]]:
    """The Celery worker's pool processes (the raters): each one's RSS now and its peak."""
    assert worker.proc is not None
    return [memory_mb(pid) for pid in children_of(worker.proc.pid)]


def latency_measure(key: str, rate: int, seconds: float, logdir: Path, customers: int) -> dict:
    env = django_env(DB_NAME, CELERY_BROKER_URL=BROKER)
    broker_flush(BROKER, capture_output=True)
    names = many_names(customers)
    with (
        CeleryWorker(env, logdir, queues=("rating",)) as worker,
        CeleryWorker(env, logdir, queues=("sealing", "celery"), concurrency=1),
        Gunicorn(env, {"worker_class": "sync", "workers": 3, "threads": 1}, logdir) as server,
    ):
        time.sleep(3)  # the worker connects to the broker
        stop, sent, latencies, drawn = threading.Event(), [], [], []
        loaders = [  # four, so that a slow answer does not hold the rate back
            threading.Thread(
                target=load_run,
                args=(server.port, key, rate // LOADERS, seconds, stop, sent, names),
            )
            for _ in range(LOADERS)
        ]
        probes = [
            threading.Thread(
                target=probe_run, args=(server.port, key, stop, latencies, drawn, number)
            )
            for number in range(PROBE_THREADS)
        ]
        memory_before = worker_memory(worker)
        started = time.perf_counter()
        for thread in [*loaders, *probes]:
            thread.start()
        for thread in loaders:
            thread.join()  # they stop after `seconds`
        elapsed = time.perf_counter() - started
        stop.set()
        for thread in probes:
            thread.join()
        memory_after = worker_memory(worker)
    return {
        "ingested_per_s": sum(sent) / elapsed,
        "latencies": latencies,
        "drawn": drawn,
        "rss_before": max(now for now, _ in memory_before),
        "rss_after": max(now for now, _ in memory_after),
        "rss_peak": max(peak for _, peak in memory_after),
    }


def backlog_phase(env: dict, options) -> tuple[str, float]:
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
    figure = (
        f"{rated / seconds:,.0f} events/s with {options.raters} raters, peak {peak:.0f} MB each"
    )
    return figure, rated / seconds


def many_phase(env: dict, options, single: float) -> str:
    customers = options.customers
    print(
        f"2b. backlog over {customers:,} customers with credits: {options.many_events:,} "
        "events queued ...",
        flush=True,
    )
    loaded = many_load(options.many_events, customers)
    print(f"   written, queued and analysed in {loaded:.1f} s; {options.raters} raters start")
    entries = ledger_count()
    started = time.perf_counter()
    raters = python_run(env, RATER, options.raters)
    seconds = time.perf_counter() - started
    vacuum_analyze(DB_NAME)
    rated = sum(rater["rated"] for rater in raters)
    peak = max(rater["max_rss_mb"] for rater in raters)
    rate = rated / seconds
    ratio = rate / single
    print(
        f"   rated {rated:,} events in {seconds:.1f} s; {ledger_count() - entries:,} ledger "
        "entries drawn",
        flush=True,
    )
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    return (
        f"{rate:,.0f} events/s over {customers:,} customers with credits, {options.raters} "
        f"raters, peak {peak:.0f} MB each; {ratio:.2f} of one customer's {single:,.0f} events/s "
        f"(target >= {TARGET_RATIO}): {verdict}"
    )


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
    print(
        f"5. latency at {options.rate:,} events/s over {options.customers:,} customers with "
        f"credits for {options.seconds:.0f} s ...",
        flush=True,
    )
    result = latency_measure(key, options.rate, options.seconds, logdir, options.customers)
    latencies, drawn, rate = result["latencies"], result["drawn"], result["ingested_per_s"]
    lat50, lat99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    drawn50, drawn99 = percentile(drawn, 0.5), percentile(drawn, 0.99)
    met = lat99 < TARGET_LATENCY_P99_S and rate >= 0.95 * options.rate
    return (
        f"{len(latencies)} probes at {rate:,.0f} events/s ingested over {options.customers:,} "
        f"customers: ingest to money in usage p50 {lat50 * 1000:.0f} ms, p99 {lat99 * 1000:.0f} "
        f"ms, max {max(latencies) * 1000:.0f} ms (the slowest five: "
        f"{', '.join(f'{s * 1000:.0f}' for s in sorted(latencies)[-5:])} ms; p90 "
        f"{percentile(latencies, 0.9) * 1000:.0f} ms; target p99 < "
        f"{TARGET_LATENCY_P99_S * 1000:.0f}"
        f" ms at {options.rate:,}): {'met' if met else 'MISSED'}; in the balance p50 "
        f"{drawn50 * 1000:.0f} ms, p99 {drawn99 * 1000:.0f} ms; rater processes' RSS "
        f"{result['rss_before']:.0f} MB before, {result['rss_after']:.0f} MB after, peak "
        f"{result['rss_peak']:.0f} MB"
    )


def main() -> int:
    global DB_NAME, BROKER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=1_000, help="with prepaid credits")
    parser.add_argument("--many-events", type=int, default=200_000, help="over --customers")
    parser.add_argument("--raters", type=int, default=2)
    parser.add_argument("--rate", type=int, default=5_000, help="ingest events/s")
    parser.add_argument("--seconds", type=float, default=40.0, help="latency phase length")
    parser.add_argument("--quick", action="store_true", help="100k events, 15 s of load")
    parser.add_argument("--latency-only", action="store_true", help="set up, then phase 5")
    parser.add_argument("--rating-only", action="store_true", help="set up, then phase 2")
    parser.add_argument("--database", default=DB_NAME, help="dropped and created")
    parser.add_argument("--broker", default=BROKER, help="a Redis database, emptied")
    options = parser.parse_args()
    DB_NAME, BROKER = options.database, options.broker
    if options.quick:
        options.events, options.many_events, options.seconds = 100_000, 100_000, 15.0
    logdir = log_dir()
    env = django_env(DB_NAME)
    figures = dict(machine_info())

    print(f"1. setup: database {DB_NAME}, catalog rate card, contracts ...", flush=True)
    key = setup(env, options.customers)
    if not options.latency_only:
        figures["rating"], single = backlog_phase(env, options)
        figures["rating many"] = many_phase(env, options, single)
        if not options.rating_only:
            figures["endpoint"] = endpoint_phase(env, key, logdir, options)
            figures["re-rating"] = preview_phase(env)
    if not options.rating_only:
        figures["latency"] = latency_phase(key, logdir, options)

    summary_print(figures, 11)
    return 0


if __name__ == "__main__":
    sys.exit(main())
