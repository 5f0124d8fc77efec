"""Ingest benchmark: POST /api/v1/events through gunicorn, against PostgreSQL COPY.

Run from the project root:

    .venv/bin/python benchmarks/bench_ingest.py            # the full run (2-4 minutes)
    .venv/bin/python benchmarks/bench_ingest.py --quick    # a smoke test (about 15 seconds)
    .venv/bin/python benchmarks/bench_ingest.py --sweep    # try several gunicorn configs first

What it does, in order:

1. Drops and creates the PostgreSQL database ``tokentill_bench`` on 127.0.0.1:5432 (user
   postgres, trust auth), runs ``manage.py migrate`` against it, and creates a few customers
   and one API key with ``manage.py shell -c`` (through the real services).
2. Starts gunicorn (``.venv/bin/gunicorn config.wsgi``) on 127.0.0.1 with DEBUG=false,
   SECURE_SSL_REDIRECT=false, ALLOWED_HOSTS=127.0.0.1 and persistent database connections
   (CONN_MAX_AGE=600), waits until it answers, warms every worker up, and always stops it
   (also on an error, Ctrl-C or SIGTERM). ``--sweep`` first measures several worker
   settings with a short load and keeps the best (geometric mean of the two throughputs
   against their targets); otherwise the defaults (see "Tuning") are used.
3. Batch phase: N requests of 1,000 fresh events each (unique event_ids, five customers,
   realistic metrics) from K client processes over keep-alive connections (http.client),
   with every body serialised (orjson) before the clock starts. Prints events/s and the
   p50/p99 request latency; every answer must say 1,000 accepted (failures are counted
   and the first few printed).
4. Single phase: M requests of one event each from C client processes: requests/s and
   p50/p99 latency. The clients share the 2 cores with gunicorn and PostgreSQL, so they
   are lean (pre-built bodies, raw http.client, a status and answer-prefix check only).
   The reference: the same single phase, same clients and gunicorn settings, against
   ``benchmarks/ingest_reference.py``, a minimal WSGI app (no Django: the same key check,
   by hash, and the same ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` into the same
   table), served beside tokentill's gunicorn. The single phase runs in four rounds, each
   followed by the reference's round, so both meet the same load from the rest of the
   machine; prints tokentill's requests/s beside the reference's and the ratio (target
   >= 0.6). The reference's rows are sealed afterwards, untimed, as COPY's are.
5. COPY phase, right after the batch phase (gunicorn's workers idle), so the two meet
   the same machine: as many rows as the batch phase, written with psycopg's
   ``cursor.copy("COPY metering_usageevent (...) FROM STDIN")`` in chunks of 1,000 rows
   with a commit each (the batches' granularity), on one connection. The rows are real
   events: their content hashes are computed (untimed) with
   ``metering.canonical``, and the one seal row they reference is inserted first and chains
   to the newest seal, so the log stays verifiable. Prints rows/s and the ratio
   batch events/s / COPY rows/s.
6. The sealer runs as in production through phases 3-4: one Celery worker process on the
   ``sealing`` queue, sent its task by gunicorn's nudges after each commit. The seal lag
   (the age of the oldest batch awaiting its seal) is sampled every 100 ms meanwhile and
   printed as p50 / p99 / max (target: p99 < 5 s). Then what is left is sealed
   (``metering.sealing.events_seal``), and ``manage.py verify_event_log`` runs against the
   bench database and prints its verdict.
7. Prints a summary: the machine (nproc, CPU model, RAM, PostgreSQL version and its
   commit settings), the server config, and the figures beside their targets
   (batch >= 25,000 events/s and >= 0.55 of COPY; single >= 1,500 req/s with p99 < 25 ms
   and >= 0.6 of the reference).

For every timed phase it also prints where the CPU went (clients, gunicorn, PostgreSQL's
own processes and the bench database's backends, everything else, idle; from /proc) and
what the database backends were doing (pg_stat_activity sampled every 20 ms: executing,
waiting for the seal chain's advisory lock, flushing WAL, or waiting for their worker's
Python inside or outside a transaction).

Other load. The machine may be shared (a test suite running beside the benchmark shows up
as "other" CPU). Before each timed phase the harness waits, up to ``--quiet-wait`` seconds,
for the machine to be quiet; a phase during which other processes still took more than 20 %
of a core is run again with fresh events, up to ``--attempts`` times, and the cleanest
attempt is kept (every attempt is printed). The summary flags a phase that stayed noisy.

Tuning (2 vCPU AMD EPYC VM, PostgreSQL 15 on the same machine; service at commit 4dae434).
Measured with the harness's own functions: 60 x 1,000-event batches and 5,000 single
requests per cell, run-to-run noise about +-10 %:

    server                  batch events/s (K=2 / 3 / 4)    single req/s, p99 ms (C=4 / 6 / 8 / 12)
    sync, 2 workers         25.4k / 25.6k / 26.9k           448, 13 / 433, 21 / 403, 27 / 445, 35
    sync, 3 workers         27.1k / 27.1k / 26.6k           523, 12 / 459, 21 / 410, 27 / 460, 34
    sync, 4 workers         24.7k / 25.8k / 26.4k           461, 14 / 460, 21 / 478, 23 / 435, 36
    sync, 5 workers         24.4k / 24.2k / 24.1k           417, 17 / 439, 21 / 470, 24 / 442, 43
    gthread, 3 x 1 thread   13.6k / 25.9k / 17.5k           349, 26 / 475, 22 / 447, 32 / 439, 49
    gthread, 2 x 4 threads  24.3k / 25.2k / 24.5k           482, 13 / 433, 21 / 407, 27 / 400, 50

(An earlier round on the previous service code, with 6 sync workers and gthread 3 x 3,
ranked the configurations the same way.) Sync workers win: the work is CPU-bound Python, so
threads only add GIL hand-offs, and a kept-alive gthread connection stays on the worker
that accepted it (two connections on one worker leave the others idle: 13.6k above).
Three sync workers (cores + 1) are best; more only add context switches on 2 cores.
Single-event throughput is flat in C (the seal lock and CPU bound it) while latency grows
with C (Little's law): C = 6, two clients per worker, keeps every worker busy with p99
near 20 ms (three repeats of C = 4 / 6 / 8: 450-466 / 445-506 / 406-472 req/s, p99
14-15 / 17-19 / 24-29 ms). Batches: K = 3, one per worker.

The database is left in place afterwards for inspection and for
``benchmarks/profile_ingest.py`` (where the time goes inside one request).

Only the standard library, orjson and psycopg (both project dependencies) are used. Timings
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import math
import multiprocessing as mp
import os
import random
import resource
import secrets
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from harness import (
    BROKER,
    CUSTOMERS,
    EVENTS_PATH,
    INGEST_DB,
    ROOT,
    CeleryWorker,
    Gunicorn,
    broker_flush,
    database_fresh,
    django_env,
    event_make,
    machine_info,
    manage,
    pg_connect,
    process_cpu_seconds,
    shell_answer,
)

sys.path.insert(0, str(ROOT))  # metering.canonical is pure Python: no Django needed

from metering.canonical import GENESIS_HASH, event_content_hash, seal_hash

DB_NAME = INGEST_DB
# The shared cache that rate limits count in, as in production (CACHE_URL=redis://...):
# every request's budget costs its round trips to Redis here too.
CACHE = "redis://127.0.0.1:6379/14"
REFERENCE_APP = "ingest_reference:application"  # benchmarks/ingest_reference.py

TARGET_BATCH_EVENTS_S = 25_000
TARGET_SINGLE_REQ_S = 1_500
TARGET_SINGLE_P99_MS = 25.0
TARGET_SINGLE_RATIO = 0.6  # tokentill's single-event req/s / the minimal WSGI app's
TARGET_BATCH_RATIO = 0.55  # batch events/s / COPY rows/s
TARGET_SEAL_LAG_S = 5.0  # p99 of the seal lag while ingesting

# Defaults: the best settings found on a 2-core machine (see "Tuning" in the docstring).
DEFAULT_SERVER = {"worker_class": "sync", "workers": 3, "threads": 1}
DEFAULT_BATCH_CLIENTS = 3  # one per worker: more only adds queueing latency
DEFAULT_SINGLE_CLIENTS = 6  # two per worker: the server never waits, p99 stays short
SWEEP_SERVERS = [
    {"worker_class": "sync", "workers": 2, "threads": 1},
    {"worker_class": "sync", "workers": 3, "threads": 1},
    {"worker_class": "sync", "workers": 4, "threads": 1},
    {"worker_class": "sync", "workers": 5, "threads": 1},
    {"worker_class": "gthread", "workers": 3, "threads": 1},
    {"worker_class": "gthread", "workers": 2, "threads": 4},
    {"worker_class": "gthread", "workers": 3, "threads": 3},
]

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- 1. database -------------------------------------------------------------------------


def database_create(env: dict) -> dict:
    database_fresh(env, DB_NAME)
    code = (
        "import json\n"
        "from contracts.services import api_key_create, customer_create\n"
        "pks = {}\n"
        f"for ext in {CUSTOMERS!r}:\n"
        "    pks[ext] = customer_create(external_id=ext, name=ext.title(), currency='USD').pk\n"
        "_, key = api_key_create(name='ingest benchmark')\n"
        "print('BENCH-SEED ' + json.dumps({'key': key, 'customers': pks}))\n"
    )
    return orjson.loads(shell_answer(env, code, "BENCH-SEED "))


def checkpoint() -> None:
    """Flush dirty buffers before a timed phase, so a checkpoint is less likely inside it."""
    with pg_connect(DB_NAME, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


# --- 2. gunicorn -------------------------------------------------------------------------


def server_label(server: dict) -> str:
    if server["worker_class"] == "gthread":
        return f"gthread, {server['workers']} workers x {server['threads']} threads"
    return f"{server['worker_class']}, {server['workers']} workers"


# --- CPU accounting from /proc -------------------------------------------------------------


def postgres_pids() -> list[int]:
    """The server's own processes and the backends of the bench database, no other's."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() != "postgres":
                    continue
                title = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                client_backend = "(" in title or "[local]" in title
                if not client_backend or f" {DB_NAME} " in title:
                    found.append(int(entry))
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return (total - idle) / CLK_TCK, total / CLK_TCK


QUIET = {"max_wait": 90.0}  # seconds; set from --quiet-wait


def quiet_wait(label: str) -> float:
    """Wait until the machine is quiet (< 15 % of one core busy over a second) before a
    timed phase, up to QUIET["max_wait"] seconds; return the busy share last seen."""
    deadline = time.monotonic() + QUIET["max_wait"]
    cores = os.cpu_count() or 1
    while True:
        busy0, total0 = machine_cpu()
        time.sleep(1.0)
        busy1, total1 = machine_cpu()
        share = 100.0 * (busy1 - busy0) / ((total1 - total0) / cores or 1)
        if share < 15.0:
            return share
        if time.monotonic() >= deadline:
            print(f"    (machine still busy before {label}: {share:.0f}% of one core; going on)")
            return share
        time.sleep(2.0)


@dataclass
class CpuSnapshot:
    gunicorn: dict[int, float]
    postgres: dict[int, float]
    busy: float
    total: float

    @classmethod
    def take(cls, server: Gunicorn | None) -> CpuSnapshot:
        busy, total = machine_cpu()
        return cls(
            gunicorn={pid: process_cpu_seconds(pid) for pid in (server.pids() if server else [])},
            postgres={pid: process_cpu_seconds(pid) for pid in postgres_pids()},
            busy=busy,
            total=total,
        )


def cpu_shares(before: CpuSnapshot, after: CpuSnapshot, client_cpu: float) -> dict[str, float]:
    """CPU seconds per party in the interval, as % of one core (2 cores = 200 %)."""

    def delta(old: dict, new: dict) -> float:
        return sum(max(0.0, new[pid] - old.get(pid, 0.0)) for pid in new)

    cores = os.cpu_count() or 1
    wall = (after.total - before.total) / cores
    gunicorn = delta(before.gunicorn, after.gunicorn)
    postgres = delta(before.postgres, after.postgres)
    busy = after.busy - before.busy
    shares = {
        "clients": client_cpu,
        "gunicorn": gunicorn,
        "postgres": postgres,
        "other": max(0.0, busy - client_cpu - gunicorn - postgres),
        "idle": max(0.0, (after.total - before.total) - busy),
    }
    return {name: 100.0 * seconds / wall for name, seconds in shares.items()} if wall else {}


def shares_text(shares: dict[str, float]) -> str:
    cores = os.cpu_count() or 1
    parts = [f"{name} {value:.0f}%" for name, value in shares.items()]
    return f"CPU (% of one core, {cores} cores = {cores * 100}%): " + ", ".join(parts)


# --- what the database backends are doing, sampled during a phase ---------------------------


class BackendSampler:
    """Samples pg_stat_activity for the bench database's client backends every 20 ms.

    The averages say how many backends were, at any moment, running, waiting for the seal
    chain's advisory lock, flushing WAL at commit, or waiting for their worker's Python
    (idle in transaction: inside the atomic block; idle: outside it, or no request).
    """

    QUERY = (
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
        "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    @staticmethod
    def classify(state, wait_type, wait_event) -> str:
        if wait_type == "Lock" and wait_event == "advisory":
            return "seal lock wait"
        if wait_type == "Lock":
            return f"lock wait ({wait_event})"
        if wait_type == "IO" and wait_event and wait_event.startswith("WAL"):
            return "WAL write/sync"
        if state == "idle in transaction":
            return "in transaction, waiting for Python"
        if state == "idle":
            return "idle (worker in Python outside a transaction, or no request)"
        if state == "active" and wait_type is None:
            return "executing"
        return f"{state}: {wait_type}/{wait_event}"

    def run(self) -> None:
        with pg_connect("postgres", autocommit=True) as conn:
            while not self.stop.wait(0.02):
                self.samples += 1
                for row in conn.execute(self.QUERY, (DB_NAME,)).fetchall():
                    label = self.classify(*row)
                    self.counts[label] = self.counts.get(label, 0) + 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)

    def text(self) -> str:
        if not self.samples:
            return "DB backends: no samples"
        ranked = sorted(self.counts.items(), key=lambda item: -item[1])
        parts = [f"{label} {count / self.samples:.2f}" for label, count in ranked[:6]]
        return "DB backends (average count): " + ", ".join(parts)


class SealLagSampler:
    """Samples the seal lag every 100 ms: the age of the oldest batch awaiting its seal
    (metering.selectors.seal_lag, in SQL), zero when none awaits."""

    QUERY = (
        "SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(received_at)), 0) "
        "FROM metering_unsealedbatch"
    )

    def __init__(self):
        self.seconds: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with pg_connect(DB_NAME, autocommit=True) as conn:
            while not self.stop.wait(0.1):
                self.seconds.append(max(0.0, float(conn.execute(self.QUERY).fetchone()[0])))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)

    def percentile_s(self, share: float) -> float:
        ordered = sorted(self.seconds) or [0.0]
        return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


# --- 3./4. the load generator --------------------------------------------------------------


@dataclass
class ClientJob:
    index: int
    port: int
    key: str
    requests: int
    events_per_request: int  # 0: a single event object as the body
    tag: str


@dataclass
class ClientReport:
    index: int
    latencies: list[float] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    reconnects: int = 0
    started: float = 0.0
    finished: float = 0.0
    cpu: float = 0.0


def client_bodies(job: ClientJob) -> list[bytes]:
    rng = random.Random(f"{job.tag}-{job.index}")
    now = datetime.now(UTC)
    bodies = []
    for number in range(job.requests):
        if job.events_per_request == 0:
            event_id = f"{job.tag}-c{job.index}-r{number}"
            bodies.append(orjson.dumps(event_make(rng, event_id, now)))
        else:
            events = [
                event_make(rng, f"{job.tag}-c{job.index}-r{number}-e{n}", now)
                for n in range(job.events_per_request)
            ]
            bodies.append(orjson.dumps({"events": events}))
    return bodies


def client_run(job: ClientJob, barrier, results) -> None:
    """One client process: build every body, wait for the others, then send them in turn."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        results.put(_client_requests(job, barrier))
    except Exception as error:  # the parent raises it: no silent hang on a lost client
        barrier.abort()
        results.put(f"client {job.index}: {type(error).__name__}: {error}")


def _client_requests(job: ClientJob, barrier) -> ClientReport:
    report = ClientReport(index=job.index)
    bodies = client_bodies(job)
    expected = job.events_per_request or 1
    # orjson keeps insertion order: the answer starts with these counts.
    prefix = b'{"accepted":%d,"duplicates":0,"rejected":0,' % expected
    headers = {
        "Authorization": f"Bearer {job.key}",
        "Content-Type": "application/json",
        "Connection": "keep-alive",
    }
    conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=60)
    conn.connect()
    barrier.wait()
    clock, latencies, completions = time.perf_counter, report.latencies, report.completions
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    report.started = clock()
    for body in bodies:
        for attempt in (1, 2):
            begun = clock()
            try:
                conn.request("POST", EVENTS_PATH, body, headers)
                response = conn.getresponse()
                answer = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had closed before our request
                # reached it: reconnect and send again (counted, and a resend would
                # show up as duplicates below, never as accepted twice).
                conn.close()
                report.reconnects += 1
                if attempt == 2:
                    raise
                continue
            break
        done = clock()
        latencies.append(done - begun)
        completions.append(done)
        if response.status != 202 or not answer.startswith(prefix):
            report.failures += 1
            if len(report.failure_samples) < 3:
                report.failure_samples.append(f"HTTP {response.status}: {answer[:300]!r}")
    report.finished = clock()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report.cpu = usage.ru_utime + usage.ru_stime - cpu_start
    conn.close()
    return report


@dataclass
class PhaseResult:
    name: str
    requests: int
    events: int
    clients: int
    seconds: float
    latencies: list[float]
    completions: list[float]
    failures: int
    failure_samples: list[str]
    reconnects: int
    shares: dict[str, float]
    backends: str = ""

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def quarters(self) -> list[float]:
        """Requests per second in each quarter of the phase's duration: a drift shows up."""
        quarter = self.seconds / 4
        counts = [0, 0, 0, 0]
        for done in self.completions:
            counts[min(3, int(done / quarter))] += 1
        return [count / quarter for count in counts]

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        rank = max(0, math.ceil(fraction * len(ordered)) - 1)
        return 1000.0 * ordered[rank]


def phase_run(
    name: str, server: Gunicorn, key: str, *, requests: int, clients: int, events: int, tag: str
) -> PhaseResult:
    """`requests` requests of `events` events each (0: single-event bodies) from `clients`."""
    clients = max(1, min(clients, requests))
    context = mp.get_context("fork")
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    share, extra = divmod(requests, clients)
    jobs = [
        ClientJob(i, server.port, key, share + (i < extra), events, f"{tag}-{name}")
        for i in range(clients)
    ]
    processes = [context.Process(target=client_run, args=(job, barrier, results)) for job in jobs]
    for process in processes:
        process.daemon = True
        process.start()
    try:
        with BackendSampler() as sampler:
            barrier.wait(timeout=600)  # every body is built; the clock starts now
            before = CpuSnapshot.take(server)
            reports = [results.get(timeout=1800) for _ in processes]
            errors = [report for report in reports if isinstance(report, str)]
            if errors:
                raise RuntimeError("; ".join(errors))
            after = CpuSnapshot.take(server)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # our own child, by its handle
            process.join(timeout=5)
    started = min(r.started for r in reports)
    finished = max(r.finished for r in reports)
    return PhaseResult(
        name=name,
        requests=requests,
        events=requests * max(events, 1),
        clients=clients,
        seconds=finished - started,
        latencies=[latency for r in reports for latency in r.latencies],
        completions=sorted(done - started for r in reports for done in r.completions),
        failures=sum(r.failures for r in reports),
        failure_samples=[sample for r in reports for sample in r.failure_samples][:5],
        reconnects=sum(r.reconnects for r in reports),
        shares=cpu_shares(before, after, sum(r.cpu for r in reports)),
        backends=sampler.text(),
    )


def phase_print(result: PhaseResult) -> None:
    if result.name.startswith("batch"):
        rate = f"{result.events_per_s:,.0f} events/s ({result.requests_per_s:,.1f} req/s)"
    else:
        rate = f"{result.requests_per_s:,.0f} req/s"
    print(
        f"  {result.name}: {result.requests:,} requests, {result.events:,} events, "
        f"{result.clients} clients, {result.seconds:.2f} s -> {rate}; "
        f"latency p50 {result.percentile_ms(0.50):.1f} ms, p99 {result.percentile_ms(0.99):.1f} "
        f"ms, max {result.percentile_ms(1.0):.1f} ms"
    )
    scale = max(result.events // result.requests, 1)
    unit = "events/s" if scale > 1 else "req/s"
    if result.requests >= 40:
        drift = " / ".join(f"{rate * scale:,.0f}" for rate in result.quarters())
        print(f"    by quarter of the phase ({unit}): {drift}")
    print(f"    {shares_text(result.shares)}")
    print(f"    {result.backends}")
    if result.reconnects:
        print(f"    reconnects after a closed keep-alive connection: {result.reconnects}")
    if result.failures:
        print(f"    FAILURES: {result.failures} responses were not all-accepted 202s, e.g.:")
        for sample in result.failure_samples:
            print(f"      {sample}")


NOISE = {"limit": 20.0, "attempts": 3}  # "other" CPU, % of one core; set from the options


def phase_clean(name: str, server: Gunicorn, key: str, **load) -> PhaseResult:
    """Run a phase; if other processes took more than NOISE["limit"] % of a core meanwhile,
    run it again (fresh events), up to NOISE["attempts"] times, and keep the cleanest."""
    attempts = []
    for attempt in range(1, NOISE["attempts"] + 1):
        checkpoint()
        quiet_wait(f"the {name} phase")
        result = phase_run(name, server, key, **{**load, "tag": f"{load['tag']}a{attempt}"})
        phase_print(result)
        attempts.append(result)
        other = result.shares.get("other", 0.0)
        if other <= NOISE["limit"]:
            break
        print(f"    other processes took {other:.0f}% of a core: not a clean measurement", end="")
        print("; again" if attempt < NOISE["attempts"] else "; keeping the cleanest attempt")
    return min(attempts, key=lambda result: result.shares.get("other", 0.0))


def server_measure(
    env: dict, server_config: dict, key: str, logdir: Path, sizes: dict, tag: str,
    reference: bool = False, after_batch=None,
) -> tuple[PhaseResult, PhaseResult, PhaseResult | None]:  # fmt: skip
    """The batch phase, then the single phase; with `reference`, the single phase runs in
    REFERENCE_ROUNDS rounds, each followed by the same round against the reference app,
    so both see the same machine (other engineers' load comes and goes by the minute).
    `after_batch(batch)` runs right after the batch phase (the COPY phase: the two are
    compared, so they are measured in the same minutes; gunicorn's workers sit idle)."""
    server = Gunicorn(env, server_config, logdir)
    print(f"gunicorn: {server_label(server_config)} on 127.0.0.1:{server.port}")
    print(f"  command: {' '.join(server.command()[:2])} {' '.join(server.command()[2:])}")
    with server:
        workers = server_config["workers"] * server_config["threads"]
        # Warm every worker (imports, URL resolver, DB connection) before any timing.
        phase_run(
            "warm-up", server, key, requests=workers * 40, clients=workers * 2, events=0, tag=tag
        )
        phase_run("warm-up-b", server, key, requests=workers * 2, clients=workers, events=1000,
                  tag=tag)  # fmt: skip
        batch = phase_clean(
            "batch",
            server,
            key,
            requests=sizes["batch_requests"],
            clients=sizes["batch_clients"],
            events=1000,
            tag=tag,
        )
        if after_batch is not None:
            after_batch(batch)
        single_load = {"clients": sizes["single_clients"], "events": 0}
        if not reference:
            single = phase_clean(
                "single", server, key, requests=sizes["single_requests"], tag=tag, **single_load
            )
            return batch, single, None
        seal_id = uuid.uuid4()
        ref_env = {**env, "REFERENCE_SEAL_ID": str(seal_id)}
        ref_server = Gunicorn(ref_env, server_config, logdir, app=REFERENCE_APP)
        print(f"gunicorn: {server_label(server_config)} on 127.0.0.1:{ref_server.port}, "
              "the reference (benchmarks/ingest_reference.py)")  # fmt: skip
        print(f"  command: {' '.join(ref_server.command()[:2])} "
              f"{' '.join(ref_server.command()[2:])}")  # fmt: skip
        with ref_server:
            phase_run("warm-up", ref_server, key, requests=workers * 40, clients=workers * 2,
                      events=0, tag=f"{tag}r")  # fmt: skip
            share = max(1, sizes["single_requests"] // REFERENCE_ROUNDS)
            singles, references = [], []
            for number in range(1, REFERENCE_ROUNDS + 1):
                checkpoint()
                quiet_wait(f"round {number} of the single phase")
                singles.append(phase_run(f"single {number}", server, key, requests=share,
                                         tag=f"{tag}n{number}", **single_load))  # fmt: skip
                phase_print(singles[-1])
                references.append(phase_run(f"reference single {number}", ref_server, key,
                                            requests=share, tag=f"{tag}r{number}",
                                            **single_load))  # fmt: skip
                phase_print(references[-1])
        with pg_connect(DB_NAME) as conn, conn.transaction():
            hashes = [
                content_hash
                for (content_hash,) in conn.execute(
                    "SELECT content_hash FROM metering_usageevent WHERE seal_id = %s ORDER BY id",
                    (seal_id,),
                )
            ]
            seal_insert(conn, seal_id, hashes, datetime.now(UTC))
        return batch, phase_merge("single", singles), phase_merge("reference single", references)


REFERENCE_ROUNDS = 4


def phase_merge(name: str, rounds: list[PhaseResult]) -> PhaseResult:
    """Rounds of one phase as one: their requests over their summed durations, CPU shares
    weighted by duration, every latency."""
    seconds = sum(r.seconds for r in rounds)
    completions, offset = [], 0.0
    for result in rounds:
        completions.extend(done + offset for done in result.completions)
        offset += result.seconds
    names = {name for r in rounds for name in r.shares}
    return PhaseResult(
        name=name,
        requests=sum(r.requests for r in rounds),
        events=sum(r.events for r in rounds),
        clients=rounds[0].clients,
        seconds=seconds,
        latencies=[latency for r in rounds for latency in r.latencies],
        completions=completions,
        failures=sum(r.failures for r in rounds),
        failure_samples=[sample for r in rounds for sample in r.failure_samples][:5],
        reconnects=sum(r.reconnects for r in rounds),
        shares={n: sum(r.shares.get(n, 0.0) * r.seconds for r in rounds) / seconds for n in names},
        backends=rounds[-1].backends,
    )


def seal_insert(conn, seal_id: uuid.UUID, hashes: list[str], now: datetime) -> None:
    """Seal rows written outside the service (the reference's, COPY's), chained to the
    newest seal under the chain's lock, so that verify_event_log still passes."""
    conn.execute("SELECT pg_advisory_xact_lock(7401002)")
    last = conn.execute(
        "SELECT sequence, hash FROM metering_eventseal ORDER BY sequence DESC LIMIT 1"
    ).fetchone()
    sequence, previous = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    conn.execute(
        "INSERT INTO metering_eventseal "
        "(id, sequence, previous_hash, hash, event_count, sealed_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (
            seal_id,
            sequence,
            previous,
            seal_hash(previous_hash=previous, sequence=sequence, content_hashes=hashes),
            len(hashes),
            now,
        ),
    )


def score(batch: PhaseResult, single: PhaseResult) -> float:
    """Closeness to both targets at once: the geometric mean of the two ratios."""
    if batch.failures or single.failures:
        return 0.0
    return math.sqrt(
        batch.events_per_s / TARGET_BATCH_EVENTS_S * single.requests_per_s / TARGET_SINGLE_REQ_S
    )


# --- 5. COPY -------------------------------------------------------------------------------

KEY_COLUMNS = ("customer_id", "event_id", "event_pk", "seal_id", "timestamp", "content_hash")
COPY_COLUMNS = (
    "customer_id",
    "event_id",
    "timestamp",
    "model",
    "feature",
    "metrics",
    "properties",
    "counting",
    "provider",
    "content_hash",
    "received_at",
    "seal_id",
)


@dataclass
class CopyResult:
    rows: int
    chunks: int
    seconds: float
    shares: dict[str, float]

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def copy_run(customers: dict[str, int], rows: int, tag: str) -> CopyResult:
    """COPY `rows` real, sealed events in chunks of 1,000 rows, one commit per chunk."""
    rng = random.Random(f"{tag}-copy")
    now = datetime.now(UTC)
    seal_id = uuid.uuid4()
    prepared, hashes = [], []
    for number in range(rows):  # untimed: build rows and content hashes as the service does
        event = event_make(rng, f"{tag}-copy-{number}", now)
        customer_pk = customers[event["customer_id"]]
        moment = datetime.fromisoformat(event["timestamp"])
        feature = event.get("feature", "")
        content_hash = event_content_hash(
            customer_pk=customer_pk,
            event_id=event["event_id"],
            timestamp=moment,
            model=event["model"],
            feature=feature,
            metrics=event["metrics"],
            properties=event["properties"],
            counting="reported",
            provider="",
        )
        hashes.append(content_hash)
        prepared.append(
            (
                customer_pk,
                event["event_id"],
                moment,
                event["model"],
                feature,
                orjson.dumps(event["metrics"]).decode(),
                orjson.dumps(event["properties"]).decode(),
                "reported",
                "",
                content_hash,
                now,
                seal_id,
            )
        )
    statement = f"COPY metering_usageevent (id, {', '.join(COPY_COLUMNS)}) FROM STDIN"
    # The key table that keeps (customer, event_id) unique across the monthly partitions
    # gets each row's key, as ingestion writes it: COPY fills both, as ingestion does.
    key_statement = f"COPY metering_usageeventkey ({', '.join(KEY_COLUMNS)}) FROM STDIN"

    with pg_connect(DB_NAME) as conn:
        ids = sorted(  # drawn ahead, untimed: COPY gives both tables the same ids
            pk
            for (pk,) in conn.execute(
                "SELECT nextval(pg_get_serial_sequence('metering_usageevent', 'id')) "
                "FROM generate_series(1, %s)",
                (rows,),
            )
        )
        rows_with_ids = [(pk, *row) for pk, row in zip(ids, prepared, strict=True)]
        chunks = [rows_with_ids[i : i + 1000] for i in range(0, len(rows_with_ids), 1000)]
        with conn.transaction():  # the seal first, chained to the newest one
            seal_insert(conn, seal_id, hashes, now)
        conn.execute("CHECKPOINT")
        conn.commit()
        quiet_wait("the COPY phase")
        before = CpuSnapshot.take(None)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_start = usage.ru_utime + usage.ru_stime
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for chunk in chunks:
                with cursor.copy(statement) as copy:
                    for row in chunk:
                        copy.write_row(row)
                with cursor.copy(key_statement) as copy:
                    for row in chunk:  # customer, event_id, pk, seal, timestamp, hash
                        copy.write_row((row[1], row[2], row[0], row[12], row[3], row[10]))
                conn.commit()
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        after = CpuSnapshot.take(None)
    client_cpu = usage.ru_utime + usage.ru_stime - cpu_start
    return CopyResult(rows, len(chunks), seconds, cpu_shares(before, after, client_cpu))


# --- 7. the machine and the summary ----------------------------------------------------------


def summary_print(
    machine: dict, server: dict, batch: PhaseResult, single: PhaseResult,
    reference: PhaseResult, copy: CopyResult, lag: SealLagSampler, verdict: str,
) -> None:  # fmt: skip
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    single_p99 = single.percentile_ms(0.99)
    single_ratio = single.requests_per_s / reference.requests_per_s
    batch_ratio = batch.events_per_s / copy.rows_per_s
    intact = verdict.startswith("Event log intact")
    rows = [
        ("batch ingest", f"{batch.events_per_s:,.0f} events/s",
         f">= {TARGET_BATCH_EVENTS_S:,} events/s",
         mark(batch.events_per_s >= TARGET_BATCH_EVENTS_S and not batch.failures)),
        ("  batch latency", f"p50 {batch.percentile_ms(0.5):.0f} ms, "
         f"p99 {batch.percentile_ms(0.99):.0f} ms", "", ""),
        ("single ingest", f"{single.requests_per_s:,.0f} req/s",
         f">= {TARGET_SINGLE_REQ_S:,} req/s",
         mark(single.requests_per_s >= TARGET_SINGLE_REQ_S and not single.failures)),
        ("  single latency", f"p50 {single.percentile_ms(0.5):.1f} ms, p99 {single_p99:.1f} ms",
         f"p99 < {TARGET_SINGLE_P99_MS:.0f} ms", mark(single_p99 < TARGET_SINGLE_P99_MS)),
        ("reference single", f"{reference.requests_per_s:,.0f} req/s",
         "minimal WSGI app", ""),
        ("  reference latency", f"p50 {reference.percentile_ms(0.5):.1f} ms, "
         f"p99 {reference.percentile_ms(0.99):.1f} ms", "", ""),
        ("single / reference", f"{single_ratio:.2f}", f">= {TARGET_SINGLE_RATIO:.2f}",
         mark(single_ratio >= TARGET_SINGLE_RATIO)),
        ("COPY (1,000/commit)", f"{copy.rows_per_s:,.0f} rows/s", "", ""),
        ("batch / COPY", f"{batch_ratio:.2f}", f">= {TARGET_BATCH_RATIO:.2f}",
         mark(batch_ratio >= TARGET_BATCH_RATIO)),
        ("seal lag", f"p50 {lag.percentile_s(0.5):.2f} s, p99 {lag.percentile_s(0.99):.2f} s",
         f"p99 < {TARGET_SEAL_LAG_S:.0f} s", mark(lag.percentile_s(0.99) < TARGET_SEAL_LAG_S)),
        ("failures", f"batch {batch.failures}, single {single.failures}, "
         f"reference {reference.failures}", "0",
         mark(not batch.failures and not single.failures and not reference.failures)),
        ("event log", "intact" if intact else "BROKEN", "intact", mark(intact)),
    ]  # fmt: skip
    width = 78
    print("\n" + "=" * width)
    print("SUMMARY  tokentill ingest benchmark")
    print("-" * width)
    for name, value in machine.items():
        print(f"{name:<12} {value}")
    print(f"{'server':<12} gunicorn {server_label(server)}, CONN_MAX_AGE=600, DEBUG=false")
    print(
        f"{'clients':<12} batch: {batch.clients} processes x keep-alive; "
        f"single: {single.clients} processes x keep-alive"
    )
    print(
        f"{'sizes':<12} batch {batch.requests:,} x 1,000 events; single {single.requests:,} "
        f"requests; COPY {copy.rows:,} rows in {copy.chunks:,} commits"
    )
    print("-" * width)
    print(f"{'figure':<20} {'measured':<30} {'target':<20} {'':>6}")
    for name, value, target, verdict_mark in rows:
        print(f"{name:<20} {value:<30} {target:<20} {verdict_mark:>6}")
    for phase in (batch, single, reference):
        if phase.shares.get("other", 0.0) > NOISE["limit"]:
            print(
                f"NOTE: other processes took {phase.shares['other']:.0f}% of a core during "
                f"the {phase.name} phase: its figures are low; run again on a quiet machine"
            )
    print(f"verify_event_log: {verdict}")
    print("-" * width)
    print(f"batch  {shares_text(batch.shares)}")
    print(f"single {shares_text(single.shares)}")
    print(f"ref.   {shares_text(reference.shares)}")
    print(f"COPY   {shares_text(copy.shares)}")
    print(f"batch  {batch.backends}")
    print(f"single {single.backends}")
    print(f"ref.   {reference.backends}")
    print("=" * width)


# --- main ------------------------------------------------------------------------------------


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a small run for smoke-testing")
    parser.add_argument("--sweep", action="store_true", help="try several gunicorn configs")
    parser.add_argument("--worker-class", choices=["sync", "gthread"])
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch-requests", type=int, help="N (default 200; quick 8)")
    parser.add_argument("--batch-clients", type=int, help="K (default 3; quick 2)")
    parser.add_argument("--single-requests", type=int, help="M (default 10,000; quick 600)")
    parser.add_argument("--single-clients", type=int, help="C (default 6)")
    parser.add_argument(
        "--attempts",
        type=int,
        help="runs of a phase disturbed by other load (> 20%% of a core) before the "
        "cleanest is kept (default 3; quick 1)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="seconds to wait, at most, for other load to stop before each timed phase "
        "(default 90; quick 5)",
    )
    return parser.parse_args()


def main() -> int:
    args = arguments()
    sizes = {
        "batch_requests": args.batch_requests or (8 if args.quick else 200),
        "batch_clients": args.batch_clients or (2 if args.quick else DEFAULT_BATCH_CLIENTS),
        "single_requests": args.single_requests or (600 if args.quick else 10_000),
        "single_clients": args.single_clients or DEFAULT_SINGLE_CLIENTS,
    }
    QUIET["max_wait"] = (
        args.quiet_wait if args.quiet_wait is not None else (5 if args.quick else 90)
    )
    NOISE["attempts"] = max(1, args.attempts or (1 if args.quick else 3))
    server = dict(DEFAULT_SERVER)
    for name in ("worker_class", "workers", "threads"):
        if getattr(args, name) is not None:
            server[name] = getattr(args, name)
    if server["worker_class"] == "sync":
        server["threads"] = 1

    # SIGTERM gets the same clean-up as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    env = django_env(DB_NAME, CACHE_URL=CACHE)
    machine = machine_info()
    tag = f"b{secrets.token_hex(3)}"
    logdir = Path(tempfile.mkdtemp(prefix="tokentill-bench-"))
    print(f"tokentill ingest benchmark ({'quick' if args.quick else 'full'}), run tag {tag}")
    for name, value in machine.items():
        print(f"  {name}: {value}")

    print(f"\n[1] database {DB_NAME}: drop, create, migrate, seed")
    started = time.perf_counter()
    seed = database_create(env)
    print(
        f"  {len(seed['customers'])} customers, 1 API key ({time.perf_counter() - started:.1f} s)"
    )

    if args.sweep:
        print("\n[2] sweep: a short load against each server config")
        sweep_sizes = {
            **sizes,
            "batch_requests": 40 if not args.quick else 4,
            "single_requests": 4000 if not args.quick else 300,
        }
        scored = []
        for number, config in enumerate(SWEEP_SERVERS):
            batch, single, _ = server_measure(env, config, seed["key"], logdir, sweep_sizes,
                                              f"{tag}s{number}")  # fmt: skip
            scored.append((score(batch, single), number, config))
            print(f"  score {scored[-1][0]:.3f}\n")
        server = max(scored)[2]
        print(f"  best: {server_label(server)}")

    print("\n[2-4] gunicorn, batch phase, single phase beside the reference")
    copies: list[CopyResult] = []

    def copy_phase(batch: PhaseResult) -> None:
        print(f"\n[5] COPY: {batch.events:,} rows in chunks of 1,000, one commit each")
        copy = copy_run(seed["customers"], batch.events, tag)
        print(
            f"  {copy.rows:,} rows in {copy.seconds:.2f} s -> {copy.rows_per_s:,.0f} rows/s; "
            f"batch ingest / COPY = {batch.events_per_s / copy.rows_per_s:.2f}"
        )
        print(f"    {shares_text(copy.shares)}\n")
        copies.append(copy)

    with CeleryWorker(env, logdir, queues=("sealing",), concurrency=1), SealLagSampler() as lag:
        batch, single, reference = server_measure(
            env, server, seed["key"], logdir, sizes, tag, reference=True, after_batch=copy_phase
        )
    print(
        f"  seal lag over {len(lag.seconds):,} samples: p50 {lag.percentile_s(0.5):.2f} s, "
        f"p99 {lag.percentile_s(0.99):.2f} s, max {lag.percentile_s(1.0):.2f} s"
    )
    assert reference is not None
    copy = copies[0]
    print(
        f"  single, {REFERENCE_ROUNDS} rounds: tokentill {single.requests_per_s:,.0f} req/s "
        f"(other load {single.shares.get('other', 0):.0f}% of a core), reference "
        f"{reference.requests_per_s:,.0f} req/s (other load "
        f"{reference.shares.get('other', 0):.0f}%): ratio "
        f"{single.requests_per_s / reference.requests_per_s:.2f}"
    )

    broker_flush(BROKER)
    print("\n[5b] the sealer: seal what is left queued (the worker has stopped)")
    started = time.perf_counter()
    sealed = shell_answer(
        env,
        "from metering.sealing import events_seal\nprint('BENCH-SEALED', events_seal())",
        "BENCH-SEALED ",
    )
    seconds = time.perf_counter() - started
    print(f"  {int(sealed):,} batches sealed in {seconds:.1f} s (with the process's start-up)")

    print("\n[6] manage.py verify_event_log")
    started = time.perf_counter()
    done = manage(env, "verify_event_log", check=False)
    verdict = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:] or ["(no output)"]
    verdict = verdict[0].removeprefix("CommandError: ")
    print(f"  {verdict} ({time.perf_counter() - started:.1f} s)")

    summary_print(machine, server, batch, single, reference, copy, lag, verdict)
    failed = batch.failures or single.failures or reference.failures or done.returncode
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: gunicorn stopped", file=sys.stderr)
        sys.exit(130)
