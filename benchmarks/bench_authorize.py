"""Authorization benchmark: how long `POST /api/v1/authorizations` takes (target p99 < 20 ms).

Run from the project root (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/bench_authorize.py
    .venv/bin/python benchmarks/bench_authorize.py --calls 300   # quicker

What it does:

1. Drops and creates the PostgreSQL database ``tokentill_bench_authorize``, migrates it,
   loads the price catalog and creates, through the real services, a rate card from it,
   customer "bench-prepaid" on a contract that blocks overage with 1,000,000.00 of
   credits in 20 grants, "bench-allowance" the same with an included allowance (so each
   authorization also reads the period's rollups) and 50,000 rated events this period,
   and an API key.
2. Starts gunicorn (sync workers) and times, over HTTP with a kept-alive connection:
   a. one client, chat messages of about 200 tokens counted with tiktoken;
   b. one client, a prompt of about 4,000 tokens;
   c. one client, token estimates (no counting) for the customer with an allowance;
   d. four clients at once for the same wallet (they queue on its lock).
   Each prints p50, p99 and max; every answer must be allowed, with a hold.
3. Checks afterwards that the wallet's holds add up: held = the sum of active holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Api,
    Gunicorn,
    database_fresh,
    django_env,
    log_dir,
    machine_info,
    manage,
    p50_p99_ms,
    shell_answer,
    summary_print,
)

DB_NAME = "tokentill_bench_authorize"
PREPAID, ALLOWANCE = "bench-prepaid", "bench-allowance"
TARGET_P99_MS = 20.0
SENTENCE = "The quarterly report shows revenue growth across every region we serve. "


def setup(env: dict, events: int) -> str:
    database_fresh(env, DB_NAME, ("load_price_catalog",))
    code = f"""
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from contracts.services import *
from contracts.rate_cards import *
from contracts.catalog.services import *
from metering.services import events_ingest
from billing.rating.rater import usage_rate_pending
from wallets.services import credit_grant
card = rate_card_create_from_catalog(name="Bench list", markup=Decimal("0"))
start = (timezone.now() - timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0)
card.versions.update(effective_from=start - timedelta(days=30))
for ext, allowance in (({PREPAID!r}, 0), ({ALLOWANCE!r}, 10)):
    customer = customer_create(external_id=ext, name=ext, currency="USD")
    contract_create(customer=customer, starts_at=start, rate_card=card, anchor_day=start.day,
                    overage_policy="block", included_allowance=Decimal(allowance))
    for n in range(20):
        credit_grant(customer=customer, amount="50000", source="purchased", priority=n % 3)
now = timezone.now()
for first in range(0, {events}, 1000):
    events_ingest(items=[
        {{"event_id": f"e{{n}}", "customer_id": {ALLOWANCE!r}, "model": "gpt-4o",
          "feature": f"f{{n % 7}}", "timestamp": (now - timedelta(seconds=n)).isoformat(),
          "metrics": {{"input_tokens": 900, "output_tokens": 300}}}}
        for n in range(first, min(first + 1000, {events}))
    ])
usage_rate_pending()
_, key = api_key_create(name="authorization benchmark")
print("BENCH-KEY " + key)
"""
    return shell_answer(env, code, "BENCH-KEY ")


def authorize_many(port: int, key: str, body: dict, calls: int, times: list[float]) -> None:
    api, payload = Api(port, key), json.dumps(body).encode()
    for number in range(calls + 5):
        started = time.perf_counter()
        status, answer = api.call("POST", "/api/v1/authorizations", payload)
        elapsed = time.perf_counter() - started
        decision = json.loads(answer)
        if status != 200 or not decision["allowed"] or not decision["hold"]:
            raise SystemExit(f"unexpected answer {status}: {answer[:300]!r}")
        if number >= 5:  # the first calls warm the worker up
            times.append(elapsed)


def summary(label: str, times: list[float]) -> str:
    p50, p99 = p50_p99_ms(times)
    verdict = "met" if p99 < TARGET_P99_MS else "MISSED"
    line = (
        f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(times) * 1000:.1f} ms "
        f"over {len(times):,} calls (target p99 < {TARGET_P99_MS:.0f} ms: {verdict})"
    )
    print("   " + line, flush=True)
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="per case and client")
    parser.add_argument("--events", type=int, default=50_000, help="rated, with allowance")
    options = parser.parse_args()
    env = django_env(DB_NAME)
    logdir = log_dir()
    figures = dict(machine_info())

    print(f"1. setup: database {DB_NAME}, contracts, credits, {options.events:,} events ...")
    key = setup(env, options.events)
    messages = [
        {"role": "system", "content": "You are a concise analyst."},
        {"role": "user", "content": SENTENCE * 14},
    ]
    cases = [
        ("chat ~200 tokens", {"messages": messages, "max_output_tokens": 1000}, PREPAID),
        ("prompt ~4,000 tokens", {"prompt": SENTENCE * 300, "max_output_tokens": 1000}, PREPAID),
        (
            "estimate, allowance read",
            {"estimate": {"input_tokens": 2000, "output_tokens": 1000}},
            ALLOWANCE,
        ),
    ]
    print("2. gunicorn (4 sync workers), POST /api/v1/authorizations ...", flush=True)
    with Gunicorn(env, {"worker_class": "sync", "workers": 4, "threads": 1}, logdir) as server:
        for label, body, customer in cases:
            times: list[float] = []
            body = {"customer_id": customer, "model": "gpt-4o", **body}
            authorize_many(server.port, key, body, options.calls, times)
            figures[label] = summary(label, times)
        times, clients = [], 4
        body = {"customer_id": PREPAID, "model": "gpt-4o", **cases[0][1]}
        threads = [
            threading.Thread(
                target=authorize_many, args=(server.port, key, body, options.calls, times)
            )
            for _ in range(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rate = clients * (options.calls + 5) / (time.perf_counter() - started)
        figures["4 clients, one wallet"] = summary("4 clients, one wallet", times)
        figures["throughput"] = f"{rate:,.0f} authorizations/s with 4 clients on one wallet"
        print(f"   {figures['throughput']}")

    check = """
from decimal import Decimal
from wallets.models import Wallet
for wallet in Wallet.objects.all():
    active = sum(wallet.holds.filter(status="active").values_list("amount", flat=True), Decimal(0))
    assert wallet.held == active, (wallet, wallet.held, active)
    print(f"{wallet}: {wallet.holds.count():,} holds, held {wallet.held}, consistent")
"""
    done = manage(env, "shell", "-c", check, check=False)
    print("3. " + (done.stdout.strip() or done.stderr.strip()).replace("\n", "\n   "))
    if done.returncode:
        return 1
    summary_print(figures, 26)
    return 0


if __name__ == "__main__":
    sys.exit(main())
