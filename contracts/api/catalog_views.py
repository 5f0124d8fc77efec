"""The model price catalog over the REST API: its list prices, and rate cards priced from
it at list price plus a markup (`contracts.catalog.services`). Operator keys only."""

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from common.idempotency import idempotent
from contracts.catalog.services import rate_card_create_from_catalog
from contracts.selectors import catalog_models

from . import rate_card_examples as examples
from .rate_card_serializers import (
    CatalogEntrySerializer,
    CatalogQuerySerializer,
    RateCardFromCatalogSerializer,
    RateCardSerializer,
)
from .rate_card_views import FORBIDDEN, REFUSED, TAGS, _card_answer, parsed, refusal


class CatalogView(GenericAPIView):
    serializer_class = CatalogEntrySerializer

    @extend_schema(
        operation_id="catalog_list",
        summary="The model price catalog",
        description="Each model's public list price in force today, per 1M tokens, by "
        "provider and model (the catalog shipped with tokentill, loaded by "
        "`manage.py load_price_catalog`). Not paginated: one entry a model.",
        tags=TAGS,
        parameters=[CatalogQuerySerializer],
        responses={200: CatalogEntrySerializer(many=True), 403: FORBIDDEN},
        examples=[examples.CATALOG_ENTRY, examples.CUSTOMER_KEY],
    )
    def get(self, request):
        query = parsed(CatalogQuerySerializer, request.query_params.dict())
        entries = catalog_models(provider=query.get("provider"), model=query.get("model"))
        return Response(CatalogEntrySerializer(entries, many=True).data)


class RateCardFromCatalogView(GenericAPIView):
    serializer_class = RateCardSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="rate_cards_create_from_catalog",
        summary="Create a rate card from the catalog",
        description="A rate card in the catalog's currency with one price per chosen model "
        "(`models` by name, every model of `providers`; neither: every model): its list "
        "price in force today times 1 + `markup`, with the formula written for it "
        "(cache, audio and long-context rates included).",
        tags=TAGS,
        request=RateCardFromCatalogSerializer,
        responses={201: RateCardSerializer, 400: REFUSED, 403: FORBIDDEN},
        examples=[
            examples.FROM_CATALOG,
            examples.FROM_CATALOG_ANSWER,
            examples.FROM_CATALOG_REFUSED,
            examples.CUSTOMER_KEY,
        ],
    )
    @idempotent
    def post(self, request):
        data = parsed(RateCardFromCatalogSerializer, request.data)
        data["markup"] = Decimal(data["markup"])
        try:
            rate_card = rate_card_create_from_catalog(**data)
        except DjangoValidationError as error:
            raise refusal(error) from None
        return _card_answer(rate_card.name, status.HTTP_201_CREATED)
