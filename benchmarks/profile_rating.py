"""Where a rater's time goes: a stage-by-stage breakdown of rating a backlog, in one process.

Run after ``benchmarks/bench_rating.py`` (which leaves its database behind, with the
catalog rate card, "bench-big" and the 1,000 "many-" customers with credits), from the
project root:

    .venv/bin/python benchmarks/profile_rating.py --database tokentill_bench_rating
    .venv/bin/python benchmarks/profile_rating.py --cprofile       # and the top functions
    .venv/bin/python benchmarks/profile_rating.py --only many --events 50000
    .venv/bin/python benchmarks/profile_rating.py --only many --events 20000 --rounds 10

``--database`` names the database ``bench_rating.py`` was given (``tokentill_bench_rating``
by default). ``--rounds N`` queues and rates the backlog in N parts, one after the other:
2,000 events over the 1,000 customers a round gives batches that each touch them all, as
when the raters keep up with ingestion, and a draw-down of every customer's period each
round. Before each round the tables rating writes are vacuumed and analysed (outside the
timing), so a round does not pay for the dead rows of the last.

For each backlog (``one``: N events of "bench-big"; ``many``: N events spread over the
1,000 customers in turn, as ingestion interleaves them) it writes the events straight
into the log with fresh event ids and queues them, as ``bench_rating.py`` does, then runs
``usage_rate_pending`` in this process (one rater, nothing beside it) until the queue is
empty and prints, per stage, the exclusive wall time and the CPU time of this process
per event, and what waits (wall less CPU: PostgreSQL's work and the round trips), with
the statements sent and the CPU the PostgreSQL backend used (read from /proc). The
rater's code is not changed, only wrapped at run time:

    queue take         store.queue_take (the queue's rows chosen and deleted)
    events read        store.events_fetch (the events' columns, metrics and properties)
    terms              TermsBook.load (terms, versions, prices of the batch's customers)
    rate events        rater.rate_event, per event (terms, price, formula, key)
    previous ratings   store.ratings_take_previous (re-rating: the old ratings deleted)
    rollups ensure     rater._rollups_ensure (ids read, missing rows created)
    rollups move       store.rollups_move (lock and UPDATE over arrays)
    days move          store.days_move (the per-day rows' upsert over arrays)
    ratings insert     store.ratings_insert (the RatedEvent rows)
    draw-down queue    store.draw_downs_queue
    holds              rater._holds_settle
    store (the rest)   rater._ratings_store less the stages above (the deltas summed)
    COMMIT             DatabaseWrapper.commit
    draw-down: ...     rater.usage_draw_down_slice (between batches), by part: the
                       queue taken (take); the wallets, budgets and holds read (who); the
                       records created and locked (records); the periods' rollups read
                       (rollups); the wallets locked (wallets); each period's money
                       worked out (money); budget alerts checked (alerts); the draws
                       (wallets_draw_down: draw); the records saved (save)
    shortfalls, terms  usage_shortfalls_cover and terms_changes_apply (once per run)

The backlogs' events stay in the database, rated: run ``bench_rating.py`` again for a
fresh one.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, StageClock, django_env, events_spread_sql, process_cpu_seconds

sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

STAGES = [
    "queue take",
    "events read",
    "terms",
    "rate events",
    "previous ratings",
    "rollups ensure",
    "rollups move",
    "days move",
    "ratings insert",
    "draw-down queue",
    "holds",
    "store (the rest)",
    "COMMIT",
    "draw-down: take",
    "draw-down: who",
    "draw-down: records",
    "draw-down: rollups",
    "draw-down: wallets",
    "draw-down: money",
    "draw-down: alerts",
    "draw-down: draw",
    "draw-down: save",
    "draw-down (the rest)",
    "shortfalls, terms",
]


def instrument(clock: StageClock) -> None:
    from django.db.backends.postgresql.base import DatabaseWrapper

    from billing import terms
    from billing.rating import draw_down, rater

    patch = clock.patch
    patch(rater, "queue_take", "queue take")
    patch(rater, "events_fetch", "events read")
    patch(terms.TermsBook, "load", "terms")  # the bound classmethod, wrapped
    patch(rater, "rate_event", "rate events")
    patch(rater, "ratings_take_previous", "previous ratings")
    patch(rater, "_rollups_ensure", "rollups ensure")
    patch(rater, "rollups_move", "rollups move")
    patch(rater, "days_move", "days move")
    patch(rater, "ratings_insert", "ratings insert")
    patch(rater, "draw_downs_queue", "draw-down queue")
    patch(rater, "_holds_settle", "holds")
    patch(rater, "_ratings_store", "store (the rest)")
    patch(DatabaseWrapper, "commit", "COMMIT")
    patch(rater, "usage_draw_down_slice", "draw-down (the rest)")
    patch(draw_down, "draw_downs_take", "draw-down: take")
    patch(draw_down, "customers_with_budget", "draw-down: who")
    patch(draw_down, "_calls_rated", "draw-down: who")
    patch(draw_down, "_records_lock", "draw-down: records")
    patch(draw_down, "periods_rollups", "draw-down: rollups")
    patch(draw_down, "_wallets_of", "draw-down: wallets")
    patch(draw_down, "period_money", "draw-down: money")
    patch(draw_down, "alerts_check_usage", "draw-down: alerts")
    patch(draw_down, "wallets_draw_down", "draw-down: draw")
    patch(draw_down, "draw_down_records_save", "draw-down: save")
    patch(draw_down, "draw_downs_queue", "draw-down queue")
    patch(rater, "usage_shortfalls_cover", "shortfalls, terms")
    patch(rater, "terms_changes_apply", "shortfalls, terms")


class Statements:
    """Counts the statements the connection sends through Django's cursors (an execute
    wrapper, which sees neither the draw-down's server-bound writes nor any other
    `server_bound_cursor` statement: a query log would, at the cost of timing it)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def backlog_queue(kind: str, events: int, tag: str) -> None:
    """`events` fresh events in the log, queued: bench-big's, or spread over the many
    customers in turn (each batch's worth holding one of each customer)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if kind == "one":
            cursor.execute("SELECT id FROM contracts_customer WHERE external_id = 'bench-big'")
        else:
            cursor.execute(
                "SELECT id FROM contracts_customer WHERE external_id LIKE 'many-%%' ORDER BY id"
            )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            raise SystemExit("no bench customers: run benchmarks/bench_rating.py first")
        cursor.execute(
            events_spread_sql(),
            {"ids": ids, "count": len(ids), "events": events, "tag": tag},
        )
        cursor.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent WHERE event_id LIKE %s ORDER BY id",
            [tag + "%"],
        )
    vacuum_analyze()


def vacuum_analyze() -> None:
    """VACUUM ANALYZE the tables rating writes, so each measurement starts without the
    dead rows of the last (in autocommit: Django's default outside an atomic block)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "metering_usageevent",
            "metering_unratedevent",
            "billing_ratedevent",
            "billing_usagerollup",
            "billing_usageday",
            "billing_drawdowndue",
            "billing_usagedrawdown",
            "wallets_wallet",
            "wallets_creditgrant",
            "wallets_ledgerentry",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def measure(kind: str, events: int, rounds: int, clock: StageClock, profile: bool) -> None:
    from django.db import connection

    from billing.rating.rater import usage_rate_pending

    tag = f"prof{os.getpid()}-{time.time_ns()}-{kind}-"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    statements = Statements()
    clock.reset()
    profiler = cProfile.Profile() if profile else None
    total = total_cpu = backend_used = 0.0
    rated = 0
    for number in range(rounds):
        backlog_queue(kind, events // rounds, f"{tag}{number}-")
        backend_started = process_cpu_seconds(backend)
        started, cpu_started = time.perf_counter(), time.thread_time()
        with connection.execute_wrapper(statements):
            if profiler:
                profiler.enable()
            rated += usage_rate_pending()
            if profiler:
                profiler.disable()
        total += time.perf_counter() - started
        total_cpu += time.thread_time() - cpu_started
        backend_used += process_cpu_seconds(backend) - backend_started
    scale = 1e6 / rated
    print(
        f"\n{kind}: {rated:,} events rated by one rater in-process, in {rounds} round(s), "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'stage':<20} {'wall us/event':>14} {'share':>6} {'CPU':>8} {'waiting':>8}")

    def line(name, wall, cpu):
        print(
            f"  {name:<20} {wall * scale:>14,.1f} {100 * wall / total:>5.1f}% "
            f"{cpu * scale:>8,.1f} {max(0.0, wall - cpu) * scale:>8,.1f}"
        )

    claimed_wall = claimed_cpu = 0.0
    for stage in STAGES:
        wall, cpu = clock.wall.get(stage, 0.0), clock.cpu.get(stage, 0.0)
        claimed_wall += wall
        claimed_cpu += cpu
        line(stage, wall, cpu)
    line("the rest", total - claimed_wall, total_cpu - claimed_cpu)
    line("total", total, total_cpu)
    print(
        f"  -> {rated / total:,.0f} events/s; {statements.count:,} statements "
        f"({statements.count / rated * 1000:,.1f} per 1,000 events); PostgreSQL backend CPU "
        f"{backend_used * scale:,.1f} us/event, this process {total_cpu * scale:,.1f} us/event"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stream = io.StringIO()
        stats.stream = stream
        stats.sort_stats("tottime").print_stats(30)
        print("\n  top functions by internal time:")
        print("\n".join("  " + text for text in stream.getvalue().splitlines()[6:]))
        stream = io.StringIO()
        stats.stream = stream
        stats.sort_stats("cumulative").print_stats(40)
        print("\n  top functions by cumulative time:")
        print("\n".join("  " + text for text in stream.getvalue().splitlines()[6:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--database", default="tokentill_bench_rating")
    parser.add_argument("--events", type=int, default=30_000, help="per backlog")
    parser.add_argument("--only", choices=["one", "many"], help="one backlog, not both")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="queue and rate the backlog in this many parts, one after the other (many "
        "rounds of 2,000 events over the 1,000 customers: batches that each touch them all, "
        "as when the raters keep up with ingestion)",
    )
    parser.add_argument("--cprofile", action="store_true", help="also print the top functions")
    args = parser.parse_args()
    os.environ.update(django_env(args.database))
    import django

    django.setup()
    clock = StageClock()
    if not args.cprofile:
        instrument(clock)
    for kind in [args.only] if args.only else ["one", "many"]:
        measure(kind, args.events, args.rounds, clock, profile=args.cprofile)


if __name__ == "__main__":
    main()
