"""A real Celery worker, in its own process, runs `event_log_verify` over the test's data,
and keeps its database connection from one task to the next.

The worker talks to Redis (a high database number, a queue of its own) and opens the
test database itself, so this runs on PostgreSQL only: pytest-django's SQLite test
database lives in memory, where no second process can see it. Every wait is bounded and
the worker is always stopped, so the test cannot hang or leave a process behind.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.db import connection

from contracts.services import customer_create
from metering.services import events_ingest

ROOT = Path(__file__).resolve().parents[2]
# A database number of its own, away from anything a developer keeps in Redis.
BROKER_URL = os.environ.get("TOKENTILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
RESULT_BACKEND = BROKER_URL
REDIS_HOST, REDIS_PORT = urlsplit(BROKER_URL).hostname, urlsplit(BROKER_URL).port or 6379
TASK_SECONDS = 90
STOP_SECONDS = 15


def redis_answers() -> bool:
    """A PING over a plain socket, with a short timeout."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as sock:
            sock.settimeout(1)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def database_url_for_test_db() -> str:
    """The test database (pytest-django's test_... name) as a DATABASE_URL."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{db['NAME']}"


@pytest.fixture
def celery_client():
    """A Celery app of the test's own, on the test Redis: settings stay eager for the rest."""
    # Not the current app: tasks sent by name in later tests still go to tokentill's own.
    client = Celery(
        "tokentill-e2e", broker=BROKER_URL, backend=RESULT_BACKEND, set_as_current=False
    )
    client.conf.broker_connection_retry_on_startup = False
    client.conf.broker_transport_options = {"socket_timeout": 5, "socket_connect_timeout": 5}
    yield client
    client.close()


@pytest.fixture
def worker_env() -> dict[str, str]:
    """What a test changes in the worker's environment (parametrize it by this name)."""
    return {}


@pytest.fixture
def worker(transactional_db, celery_client, tmp_path, worker_env):
    """Start `celery -A config worker` on a queue of its own; always stop it afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("needs a database a second process can open (runs on PostgreSQL)")
    if not redis_answers():
        pytest.skip(f"no Redis answers at {REDIS_HOST}:{REDIS_PORT}")

    queue = f"tokentill-e2e-{uuid.uuid4().hex[:12]}"
    with celery_client.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "tokentill-e2e-worker-secret-key-not-for-production-0000000000",
        "DEBUG": "false",
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_RESULT_BACKEND": RESULT_BACKEND,
        "DATABASE_URL": database_url_for_test_db(),
        "CONN_MAX_AGE": "0",
        **worker_env,
    }
    log_path = tmp_path / "celery-worker.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, queue, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)
        forget_queue(queue)


def forget_queue(queue: str) -> None:
    """Remove the queue and the binding tables the worker declared for it from Redis."""
    client = redis.Redis.from_url(BROKER_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    finally:
        client.close()


def wait_for_result(result, process, log_path, *, seconds: float):
    """The task's return value; fails (with the worker's log) if the worker dies or stalls."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the worker exited with {process.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            return result.get(timeout=1, interval=0.2)
        except CeleryTimeoutError:
            continue
    pytest.fail(f"no answer within {seconds} s; worker log:\n{log_path.read_text()[-4000:]}")


def an_event(number: int, moment: datetime) -> dict:
    return {
        "event_id": f"e2e-{number}",
        "customer_id": "acme",
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "model": "gpt-4o",
        "feature": "support-bot",
        "metrics": {"input_tokens": 1200, "output_tokens": 350, "cached_input_tokens": 0},
    }


def test_a_real_worker_verifies_the_event_log_the_test_wrote(worker, celery_client):
    # given: five events in two sealed batches, committed where the worker can read them
    process, queue, log_path = worker
    customer_create(external_id="acme", name="Acme Corp", currency="USD")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    first = events_ingest(items=[an_event(n, an_hour_ago) for n in range(3)])
    second = events_ingest(items=[an_event(n, an_hour_ago) for n in range(3, 5)])
    assert (first.count("accepted"), second.count("accepted")) == (3, 2)

    # when
    result = celery_client.send_task("metering.tasks.event_log_verify", queue=queue)
    answer = wait_for_result(result, process, log_path, seconds=TASK_SECONDS)
    result.forget()

    # then
    assert answer == {"ok": True, "seals": 2, "events": 5, "problem": ""}
    assert "metering.tasks.event_log_verify" in log_path.read_text()


def worker_backends(besides: frozenset[int] = frozenset()) -> list[int]:
    """The server processes of the test database's other connections, but `besides`
    (those open before the worker's first task): the worker's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() ORDER BY pid"
        )
        return [pid for (pid,) in cursor.fetchall() if pid not in besides]


@pytest.mark.parametrize("worker_env", [{"CONN_MAX_AGE": "600"}])
def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next(
    worker, celery_client, worker_env
):
    process, queue, log_path = worker
    before, backends = frozenset(worker_backends()), []
    for _ in range(3):
        result = celery_client.send_task("metering.tasks.event_log_verify", queue=queue)
        answer = wait_for_result(result, process, log_path, seconds=TASK_SECONDS)
        result.forget()
        assert answer["ok"] is True
        backends.append(worker_backends(before))

    (first,) = backends[0]  # one connection, still open after its task
    assert backends == [[first], [first], [first]]


def test_with_conn_max_age_0_a_worker_closes_its_connection_after_each_task(worker, celery_client):
    process, queue, log_path = worker
    before = frozenset(worker_backends())
    result = celery_client.send_task("metering.tasks.event_log_verify", queue=queue)
    wait_for_result(result, process, log_path, seconds=TASK_SECONDS)
    result.forget()

    deadline = time.monotonic() + 5  # the server notices the closed socket at once
    while worker_backends(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_backends(before) == []
