"""Invoicing benchmark: closing the periods of 1,000 customers, and the invoice preview of a
customer with a million events (targets: under a minute; under 100 ms).

Run from the project root (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/bench_invoices.py            # about 4 minutes
    .venv/bin/python benchmarks/bench_invoices.py --quick    # 100k events for the preview

What it does:

1. Drops and creates the PostgreSQL database ``tokentill_bench_invoices``, migrates it,
   loads the price catalog and, through the real services, creates a rate card from it,
   1,000 customers on monthly contracts from the first of last month (a fixed fee, an
   allowance; every third amended mid-month with a discount, every second with prepaid
   credits) and "bench-big" on the same terms.
2. Usage: 100 events for each of the 1,000 customers in last month, and N events
   (default 1,000,000) for bench-big in this month, written and queued in SQL, then rated
   by two raters (``usage_rate_pending``, which also draws the credits down).
3. Closing: ``periods_close_due`` in a fresh process, as beat runs it: wall time, invoices
   made and peak memory (closing reads rollups, never events: memory stays flat).
4. Preview: ``invoice_draft`` of bench-big's current period, 50 times in one process
   after a warm-up: p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    RATER,
    database_fresh,
    django_env,
    machine_info,
    p50_p99_ms,
    pg_connect,
    python_run,
    shell_answer,
    summary_print,
    vacuum_analyze,
)

DB_NAME = "tokentill_bench_invoices"
BIG = "bench-big"
CUSTOMERS = 1_000
EVENTS_EACH = 100
TARGET_CLOSE_S, TARGET_PREVIEW_MS = 60.0, 100.0

SEED = f"""
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from contracts.services import *
from contracts.rate_cards import *
from contracts.catalog.services import *
from wallets.services import credit_grant
now = timezone.now()
this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
last_month = (this_month - timedelta(days=1)).replace(day=1)
card = rate_card_create_from_catalog(name="Bench list", markup=Decimal("0.20"))
card.versions.update(effective_from=last_month - timedelta(days=30))
for n in range({CUSTOMERS} + 1):
    ext = "{BIG}" if n == {CUSTOMERS} else f"c{{n:04d}}"
    customer = customer_create(external_id=ext, name=ext, currency="USD")
    contract = contract_create(customer=customer, starts_at=last_month, rate_card=card,
                               anchor_day=1, fixed_fee=Decimal("49"),
                               included_allowance=Decimal("5"))
    if n % 3 == 0:
        contract_amend(contract=contract, effective_from=last_month + timedelta(days=14),
                       discount_percent=Decimal("10"))
    if n % 2 == 0:
        credit_grant(customer=customer, amount="20", source="purchased")
from billing.rating.rater import usage_rate_pending
usage_rate_pending()
print("BENCH-MONTHS " + last_month.isoformat() + " " + this_month.isoformat())
"""

CLOSE = """
import json, resource, time, django
django.setup()
from billing.invoicing.closing import periods_close_due
from billing.models import Invoice
started = time.perf_counter()
closed = periods_close_due()
print(json.dumps({"closed": closed, "seconds": time.perf_counter() - started,
                  "invoices": Invoice.objects.count(),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PREVIEW = f"""
import json, time, django
django.setup()
from django.utils import timezone
from billing.invoicing.draft import invoice_draft
from billing.selectors import period_of
from contracts.models import Customer
customer = Customer.objects.get(external_id="{BIG}")
times = []
for n in range(55):
    started = time.perf_counter()
    now = timezone.now()
    start, end = period_of(customer=customer, at=now)
    draft = invoice_draft(customer=customer, start=start, end=end, at=now)
    times.append(time.perf_counter() - started)
events = sum(line.event_count for line in draft.lines if line.kind == "usage")
print(json.dumps({{"times": times[5:], "events": events, "lines": len(draft.lines),
                   "total": str(draft.total)}}))
"""


def events_load(sql_months: tuple[str, str], big_events: int) -> float:
    """100 events per customer last month, N for bench-big this month, written and queued."""
    last_month, this_month = sql_months
    started = time.perf_counter()
    models = "ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5', 'gemini-2.5-flash']"
    insert = f"""
        INSERT INTO metering_usageevent (customer_id, event_id, timestamp, model, feature,
            metrics, properties, counting, provider, received_at, content_hash, seal_id)
        SELECT c.id, c.external_id || '-' || n,
               %(start)s::timestamptz + (n::float / %(count)s) * %(span)s::interval,
               ({models})[1 + n %% 4], (ARRAY['chat', 'search', 'agent'])[1 + n %% 3],
               jsonb_build_object('input_tokens', 200 + n %% 1800,
                                  'output_tokens', 50 + n %% 700,
                                  'cached_input_tokens', (n %% 5) * 300),
               '{{}}'::jsonb, 'reported', '', now(), md5(c.id || '-' || n),
               gen_random_uuid()
        FROM contracts_customer c, generate_series(1, %(count)s) AS n
        WHERE CUSTOMERS_WANTED
    """
    with pg_connect(DB_NAME) as conn:
        conn.execute(
            insert.replace("CUSTOMERS_WANTED", "c.external_id <> %(big)s"),
            {"start": last_month, "count": EVENTS_EACH, "span": "20 days", "big": BIG},
        )
        conn.execute(
            insert.replace("CUSTOMERS_WANTED", "c.external_id = %(big)s"),
            {"start": this_month, "count": big_events, "span": "20 hours", "big": BIG},
        )
        conn.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent"
        )
        conn.commit()
    vacuum_analyze(DB_NAME)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="bench-big's events")
    parser.add_argument("--quick", action="store_true", help="100k events for bench-big")
    options = parser.parse_args()
    if options.quick:
        options.events = 100_000
    env = django_env(DB_NAME)
    figures = dict(machine_info())

    print(f"1. setup: database {DB_NAME}, {CUSTOMERS:,} customers on contracts ...", flush=True)
    database_fresh(env, DB_NAME, ("load_price_catalog",))
    months = tuple(shell_answer(env, SEED, "BENCH-MONTHS ").split())
    total = CUSTOMERS * EVENTS_EACH + options.events
    print(f"2. usage: {total:,} events written and queued ...", flush=True)
    loaded = events_load(months, options.events)
    started = time.perf_counter()
    rated = sum(rater["rated"] for rater in python_run(env, RATER, 2))
    print(f"   written in {loaded:.0f} s, {rated:,} rated in {time.perf_counter() - started:.0f} s")

    print("3. closing the due periods ...", flush=True)
    (close,) = python_run(env, CLOSE)
    verdict = "met" if close["seconds"] < TARGET_CLOSE_S else "MISSED"
    figures["closing"] = (
        f"{close['closed']:,} periods closed into {close['invoices']:,} invoices in "
        f"{close['seconds']:.1f} s, peak {close['max_rss_mb']:.0f} MB "
        f"(target < {TARGET_CLOSE_S:.0f} s: {verdict})"
    )
    print("   " + figures["closing"], flush=True)

    print(f"4. preview of {BIG}'s current period ...", flush=True)
    (preview,) = python_run(env, PREVIEW)
    p50, p99 = p50_p99_ms(preview["times"])
    verdict = "met" if p99 < TARGET_PREVIEW_MS else "MISSED"
    figures["preview"] = (
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms for {preview['events']:,} events, "
        f"{preview['lines']} lines, total {preview['total']} USD "
        f"(target < {TARGET_PREVIEW_MS:.0f} ms: {verdict})"
    )
    print("   " + figures["preview"], flush=True)

    summary_print(figures, 10)
    print(json.dumps({"events": total}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
