"""config.wsgi: the API under /api/v1/ answers through the lean middleware stack (the
security headers still on every answer), every other path through the full one."""

import io
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.core import signals
from django.db import close_old_connections
from prometheus_client import REGISTRY

from config.wsgi import API_MIDDLEWARE, application
from metering.models import UsageEvent


@pytest.fixture
def wsgi(db):
    """Calls config.wsgi.application as gunicorn does; like Django's test client, it keeps
    the test's connection (and transaction) open across the call."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)

    def call(method: str, path: str, body: bytes = b"", **headers: str):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "443",
            "HTTP_HOST": "testserver",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            **headers,
        }
        started = []
        chunks = application(environ, lambda status, pairs: started.append((status, pairs)))
        content = b"".join(chunks)
        chunks.close()
        status, pairs = started[0]
        return int(status.split()[0]), dict(pairs), content

    yield call
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_api_stack_is_metrics_security_then_audit():
    assert API_MIDDLEWARE == [
        "common.metrics.RequestMetricsMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "common.audit.AuditActorMiddleware",
    ]


def test_an_event_is_ingested_through_the_lean_stack_with_the_security_headers(
    wsgi, acme, operator_key
):
    def timed() -> float:
        labels = {"view": "events", "method": "POST", "status": "2xx"}
        name = "tokentill_http_request_duration_seconds_count"
        return REGISTRY.get_sample_value(name, labels) or 0.0

    timed_before = timed()
    moment = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "event_id": "w1",
        "customer_id": "acme",
        "timestamp": moment,
        "model": "gpt-4o",
        "metrics": {"input_tokens": 10, "output_tokens": 2},
    }

    status, headers, content = wsgi(
        "POST",
        "/api/v1/events",
        orjson.dumps(event),
        HTTP_AUTHORIZATION=f"Bearer {operator_key}",
    )

    assert status == 202
    assert orjson.loads(content) == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "items": [{"index": 0, "event_id": "w1", "status": "accepted"}],
    }
    assert UsageEvent.objects.get().event_id == "w1"
    assert headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware
    assert "Strict-Transport-Security" in headers
    assert timed() == timed_before + 1  # RequestMetricsMiddleware
    assert "X-Frame-Options" not in headers  # no clickjacking middleware: JSON only
    assert "Vary" not in headers  # no session middleware: no cookie read


def test_without_a_key_the_api_answers_401_and_stores_nothing(wsgi, acme):
    status, headers, _ = wsgi("POST", "/api/v1/events", b"{}")

    assert status == 401
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert UsageEvent.objects.count() == 0


def test_the_portal_goes_through_the_full_stack(wsgi):
    status, headers, _ = wsgi("GET", "/portal/login/", CONTENT_TYPE="text/html")

    assert status == 200
    assert headers["X-Frame-Options"] == "DENY"  # the clickjacking middleware
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "csrftoken" in headers.get("Set-Cookie", "")  # the CSRF middleware
