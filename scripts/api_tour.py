#!/usr/bin/env python3
"""A billing set-up from nothing, through the operator API alone: no shell, no admin.

    scripts/api_tour.py --url http://127.0.0.1:8000 --key tt_…   # an operator key

It registers a webhook endpoint (a receiver this script runs on 127.0.0.1), creates a
rate card with a formula price and a graduated price, a customer, a contract from the 1st
of last month, grants credits twice with one Idempotency-Key (one grant), sends last
month's usage, reads the invoice preview, closes the period that is due and waits for
`invoice.finalized`, whose signature it checks. Python's standard library only; each
run makes its own customer and card (a suffix), so it may run again. docs/guide/api.md.
"""

import argparse
import hashlib
import hmac
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote


class Api:
    """JSON over HTTP with an operator key."""

    def __init__(self, url: str, key: str):
        if not url.startswith(("http://", "https://")):
            sys.exit(f"--url must be http(s): {url}")
        self.base, self.key = url.rstrip("/") + "/api/v1", key

    def call(self, method: str, path: str, body: dict | None = None, **headers: str) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (http(s))
                replayed = answer.headers.get("Idempotent-Replayed") == "true"
                return {**json.loads(answer.read() or b"{}"), "_replayed": replayed}
        except urllib.error.HTTPError as error:
            sys.exit(f"{method} {path} answered {error.code}: {error.read().decode()}")


class Receiver(BaseHTTPRequestHandler):
    """Takes tokentill's webhook POSTs: (headers, raw body) onto `received`."""

    received: "queue.Queue[tuple[dict, bytes]]" = queue.Queue()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def signature_valid(headers: dict, body: bytes, secret: str) -> bool:
    """docs/guide/webhooks.md: HMAC-SHA256 of "<t>.<raw body>", t within 5 minutes."""
    parts = dict(part.split("=", 1) for part in headers["Tokentill-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(parts["t"])) <= 300
    return fresh and hmac.compare_digest(expected.hexdigest(), parts["v1"])


def month_starts(now: datetime) -> tuple[datetime, datetime]:
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (this_month - timedelta(days=1)).replace(day=1), this_month


def tour(api: Api, receiver_url: str, wait_seconds: float) -> dict:
    run = uuid.uuid4().hex[:6]
    last_month, this_month = month_starts(datetime.now(UTC))
    iso = lambda moment: moment.isoformat().replace("+00:00", "Z")  # noqa: E731

    endpoint = api.call(
        "POST", "/webhook-endpoints",
        {"url": receiver_url, "description": f"api tour {run}",
         "event_types": ["invoice.finalized"]},
        Idempotency_Key=f"tour-{run}-endpoint",
    )  # fmt: skip
    print(f"webhook endpoint {endpoint['id']} -> {receiver_url}")

    card = f"Tour {run}"
    api.call(
        "POST", "/rate-cards",
        {
            "name": card, "currency": "USD", "effective_from": iso(last_month),
            "prices": [
                {"name": "gpt-4o", "model_pattern": "gpt-4o",
                 "rates": {"rate_in": {"amount": "2.50", "per": 1000000},
                           "rate_out": {"amount": "10.00", "per": 1000000}},
                 "formula": "input_tokens * rate_in + output_tokens * rate_out"},
                {"name": "embeddings", "model_pattern": "text-embedding-3-*", "kind": "graduated",
                 "rates": {"rate_unit": {"amount": "1", "per": 1000}},
                 "formula": "input_tokens * rate_unit",
                 "tiers": [{"up_to": "100", "unit_price": "0.02"},
                           {"up_to": None, "unit_price": "0.01"}]},
            ],
        },
        Idempotency_Key=f"tour-{run}-card",
    )  # fmt: skip
    print(f"rate card {card!r}: gpt-4o (formula), embeddings (graduated)")

    customer = f"tour-{run}"
    api.call(
        "POST", "/customers", {"external_id": customer, "name": f"Tour {run}", "currency": "USD"},
        Idempotency_Key=f"tour-{run}-customer",
    )  # fmt: skip
    api.call(
        "POST", f"/customers/{customer}/contracts",
        {"starts_at": iso(last_month), "rate_card": card, "anchor_day": 1, "fixed_fee": "10.00"},
        Idempotency_Key=f"tour-{run}-contract",
    )  # fmt: skip
    print(f"customer {customer}, contract from {last_month:%Y-%m-%d}: 10.00 USD a month")

    grant = {"amount": "5.00", "source": "purchased", "reason": "tour"}
    first = api.call("POST", f"/customers/{customer}/wallet/grants", grant,
                     Idempotency_Key=f"tour-{run}-grant")  # fmt: skip
    again = api.call("POST", f"/customers/{customer}/wallet/grants", grant,
                     Idempotency_Key=f"tour-{run}-grant")  # fmt: skip
    grants = api.call("GET", f"/customers/{customer}/wallet/grants")["results"]
    print(f"granted 5.00 twice with one Idempotency-Key: grant {first['id']}, "
          f"replayed {again['_replayed']}, {len(grants)} grant(s)")  # fmt: skip

    at = this_month - timedelta(days=2) - timedelta(hours=12)  # within the lateness window
    events = [
        {"event_id": f"{run}-chat-{n}", "customer_id": customer, "model": "gpt-4o",
         "timestamp": iso(at + timedelta(minutes=n)),
         "metrics": {"input_tokens": 100000, "output_tokens": 50000}}
        for n in range(4)
    ] + [
        {"event_id": f"{run}-embed", "customer_id": customer, "model": "text-embedding-3-small",
         "timestamp": iso(at), "metrics": {"input_tokens": 250000}}
    ]  # fmt: skip
    accepted = api.call("POST", "/events", {"events": events})["accepted"]
    if accepted != len(events):
        sys.exit(f"{len(events) - accepted} of the {len(events)} events were refused")
    print(f"sent {accepted} events in {last_month:%B}")

    preview = api.call("GET", f"/customers/{customer}/invoice-preview")
    print(f"preview of this month: {preview['total']} {preview['currency']}")

    closed = api.call("POST", "/periods/close", {"customer": customer},
                      Idempotency_Key=f"tour-{run}-close")  # fmt: skip
    invoices = closed["invoices"]
    if not invoices:
        sys.exit(f"no period was due yet (last month's closes a day after {this_month:%Y-%m-%d})")
    invoice = api.call("GET", f"/customers/{customer}/invoices/{invoices[0]['number']}")
    for line in invoice["lines"]:
        print(f"  {line['description']:<60} {line['amount']:>10}")
    print(f"closed {last_month:%B}: {invoice['number']}, total {invoice['total']} USD")

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            headers, body = Receiver.received.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        event = json.loads(body)
        if event["data"].get("invoice_number") == invoice["number"]:
            valid = signature_valid(headers, body, endpoint["secret"])
            print(f"received {event['type']} {event['id']}, signature "
                  f"{'valid' if valid else 'INVALID'}")  # fmt: skip
            return {"invoice": invoice, "event": event, "signature_valid": valid,
                    "grants": len(grants), "replayed": again["_replayed"]}  # fmt: skip
    sys.exit(f"no invoice.finalized for {invoice['number']} within {wait_seconds:.0f} s")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="tokentill's address")
    parser.add_argument("--key", required=True, help="an operator API key")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the webhook")
    options = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        receiver_url = f"http://127.0.0.1:{server.server_port}/hooks/{quote('tokentill')}"
        return tour(Api(options.url, options.key), receiver_url, options.wait)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
