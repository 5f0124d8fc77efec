"""The Prometheus endpoint (`GET /metrics`) and what it is made of.

Two kinds of figure, and why:

- **Counted in the process** (events ingested, request latencies): prometheus_client
  counters and histograms. Under gunicorn every worker counts its own; with
  `PROMETHEUS_MULTIPROC_DIR` set (docs/operations/metrics.md) each process writes its
  figures to files in that directory and a scrape, whichever worker answers it, sums every
  process's, dead ones included (`config/gunicorn.py` empties the directory at start).
- **Read from the database or the broker at scrape time** (queues, lags, failures): each
  app registers a function with `metrics_collector_register` from its AppConfig.ready
  (common imports no app, so the apps come to it, as the customer page's sections do).
  Whoever answers the scrape reads them once, so they are right across processes and
  hosts by construction; each is one cheap indexed query (the metrics page says its cost).

A collector that fails (a database or broker that does not answer) is logged and reported
as `tokentill_metrics_collector_up{collector=...} 0`; the rest of the scrape still answers.
"""

import contextlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

# `_created` samples exist in one process only (multiprocess mode has none): off
# everywhere, so a scrape reads the same with and without PROMETHEUS_MULTIPROC_DIR.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Prometheus' classic text format, which every Prometheus reads; generate_latest writes it
#: for names of plain ASCII, as all of tokentill's are.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: A scrape-time collector: yields metric families read from the database or the broker.
Collect = Callable[[], Iterable[Metric]]
_collectors: dict[str, Collect] = {}


def metrics_collector_register(name: str, collect: Collect) -> None:
    """Add `collect` to every scrape, under `name` (its `collector` label when it fails).
    Registering a name twice replaces the function (an app's ready() run again)."""
    _collectors[name] = collect


def metrics_collectors() -> dict[str, Collect]:
    return dict(_collectors)


def gauge(name: str, documentation: str, value: float | None = None, **labels: str) -> Metric:
    """One gauge family; with `labels`, one sample of it with those labels."""
    if not labels:
        return GaugeMetricFamily(name, documentation, value=value)
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    if value is not None:
        family.add_metric(list(labels.values()), value)
    return family


class _ScrapeTime:
    """Every registered collector, each in its own try, and whether it answered."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "tokentill_metrics_collector_up",
            "1 when the collector read its figures at this scrape, 0 when it failed.",
            labels=["collector"],
        )
        merged: dict[str, Metric] = {}  # two apps' samples of one family: one family
        for name, collect in sorted(_collectors.items()):
            try:
                families = list(collect())
            except Exception:
                logger.exception("metrics collector %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            for family in families:
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()
        yield up


class _InProcess:
    """This process's own counters (no PROMETHEUS_MULTIPROC_DIR: one process serves)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def multiprocess_dir() -> str:
    """Where prometheus_client keeps every process's figures; empty: in process memory.
    prometheus_client reads the same variable when it is imported."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def metrics_exposition() -> bytes:
    """The whole scrape, in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_InProcess())
    registry.register(_ScrapeTime())
    return generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics with `Authorization: Bearer <TOKENTILL_METRICS_TOKEN>`. Without the
    setting the endpoint does not exist (404); a missing or wrong token is a 401."""
    token = settings.TOKENTILL_METRICS_TOKEN
    if not token:
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return HttpResponse(
            "a bearer token is required\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE)


# --- request latencies --------------------------------------------------------------------

REQUEST_SECONDS = Histogram(
    "tokentill_http_request_duration_seconds",
    "Time from the request reaching Django to its answer, by view (URL name), method and "
    "status class.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no URL pattern: a 404, a static file, a redirect to HTTPS


def request_view_name(request: HttpRequest) -> str:
    """The URL pattern's name (`namespace:name`), the view's dotted path when it has none,
    or `unmatched`: a bounded set, never the path itself (ids would make a series each)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.view_name or UNMATCHED


class RequestMetricsMiddleware:
    """Times every request into `tokentill_http_request_duration_seconds`. First in
    MIDDLEWARE, so it times what the other middleware does too."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        REQUEST_SECONDS.labels(
            view=request_view_name(request),
            method=method,
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response


# --- Celery queue depths --------------------------------------------------------------------

BROKER_TIMEOUT_SECONDS = 2


def celery_queues_collect() -> Iterable[Metric]:
    """Messages waiting in each of CELERY_TASK_QUEUES, asked of the broker with a passive
    queue declaration (kombu: Redis list lengths, RabbitMQ's message count, files of the
    filesystem transport), which creates nothing. A queue the broker does not know yet (a
    Redis list is removed when it empties) has 0 waiting. Without a broker tasks run
    eagerly in the process that sends them and never wait: nothing is exported."""
    if not settings.CELERY_BROKER_URL:
        return []
    from kombu import Connection

    depth = GaugeMetricFamily(
        "tokentill_celery_queue_messages",
        "Tasks waiting in the broker's queue (not yet taken by a worker).",
        labels=["queue"],
    )
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}))
    options.setdefault("socket_timeout", BROKER_TIMEOUT_SECONDS)  # Redis: no hanging scrape
    options.setdefault("socket_connect_timeout", BROKER_TIMEOUT_SECONDS)
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=BROKER_TIMEOUT_SECONDS,
        transport_options=options,
    ) as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS
        )
        for queue in settings.CELERY_TASK_QUEUES:
            channel: Any = connection.channel()  # kombu's stubs know no queue_declare
            try:
                _, count, _ = channel.queue_declare(queue=queue.name, passive=True)
            except connection.channel_errors:
                count = 0  # not declared yet: nothing was ever left waiting in it
            finally:
                with contextlib.suppress(Exception):  # a channel the broker closed already
                    channel.close()
            depth.add_metric([queue.name], count)
    return [depth]
