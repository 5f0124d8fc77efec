"""Portal benchmark: the dashboard of a customer with a million events this period (target:
p99 under 100 ms), beside a trivial page and a ``SELECT 1`` measured in the same run.

Run from the project root (PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379):

    .venv/bin/python benchmarks/bench_portal.py             # about 3 minutes
    .venv/bin/python benchmarks/bench_portal.py --quick     # 100,000 events

What it does:

1. Drops and creates the PostgreSQL database ``tokentill_bench_portal``, migrates it,
   loads the price catalog and, through the real services, makes a rate card from it,
   "bench-big" on a monthly contract from the first of this month (a fee of 500.00, an
   allowance of 100.00, a minimum of 5,000.00) with 200.00 of prepaid credits, and a
   portal user of theirs, signed in (the session's cookie is printed back).
2. Usage: N events (default 1,000,000) from the period's start until a minute ago, over
   four models and three features, written and queued in SQL, then rated by two raters
   (``usage_rate_pending``, which draws the credits down and fills the per-day usage).
3. Pages through gunicorn (one sync worker, so requests are timed one at a time): after a
   warm-up, 200 requests each of the dashboard (``/portal/``), the dashboard over the
   last 30 days (``/portal/?range=30d``) and the login page (the reference: a page that
   reads nothing), and 200 ``SELECT 1`` round trips from this process: p50 and p99.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    RATER,
    Gunicorn,
    database_fresh,
    django_env,
    log_dir,
    machine_info,
    p50_p99_ms,
    pg_connect,
    python_run,
    shell_answer,
    summary_print,
    vacuum_analyze,
)

DB_NAME = "tokentill_bench_portal"
BIG = "bench-big"
TARGET_MS = 100.0
REQUESTS, WARM_UP = 200, 10

SEED = f"""
from decimal import Decimal
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from contracts.services import *
from contracts.rate_cards import *
from contracts.catalog.services import *
from portal.models import PortalUser
from wallets.services import credit_grant
now = timezone.now()
month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
card = rate_card_create_from_catalog(name="Bench list", markup=Decimal("0.20"))
card.versions.update(effective_from=month)
customer = customer_create(external_id="{BIG}", name="Bench Big", currency="USD",
                           email="billing@big.example")
contract_create(customer=customer, starts_at=month, rate_card=card, anchor_day=1,
                fixed_fee=Decimal("500"), included_allowance=Decimal("100"),
                minimum_commitment=Decimal("5000"))
credit_grant(customer=customer, amount="200", source="purchased")
user = get_user_model().objects.create_user("ada@big.example", "ada@big.example", "x")
PortalUser.objects.create(user=user, customer=customer, role="admin", invited_at=now)
print("BENCH-MONTH " + month.isoformat())
"""

# The portal user signed in: their session's key.
SIGN_IN = """
from django.test import Client
from portal.models import PortalUser
client = Client()
client.force_login(PortalUser.objects.get().user)
print("BENCH-SESSION " + client.cookies["sessionid"].value)
"""


def events_load(start: str, count: int) -> float:
    """`count` events of bench-big from `start` until a minute ago, written and queued."""
    started = time.perf_counter()
    models = "ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5', 'gemini-2.5-flash']"
    with pg_connect(DB_NAME) as conn:
        conn.execute(
            f"""
            INSERT INTO metering_usageevent (customer_id, event_id, timestamp, model, feature,
                metrics, properties, counting, provider, received_at, content_hash, seal_id)
            SELECT c.id, 'e-' || n,
                   %(start)s::timestamptz
                       + (n::float / %(count)s) * (now() - interval '1 minute' - %(start)s),
                   ({models})[1 + n %% 4], (ARRAY['chat', 'search', 'agent'])[1 + n %% 3],
                   jsonb_build_object('input_tokens', 200 + n %% 1800,
                                      'output_tokens', 50 + n %% 700,
                                      'cached_input_tokens', (n %% 5) * 300),
                   '{{}}'::jsonb, 'reported', '', now(), md5('e-' || n), gen_random_uuid()
            FROM contracts_customer c, generate_series(1, %(count)s) AS n
            WHERE c.external_id = %(big)s
            """,
            {"start": start, "count": count, "big": BIG},
        )
        conn.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent"
        )
        conn.commit()
    vacuum_analyze(DB_NAME)
    return time.perf_counter() - started


def timed_gets(port: int, path: str, session: str, count: int) -> tuple[list[float], int]:
    """`count` timed GETs of `path` on one kept-alive connection, after WARM_UP; the
    seconds each took and the size of the last answer. Anything but a 200 stops the run."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": f"sessionid={session}"}
    times, size = [], 0
    for n in range(WARM_UP + count):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise SystemExit(f"GET {path}: {answer.status}\n{body[:2000]!r}")
        if n >= WARM_UP:
            times.append(time.perf_counter() - started)
        size = len(body)
    conn.close()
    return times, size


def select_one() -> list[float]:
    with pg_connect(DB_NAME) as conn:
        times = []
        for n in range(WARM_UP + REQUESTS):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            if n >= WARM_UP:
                times.append(time.perf_counter() - started)
        return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="bench-big's events")
    parser.add_argument("--quick", action="store_true", help="100k events")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed requests a page")
    parser.add_argument("--keep", action="store_true", help="reuse the database of a run before")
    options = parser.parse_args()
    # A plain kill stops gunicorn too: SystemExit leaves its `with` block.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if options.quick:
        options.events = 100_000
    env = django_env(DB_NAME)
    figures = dict(machine_info())

    if options.keep:
        print(f"1-2. reusing {DB_NAME} as a run before left it ...", flush=True)
    else:
        print(f"1. setup: database {DB_NAME}, {BIG} and a portal user ...", flush=True)
        database_fresh(env, DB_NAME, ("load_price_catalog",))
        start = shell_answer(env, SEED, "BENCH-MONTH ")
        print(f"2. usage: {options.events:,} events written and queued ...", flush=True)
        loaded = events_load(start, options.events)
        started = time.perf_counter()
        rated = sum(rater["rated"] for rater in python_run(env, RATER, 2))
        took = time.perf_counter() - started
        print(f"   written in {loaded:.0f} s, {rated:,} rated in {took:.0f} s", flush=True)
        vacuum_analyze(DB_NAME)
        figures["events"] = f"{rated:,} rated this period"

    session = shell_answer(env, SIGN_IN, "BENCH-SESSION ")
    print("3. pages through gunicorn (1 sync worker) ...", flush=True)
    server = {"workers": 1, "worker_class": "sync", "threads": 1}
    with Gunicorn(env, server, log_dir()) as gunicorn:
        for name, path in (
            ("dashboard", "/portal/"),
            ("last 30 days", "/portal/?range=30d"),
            ("login page", "/portal/login/"),
        ):
            times, size = timed_gets(gunicorn.port, path, session, options.requests)
            p50, p99 = p50_p99_ms(times)
            verdict = ""
            if path.startswith("/portal/?") or path == "/portal/":
                verdict = f" (target p99 < {TARGET_MS:.0f} ms: "
                verdict += "met)" if p99 < TARGET_MS else "MISSED)"
            figures[name] = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {size:,} bytes{verdict}"
            print(f"   {name}: {figures[name]}", flush=True)
    p50, p99 = p50_p99_ms(select_one())
    figures["SELECT 1"] = f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    print(f"   SELECT 1: {figures['SELECT 1']}", flush=True)

    summary_print(figures, 12)
    print(json.dumps({"events": options.events}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
