"""`POST /v1/traces`: OpenTelemetry's OTLP/HTTP trace export, for GenAI spans.

The path is OTLP's default, so an OpenTelemetry exporter or Collector points its
endpoint at tokentill's base URL. It takes an operator key like the rest of the API
(`Authorization: Bearer <key>`) and answers as OTLP says, in the request's encoding: 200
with an `ExportTraceServiceResponse` (its partial success naming each rejected span and
why), or a `google.rpc.Status` with 400 (a body that cannot be read), 401, 403, 413, 415
(a media type or content encoding OTLP does not have) or 429. It is OTLP's own protocol,
not the REST API's JSON, so the OpenAPI schema leaves it out.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from common.throttling import INGEST
from metering.metrics import otlp_count
from metering.otlp import (
    PROTOBUF,
    OtlpError,
    body_decompress,
    media_type,
    request_decode,
    request_spans,
    response_encode,
    status_encode,
)
from metering.traces import traces_ingest

# DRF's answers that OTLP's clients read their headers of: the challenge and the wait.
KEPT_HEADERS = ("WWW-Authenticate", "Retry-After")


class AnyAccept(BaseContentNegotiation):
    """The answer's encoding is the request's, whatever `Accept` says; nothing is parsed
    by DRF (the view reads the body itself)."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema(exclude=True)
class TracesView(APIView):
    throttle_scopes = {"POST": INGEST}
    parser_classes = []
    content_negotiation_class = AnyAccept

    def post(self, request):
        media = _answer_media(request)
        try:
            media_type(request.META.get("CONTENT_TYPE", ""))
            try:
                body = request.body
            except RequestDataTooBig as error:
                limit = settings.TOKENTILL_INGEST_MAX_BODY_BYTES
                raise OtlpError(413, f"the body is over {limit:,} bytes") from error
            plain = body_decompress(
                body,
                request.META.get("HTTP_CONTENT_ENCODING", ""),
                limit=settings.TOKENTILL_INGEST_MAX_BODY_BYTES,
            )
            export = request_decode(plain, media)
        except OtlpError as error:
            return _failure(error.status, error.message, media, field=error.field)
        result = traces_ingest(spans=request_spans(export))
        otlp_count(result=result)
        answer = response_encode(rejected=result.rejected, message=result.message(), media=media)
        return HttpResponse(answer, content_type=media)

    def handle_exception(self, exc):
        """DRF's refusals (401, 403, 429...) as OTLP's `Status`, its headers kept."""
        refusal = super().handle_exception(exc)
        data = refusal.data
        message = str(data.get("detail", data)) if isinstance(data, dict) else str(data)
        answer = _failure(refusal.status_code, message, _answer_media(self.request))
        for header in KEPT_HEADERS:
            if header in refusal:
                answer[header] = refusal[header]
        return answer


def _answer_media(request) -> str:
    """The request's encoding; binary protobuf, OTLP's first, when it has none we know."""
    try:
        return media_type(request.META.get("CONTENT_TYPE", ""))
    except OtlpError:
        return PROTOBUF


def _failure(status: int, message: str, media: str, *, field: str = "") -> HttpResponse:
    body = status_encode(message=message, media=media, field=field)
    return HttpResponse(body, status=status, content_type=media)
