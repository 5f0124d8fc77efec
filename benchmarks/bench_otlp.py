"""OTLP intake benchmark: events per second through `POST /v1/traces`, beside the same
events through `POST /api/v1/events` in the same run (the reference).

Run from the project root (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/bench_otlp.py
    .venv/bin/python benchmarks/bench_otlp.py --batches 20   # quicker

What it does:

1. Drops and creates the PostgreSQL database ``tokentill_bench_otlp``, migrates it, and
   creates the harness's customers and an operator key through the real services.
2. Starts gunicorn (2 sync workers) and sends, over one kept-alive connection, batches of
   100 events in turns: a REST batch (JSON), then an OTLP export (binary protobuf, gzip,
   as the SDK's exporter and the Collector send it) of 100 GenAI spans carrying the same
   kind of counts, each beside a span without usage (its HTTP call), so the export holds
   200 spans. Both kinds meet the same table as it grows.
3. Sends every OTLP export again: all duplicates.

Each line prints events per second and the p50 and p99 of a request; the figure that
matters is OTLP's events per second against REST's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    CUSTOMERS,
    Api,
    Gunicorn,
    database_fresh,
    django_env,
    event_make,
    log_dir,
    machine_info,
    p50_p99_ms,
    shell_answer,
    summary_print,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

DB_NAME = "tokentill_bench_otlp"
BATCH = 100


def setup(env: dict) -> str:
    database_fresh(env, DB_NAME)
    code = f"""
from contracts.services import api_key_create, customer_create
for external_id in {CUSTOMERS!r}:
    customer_create(external_id=external_id, name=external_id, currency="USD")
_, key = api_key_create(name="otlp benchmark")
print("BENCH-KEY " + key)
"""
    return shell_answer(env, code, "BENCH-KEY ")


def attribute(name: str, value: str | int) -> KeyValue:
    pair = KeyValue(key=name)
    if isinstance(value, int):
        pair.value.int_value = value
    else:
        pair.value.string_value = value
    return pair


def export_of(events: list[dict], rng: random.Random) -> bytes:
    """An export of the events as GenAI spans, each beside the HTTP span of its call; the
    input total holds the cached tokens, as the GenAI conventions count."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(attribute("service.name", "assistant"))
    spans = resource_spans.scope_spans.add().spans
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"]).timestamp()
        end = int(moment) * 1_000_000_000
        trace_id = rng.randbytes(16)
        metrics = event["metrics"]
        cached = metrics.get("cached_input_tokens", 0)
        counts = {
            "gen_ai.usage.input_tokens": metrics["input_tokens"] + cached,
            "gen_ai.usage.cache_read.input_tokens": cached,
            "gen_ai.usage.output_tokens": metrics["output_tokens"],
            # the harness draws reasoning apart from output; a span's output includes it
            "gen_ai.usage.reasoning.output_tokens": min(
                metrics.get("reasoning_tokens", 0), metrics["output_tokens"]
            ),
        }
        texts = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": event["model"],
            "tokentill.customer_id": event["customer_id"],
            "tokentill.feature": event.get("feature", ""),
            **event["properties"],
        }
        for name, attributes in (
            (f"chat {event['model']}", {**texts, **counts}),
            ("POST", {"http.request.method": "POST", "http.response.status_code": 200}),
        ):
            span = spans.add(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                name=name,
                start_time_unix_nano=end - 900_000_000,
                end_time_unix_nano=end,
            )
            span.attributes.extend(attribute(key, value) for key, value in attributes.items())
    return gzip.compress(request.SerializeToString())


def send(api: Api, path: str, body: bytes, headers: dict, times: list[float]) -> None:
    started = time.perf_counter()
    api.conn.request("POST", path, body=body, headers={**api.headers, **headers})
    answer = api.conn.getresponse()
    content = answer.read()
    times.append(time.perf_counter() - started)
    if answer.status not in (200, 202):
        raise SystemExit(f"{path} answered {answer.status}: {content[:300]!r}")
    if path == "/v1/traces" and content:  # a partial success: some span was rejected
        raise SystemExit(f"/v1/traces rejected spans: {content[:300]!r}")


def line(label: str, events: int, times: list[float]) -> str:
    p50, p99 = p50_p99_ms(times)
    rate = events / sum(times)
    text = f"{rate:,.0f} events/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms per request of {BATCH}"
    print(f"   {label}: {text}", flush=True)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100, help="of 100 events, each kind")
    options = parser.parse_args()
    env = django_env(DB_NAME, TOKENTILL_OTLP_PROPERTY_ATTRIBUTES="environment,region")
    figures = dict(machine_info())
    rng = random.Random(16)
    now = datetime.now(UTC)

    print(f"1. setup: database {DB_NAME}, {len(CUSTOMERS)} customers, a key ...", flush=True)
    key = setup(env)
    rest_bodies, otlp_bodies = [], []
    for number in range(options.batches):
        events = [event_make(rng, f"rest-{number}-{n}", now) for n in range(BATCH)]
        rest_bodies.append(json.dumps({"events": events}).encode())
        otlp_bodies.append(export_of(events, rng))
    otlp_headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}

    print("2. gunicorn (2 sync workers): REST and OTLP batches in turns ...", flush=True)
    with Gunicorn(env, {"worker_class": "sync", "workers": 2, "threads": 1}, log_dir()) as server:
        api = Api(server.port, key)
        rest_times: list[float] = []
        otlp_times: list[float] = []
        for rest, otlp in zip(rest_bodies, otlp_bodies, strict=True):
            send(api, "/api/v1/events", rest, {}, rest_times)
            send(api, "/v1/traces", otlp, otlp_headers, otlp_times)
        events = options.batches * BATCH
        figures["REST JSON (reference)"] = line("REST JSON (reference)", events, rest_times)
        figures["OTLP protobuf, gzip"] = line("OTLP protobuf, gzip", events, otlp_times)
        figures["OTLP / REST"] = f"{sum(rest_times) / sum(otlp_times):.2f} of REST's events/s"
        print(f"   OTLP / REST: {figures['OTLP / REST']}")

        print("3. every OTLP export again (duplicates) ...", flush=True)
        again: list[float] = []
        for otlp in otlp_bodies:
            send(api, "/v1/traces", otlp, otlp_headers, again)
        figures["OTLP again (duplicates)"] = line("OTLP again (duplicates)", events, again)
        api.conn.close()

    summary_print(figures, 24)
    return 0


if __name__ == "__main__":
    sys.exit(main())
