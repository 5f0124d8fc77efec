"""A small stateful Stripe-compatible HTTP server for tokentill's tests and demo.

The tests drive the real ``stripe`` library against it on loopback. localstripe cannot
create one-off invoices, finalize them or take ``unit_amount_decimal``, so tokentill carries
its own fake for exactly the calls it makes, in Stripe's request and response shapes:
form-encoded parameters in (``metadata[plan]=pro``, ``expand[0]=customer``), JSON out, errors
as ``{"error": {"type", "message", "code", "param"}}`` so the library raises its own
exception classes. Standard library only, so it also runs by itself::

    python -m tests.fakes.stripe_server --port 12111

What it does as Stripe does:

- Idempotency (docs.stripe.com/api/idempotent_requests): once an endpoint starts executing,
  the status and body of the first POST with a given ``Idempotency-Key`` are saved, errors
  included. The same key with the same endpoint and parameters replays them, with
  ``Idempotent-Replayed: true``; the same key with another endpoint or other parameters is a
  400 ``idempotency_error``. Requests refused before an endpoint runs (no or a bad API key,
  an unknown URL, an unknown, missing or malformed parameter, an injected 429 or 500) save
  nothing and can be retried. Keys are scoped per API key and never expire.
- Money: ``unit_amount_decimal`` is in the currency's minor unit with at most 12 decimal
  places; a line's ``amount`` is ``quantity * unit_amount_decimal`` rounded to a whole minor
  unit once, on the line (see ``line_amount``). An invoice's total is the sum of its lines.
- Invoices go draft → open (``finalize`` assigns ``number``) → paid, void or uncollectible;
  an invoice finalized with nothing to pay is paid at once. A transition from the wrong state
  is a 400 ``invalid_request_error``.
- Events: state changes record the event Stripe would send (``invoice.finalized``,
  ``invoice.paid``, ``invoice.payment_succeeded``, ``invoice.payment_failed``,
  ``invoice.voided``, ``invoice.marked_uncollectible``, ``credit_note.created``) in
  ``events``; ``sign`` and ``signed_event`` sign events as Stripe signs webhooks.

Faults are injected by method and path prefix (``inject``): ``timeout_after_accept`` performs
the request and saves its answer, then never sends it; ``error_500`` and ``rate_limit_429``
answer before the endpoint runs; ``card_declined`` fails the next payment of ``/pay``.

Not modelled: taxes, discounts, prices and products, subscriptions, hosted invoice pages
(a finalized invoice names one, ``hosted_invoice_url``, that nothing serves) and PDFs, test
clocks, automatic advancement of invoices.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, localcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_tokentill"
FAULT_KINDS = ("timeout_after_accept", "error_500", "rate_limit_429", "card_declined")

_ID_ALPHABET = string.ascii_letters + string.digits
_DECIMAL = re.compile(r"-?\d+(\.\d{1,12})?")
_INTEGER = re.compile(r"-?\d+")
_KEY_PART = re.compile(r"\[([^\]]*)\]")


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def now() -> int:
    return int(time.time())


def line_amount(quantity: Decimal, unit_amount_decimal: Decimal) -> int:
    """A line's amount in minor units: the exact product, rounded once, half away from zero.

    Stripe's "Decimal amounts" page (docs.stripe.com/billing/subscriptions/decimal-amounts):
    rounding happens per line item, after the quantity is multiplied by the decimal amount,
    to the nearest whole cent ("0.05 * 30 = 1.5, which is then rounded up to 2 cents"). It
    does not say how a negative half goes; this rounds it away from zero too (-1.5 → -2).
    The product is worked out with 60 digits so a 12-place quantity times a 12-place price
    is exact before it is rounded.
    """
    with localcontext() as context:
        context.prec = 60
        return int((quantity * unit_amount_decimal).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` as Stripe sends it: HMAC-SHA256 of ``"{t}.{payload}"`` keyed with
    the whole endpoint secret (``whsec_...``), hex, as ``t=...,v1=...``."""
    t = now() if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


class StripeError(Exception):
    """An answer in Stripe's error shape.

    ``saved`` is False for refusals that happen before an endpoint runs (parameters, API
    key, URL, injected 429/500): Stripe keeps no idempotent result for those.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        **extra: str,
    ):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.param = param
        self.saved = saved
        self.extra = extra

    def body(self) -> dict:
        error = {"type": self.error_type, "message": str(self)}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


# --- parameters -------------------------------------------------------------------------


def form_parse(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding as nested dicts and lists.

    ``metadata[plan]=pro`` is a dict, ``expand[0]=customer`` (the library) and
    ``expand[]=customer`` (curl) are lists, ``lines[0][amount]=5`` a list of dicts.
    """
    root: dict = {}
    for key, value in pairs:
        head, bracket, rest = key.partition("[")
        parts = [head, *_KEY_PART.findall(bracket + rest)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part if part else str(len(node)), {})
            if not isinstance(node, dict):
                raise _invalid(head, f"Invalid value for {head}: given both plain and with [].")
        last = parts[-1] if parts[-1] else str(len(node))
        node[last] = value
    return _listify(root)


def _listify(node: dict, key: str = "") -> dict | list:
    """Dicts keyed 0, 1, 2... become lists (never metadata, whose keys are the caller's)."""
    node = {k: _listify(v, k) if isinstance(v, dict) else v for k, v in node.items()}
    if key != "metadata" and node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


def _names(text: str) -> set[str]:
    return set(text.split())


def _invalid(param: str, message: str, code: str | None = None) -> StripeError:
    return StripeError(message, code=code, param=param, saved=False)


def _missing(param: str) -> StripeError:
    return StripeError(
        f"Missing required param: {param}.", code="parameter_missing", param=param, saved=False
    )


def _only(params: dict, allowed: set[str], where: str = "") -> None:
    for name in params:
        if name not in allowed:
            param = f"{where}[{name}]" if where else name
            raise StripeError(
                f"Received unknown parameter: {param}",
                code="parameter_unknown",
                param=param,
                saved=False,
            )


def _str(params: dict, name: str, *, required: bool = False, where: str = "") -> str | None:
    param = f"{where}[{name}]" if where else name
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _missing(param)
        return None
    if not isinstance(value, str):
        raise _invalid(param, f"Invalid string: {value!r}")
    return value


def _int(params: dict, name: str, *, minimum: int | None = None, where: str = "") -> int | None:
    param = f"{where}[{name}]" if where else name
    value = _str(params, name, where=where)
    if value is None:
        return None
    if not _INTEGER.fullmatch(value):
        raise _invalid(param, f"Invalid integer: {value}", "parameter_invalid_integer")
    if minimum is not None and int(value) < minimum:
        raise _invalid(param, f"Invalid {param}: must be at least {minimum}")
    return int(value)


def _decimal(params: dict, name: str, *, where: str = "") -> Decimal | None:
    """A plain decimal string with at most 12 places; exponent forms such as ``1E-7`` are
    refused, so callers send what Stripe documents (``format(value, "f")``)."""
    param = f"{where}[{name}]" if where else name
    value = _str(params, name, where=where)
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value):
        raise _invalid(
            param, f"Invalid decimal: {value}; a plain decimal with at most 12 decimal places"
        )
    return Decimal(value)


def _bool(params: dict, name: str) -> bool | None:
    value = _str(params, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise _invalid(name, f"Invalid boolean: {value}")
    return value == "true"


def _choice(params: dict, name: str, choices: tuple[str, ...], *, where: str = "") -> str | None:
    value = _str(params, name, where=where)
    if value is not None and value not in choices:
        param = f"{where}[{name}]" if where else name
        raise _invalid(param, f"Invalid {param}: must be one of {', '.join(choices)}")
    return value


def _currency(params: dict) -> str | None:
    value = _str(params, "currency")
    if value is not None and not re.fullmatch(r"[A-Za-z]{3}", value):
        raise _invalid("currency", f"Invalid currency: {value}")
    return value.lower() if value else None


def _metadata(params: dict, current: dict | None = None, where: str = "") -> dict:
    """Metadata merged as Stripe merges it: an empty value unsets its key, an empty
    ``metadata`` unsets them all."""
    param = f"{where}[metadata]" if where else "metadata"
    given = params.get("metadata")
    result = dict(current or {})
    if given is None:
        return result
    if given == "":
        return {}
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise _invalid(param, "Invalid metadata: a hash of strings")
    for key, value in given.items():
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    return result


def _api_key(authorization: str | None) -> str:
    """The key of ``Authorization: Bearer sk_test_...`` (or curl's Basic ``sk_test_...:``)."""
    if not authorization:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            status=401,
            saved=False,
        )
    scheme, _, credential = authorization.partition(" ")
    key = credential.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key).decode().partition(":")[0]
        except ValueError:
            key = ""
    if scheme.lower() not in ("bearer", "basic") or not re.fullmatch(r"[sr]k_test_\w+", key):
        raise StripeError(
            f"Invalid API Key provided: {key[:8]}****{key[-4:]}", status=401, saved=False
        )
    return key


# --- the server's state and its answers ---------------------------------------------------


@dataclass
class Fault:
    """A fault waiting for its next ``remaining`` requests of ``method`` under ``path``."""

    kind: str
    method: str
    path: str
    remaining: int = 1
    hold: float = 0.0


@dataclass(frozen=True)
class Request:
    """One request as the fake saw it, for assertions."""

    method: str
    path: str
    params: dict
    idempotency_key: str | None
    status: int
    replayed: bool = False
    fault: str | None = None


@dataclass
class Answer:
    """An HTTP answer; ``hold`` is set when it is never sent (timeout after accept)."""

    status: int
    body: bytes
    headers: dict[str, str]
    replayed: bool = False
    fault: str | None = None
    hold: float | None = None


@dataclass(frozen=True)
class _Saved:
    """What an idempotency key keeps: the request it was first used with and its answer."""

    method: str
    path: str
    params: dict
    status: int
    body: bytes


class FakeStripe:
    """The fake Stripe account: its objects, the requests it saw, its events and faults.

    ``customers``, ``invoice_items``, ``invoices`` and ``credit_notes`` map ids to objects
    shaped as Stripe shapes them (what a retrieve would answer, unexpanded).
    """

    api_key = API_KEY

    def __init__(self) -> None:
        self.customers: dict[str, dict] = {}
        self.invoice_items: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.credit_notes: dict[str, dict] = {}
        self.events: list[dict] = []
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._saved: dict[tuple[str, str], _Saved] = {}
        self._days_until_due: dict[str, int] = {}
        self._line_ids: dict[str, str] = {}
        self._context: dict = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        i = "(?P<id>[^/]+)"
        self._routes = [
            ("POST", "/v1/customers", self._customer_create),
            ("GET", "/v1/customers", self._customer_list),
            ("GET", f"/v1/customers/{i}", self._customer_retrieve),
            ("POST", f"/v1/customers/{i}", self._customer_update),
            ("POST", "/v1/invoiceitems", self._invoice_item_create),
            ("GET", "/v1/invoiceitems", self._invoice_item_list),
            ("GET", f"/v1/invoiceitems/{i}", self._invoice_item_retrieve),
            ("POST", "/v1/invoices", self._invoice_create),
            ("GET", "/v1/invoices", self._invoice_list),
            ("GET", f"/v1/invoices/{i}", self._invoice_retrieve),
            ("GET", f"/v1/invoices/{i}/lines", self._invoice_lines),
            ("POST", f"/v1/invoices/{i}/finalize", self._invoice_finalize),
            ("POST", f"/v1/invoices/{i}/pay", self._invoice_pay),
            ("POST", f"/v1/invoices/{i}/void", self._invoice_void),
            ("POST", f"/v1/invoices/{i}/mark_uncollectible", self._invoice_mark_uncollectible),
            ("POST", "/v1/credit_notes", self._credit_note_create),
            ("GET", f"/v1/credit_notes/{i}", self._credit_note_retrieve),
        ]

    # --- running ---

    def start(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False):
        """Serve on ``host:port`` (0: a free port) in a thread of its own."""
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._server.verbose = verbose
        # A short poll keeps stop() quick: shutdown() waits for the loop to look again.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-stripe", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving; answers held back by ``timeout_after_accept`` are dropped."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    # --- faults ---

    def inject(
        self, kind: str, method: str, path: str, *, times: int = 1, hold: float = 0.0
    ) -> Fault:
        """Fail the next ``times`` requests of ``method`` whose path starts with ``path``.

        ``timeout_after_accept`` performs the request (and saves its answer under its
        idempotency key), waits ``hold`` seconds and closes the connection without answering:
        the client sees a closed connection, or its own timeout if ``hold`` is longer.
        ``error_500`` and ``rate_limit_429`` answer before the endpoint runs, so nothing is
        done and nothing saved. ``card_declined`` makes ``/pay`` fail as a declined card
        does: a 402 ``card_error``, the attempt counted and ``invoice.payment_failed`` recorded.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind, method.upper(), path, times, hold)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _fault_take(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        for fault in self.faults:
            if (
                fault.remaining > 0
                and fault.kind in kinds
                and fault.method == method
                and path.startswith(fault.path)
            ):
                fault.remaining -= 1
                return fault
        return None

    # --- one request ---

    def handle(self, method: str, target: str, body: bytes, headers) -> Answer:
        """Answer one request; ``headers`` is anything with a case-insensitive ``get``."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        pairs = parse_qsl(split.query, keep_blank_values=True)
        if method == "POST":
            pairs += parse_qsl(body.decode(), keep_blank_values=True)
        key = headers.get("Idempotency-Key") if method == "POST" else None
        with self._lock:
            request_id = new_id("req")
            self._context = {
                "request_id": request_id,
                "idempotency_key": key,
                "api_version": headers.get("Stripe-Version"),
            }
            params: dict = {}
            try:
                api_key = _api_key(headers.get("Authorization"))
                fault = self._fault_take(method, path, ("error_500", "rate_limit_429"))
                if fault is not None:
                    answer = self._fault_answer(fault)
                else:
                    params = form_parse(pairs)
                    saved = self._saved.get((api_key, key)) if key else None
                    if saved is not None:
                        answer = self._replay(saved, method, path, params, key)
                    else:
                        answer = self._execute(method, path, params)
                        if key:
                            self._saved[(api_key, key)] = _Saved(
                                method, path, copy.deepcopy(params), answer.status, answer.body
                            )
                fault = self._fault_take(method, path, ("timeout_after_accept",))
                if fault is not None:
                    answer = replace(answer, fault=fault.kind, hold=fault.hold)
            except StripeError as error:
                answer = _error_answer(error)
            except Exception as error:  # a fault of the fake itself: say so, not a dropped line
                traceback.print_exc()
                failure = StripeError(
                    f"The fake failed: {error!r}", status=500, error_type="api_error"
                )
                answer = _error_answer(failure)
            answer.headers.update(_answer_headers(request_id, key, headers))
            self.requests.append(
                Request(method, path, params, key, answer.status, answer.replayed, answer.fault)
            )
            return answer

    def _execute(self, method: str, path: str, params: dict) -> Answer:
        """Run the endpoint. Errors it answers with are returned, to be kept under an
        idempotency key; refusals before it runs (``saved=False``) are raised."""
        endpoint, ids = self._route(method, path)
        expand = params.get("expand", [])
        if not isinstance(expand, list) or not all(isinstance(p, str) for p in expand):
            raise _invalid("expand", "Invalid array: expand")
        arguments = {name: value for name, value in params.items() if name != "expand"}
        try:
            obj = endpoint(arguments, **ids)
        except StripeError as error:
            if not error.saved:
                raise
            return _error_answer(error)
        return Answer(200, _json(self._expanded(obj, expand)), {})

    def _route(self, method: str, path: str):
        for route_method, pattern, endpoint in self._routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return endpoint, match.groupdict()
        raise StripeError(f"Unrecognized request URL ({method}: {path}).", status=404, saved=False)

    def _replay(self, saved: _Saved, method: str, path: str, params: dict, key: str) -> Answer:
        if (saved.method, saved.path) != (method, path):
            raise StripeError(
                "Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ('{saved.method} {saved.path}' vs '{method} {path}'). "
                f"Try using a key other than '{key}' if you meant to execute a different request.",
                error_type="idempotency_error",
                saved=False,
            )
        if saved.params != params:
            raise StripeError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                error_type="idempotency_error",
                saved=False,
            )
        return Answer(saved.status, saved.body, {"Idempotent-Replayed": "true"}, replayed=True)

    def _fault_answer(self, fault: Fault) -> Answer:
        if fault.kind == "rate_limit_429":
            error = StripeError(
                "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                status=429,
                code="rate_limit",
            )
        else:
            error = StripeError("An unknown error occurred", status=500, error_type="api_error")
        return replace(_error_answer(error), fault=fault.kind)

    # --- lookups, lists, expansion, events ---

    def _get(self, table: dict, object_id: str, name: str, *, param: str | None = None) -> dict:
        """An object by id; missing, a 404 for an id in the path, a 400 for one in a parameter."""
        obj = table.get(object_id)
        if obj is None:
            raise StripeError(
                f"No such {name}: '{object_id}'",
                status=400 if param else 404,
                code="resource_missing",
                param=param or "id",
            )
        return obj

    def _object(self, object_id: str) -> dict | None:
        prefix = object_id.partition("_")[0]
        table = {
            "cus": self.customers,
            "in": self.invoices,
            "ii": self.invoice_items,
            "cn": self.credit_notes,
        }.get(prefix, {})
        return table.get(object_id)

    def _page(self, objects: list[dict], params: dict, url: str, *, newest_first=True) -> dict:
        """A list object as Stripe pages it: ``limit`` (default 10), ``starting_after``,
        ``ending_before``, newest first."""
        limit = _int(params, "limit", minimum=1)
        limit = 10 if limit is None else min(limit, 100)
        ordered = list(reversed(objects)) if newest_first else list(objects)
        ids = [obj["id"] for obj in ordered]
        after, before = _str(params, "starting_after"), _str(params, "ending_before")
        for name, cursor in (("starting_after", after), ("ending_before", before)):
            if cursor is not None and cursor not in ids:
                raise _invalid(name, f"No such object: '{cursor}'", "resource_missing")
        if before is not None:
            end = ids.index(before)
            page, has_more = ordered[max(end - limit, 0) : end], end > limit
        else:
            start = ids.index(after) + 1 if after is not None else 0
            page, has_more = ordered[start : start + limit], len(ordered) > start + limit
        return {"object": "list", "data": page, "has_more": has_more, "url": url}

    def _expanded(self, obj: dict, paths: list[str]) -> dict:
        """A copy with ``expand`` applied: each dotted path whose last field holds the id of
        an object of this fake gets the object; ``data.x`` reaches into a list's items.
        Paths that name no such id are left as they are."""
        result = copy.deepcopy(obj)

        def expand(node, parts):
            if isinstance(node, dict) and node.get("object") == "list" and parts[0] == "data":
                for item in node["data"]:
                    expand(item, parts[1:])
            elif isinstance(node, dict) and parts and parts[0] in node:
                value = node[parts[0]]
                if len(parts) > 1:
                    expand(value, parts[1:])
                elif isinstance(value, str) and self._object(value) is not None:
                    node[parts[0]] = copy.deepcopy(self._object(value))

        for path in paths:
            expand(result, path.split("."))
        return result

    def event(self, event_type: str, obj: dict) -> dict:
        """A Stripe event (``object: "event"``) carrying a snapshot of ``obj``; not recorded."""
        return {
            "id": new_id("evt"),
            "object": "event",
            "api_version": None,
            "created": now(),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def _record(self, event_type: str, obj: dict) -> None:
        event = self.event(event_type, obj)
        event["api_version"] = self._context.get("api_version")
        event["request"] = {
            "id": self._context.get("request_id"),
            "idempotency_key": self._context.get("idempotency_key"),
        }
        self.events.append(event)

    # --- webhooks ---

    def sign(self, event: dict, secret: str, *, timestamp: int | None = None):
        """``(payload, headers)`` for delivering ``event`` as Stripe does, signed with the
        endpoint secret. With Django's test client: ``client.post(url, payload,
        content_type="application/json", headers=headers)``."""
        payload = json.dumps(event, indent=2).encode()
        return payload, {"Stripe-Signature": signature_header(payload, secret, timestamp)}

    def signed_event(
        self, event_type: str, obj: dict, secret: str, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A new event of ``event_type`` about ``obj``, signed: ``(payload, headers)``."""
        return self.sign(self.event(event_type, obj), secret, timestamp=timestamp)

    def deliver(self, url: str, event: dict, secret: str, *, timestamp: int | None = None):
        """POST ``event`` signed to a live ``url`` as Stripe does; ``(status, body)``."""
        payload, headers = self.sign(event, secret, timestamp=timestamp)
        headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
        # The URL is the test's own server, never one a user typed.
        request = urllib.request.Request(url, payload, headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    # --- customers ---

    _CUSTOMER_FIELDS = ("email", "name", "description", "phone")

    def _customer_create(self, params: dict) -> dict:
        _only(params, {*self._CUSTOMER_FIELDS, "metadata", "invoice_prefix"})
        prefix = _str(params, "invoice_prefix")
        if prefix is not None and not re.fullmatch(r"[A-Z0-9]{3,12}", prefix):
            raise _invalid("invoice_prefix", "Invalid invoice_prefix: 3 to 12 A-Z or 0-9")
        prefix = prefix or "".join(secrets.choice("ABCDEF0123456789") for _ in range(8))
        customer = {
            "id": new_id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": _str(params, "description"),
            "discount": None,
            "email": _str(params, "email"),
            "invoice_prefix": prefix,
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": _metadata(params),
            "name": _str(params, "name"),
            "next_invoice_sequence": 1,
            "phone": _str(params, "phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.customers[customer["id"]] = customer
        return customer

    def _customer_retrieve(self, params: dict, id: str) -> dict:
        _only(params, set())
        return self._get(self.customers, id, "customer")

    def _customer_update(self, params: dict, id: str) -> dict:
        _only(params, {*self._CUSTOMER_FIELDS, "metadata"})
        customer = self._get(self.customers, id, "customer")
        changes = {name: _str(params, name) for name in self._CUSTOMER_FIELDS if name in params}
        metadata = _metadata(params, customer["metadata"])
        customer.update(changes, metadata=metadata)
        return customer

    def _customer_list(self, params: dict) -> dict:
        _only(params, {"email", "limit", "starting_after", "ending_before"})
        email = _str(params, "email")
        found = [c for c in self.customers.values() if email is None or c["email"] == email]
        return self._page(found, params, "/v1/customers")

    # --- invoice items ---

    def _invoice_item_create(self, params: dict) -> dict:
        _only(
            params,
            _names(
                "customer currency invoice description quantity quantity_decimal "
                "unit_amount_decimal amount period metadata discountable"
            ),
        )
        customer_id = _str(params, "customer", required=True)
        invoice_id = _str(params, "invoice")
        currency = _currency(params)
        if currency is None and invoice_id is None:
            raise _missing("currency")
        quantity, quantity_decimal = _quantity(params)
        unit = _decimal(params, "unit_amount_decimal")
        amount = _int(params, "amount")
        if unit is None and amount is None:
            raise _invalid("amount", "Either amount or unit_amount_decimal is required.")
        if amount is not None:
            if unit is not None or "quantity" in params or "quantity_decimal" in params:
                raise _invalid(
                    "amount",
                    "amount is the item's whole amount: it cannot be combined with "
                    "unit_amount_decimal, quantity or quantity_decimal.",
                )
            unit = Decimal(amount)
        period = _period(params)
        metadata = _metadata(params)
        discountable = _bool(params, "discountable")

        customer = self._get(self.customers, customer_id, "customer", param="customer")
        invoice = None
        if invoice_id is not None:
            invoice = self._get(self.invoices, invoice_id, "invoice", param="invoice")
            if invoice["status"] != "draft":
                raise StripeError(
                    f"You can only add invoice items to draft invoices; {invoice_id} is "
                    f"{invoice['status']}.",
                    code="invoice_not_editable",
                    param="invoice",
                )
            if invoice["customer"] != customer["id"]:
                raise StripeError(
                    f"The invoice {invoice_id} belongs to another customer.", param="invoice"
                )
            if currency is not None and currency != invoice["currency"]:
                raise StripeError(
                    f"The currency of the invoice item ({currency}) must match the currency "
                    f"of its invoice ({invoice['currency']}).",
                    param="currency",
                )
            currency = invoice["currency"]
        created = now()
        item = {
            "id": new_id("ii"),
            "object": "invoiceitem",
            "amount": line_amount(quantity_decimal, unit),
            "currency": currency,
            "customer": customer["id"],
            "date": created,
            "description": _str(params, "description"),
            "discountable": True if discountable is None else discountable,
            "discounts": [],
            "invoice": invoice_id,
            "livemode": False,
            "metadata": metadata,
            "parent": None,
            "period": period or {"start": created, "end": created},
            "pricing": {
                "price_details": None,
                "type": "price_details",
                "unit_amount_decimal": format(unit, "f"),
            },
            "proration": False,
            "quantity": quantity,
            "quantity_decimal": format(quantity_decimal, "f"),
            "tax_rates": [],
            "test_clock": None,
        }
        item["net_amount"] = item["amount"]
        self.invoice_items[item["id"]] = item
        if invoice is not None:
            self._invoice_refresh(invoice)
        return item

    def _invoice_item_retrieve(self, params: dict, id: str) -> dict:
        _only(params, set())
        return self._get(self.invoice_items, id, "invoiceitem")

    def _invoice_item_list(self, params: dict) -> dict:
        _only(
            params, {"customer", "invoice", "pending", "limit", "starting_after", "ending_before"}
        )
        customer, invoice = _str(params, "customer"), _str(params, "invoice")
        pending = _bool(params, "pending")
        found = [
            item
            for item in self.invoice_items.values()
            if customer in (None, item["customer"])
            and invoice in (None, item["invoice"])
            and (pending is None or pending == (item["invoice"] is None))
        ]
        return self._page(found, params, "/v1/invoiceitems")

    # --- invoices ---

    def _invoice_create(self, params: dict) -> dict:
        _only(
            params,
            _names(
                "customer currency collection_method days_until_due due_date auto_advance "
                "description footer metadata pending_invoice_items_behavior"
            ),
        )
        customer_id = _str(params, "customer", required=True)
        currency = _currency(params)
        method = _choice(params, "collection_method", ("charge_automatically", "send_invoice"))
        method = method or "charge_automatically"
        days = _int(params, "days_until_due", minimum=0)
        due_date = _int(params, "due_date")
        if method == "send_invoice" and days is None and due_date is None:
            raise _missing("days_until_due")
        if method == "charge_automatically" and (days is not None or due_date is not None):
            raise _invalid(
                "days_until_due",
                "days_until_due and due_date can only be set with collection_method=send_invoice.",
            )
        behavior = _choice(params, "pending_invoice_items_behavior", ("exclude", "include"))
        auto_advance = _bool(params, "auto_advance")
        metadata = _metadata(params)
        customer = self._get(self.customers, customer_id, "customer", param="customer")
        created = now()
        if days is not None:
            due_date = created + days * 86400
        invoice = {
            "id": new_id("in"),
            "object": "invoice",
            "amount_due": 0,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "amount_shipping": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": bool(auto_advance),
            "billing_reason": "manual",
            "collection_method": method,
            "created": created,
            "currency": currency or customer["currency"] or "usd",
            "customer": customer["id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "default_tax_rates": [],
            "description": _str(params, "description"),
            "discounts": [],
            "due_date": due_date,
            "effective_at": None,
            "ending_balance": None,
            "footer": _str(params, "footer"),
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "lines": {},
            "livemode": False,
            "metadata": metadata,
            "next_payment_attempt": None,
            "number": None,
            "parent": None,
            "period_end": created,
            "period_start": created,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "starting_balance": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "total": 0,
            "total_discount_amounts": [],
            "total_excluding_tax": 0,
            "total_taxes": [],
            "webhooks_delivered_at": None,
        }
        self.invoices[invoice["id"]] = invoice
        if days is not None:
            self._days_until_due[invoice["id"]] = days
        if behavior == "include":
            for item in self.invoice_items.values():
                if (item["customer"], item["currency"], item["invoice"]) == (
                    customer["id"],
                    invoice["currency"],
                    None,
                ):
                    item["invoice"] = invoice["id"]
        self._invoice_refresh(invoice)
        return invoice

    def _invoice_refresh(self, invoice: dict) -> None:
        """Lines and amounts from the invoice's items: the total is the sum of rounded lines."""
        items = [item for item in self.invoice_items.values() if item["invoice"] == invoice["id"]]
        lines = [self._line(item) for item in items]
        total = sum(line["amount"] for line in lines)
        invoice["lines"] = {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice['id']}/lines",
        }
        amount_due = max(total - invoice["pre_payment_credit_notes_amount"], 0)
        invoice.update(
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            amount_due=amount_due,
            amount_remaining=amount_due - invoice["amount_paid"],
        )

    def _line(self, item: dict) -> dict:
        line_id = self._line_ids.setdefault(item["id"], new_id("il"))
        return {
            "id": line_id,
            "object": "line_item",
            "amount": item["amount"],
            "currency": item["currency"],
            "description": item["description"],
            "discount_amounts": [],
            "discountable": item["discountable"],
            "discounts": [],
            "invoice": item["invoice"],
            "livemode": False,
            "metadata": dict(item["metadata"]),
            "parent": {
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": item["id"],
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": None,
                },
                "subscription_item_details": None,
            },
            "period": dict(item["period"]),
            "pretax_credit_amounts": [],
            "pricing": dict(item["pricing"]),
            "quantity": item["quantity"],
            "quantity_decimal": item["quantity_decimal"],
            "subscription": None,
            "subtotal": item["amount"],
            "taxes": [],
        }

    def _invoice_retrieve(self, params: dict, id: str) -> dict:
        _only(params, set())
        return self._get(self.invoices, id, "invoice")

    def _invoice_lines(self, params: dict, id: str) -> dict:
        _only(params, {"limit", "starting_after", "ending_before"})
        invoice = self._get(self.invoices, id, "invoice")
        return self._page(
            invoice["lines"]["data"], params, invoice["lines"]["url"], newest_first=False
        )

    def _invoice_list(self, params: dict) -> dict:
        _only(params, {"customer", "status", "limit", "starting_after", "ending_before"})
        customer = _str(params, "customer")
        status = _choice(params, "status", ("draft", "open", "paid", "uncollectible", "void"))
        found = [
            invoice
            for invoice in self.invoices.values()
            if customer in (None, invoice["customer"]) and status in (None, invoice["status"])
        ]
        return self._page(found, params, "/v1/invoices")

    def _invoice_finalize(self, params: dict, id: str) -> dict:
        _only(params, {"auto_advance"})
        auto_advance = _bool(params, "auto_advance")
        invoice = self._get(self.invoices, id, "invoice")
        if invoice["status"] != "draft":
            raise StripeError(
                "This invoice is already finalized, you can't re-finalize a non-draft invoice."
            )
        finalized = now()
        customer = self.customers[invoice["customer"]]
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        invoice.update(status="open", effective_at=finalized, ending_balance=0)
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/fake/{id}"
        invoice["status_transitions"]["finalized_at"] = finalized
        if auto_advance is not None:
            invoice["auto_advance"] = auto_advance
        if id in self._days_until_due:
            invoice["due_date"] = finalized + self._days_until_due[id] * 86400
        self._record("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._invoice_paid(invoice, attempted=False)
        return invoice

    def _invoice_paid(self, invoice: dict, *, attempted: bool) -> None:
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = now()
        self._record("invoice.paid", invoice)
        if attempted:
            self._record("invoice.payment_succeeded", invoice)

    def _invoice_pay(self, params: dict, id: str) -> dict:
        _only(params, {"paid_out_of_band", "payment_method", "source", "off_session", "forgive"})
        out_of_band = bool(_bool(params, "paid_out_of_band"))
        invoice = self._get(self.invoices, id, "invoice")
        if invoice["status"] == "paid":
            raise StripeError("Invoice is already paid")
        if invoice["status"] not in ("open", "uncollectible"):
            raise StripeError(
                f"You can only pay an open or uncollectible invoice; {id} is {invoice['status']}."
            )
        if not out_of_band:
            invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1)
            if self._fault_take("POST", f"/v1/invoices/{id}/pay", ("card_declined",)):
                self._record("invoice.payment_failed", invoice)
                raise StripeError(
                    "Your card was declined.",
                    status=402,
                    error_type="card_error",
                    code="card_declined",
                    decline_code="generic_decline",
                )
        self._invoice_paid(invoice, attempted=not out_of_band)
        return invoice

    def _invoice_void(self, params: dict, id: str) -> dict:
        _only(params, set())
        invoice = self._get(self.invoices, id, "invoice")
        if invoice["status"] not in ("open", "uncollectible"):
            raise StripeError(
                f"You can only void an open or uncollectible invoice; {id} is {invoice['status']}."
            )
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = now()
        self._record("invoice.voided", invoice)
        return invoice

    def _invoice_mark_uncollectible(self, params: dict, id: str) -> dict:
        _only(params, set())
        invoice = self._get(self.invoices, id, "invoice")
        if invoice["status"] != "open":
            raise StripeError(
                f"You can only mark an open invoice uncollectible; {id} is {invoice['status']}."
            )
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = now()
        self._record("invoice.marked_uncollectible", invoice)
        return invoice

    # --- credit notes ---

    def _credit_note_create(self, params: dict) -> dict:
        """A credit note for a finalized invoice, by ``amount`` or ``lines``: before payment
        it lowers what is due (and pays the invoice when nothing is left), after payment it
        credits the customer's balance."""
        _only(
            params,
            _names(
                "invoice amount lines reason memo metadata credit_amount refund_amount "
                "out_of_band_amount"
            ),
        )
        invoice_id = _str(params, "invoice", required=True)
        amount = _int(params, "amount", minimum=1)
        reason = _choice(
            params,
            "reason",
            ("duplicate", "fraudulent", "order_change", "product_unsatisfactory"),
        )
        memo = _str(params, "memo")
        metadata = _metadata(params)
        out_of_band = _int(params, "out_of_band_amount", minimum=0)
        for name in ("credit_amount", "refund_amount"):
            _int(params, name, minimum=0)
        given = params.get("lines", [])
        if not isinstance(given, list) or not all(isinstance(line, dict) for line in given):
            raise _invalid("lines", "Invalid array: lines")
        if not given and amount is None:
            raise _missing("amount")

        invoice = self._get(self.invoices, invoice_id, "invoice", param="invoice")
        lines = [
            self._credit_note_line(line, f"lines[{n}]", invoice) for n, line in enumerate(given)
        ]
        total = sum(line["amount"] for line in lines) if lines else amount
        if amount is not None and total != amount:
            raise StripeError(
                f"The amount ({amount}) must equal the sum of the lines ({total}).", param="amount"
            )
        if invoice["status"] not in ("open", "paid", "uncollectible"):
            raise StripeError(
                f"You can only issue credit notes for finalized invoices; {invoice_id} is "
                f"{invoice['status']}.",
                param="invoice",
            )
        notes = [cn for cn in self.credit_notes.values() if cn["invoice"] == invoice_id]
        left = invoice["total"] - sum(cn["total"] for cn in notes)
        if total > left:
            raise StripeError(
                f"The credit note's total ({total}) exceeds what is left to credit on the "
                f"invoice ({left}).",
                param="amount",
            )
        pre_payment = invoice["status"] != "paid"
        note = {
            "id": new_id("cn"),
            "object": "credit_note",
            "amount": total,
            "amount_shipping": 0,
            "created": now(),
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "customer_balance_transaction": None,
            "discount_amount": 0,
            "discount_amounts": [],
            "effective_at": now(),
            "invoice": invoice_id,
            "livemode": False,
            "memo": memo,
            "metadata": metadata,
            "number": f"{invoice['number']}-CN-{len(notes) + 1:02d}",
            "out_of_band_amount": out_of_band,
            "pdf": None,
            "post_payment_amount": 0 if pre_payment else total,
            "pre_payment_amount": total if pre_payment else 0,
            "pretax_credit_amounts": [],
            "reason": reason,
            "refunds": [],
            "status": "issued",
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_excluding_tax": total,
            "total_taxes": [],
            "type": "pre_payment" if pre_payment else "post_payment",
            "voided_at": None,
        }
        note["lines"] = {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/credit_notes/{note['id']}/lines",
        }
        self.credit_notes[note["id"]] = note
        if pre_payment:
            invoice["pre_payment_credit_notes_amount"] += total
            self._invoice_refresh(invoice)
        else:
            invoice["post_payment_credit_notes_amount"] += total
            self.customers[invoice["customer"]]["balance"] -= total - (out_of_band or 0)
        self._record("credit_note.created", note)
        if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
            self._invoice_paid(invoice, attempted=False)
        return note

    def _credit_note_line(self, line: dict, where: str, invoice: dict) -> dict:
        _only(
            line,
            _names(
                "type invoice_line_item quantity amount unit_amount unit_amount_decimal "
                "description metadata"
            ),
            where,
        )
        kind = _choice(line, "type", ("invoice_line_item", "custom_line_item"), where=where)
        if kind is None:
            raise _missing(f"{where}[type]")
        quantity = _int(line, "quantity", minimum=0, where=where)
        amount = _int(line, "amount", minimum=0, where=where)
        unit = _decimal(line, "unit_amount_decimal", where=where)
        unit_amount = _int(line, "unit_amount", minimum=0, where=where)
        description = _str(line, "description", where=where)
        metadata = _metadata(line, where=where)
        source_id = None
        if kind == "invoice_line_item":
            source_id = _str(line, "invoice_line_item", required=True, where=where)
            sources = [s for s in invoice["lines"]["data"] if s["id"] == source_id]
            if not sources:
                raise StripeError(
                    f"No such invoice line item on {invoice['id']}: '{source_id}'",
                    code="resource_missing",
                    param=f"{where}[invoice_line_item]",
                )
            source = sources[0]
            unit = Decimal(source["pricing"]["unit_amount_decimal"])
            description = description or source["description"]
            if amount is None:
                amount = (
                    source["amount"] if quantity is None else line_amount(Decimal(quantity), unit)
                )
        else:
            if unit is None and unit_amount is None:
                raise _missing(f"{where}[unit_amount]")
            unit = unit if unit is not None else Decimal(unit_amount)
            quantity = 1 if quantity is None else quantity
            amount = line_amount(Decimal(quantity), unit)
            if description is None:
                raise _missing(f"{where}[description]")
        return {
            "id": new_id("cnli"),
            "object": "credit_note_line_item",
            "amount": amount,
            "description": description,
            "discount_amount": 0,
            "discount_amounts": [],
            "invoice_line_item": source_id,
            "livemode": False,
            "metadata": metadata,
            "pretax_credit_amounts": [],
            "quantity": quantity,
            "tax_rates": [],
            "taxes": [],
            "type": kind,
            "unit_amount": int(unit) if unit == unit.to_integral_value() else None,
            "unit_amount_decimal": format(unit, "f"),
        }

    def _credit_note_retrieve(self, params: dict, id: str) -> dict:
        _only(params, set())
        return self._get(self.credit_notes, id, "credit_note")


def _quantity(params: dict) -> tuple[int, Decimal]:
    """``quantity`` (a whole number) or ``quantity_decimal`` (up to 12 places), default 1;
    ``quantity`` is the decimal one truncated, as Stripe reports it."""
    if "quantity" in params and "quantity_decimal" in params:
        raise _invalid(
            "quantity", "You may only specify one of these parameters: quantity, quantity_decimal."
        )
    quantity = _int(params, "quantity", minimum=0)
    if quantity is not None:
        return quantity, Decimal(quantity)
    decimal = _decimal(params, "quantity_decimal")
    if decimal is None:
        return 1, Decimal(1)
    if decimal < 0:
        raise _invalid("quantity_decimal", "Invalid quantity_decimal: must be at least 0")
    return int(decimal), decimal


def _period(params: dict) -> dict | None:
    period = params.get("period")
    if period is None:
        return None
    if not isinstance(period, dict):
        raise _invalid("period", "Invalid hash: period")
    _only(period, {"start", "end"}, "period")
    start = _int(period, "start", where="period")
    end = _int(period, "end", where="period")
    if start is None:
        raise _missing("period[start]")
    if end is None:
        raise _missing("period[end]")
    if end < start:
        raise _invalid("period[end]", "The period's end must be at or after its start.")
    return {"start": start, "end": end}


def _json(obj: dict) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _error_answer(error: StripeError) -> Answer:
    return Answer(error.status, _json(error.body()), {})


def _answer_headers(request_id: str, key: str | None, headers) -> dict[str, str]:
    result = {"Content-Type": "application/json", "Request-Id": request_id}
    if key:
        result["Idempotency-Key"] = key
    if headers.get("Stripe-Version"):
        result["Stripe-Version"] = headers.get("Stripe-Version")
    return result


# --- HTTP ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeStripe
    verbose: bool = False


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0, one request per connection, so a dropped answer is a closed connection."""

    server: _Server

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        answer = fake.handle(self.command, self.path, body, self.headers)
        if answer.hold is not None:
            fake._stopping.wait(answer.hold)
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="A fake Stripe API on loopback for tokentill's tests and demo."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    fake = FakeStripe().start(args.host, args.port, verbose=not args.quiet)
    print(f"Fake Stripe API on {fake.url} (any sk_test_ key); Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
