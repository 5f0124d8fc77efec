"""Where an ingest request's time goes: a stage-by-stage breakdown, in one process.

Run after ``benchmarks/bench_ingest.py`` (which leaves the ``tokentill_bench`` database
behind), from the project root:

    .venv/bin/python benchmarks/profile_ingest.py               # stage table
    .venv/bin/python benchmarks/profile_ingest.py --cprofile    # and the top functions
    .venv/bin/python benchmarks/profile_ingest.py --reference   # and the minimal app beside it

It calls the real WSGI application (``config.wsgi.application``: middleware, DRF,
authentication, the view, the service, the renderer) in-process, one request after
another, so there is no HTTP, no gunicorn and no lock contention: what is left is the
cost of one request. Each stage is measured by wrapping the function that does it
(timers nest: every figure is *exclusive* time, and "Django + DRF" is what no stage
claims). The service code is not changed, only wrapped at run time:

    connection health check  common.postgresql's close_if_health_check_failed (SELECT 1
                             when the connection has been idle for a second)
    rate limits              common.throttling.key_admit (the address's lock and the key's
                             budget: one Redis round trip), window_take / window_full
    auth: key lookup         contracts.authentication.api_key_get_active (SELECT + sha256)
    auth: mark used          contracts.authentication.api_key_mark_used (UPDATE, 1/min)
    body + JSON parse        metering.api.views._ingest_items (request.body, orjson.loads)
    validation               metering.services.intake_rules + event_parse
    customer lookup          metering.services.customer_ids_by_external_id (SELECT)
    content hash             metering.services._content_hash (orjson + sha256 per event)
    INSERT: build rows       metering.services._row (metric values, orjson of metrics/properties)
    INSERT: execute          metering.services._insert_events less its rows: psycopg
                             adaptation, the statement's round trip and execution (one
                             statement in autocommit: the events, their keys, the rating
                             queue rows and the batch's seal queue row, and the commit)
    service bookkeeping      events_ingest, _candidates and _store less the stages above
                             (ItemResult/_Candidate objects, dicts, the nudges after commit)
    result as_dict           metering.services.IngestResult.as_dict
    render (orjson)          config.renderers.ORJSONRenderer.render

Each single-event measure also prints the CPU its PostgreSQL backend used, read from
/proc. `--reference` then serves the same single events, in alternating rounds, to
`benchmarks/ingest_reference.py` (the minimal WSGI app `bench_ingest.py` compares with)
in this process too, and prints both apps' Python and PostgreSQL CPU a request: the
ratio `bench_ingest.py` measures, without HTTP and gunicorn. The reference's rows are
queued for the sealer afterwards, so the log stays verifiable.

The seal itself is no longer in the request: the sealer (metering.sealing) chains the
queued batches after commit, so no request waits for another's seal.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    BROKER,
    CUSTOMERS,
    INGEST_DB,
    ROOT,
    StageClock,
    broker_flush,
    django_env,
    event_make,
    process_cpu_seconds,
)

sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
# The benchmarks' settings in this very process (Django runs here, not behind gunicorn), with
# a fixed key and, as in production and bench_ingest.py, a broker: the rating and sealing
# runs that ingestion asks for are sent (at most every TOKENTILL_*_NUDGE_SECONDS), not run
# inside the request as they would be with none; the queue is emptied at the end.
os.environ.update(
    django_env(
        INGEST_DB,
        SECRET_KEY="profile-ingest-secret-key-for-the-bench-database-only-0000000",  # noqa: S106
        CACHE_URL="redis://127.0.0.1:6379/14",  # rate limits count in Redis, as in production
    )
)

import django  # noqa: E402

django.setup()


from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

import common.postgresql.base  # noqa: E402
import common.throttling  # noqa: E402
import config.renderers  # noqa: E402
import contracts.authentication  # noqa: E402
import metering.api.views  # noqa: E402
import metering.services  # noqa: E402
from config.wsgi import application  # noqa: E402  what gunicorn serves
from contracts.services import api_key_create  # noqa: E402
from metering.models import UnsealedBatch, UsageEvent  # noqa: E402
from metering.sealing import events_seal  # noqa: E402

STAGES = [
    "connection health check",
    "rate limits",
    "auth: key lookup",
    "auth: mark used",
    "body + JSON parse",
    "validation",
    "customer lookup",
    "content hash",
    "INSERT: build rows",
    "INSERT: execute",
    "duplicate settle",
    "service bookkeeping",
    "result as_dict",
    "render (orjson)",
]


def instrument(clock: StageClock) -> None:
    patch = clock.patch
    patch(common.postgresql.base.DatabaseWrapper, "close_if_health_check_failed",
          "connection health check")  # fmt: skip
    patch(contracts.authentication, "key_admit", "rate limits")
    patch(common.throttling, "window_take", "rate limits")
    patch(common.throttling, "window_full", "rate limits")
    patch(contracts.authentication, "api_key_get_active", "auth: key lookup")
    patch(contracts.authentication, "api_key_mark_used", "auth: mark used")
    patch(metering.api.views, "_ingest_items", "body + JSON parse")
    patch(metering.services, "intake_rules", "validation")
    patch(metering.services, "event_parse", "validation")
    patch(metering.services, "customer_ids_by_external_id", "customer lookup")
    patch(metering.services, "_content_hash", "content hash")
    patch(metering.services, "events_ingest", "service bookkeeping")
    patch(metering.services, "_candidates", "service bookkeeping")
    patch(metering.services, "_store", "service bookkeeping")
    patch(metering.services, "_row", "INSERT: build rows")
    patch(metering.services, "_insert_events", "INSERT: execute")
    patch(metering.services, "_settle_not_inserted", "duplicate settle")
    patch(metering.services.IngestResult, "as_dict", "result as_dict")
    patch(config.renderers.ORJSONRenderer, "render", "render (orjson)")


def wsgi_call(body: bytes, key: str, app=application) -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/events",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {key}",
    }
    statuses = []
    response = app(environ, lambda status, headers: statuses.append(status))
    b"".join(response)
    if hasattr(response, "close"):  # Django's; the reference answers a plain list
        response.close()
    if not statuses[0].startswith("202"):
        raise SystemExit(f"unexpected answer {statuses[0]}")


def bodies(kind: str, count: int, tag: str) -> list[bytes]:
    import random

    rng = random.Random(tag)
    now = datetime.now(UTC) - timedelta(minutes=1)
    if kind == "single":
        return [orjson.dumps(event_make(rng, f"{tag}-{n}", now)) for n in range(count)]
    return [
        orjson.dumps({"events": [event_make(rng, f"{tag}-{n}-{e}", now) for e in range(1000)]})
        for n in range(count)
    ]


def measure(kind: str, count: int, key: str, clock: StageClock, profile: bool) -> None:
    tag = f"prof{os.getpid()}-{time.time_ns()}-{kind}"
    for body in bodies(kind, max(5, count // 20), tag + "w"):  # warm
        wsgi_call(body, key)
    prepared = bodies(kind, count, tag)
    clock.reset()
    profiler = cProfile.Profile() if profile else None
    backend = connection.connection.info.backend_pid
    backend_started = process_cpu_seconds(backend)
    started, cpu_started = time.perf_counter(), time.thread_time()
    if profiler:
        profiler.enable()
    for body in prepared:
        wsgi_call(body, key)
    if profiler:
        profiler.disable()
    total, total_cpu = time.perf_counter() - started, time.thread_time() - cpu_started
    backend_used = process_cpu_seconds(backend) - backend_started
    per = 1e6 / count
    events = 1 if kind == "single" else 1000
    print(f"\n{kind}: {count} requests of {events} event(s), one at a time, in-process")
    unit = "us/request" if events == 1 else "us/event"
    scale = per / events
    print(
        f"  {'stage':<26} {'wall ' + unit:>16} {'share':>6} {'Python CPU':>11} {'waiting (DB)':>13}"
    )

    def line(name, wall, cpu):
        print(
            f"  {name:<26} {wall * scale:>16,.1f} {100 * wall / total:>5.1f}% "
            f"{cpu * scale:>11,.1f} {max(0.0, wall - cpu) * scale:>13,.1f}"
        )

    claimed_wall = claimed_cpu = 0.0
    for stage in STAGES:
        wall, cpu = clock.wall.get(stage, 0.0), clock.cpu.get(stage, 0.0)
        claimed_wall += wall
        claimed_cpu += cpu
        line(stage, wall, cpu)
    line("Django + DRF (the rest)", total - claimed_wall, total_cpu - claimed_cpu)
    line("total (WSGI call)", total, total_cpu)
    print(f"  -> {count / total:,.0f} req/s ({count * events / total:,.0f} events/s) on one core")
    print(f"  PostgreSQL backend CPU: {backend_used * scale:,.1f} {unit}")
    if profiler:
        stats = pstats.Stats(profiler)
        calls = stats.total_calls / count  # type: ignore[attr-defined]
        print(f"\n  {calls:,.0f} function calls a request (the stage timers' own included)")
        print("\n  top functions by internal time:")
        stream = io.StringIO()
        stats.stream = stream
        stats.sort_stats("tottime").print_stats(25)
        print("\n".join("  " + line for line in stream.getvalue().splitlines()[6:]))


def reference_compare(count: int, key: str, rounds: int = 5) -> None:
    """tokentill's WSGI app and the minimal one, the same single events in alternating
    rounds, in this process: Python CPU (thread time) and PostgreSQL backend CPU a request,
    the median round of each."""
    seal_id = uuid.uuid4()
    os.environ["REFERENCE_SEAL_ID"] = str(seal_id)
    import ingest_reference  # reads REFERENCE_SEAL_ID (and DATABASE_URL) when imported

    apps = {"tokentill": (application, lambda: connection.connection.info.backend_pid)}
    apps["reference"] = (
        ingest_reference.application, lambda: ingest_reference.connection().info.backend_pid
    )  # fmt: skip
    tag = f"ref{os.getpid()}-{time.time_ns()}"
    for name, (app, _) in apps.items():  # warm both, and prepare what each prepares
        for body in bodies("single", 50, f"{tag}w{name}"):
            wsgi_call(body, key, app)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    for number in range(rounds):
        for name, (app, backend_pid) in apps.items():
            prepared = bodies("single", count, f"{tag}{number}{name}")
            backend = backend_pid()
            backend_started, cpu_started = process_cpu_seconds(backend), time.thread_time()
            for body in prepared:
                wsgi_call(body, key, app)
            python = (time.thread_time() - cpu_started) / count
            figures[name].append((python, (process_cpu_seconds(backend) - backend_started) / count))
    print(f"\nsingle events beside the minimal app: {rounds} alternating rounds of {count}")
    print(f"  {'app':<10} {'Python CPU us/request':>22} {'PostgreSQL CPU us/request':>26}")
    medians = {}
    for name, rows in figures.items():
        python = sorted(row[0] for row in rows)[rounds // 2]
        postgres = sorted(row[1] for row in rows)[rounds // 2]
        medians[name] = python + postgres
        print(f"  {name:<10} {python * 1e6:>22,.0f} {postgres * 1e6:>26,.0f}")
    ratio = medians["reference"] / medians["tokentill"]
    print(f"  reference / tokentill, Python and PostgreSQL together: {ratio:.2f}")
    _reference_rows_queue(seal_id)


def _reference_rows_queue(seal_id: uuid.UUID) -> None:
    """Queue the reference's rows (one seal id, as bench_ingest.py gives them) for the
    sealer, their hashes in id order, and seal them."""
    hashes = UsageEvent.objects.filter(seal_id=seal_id).order_by("id")
    content_hashes = "".join(hashes.values_list("content_hash", flat=True))
    if content_hashes:
        UnsealedBatch.objects.create(
            seal_id=seal_id, received_at=timezone.now(), content_hashes=content_hashes
        )
        events_seal()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--single", type=int, default=2000, help="single-event requests")
    parser.add_argument("--batch", type=int, default=40, help="1,000-event requests")
    parser.add_argument("--cprofile", action="store_true", help="also print the top functions")
    parser.add_argument(
        "--reference", action="store_true", help="also the minimal WSGI app, in this process"
    )
    args = parser.parse_args()
    _, key = api_key_create(name=f"profile {os.getpid()}")
    clock = StageClock()
    instrument(clock)
    print(f"customers: {', '.join(CUSTOMERS)}; load average {os.getloadavg()[0]:.2f}")
    measure("single", args.single, key, clock, profile=False)
    measure("batch", args.batch, key, clock, profile=False)
    if args.cprofile:
        measure("single", args.single, key, clock, profile=True)
        measure("batch", args.batch, key, clock, profile=True)
    if args.reference:
        reference_compare(args.single // 2, key)
    broker_flush(BROKER)  # the nudges no worker took


if __name__ == "__main__":
    main()
