"""config.renderers.JsonFirstNegotiation picks what DRF's negotiation picks: its shortcut
(no Accept or */*, no query) and DRF's own path give the same renderer and media type."""

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.renderers import JsonFirstNegotiation, ORJSONRenderer


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/v1/events", None),
        ("/api/v1/events", "*/*"),
        ("/api/v1/events", "application/json"),
        ("/api/v1/events", "text/csv"),
        ("/api/v1/events", "text/csv, */*;q=0.1"),
        ("/api/v1/events?format=csv", None),
        ("/api/v1/events?limit=5", "*/*"),
    ],
)
def test_the_shortcut_picks_what_drf_picks(path, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(path, **headers))
    renderers = [ORJSONRenderer(), CsvRenderer()]

    ours = JsonFirstNegotiation().select_renderer(request, renderers)
    drf = DefaultContentNegotiation().select_renderer(request, renderers)

    assert (type(ours[0]), ours[1]) == (type(drf[0]), drf[1])


def test_an_unacceptable_type_is_still_refused():
    request = Request(APIRequestFactory().get("/api/v1/events", HTTP_ACCEPT="text/html"))

    with pytest.raises(Exception, match="Could not satisfy the request Accept header"):
        JsonFirstNegotiation().select_renderer(request, [ORJSONRenderer()])
