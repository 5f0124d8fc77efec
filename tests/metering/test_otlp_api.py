"""POST /v1/traces: OpenTelemetry GenAI spans in over OTLP/HTTP, as usage events.

Spans are made by the OpenTelemetry SDK and sent by its own OTLP/HTTP exporter (binary
protobuf) to a running tokentill; OTLP/JSON is the same request in the protobuf JSON
mapping with the ids in hex, as the OTLP specification writes it. Figures by hand.
"""

import base64
import gzip
import time
from datetime import UTC, datetime

import pytest
import requests
from django.test import Client
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from contracts.models import Customer
from contracts.services import customer_api_key_create, customer_create
from metering.models import UsageEvent
from tests.metering.test_providers import metrics

URL = "/v1/traces"
PROTOBUF, JSON = "application/x-protobuf", "application/json"
# An hour ago, to the nanosecond; the event keeps the microsecond.
END = (int(time.time()) - 3600) * 1_000_000_000 + 123_456_789
ENDED = datetime.fromtimestamp(END // 1_000_000_000, tz=UTC).replace(microsecond=123_456)

OPENAI_CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1486,  # 1,408 of them read from the cache
    "gen_ai.usage.cache_read.input_tokens": 1408,
    "gen_ai.usage.output_tokens": 651,  # 512 of them reasoning
    "gen_ai.usage.reasoning.output_tokens": 512,
}
ANTHROPIC_CHAT = {  # for the customer globex, named on the span over the resource's acme
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 2100,  # 95 uncached + 1,800 read + 205 written
    "gen_ai.usage.cache_read.input_tokens": 1800,
    "gen_ai.usage.cache_creation.input_tokens": 205,
    "gen_ai.usage.output_tokens": 503,
    "tokentill.customer_id": "globex",
    "tokentill.feature": "support-bot",
}
HTTP_CALL = {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat"}


def finished_spans(*named: tuple[str, dict], resource: dict | None = None) -> list[ReadableSpan]:
    """Spans as an instrumented service's SDK ends them: each two seconds long, ending at END."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "assistant", "tokentill.customer_id": "acme"}
            if resource is None
            else resource
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.genai")
    for name, attributes in named:
        tracer.start_span(name, attributes=attributes, start_time=END - 2 * 10**9).end(END)
    provider.shutdown()
    return list(memory.get_finished_spans())


def event_id_of(span: ReadableSpan) -> str:
    return f"otel-{span.context.trace_id:032x}-{span.context.span_id:016x}"


def protobuf_body(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def json_body(spans: list[ReadableSpan]) -> bytes:
    """OTLP/JSON: the protobuf JSON mapping, ids in hex (upper case: hex is case-insensitive)."""
    data = json_format.MessageToDict(encode_spans(spans))
    for resource_spans in data["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex().upper()
    return json_format.json.dumps(data).encode()


def stored() -> list[tuple]:
    return list(
        UsageEvent.objects.order_by("event_id").values_list(
            "customer__external_id", "event_id", "timestamp", "model", "feature", "metrics"
        )
    )


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("tokentill_otlp_spans_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def customers(db):
    customer_create(external_id="acme", name="Acme Corp", currency="USD")
    customer_create(external_id="globex", name="Globex", currency="USD")


def post(client: Client, body: bytes, *, key: str, media: str = PROTOBUF, **headers):
    return client.post(
        URL, data=body, content_type=media, HTTP_AUTHORIZATION=f"Bearer {key}", **headers
    )


def answer_of(response) -> ExportTraceServiceResponse:
    assert response["Content-Type"] == PROTOBUF
    return ExportTraceServiceResponse.FromString(response.content)


def status_of(response) -> status_pb2.Status:
    """The Status of a failure, in the request's encoding."""
    if response["Content-Type"] == JSON:
        return json_format.Parse(response.content, status_pb2.Status())
    assert response["Content-Type"] == PROTOBUF
    return status_pb2.Status.FromString(response.content)


# --- An SDK exporting to a running tokentill -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_sdk_s_otlp_exporter_stores_genai_spans_once_however_often_they_are_exported(
    live_server, operator_key, customers
):
    # given an OpenAI call, an Anthropic call and the HTTP request under one of them
    spans = finished_spans(
        ("chat gpt-4o", OPENAI_CHAT), ("chat claude", ANTHROPIC_CHAT), ("POST", HTTP_CALL)
    )
    openai, anthropic, _ = spans
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}{URL}",
        headers={"Authorization": f"Bearer {operator_key}"},
        compression=Compression.Gzip,
    )
    ignored = counted("ignored")

    # when the SDK's exporter sends them (binary protobuf, gzip)
    assert exporter.export(spans) == SpanExportResult.SUCCESS

    # then each GenAI call is one event, its totals taken apart; the HTTP span is ignored
    expected = sorted(
        [
            (
                "acme",
                event_id_of(openai),
                ENDED,
                "gpt-4o-2024-08-06",
                "",
                metrics(input=78, cached=1408, output=651, reasoning=512),
            ),
            (
                "globex",
                event_id_of(anthropic),
                ENDED,
                "claude-sonnet-4-5",
                "support-bot",
                metrics(input=95, cached=1800, creation=205, output=503),
            ),
        ],
        key=lambda row: row[1],
    )
    assert stored() == expected
    assert counted("ignored") - ignored == 1
    assert UsageEvent.objects.get(event_id=event_id_of(openai)).properties == {
        "gen_ai.provider.name": "openai"
    }

    # when the same spans are exported again, by the SDK and as OTLP/JSON
    duplicates = counted("duplicate")
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    response = requests.post(
        f"{live_server.url}{URL}",
        data=json_body(spans),
        headers={"Content-Type": JSON, "Authorization": f"Bearer {operator_key}"},
        timeout=10,
    )

    # then nothing new is stored: the ids give the same event ids in either encoding
    assert (response.status_code, response.headers["Content-Type"]) == (200, JSON)
    assert response.json() == {}
    assert stored() == expected
    assert counted("duplicate") - duplicates == 4


@pytest.mark.django_db(transaction=True)
def test_otlp_json_spans_are_stored_and_the_sdk_s_protobuf_export_of_them_is_a_duplicate(
    live_server, operator_key, customers
):
    spans = finished_spans(("chat gpt-4o", OPENAI_CHAT))
    headers = {"Content-Type": JSON, "Authorization": f"Bearer {operator_key}"}

    response = requests.post(
        f"{live_server.url}{URL}", data=json_body(spans), headers=headers, timeout=10
    )

    assert (response.status_code, response.json()) == (200, {})
    assert stored() == [
        (
            "acme",
            event_id_of(spans[0]),
            ENDED,
            "gpt-4o-2024-08-06",
            "",
            metrics(input=78, cached=1408, output=651, reasoning=512),
        )
    ]
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}{URL}", headers={"Authorization": f"Bearer {operator_key}"}
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert UsageEvent.objects.count() == 1


# --- The answers, through Django's test client --------------------------------------------


def test_an_unmappable_span_is_named_in_the_partial_success_and_nothing_of_it_is_stored(
    operator_key, customers
):
    spans = finished_spans(
        ("chat gpt-4o", OPENAI_CHAT),
        ("chat nobody", {**OPENAI_CHAT, "tokentill.customer_id": "nobody"}),
        ("chat strings", {**OPENAI_CHAT, "gen_ai.usage.output_tokens": "651"}),
    )
    _, nobody, strings = spans
    rejected = counted("rejected")

    response = post(Client(), protobuf_body(spans), key=operator_key)

    assert response.status_code == 200
    answer = answer_of(response)
    assert answer.partial_success.rejected_spans == 2
    name = "span {:032x}/{:016x} ('{}')"
    assert answer.partial_success.error_message == (
        "2 spans rejected, nothing of them stored: "
        f"{name.format(strings.context.trace_id, strings.context.span_id, 'chat strings')}: "
        "gen_ai.usage.output_tokens must be an integer attribute, not a string; "
        f"{name.format(nobody.context.trace_id, nobody.context.span_id, 'chat nobody')}: "
        "tokentill.customer_id unknown customer 'nobody'"
    )
    assert [row[1] for row in stored()] == [event_id_of(spans[0])]
    assert counted("rejected") - rejected == 2


def test_a_json_request_is_answered_in_json(operator_key, customers):
    spans = finished_spans(("chat", {**OPENAI_CHAT, "gen_ai.usage.output_tokens": -1}))

    response = post(Client(), json_body(spans), key=operator_key, media=JSON)

    assert (response.status_code, response["Content-Type"]) == (200, JSON)
    assert response.json()["partialSuccess"]["rejectedSpans"] == 1
    assert response.json()["partialSuccess"]["errorMessage"].endswith(
        "gen_ai.usage.output_tokens must be from 0 to 1,000,000,000,000, not -1"
    )
    assert stored() == []


def test_a_request_without_usage_is_a_full_success_that_stores_nothing(operator_key, customers):
    ignored = counted("ignored")

    response = post(Client(), protobuf_body(finished_spans(("GET", HTTP_CALL))), key=operator_key)

    assert response.status_code == 200
    assert response.content == b""  # an ExportTraceServiceResponse with nothing set
    assert stored() == []
    assert counted("ignored") - ignored == 1


def test_a_gzip_body_is_read_and_a_broken_one_is_400(operator_key, customers):
    body = protobuf_body(finished_spans(("chat", OPENAI_CHAT)))

    fine = post(Client(), gzip.compress(body), key=operator_key, HTTP_CONTENT_ENCODING="gzip")
    broken = post(
        Client(), gzip.compress(body)[:-9], key=operator_key, HTTP_CONTENT_ENCODING="gzip"
    )

    assert fine.status_code == 200
    assert len(stored()) == 1
    assert broken.status_code == 400
    assert status_of(broken).message == (
        "the body is not valid gzip: it ends before the gzip stream does"
    )


@pytest.mark.parametrize(
    ("media", "body", "headers", "status", "message"),
    [
        (
            "text/plain",
            b"hello",
            {},
            415,
            "Content-Type 'text/plain' is not supported; send application/x-protobuf or "
            "application/json",
        ),
        (
            PROTOBUF,
            b"x",
            {"HTTP_CONTENT_ENCODING": "br"},
            415,
            "Content-Encoding 'br' is not supported; send gzip or none",
        ),
        (
            PROTOBUF,
            b"\x0a\xff",
            {},
            400,
            "the body is not an ExportTraceServiceRequest: Error parsing message",
        ),
        (JSON, b"[1]", {}, 400, "the body must be a JSON object (an ExportTraceServiceRequest)"),
    ],
)
def test_a_body_that_cannot_be_read_is_refused_with_a_status(
    operator_key, customers, media, body, headers, status, message
):
    response = post(Client(), body, key=operator_key, media=media, **headers)

    assert response.status_code == status
    assert status_of(response).message.startswith(message)
    assert stored() == []


def test_a_json_id_that_is_not_hex_is_400_naming_where(operator_key, customers):
    body = json_body(finished_spans(("chat", OPENAI_CHAT))).replace(
        b'"traceId": "', b'"traceId": "zz'
    )

    response = post(Client(), body, key=operator_key, media=JSON)

    assert (response.status_code, response["Content-Type"]) == (400, JSON)
    status = status_of(response)
    assert status.message.startswith(
        "resourceSpans[0].scopeSpans[0].spans[0].traceId must be hex (OTLP/JSON), not 'zz"
    )
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert (
        bad_request.field_violations[0].field == "resourceSpans[0].scopeSpans[0].spans[0].traceId"
    )
    assert stored() == []


def test_a_body_past_the_limit_once_decompressed_is_413(operator_key, customers, settings):
    settings.TOKENTILL_INGEST_MAX_BODY_BYTES = 1000
    body = protobuf_body(finished_spans(*[("chat", OPENAI_CHAT)] * 10))
    assert len(gzip.compress(body)) < 1000 < len(body)

    response = post(Client(), gzip.compress(body), key=operator_key, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert status_of(response).message == "the body is over 1,000 bytes once decompressed"
    assert stored() == []


def test_a_wrong_key_is_401_and_a_customer_s_key_403_with_nothing_stored(customers):
    body = protobuf_body(finished_spans(("chat", OPENAI_CHAT)))
    _, customer_key = customer_api_key_create(
        customer=Customer.objects.get(external_id="acme"), name="dashboards", created_by="a"
    )

    wrong = post(Client(), body, key="tt_abcdefgh_" + "x" * 40)
    refused = post(Client(), body, key=customer_key)
    anonymous = Client().post(URL, data=body, content_type=PROTOBUF)

    assert (wrong.status_code, wrong["WWW-Authenticate"]) == (401, "Bearer")
    assert status_of(wrong).message == "Invalid or revoked API key."
    assert anonymous.status_code == 401
    assert refused.status_code == 403
    assert status_of(refused).message == "A customer's API key cannot call this endpoint."
    assert stored() == []


def test_many_usage_spans_are_stored_in_batches_of_the_rest_api_s_size(
    operator_key, customers, settings
):
    settings.TOKENTILL_INGEST_MAX_BATCH = 2
    spans = finished_spans(*[("chat", OPENAI_CHAT)] * 5)

    response = post(Client(), protobuf_body(spans), key=operator_key)

    assert (response.status_code, response.content) == (200, b"")
    assert sorted(row[1] for row in stored()) == sorted(event_id_of(span) for span in spans)


def test_past_the_key_s_ingest_budget_is_429_with_retry_after(operator_key, customers, settings):
    settings.TOKENTILL_THROTTLE_INGEST = "1/minute"
    body = protobuf_body(finished_spans(("chat", OPENAI_CHAT)))
    assert post(Client(), body, key=operator_key).status_code == 200

    response = post(Client(), body, key=operator_key)

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert status_of(response).message.startswith(
        "This API key has used its ingest budget (1 per minute). Retry in "
    )
    assert len(stored()) == 1
