"""Counters under gunicorn with several workers (PROMETHEUS_MULTIPROC_DIR and
config/gunicorn.py): whichever worker answers a scrape sums every worker's counts, those
of workers that have exited included, and nothing of an earlier run is counted again.

The site runs in processes of its own on a SQLite file of its own (the test database is
in memory on SQLite, where no other process sees it), so this runs on either backend.
Every wait is bounded and gunicorn is always stopped.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .support import TOKEN, figure, parse

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: dict | None = None, key: str = ""):
    """One request on a connection of its own (so gunicorn may give it to any worker)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        connection.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def children(pid: int) -> set[int]:
    """The gunicorn master's workers, from /proc (their pids, by the master's)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(part) for part in text.split()}


def wait_for(condition, what: str, seconds: float = START_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def site(tmp_path):
    """gunicorn with 2 workers on a migrated SQLite file, an operator key and a customer;
    a figures directory holding a stale file of an earlier run."""
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc/PID/task/PID/children to find gunicorn's workers")
    figures_dir = tmp_path / "prometheus"
    figures_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "tokentill-metrics-e2e-secret-key-not-for-production-000000000",
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
        "DATABASE_OWNER_URL": "",
        "CELERY_BROKER_URL": "",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "TOKENTILL_METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(figures_dir),
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    key = subprocess.run(
        [*manage, "create_api_key", "metrics-e2e"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # an earlier run's figures, which must not be counted again
    stale = (
        "from prometheus_client import Counter; "
        "Counter('tokentill_ingest_events', '', ['outcome']).labels(outcome='accepted').inc(1000)"
    )
    subprocess.run([sys.executable, "-c", stale], env=env, check=True)
    assert list(figures_dir.glob("counter_*.db"))

    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    command = [
        sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn", "config.wsgi",
        "--workers", "2", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(children(server.pid)) == 2, "2 workers")
        wait_for(lambda: _answers(port), "gunicorn to answer")
        yield server, port, key
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        log.close()


def _answers(port: int) -> bool:
    try:
        return request(port, "GET", "/metrics", key=TOKEN)[0] == 200
    except OSError:
        return False


def test_every_workers_counts_are_summed_by_any_worker_even_after_it_exits(site):
    server, port, key = site
    customer = {"external_id": "acme", "name": "Acme", "currency": "USD", "email": "b@acme.test"}
    assert request(port, "POST", "/api/v1/customers", customer, key)[0] == 201

    # given 5 events accepted and 1 rejected, each request on a connection of its own
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for number in range(5):
        event = {
            "event_id": f"g-{number}",
            "customer_id": "acme",
            "timestamp": at,
            "model": "gpt-4o",
            "metrics": {"input_tokens": 10},
        }
        assert request(port, "POST", "/api/v1/events", event, key)[0] == 202
    refused = {**event, "event_id": "g-x", "customer_id": "nobody"}
    assert request(port, "POST", "/api/v1/events", refused, key)[0] == 422

    # when every worker that counted them is stopped and replaced
    for worker in children(server.pid):
        os.kill(worker, signal.SIGTERM)
        wait_for(
            lambda worker=worker: (
                worker not in children(server.pid) and len(children(server.pid)) == 2
            ),
            f"worker {worker} to be replaced",
        )

    # then every scrape, by whichever new worker answers, has exactly those counts
    for _ in range(4):
        status, body = request(port, "GET", "/metrics", key=TOKEN)
        assert status == 200
        figures = parse(body.decode())
        assert figure(figures, "tokentill_ingest_events_total", outcome="accepted") == 5
        assert figure(figures, "tokentill_ingest_events_total", outcome="rejected") == 1
        assert figure(figures, "tokentill_ingest_rejections_total", reason="not_found") == 1
        timed = "tokentill_http_request_duration_seconds_count"
        assert figure(figures, timed, view="events", method="POST", status="2xx") == 5
        assert figure(figures, timed, view="events", method="POST", status="4xx") == 1
        # and the database's figures are read by the new workers too (how many events
        # wait depends on whether a stopped worker still owed its deferred rating nudge)
        assert figure(figures, "tokentill_metrics_collector_up", collector="metering") == 1
        assert 0 <= figure(figures, "tokentill_rating_queue_events") <= 5
