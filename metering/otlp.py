"""OTLP/HTTP trace requests read and answered (pure: no Django).

The wire format of OpenTelemetry's protocol over HTTP, with the official protobuf
messages (`opentelemetry-proto`, and `google.rpc.Status` for failures): a body is
binary protobuf (`application/x-protobuf`) or the protobuf JSON mapping
(`application/json`), either of them gzip-compressed or not. OTLP/JSON writes trace and
span ids in hex where the standard mapping writes bytes in base64, so a JSON body's ids
are turned into base64 before the standard parser reads it: both encodings give the same
bytes, and so the same event ids. Answers use the request's encoding.
"""

import base64
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .genai_spans import Span

PROTOBUF, JSON = "application/x-protobuf", "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)
# Where OTLP/JSON holds ids in hex: a span's own, its parent's, and its links'.
SPAN_IDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
LINK_IDS = ("traceId", "spanId", "trace_id", "span_id")


class OtlpError(Exception):
    """A request that cannot be read: `status` is the HTTP status OTLP prescribes (400
    for bad data, 413 past the size limit, 415 for an unknown media type or encoding);
    `field`, when known, is where in the body the fault is."""

    def __init__(self, status: int, message: str, field: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def media_type(content_type: str) -> str:
    """The request's media type, one of MEDIA_TYPES (parameters such as charset ignored)."""
    found = content_type.partition(";")[0].strip().lower()
    if found not in MEDIA_TYPES:
        raise OtlpError(
            415,
            f"Content-Type {found or '(none)'!r} is not supported; send {' or '.join(MEDIA_TYPES)}",
        )
    return found


def body_decompress(body: bytes, content_encoding: str, *, limit: int) -> bytes:
    """The body as sent, gunzipped when `Content-Encoding: gzip`, never past `limit` bytes."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise OtlpError(415, f"Content-Encoding {encoding!r} is not supported; send gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip's header and trailer
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise OtlpError(400, f"the body is not valid gzip: {error}") from error
    if len(plain) > limit:
        raise OtlpError(413, f"the body is over {limit:,} bytes once decompressed")
    if not inflater.eof:
        raise OtlpError(400, "the body is not valid gzip: it ends before the gzip stream does")
    return plain


def request_decode(body: bytes, media: str) -> ExportTraceServiceRequest:
    """An `ExportTraceServiceRequest` from a body in either encoding."""
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            raise OtlpError(
                400, f"the body is not an ExportTraceServiceRequest: {error}"
            ) from error
        return request
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise OtlpError(400, f"the body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise OtlpError(400, "the body must be a JSON object (an ExportTraceServiceRequest)")
    _hex_ids_to_base64(data)
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise OtlpError(400, f"the body is not an ExportTraceServiceRequest: {error}") from error
    return request


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    """OTLP/JSON's hex ids rewritten in place as the base64 the protobuf mapping reads."""
    for r, resource_spans in enumerate(_list(data, "resourceSpans", "resource_spans")):
        for s, scope_spans in enumerate(_list(resource_spans, "scopeSpans", "scope_spans")):
            for n, span in enumerate(_list(scope_spans, "spans")):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                _rewrite(span, SPAN_IDS, where)
                for k, link in enumerate(_list(span, "links")):
                    _rewrite(link, LINK_IDS, f"{where}.links[{k}]")


def _list(holder: Any, *names: str) -> list[Any]:
    """The list under the first of `names` in `holder`; anything else is left for the
    protobuf parser to refuse with its own message."""
    if not isinstance(holder, dict):
        return []
    for name in names:
        if isinstance(found := holder.get(name), list):
            return found
    return []


def _rewrite(holder: Any, names: tuple[str, ...], where: str) -> None:
    if not isinstance(holder, dict):
        return
    for name in names:
        value = holder.get(name)
        if not isinstance(value, str):
            continue
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise OtlpError(
                400,
                f"{where}.{name} must be hex (OTLP/JSON), not {value[:40]!r}",
                f"{where}.{name}",
            ) from None
        holder[name] = base64.b64encode(raw).decode("ascii")


def request_spans(request: ExportTraceServiceRequest) -> Iterator[Span]:
    """Every span of the request, with its resource's attributes beside its own."""
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                    name=span.name,
                    end_unix_nano=span.end_time_unix_nano,
                    attributes=attributes_dict(span.attributes),
                    resource=resource,
                )


def attributes_dict(attributes: Any) -> dict[str, Any]:
    """OTLP key-values as a dict of Python values (the last of a repeated key wins)."""
    found: dict[str, Any] = {}
    pair: KeyValue
    for pair in attributes:
        found[pair.key] = _value(pair.value)
    return found


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    return getattr(value, kind)


def response_encode(*, rejected: int, message: str, media: str) -> bytes:
    """The `ExportTraceServiceResponse`: empty on full success, else with its partial
    success (the spans rejected and why)."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return _encode(response, media)


def status_encode(*, message: str, media: str, field: str = "") -> bytes:
    """The `google.rpc.Status` OTLP answers a failed request with; a fault at a known
    place in the body carries it as a `BadRequest` field violation."""
    status = status_pb2.Status(message=message)
    if field:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return _encode(status, media)


def _encode(message: Message, media: str) -> bytes:
    if media == JSON:
        text = json_format.MessageToJson(message, indent=None, unquote_int64_if_possible=True)
        return text.encode("utf-8")
    encoded: bytes = message.SerializeToString()
    return encoded
