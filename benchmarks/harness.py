"""What the benchmarks share: their settings, database, servers, events and figures.

Each ``bench_*.py`` (and ``profile_ingest.py``) measures one thing; everything it needs
around that measurement, and that another benchmark needs too, is here once:

- the settings every ``manage.py``, gunicorn, Celery and child process gets
  (``django_env``), and running ``manage.py`` and Python children against them;
- a fresh PostgreSQL database of the benchmark's own, set up through the real services;
- gunicorn and a Celery worker in their own process groups, always stopped;
- the usage events the ingest benchmark and its profile send, and the customers they
  belong to;
- a small keep-alive HTTP client, percentiles and the closing summary.

What only one benchmark uses stays in that benchmark (bench_ingest.py's CPU accounting and
load generator, for one). Only the standard library and psycopg are imported here, never
Django: the harness runs in the benchmark's own process, and Django in the processes it
starts (profile_ingest.py, which runs Django in-process, takes only its settings).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
CELERY = ROOT / ".venv" / "bin" / "celery"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
BROKER = "redis://127.0.0.1:6379/11"
EVENTS_PATH = "/api/v1/events"
INGEST_DB = "tokentill_bench"  # bench_ingest.py creates it and leaves it for profile_ingest.py


# --- settings, manage.py and child processes ---------------------------------------------


def django_env(db_name: str, **overrides: str) -> dict[str, str]:
    """The environment for manage.py, gunicorn, Celery and Python children: production-like
    (no DEBUG, persistent connections) against the PostgreSQL database `db_name`.

    A fresh random SECRET_KEY every call; `overrides` replace any of these.
    """
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{db_name}",
        SECRET_KEY="bench-" + secrets.token_urlsafe(40),
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1",
        CONN_MAX_AGE="600",
        # As in production: after each commit ingestion asks for a rating run on the broker
        # (no worker consumes it unless a benchmark starts one; bench_ingest.py empties the
        # queue at the end). With no broker the run would happen eagerly inside the request,
        # which production never does.
        CELERY_BROKER_URL=BROKER,
        # The benchmarks measure the service, not its rate limits: budgets far above any
        # load they make (still counted, in slices taken from Redis as in production; a
        # slice is a hundredth of the budget, so here a process rarely asks for another).
        TOKENTILL_THROTTLE_INGEST="100000000/minute",
        TOKENTILL_THROTTLE_READS="100000000/minute",
        TOKENTILL_THROTTLE_WRITES="100000000/minute",
        TOKENTILL_THROTTLE_EXPORTS="100000000/minute",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    tiktoken_cache = ROOT.parent / "shared" / "tiktoken"
    if "TIKTOKEN_CACHE_DIR" not in env and tiktoken_cache.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache)
    return env


def manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


def shell_answer(env: dict, code: str, marker: str) -> str:
    """Run `code` in `manage.py shell` and return what it printed after `marker`."""
    done = manage(env, "shell", "-c", code, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(marker)]
    if done.returncode or not lines:
        raise SystemExit(f"seeding failed:\n{done.stdout}\n{done.stderr}")
    return lines[-1].removeprefix(marker)


def python_run(env: dict, code: str, count: int = 1) -> list[dict]:
    """Run `code` in `count` fresh Python processes at once; each prints one JSON line last.

    A fresh process is what production runs (a rater, beat's closing), and its peak memory
    (ru_maxrss) is that work's alone.
    """
    procs = [
        subprocess.Popen(
            [str(PYTHON), "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a child process failed (exit {proc.returncode}): {out}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# One rater for python_run: drains the rating queue, as the Celery task does, and says how
# many events it rated, how long it took and its peak memory.
RATER = """
import json, resource, time, django
django.setup()
from billing.rating.rater import usage_rate_pending
started = time.perf_counter()
rated = usage_rate_pending()
print(json.dumps({"rated": rated, "seconds": time.perf_counter() - started,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def log_dir() -> Path:
    """Where gunicorn's and Celery's logs go (ignored by git), for a look after a run."""
    logdir = ROOT / ".tokentill" / "bench"
    logdir.mkdir(parents=True, exist_ok=True)
    return logdir


# --- PostgreSQL and Redis ----------------------------------------------------------------


def pg_connect(dbname: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, **kwargs)


def database_fresh(env: dict, name: str, *commands: tuple[str, ...]) -> None:
    """Drop and create the PostgreSQL database `name`, migrate it, then run `commands`."""
    with pg_connect("postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    for args in (("migrate", "--noinput"), *commands):
        done = manage(env, *args, check=False)
        if done.returncode:
            raise SystemExit(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")


def database_with_customers(env: dict, name: str, key_name: str) -> str:
    """A fresh database `name` (database_fresh) with CUSTOMERS and an operator API key
    called `key_name`; the key's text."""
    database_fresh(env, name)
    code = f"""
from contracts.services import api_key_create, customer_create
for external_id in {CUSTOMERS!r}:
    customer_create(external_id=external_id, name=external_id, currency="USD")
_, key = api_key_create(name={key_name!r})
print("BENCH-KEY " + key)
"""
    return shell_answer(env, code, "BENCH-KEY ")


def vacuum_analyze(db_name: str) -> None:
    """What autovacuum does soon after a bulk load: fresh statistics for the next phase."""
    with pg_connect(db_name, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def broker_flush(broker: str, **run: bool) -> None:
    """Empty the broker's Redis database (what a run left queued); `run` goes to subprocess."""
    subprocess.run(["redis-cli", "-n", broker.rsplit("/", 1)[1], "FLUSHDB"], check=False, **run)


def machine_info() -> dict[str, str]:
    """The machine beside every figure: cores, CPU, RAM, PostgreSQL and its commit settings."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    with pg_connect("postgres") as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('synchronous_commit', 'shared_buffers', 'fsync')"
            ).fetchall()
        )
    load = os.getloadavg()
    return {
        "cpus": f"{os.cpu_count()} (nproc), {model}",
        "ram": f"{mem_kb / 2**20:.1f} GiB",
        "postgresql": f"{version} (synchronous_commit={settings['synchronous_commit']}, "
        f"fsync={settings['fsync']}, shared_buffers={int(settings['shared_buffers']) * 8} kB)",
        "python": platform.python_version(),
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min, at start)",
    }


# --- usage events ------------------------------------------------------------------------

CUSTOMERS = ["bench-acme", "bench-globex", "bench-initech", "bench-umbrella", "bench-hooli"]
MODELS = [
    ("gpt-4o", 0.35),
    ("gpt-4o-mini", 0.30),
    ("claude-sonnet-4-5", 0.20),
    ("claude-haiku-4-5", 0.10),
    ("gemini-2.5-pro", 0.05),
]
FEATURES = ["support-bot", "search", "summaries", "code-review", "agent", ""]
ENVIRONMENTS = ["production", "production", "production", "staging"]
REGIONS = ["eu-west-1", "us-east-1", "us-west-2"]


def event_make(rng: random.Random, event_id: str, now: datetime) -> dict:
    """A realistic event for one of CUSTOMERS: token counts with a long tail, some cached
    input and reasoning, a time in the last 30 days. Seeded `rng`: the same run, the same
    events."""
    model = rng.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0]
    prompt = int(rng.lognormvariate(7.0, 1.0)) + 20  # median ~1,100 tokens, long tail
    cached = rng.choice([0, 0, prompt // 2, int(prompt * 0.9)])
    metrics = {
        "input_tokens": prompt - cached,
        "output_tokens": int(rng.lognormvariate(5.5, 0.8)) + 1,
    }
    if cached:
        metrics["cached_input_tokens"] = cached
    if model.startswith("gpt") and rng.random() < 0.1:
        metrics["reasoning_tokens"] = rng.randint(100, 4000)
    moment = now - timedelta(seconds=rng.randint(60, 30 * 86_400))
    event = {
        "event_id": event_id,
        "customer_id": rng.choice(CUSTOMERS),
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": model,
        "metrics": metrics,
        "properties": {"environment": rng.choice(ENVIRONMENTS), "region": rng.choice(REGIONS)},
    }
    feature = rng.choice(FEATURES)
    if feature:
        event["feature"] = feature
    return event


# --- gunicorn and Celery -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(ppid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
                    found.append(int(entry))
    return found


def process_cpu_seconds(pid: int) -> float:
    """The CPU seconds (user + system) a process has used; 0 once it is gone."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def group_stop(proc: subprocess.Popen | None, grace: float, after_kill: float) -> None:
    """SIGTERM to a server we started in its own group, `grace` seconds to finish, then
    SIGKILL to that group (ours, no other) and `after_kill` seconds to go."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=after_kill)


class Gunicorn:
    """gunicorn in its own process group, stopped on exit whatever happens.

    ``with Gunicorn(...) as server:`` starts it and waits until it answers; leaving the
    block, by an error, Ctrl-C or SIGTERM too, stops it. The port is chosen at creation,
    so a benchmark can print the command before starting it.
    """

    def __init__(self, env: dict, server: dict, logdir: Path, app: str = "config.wsgi"):
        self.env, self.server, self.app = env, server, app
        self.port = free_port()
        self.log = logdir / f"gunicorn-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        server = self.server
        # A benchmark's own app (not config.wsgi) is a module in benchmarks/.
        own = [] if self.app == "config.wsgi" else ["--pythonpath", str(ROOT / "benchmarks")]
        return [
            str(GUNICORN),
            self.app,
            *own,
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(server["workers"]),
            "--worker-class", server["worker_class"],
            "--threads", str(server["threads"]),
            "--keep-alive", "75",
            "--backlog", "2048",
            "--timeout", "120",
            "--worker-tmp-dir", "/dev/shm",  # noqa: S108  heartbeat files on tmpfs
            "--log-level", "warning",
        ]  # fmt: skip

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", EVENTS_PATH)
                conn.getresponse().read()  # 401 without a key: the app answers
                conn.close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"gunicorn did not answer within 60 s:\n{self.log.read_text()[-3000:]}")

    def pids(self) -> list[int]:
        """The master and its workers."""
        if self.proc is None:
            return []
        return [self.proc.pid, *children_of(self.proc.pid)]

    def stop(self) -> None:
        group_stop(self.proc, 15, 5)  # graceful: workers finish their request

    def __enter__(self) -> Gunicorn:
        try:
            self.start()
        except BaseException:  # one that never answered is still running: stop it too
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class CeleryWorker:
    """A Celery worker (2 processes; every queue unless `queues` names some) on the broker
    in `env`, as in production, in its own process group; ``with`` starts it and stops it
    warmly (the task in hand finishes).
    """

    def __init__(self, env: dict, logdir: Path, queues: tuple[str, ...] = (), concurrency: int = 2):
        self.env, self.queues, self.concurrency = env, queues, concurrency
        self.log = logdir / f"celery{'-' + '-'.join(queues) if queues else ''}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> CeleryWorker:
        only = ["-Q", ",".join(self.queues)] if self.queues else []
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(CELERY), "-A", "config", "worker", "--concurrency", str(self.concurrency),
                 *only, "--loglevel", "warning", "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        group_stop(self.proc, 90, 10)  # warm shutdown: the task in hand finishes first


# --- HTTP clients and figures ------------------------------------------------------------


class Api:
    """One kept-alive connection to the API with a key: what a client library holds."""

    def __init__(self, port: int, key: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=self.headers)
        answer = self.conn.getresponse()
        return answer.status, answer.read()


def percentile(values: list[float], share: float) -> float:
    """The value at `share` of the ordered values, the rank rounded to the nearest.

    bench_ingest.py ranks by ceiling (PhaseResult.percentile_ms) instead; each keeps its
    own so that its figures compare with the ones it printed before.
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def p50_p99_ms(seconds: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile of durations in seconds, in milliseconds."""
    return percentile(seconds, 0.5) * 1000, percentile(seconds, 0.99) * 1000


def summary_print(figures: dict[str, str], width: int) -> None:
    """The closing summary: one figure a line, names in a column `width` wide."""
    print("\nSummary")
    for name, value in figures.items():
        print(f"  {name:<{width}} {value}")


# --- for the profiles and the rating benchmark --------------------------------------------

PRICED_MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]


def events_spread_sql() -> str:
    """INSERT ... SELECT of %(events)s events spread over the customers %(ids)s in turn (as
    ingestion interleaves them), 4 priced models and 3 features each, over the last 9 days,
    event ids %(tag)s followed by a number; for a backlog written straight into the log."""
    models = "ARRAY[" + ", ".join(f"'{model}'" for model in PRICED_MODELS) + "]"
    return f"""
        INSERT INTO metering_usageevent (customer_id, event_id, timestamp, model, feature,
            metrics, properties, counting, provider, received_at, content_hash, seal_id)
        SELECT (%(ids)s::bigint[])[1 + n %% %(count)s], %(tag)s || n,
               now() - (n::float / %(events)s) * interval '9 days',
               ({models})[1 + (n / %(count)s) %% 4],
               (ARRAY['chat', 'search', 'agent'])[1 + (n / %(count)s) %% 3],
               jsonb_build_object('input_tokens', 200 + n %% 1800,
                                  'output_tokens', 50 + n %% 700,
                                  'cached_input_tokens', (n %% 5) * 300),
               '{{}}'::jsonb, 'reported', '', now(), md5(n::text), gen_random_uuid()
        FROM generate_series(1, %(events)s) AS n
    """


class StageClock:
    """Exclusive wall and CPU time per stage: a nested stage's time leaves its parent's.

    Wall minus CPU is time spent waiting, in practice on PostgreSQL (the round trip and
    the statement's execution in the backend).
    """

    def __init__(self):
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack: list[list] = []  # [wall started, cpu started, child wall, child cpu]

    def wrap(self, label: str, function):
        clock = self

        def timed(*args, **kwargs):
            started, cpu_started = time.perf_counter(), time.thread_time()
            clock.stack.append([started, cpu_started, 0.0, 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                ended, cpu_ended = time.perf_counter(), time.thread_time()
                _, _, child_wall, child_cpu = clock.stack.pop()
                wall, cpu = ended - started, cpu_ended - cpu_started
                clock.wall[label] += wall - child_wall
                clock.cpu[label] += cpu - child_cpu
                if clock.stack:
                    clock.stack[-1][2] += wall
                    clock.stack[-1][3] += cpu

        timed.__wrapped__ = function
        return timed

    def patch(self, owner, name: str, label: str) -> None:
        """Time `owner.name` (a module's function, a class's method) as stage `label`."""
        setattr(owner, name, self.wrap(label, getattr(owner, name)))

    def reset(self):
        self.wall.clear()
        self.cpu.clear()
