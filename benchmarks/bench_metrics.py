"""Metrics benchmark: what a Prometheus scrape of ``/metrics`` costs, with the queues empty
and with a rating backlog, beside a page that reads nothing and a ``SELECT 1`` measured in
the same run.

Run from the project root (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/bench_metrics.py                  # about a minute
    .venv/bin/python benchmarks/bench_metrics.py --events 100000  # a smaller backlog

What it does:

1. Drops and creates the PostgreSQL database ``--db`` (default ``tokentill_bench_metrics``)
   and migrates it.
2. Starts gunicorn as production does for metrics (2 sync workers,
   ``-c python:config.gunicorn``, ``PROMETHEUS_MULTIPROC_DIR`` and
   ``TOKENTILL_METRICS_TOKEN`` set) and, after a warm-up, times 200 scrapes of
   ``/metrics``, 200 GETs of the login page (the reference: a page that reads nothing) and
   200 ``SELECT 1`` round trips from this process: p50 and p99.
3. Writes a backlog in SQL: ``--events`` events (default 500,000) waiting to be rated and
   ``--entries`` draw-down entries (default 20,000), then times the same three again.
"""

from __future__ import annotations

import argparse
import http.client
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Gunicorn,
    database_fresh,
    django_env,
    log_dir,
    machine_info,
    p50_p99_ms,
    pg_connect,
    shell_answer,
    summary_print,
    vacuum_analyze,
)

TOKEN = secrets.token_urlsafe(32)  # the scraper's, for this run only
REQUESTS, WARM_UP = 200, 10

CUSTOMER = """
from contracts.services import customer_create
customer = customer_create(external_id="bench-metrics", name="Bench", currency="USD",
                           email="billing@bench.test")
print("customer:", customer.pk)
"""


class MetricsGunicorn(Gunicorn):
    """The harness's gunicorn with the hooks /metrics needs under several workers."""

    def command(self) -> list[str]:
        base = super().command()
        return [base[0], "-c", "python:config.gunicorn", *base[1:]]


def timed_gets(port: int, path: str, headers: dict[str, str]) -> tuple[list[float], int]:
    """WARM_UP then REQUESTS GETs of `path` on one kept-alive connection: their durations
    and the size of the last answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, size = [], 0
    for number in range(WARM_UP + REQUESTS):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        body = answer.read()
        elapsed = time.perf_counter() - started
        if answer.status != 200:
            raise SystemExit(f"GET {path} answered {answer.status}: {body[:300]!r}")
        if number >= WARM_UP:
            times.append(elapsed)
        size = len(body)
    conn.close()
    return times, size


def select_one(db: str) -> list[float]:
    times = []
    with pg_connect(db) as conn:
        for number in range(WARM_UP + REQUESTS):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            if number >= WARM_UP:
                times.append(time.perf_counter() - started)
    return times


def backlog_write(env: dict, db: str, events: int, entries: int) -> None:
    """Events received over the last `events` ms, all waiting to be rated, and draw-down
    entries, written in SQL for a customer made by the service (the seal is not what is
    measured here)."""
    customer = int(shell_answer(env, CUSTOMER, "customer: "))
    with pg_connect(db, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO metering_usageevent (customer_id, event_id, timestamp, model,
                feature, metrics, properties, counting, provider, received_at, content_hash,
                seal_id)
            SELECT %s, 'b-' || n, now() - interval '1 hour', 'gpt-4o', '',
                '{"input_tokens": 1}', '{}', 'reported', '',
                now() - (%s - n) * interval '1 ms', md5(n::text) || md5(n::text),
                gen_random_uuid()
            FROM generate_series(1, %s) AS n
            """,
            [customer, events, events],
        )
        conn.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent"
        )
        conn.execute(
            "INSERT INTO billing_drawdowndue (customer_id, period_start) "
            "SELECT %s, date_trunc('month', now()) FROM generate_series(1, %s)",
            [customer, entries],
        )
    vacuum_analyze(db)


def phase(port: int, db: str, label: str) -> dict[str, str]:
    scrape, size = timed_gets(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    page, _ = timed_gets(port, "/portal/login/", {})
    ping = select_one(db)
    figures = {}
    for name, times in (("/metrics", scrape), ("login page", page), ("SELECT 1", ping)):
        p50, p99 = p50_p99_ms(times)
        figures[f"{label}: {name}"] = f"p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
        print(f"  {name:<12} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms", flush=True)
    print(f"  (a scrape is {size:,} bytes)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="tokentill_bench_metrics")
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--entries", type=int, default=20_000)
    options = parser.parse_args()

    for name, value in machine_info().items():
        print(f"{name:<12} {value}")
    with tempfile.TemporaryDirectory(prefix="tokentill-metrics-") as folder:
        env = django_env(
            options.db,
            TOKENTILL_METRICS_TOKEN=TOKEN,
            PROMETHEUS_MULTIPROC_DIR=folder,
            CELERY_BROKER_URL="",  # no broker: no queue depths to ask for, nothing queued
        )
        print(f"\n1. a fresh database {options.db}, migrated ...", flush=True)
        database_fresh(env, options.db)
        server = {"workers": 2, "worker_class": "sync", "threads": 1}
        figures: dict[str, str] = {}
        with MetricsGunicorn(env, server, log_dir()) as gunicorn:
            print("2. queues empty", flush=True)
            figures |= phase(gunicorn.port, options.db, "empty queues")
            print(
                f"3. {options.events:,} events waiting to be rated and "
                f"{options.entries:,} draw-down entries ...",
                flush=True,
            )
            backlog_write(env, options.db, options.events, options.entries)
            figures |= phase(gunicorn.port, options.db, "backlog")
    summary_print(figures, 28)


if __name__ == "__main__":
    main()
