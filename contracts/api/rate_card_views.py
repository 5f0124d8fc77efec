"""Rate cards, their versions and prices over the REST API: thin views that check the shape,
call `contracts.rate_cards` and answer with the card, version or price as stored.

Operator keys only: no view here is `customer_scoped`, so a customer's key gets 403. A
refusal is 400 `{where: [messages]}`, each key the path to what is wrong
(`prices[2].rates.rate_out`), and nothing is stored; a change to a version that has rated
usage is 409. Price corrections from an instant in the past are
`POST /api/v1/rate-cards/{name}/corrections` (billing.api.correction_views).
"""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.settings import api_settings

from common.api import CursorPages, ErrorSerializer, FieldErrorsSerializer, errors_flat
from common.idempotency import idempotent
from contracts.models import Price, RateCard, RateCardVersion
from contracts.rate_cards import (
    VERSION_LOCKED,
    price_change,
    price_create,
    price_delete,
    rate_card_clone,
    rate_card_create,
    rate_card_version_schedule,
)
from contracts.selectors import (
    price_get,
    rate_card_get,
    rate_card_list,
    rate_card_version_get,
    rate_card_with_prices,
)

from . import rate_card_examples as examples
from .rate_card_serializers import (
    PriceChangeSerializer,
    PriceInSerializer,
    PriceSerializer,
    RateCardCloneSerializer,
    RateCardCreateSerializer,
    RateCardListQuerySerializer,
    RateCardSerializer,
    RateCardSummarySerializer,
    RateCardVersionSerializer,
    VersionScheduleSerializer,
)

TAGS = ["rate cards"]
REFUSED = OpenApiResponse(
    FieldErrorsSerializer,
    description="Refused, with nothing stored: `{where: [messages]}`, each key the path to "
    "what is wrong, e.g. `prices[2].rates.rate_out` or `prices[0].formula` (a formula's "
    "message gives the line and column).",
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No rate card with this name.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="A customer's API key.")
LOCKED = OpenApiResponse(
    ErrorSerializer,
    description="The version has rated usage and never changes: schedule a new version, or "
    "correct the price from an instant in the past (`…/corrections`).",
)


class VersionLocked(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = VERSION_LOCKED


def refusal(error: DjangoValidationError) -> APIException:
    """A service's refusal as the API answers it: 409 for a version that has rated usage;
    otherwise 400 `{where: [messages]}`, a refused rate named where it is
    (`prices[2].rates.rate_out`, from the rate the model's check names)."""
    if not hasattr(error, "error_dict"):
        if getattr(error, "code", None) == VERSION_LOCKED:
            return VersionLocked(error.messages[0])
        return ValidationError({api_settings.NON_FIELD_ERRORS_KEY: error.messages})
    detail: dict[str, list[str]] = {}
    for field, errors in error.error_dict.items():
        where = api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field
        for each in errors:
            rate = (getattr(each, "params", None) or {}).get("rate")
            key = f"{where}.{rate}" if rate and where.endswith("rates") else where
            detail.setdefault(key, []).extend(each.messages)
    return ValidationError(detail)


def parsed(serializer_class: type[Serializer], data: Any) -> dict[str, Any]:
    """The request's data as `serializer_class` reads it, as plain dicts and lists, or a
    400 whose keys are paths (`prices[1].tiers[0].unit_price`)."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ValidationError(errors_flat(serializer.errors))
    return _plain(serializer.validated_data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def rate_card_or_404(name: str) -> RateCard:
    rate_card = rate_card_get(name=name)
    if rate_card is None:
        raise NotFound(f"No rate card named '{name}'.")
    return rate_card


def _card_answer(name: str, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(RateCardSerializer(rate_card_with_prices(name=name)).data, status=status_code)


def _version_or_404(rate_card: RateCard, number: int) -> RateCardVersion:
    version = rate_card_version_get(rate_card=rate_card, number=number)
    if version is None:
        raise NotFound(f"{rate_card.name} has no version {number}.")
    return version


def _price_or_404(version: RateCardVersion, name: str) -> Price:
    price = price_get(version=version, name=name)
    if price is None:
        raise NotFound(f"{version} has no price named '{name}'.")
    return price


class RateCardPagination(CursorPages):
    """Rate cards by name, which is unique and never changes."""

    ordering = "name"
    next_example = "https://tokentill.example/api/v1/rate-cards?cursor=cD1T"


class RateCardListView(GenericAPIView):
    serializer_class = RateCardSummarySerializer
    pagination_class = RateCardPagination
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="rate_cards_list",
        summary="List rate cards",
        description="By name, a page at a time (follow `next`), each with its versions "
        "(without their prices: `GET /api/v1/rate-cards/{name}` has them).",
        tags=TAGS,
        parameters=[RateCardListQuerySerializer],
        responses={200: RateCardSummarySerializer(many=True), 403: FORBIDDEN},
        examples=[examples.CARD_PAGE, examples.CUSTOMER_KEY],
    )
    def get(self, request):
        query = parsed(RateCardListQuerySerializer, request.query_params.dict())
        page = self.paginate_queryset(rate_card_list(currency=query.get("currency")))
        return self.get_paginated_response(RateCardSummarySerializer(page, many=True).data)

    @extend_schema(
        operation_id="rate_cards_create",
        summary="Create a rate card",
        description="A rate card in one currency, with its first version from "
        "`effective_from` (now; the past too, e.g. the 1st of the month: a new card has "
        "priced nothing) holding the `prices` given, of any kind. Everything is checked "
        "together: one refusal names every mistake, and nothing is stored.",
        tags=TAGS,
        request=RateCardCreateSerializer,
        responses={201: RateCardSerializer, 400: REFUSED, 403: FORBIDDEN},
        examples=[
            examples.CREATE,
            examples.CREATE_ANSWER,
            examples.CREATE_REFUSED,
            examples.CUSTOMER_KEY,
        ],
    )
    @idempotent
    def post(self, request):
        data = parsed(RateCardCreateSerializer, request.data)
        try:
            rate_card = rate_card_create(**data)
        except DjangoValidationError as error:
            raise refusal(error) from None
        return _card_answer(rate_card.name, status.HTTP_201_CREATED)


class RateCardDetailView(GenericAPIView):
    serializer_class = RateCardSerializer

    @extend_schema(
        operation_id="rate_cards_retrieve",
        summary="Get a rate card",
        description="The card with every version, oldest first, and their prices in order. "
        "A version with `locked_at` has rated usage and never changes.",
        tags=TAGS,
        responses={200: RateCardSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        examples=[examples.CARD_ANSWER, examples.CARD_NOT_FOUND, examples.CUSTOMER_KEY],
    )
    def get(self, request, name: str):
        return _card_answer(rate_card_or_404(name).name)


class RateCardCloneView(GenericAPIView):
    serializer_class = RateCardSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="rate_cards_clone",
        summary="Clone a rate card, in its currency or another",
        description="A new card whose first version is a copy of this card's latest "
        "prices, with the changes given: `prices` set by name (a price of the copy changes "
        "in the fields given, rates merging; a new name is a new price) and `remove`. In "
        "another `currency` money does not convert: `prices` must give every price kept "
        "its money anew (a per-event price all its rates, as text keeping their units; a "
        "graduated or volume price its `tiers`; a package price its `package_price`), "
        "and a price left out is refused by name.",
        tags=TAGS,
        request=RateCardCloneSerializer,
        responses={201: RateCardSerializer, 400: REFUSED, 403: FORBIDDEN, 404: NOT_FOUND},
        examples=[
            examples.CLONE,
            examples.CLONE_ANSWER,
            examples.CLONE_REFUSED,
            examples.CARD_NOT_FOUND,
            examples.CUSTOMER_KEY,
        ],
    )
    @idempotent
    def post(self, request, name: str):
        rate_card = rate_card_or_404(name)
        data = parsed(RateCardCloneSerializer, request.data)
        try:
            clone = rate_card_clone(rate_card=rate_card, **data)
        except DjangoValidationError as error:
            raise refusal(error) from None
        return _card_answer(clone.name, status.HTTP_201_CREATED)


class RateCardVersionsView(GenericAPIView):
    serializer_class = RateCardVersionSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="rate_card_versions_create",
        summary="Schedule a new version",
        description="A new version from `effective_from`: a copy of the latest version's "
        "prices with the changes given, `prices` set by name (a price of the copy changes "
        "in the fields given; its `rates` merge: an amount as text keeps the rate's unit, "
        "`null` removes the rate) and `remove`. It starts after the latest version; once "
        "that one has rated usage, not in the past (to change what was rated, correct the "
        "price: `POST /api/v1/rate-cards/{name}/corrections`).",
        tags=TAGS,
        request=VersionScheduleSerializer,
        responses={
            201: RateCardVersionSerializer,
            400: REFUSED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        examples=[
            examples.SCHEDULE,
            examples.SCHEDULE_ANSWER,
            examples.SCHEDULE_REFUSED,
            examples.CARD_NOT_FOUND,
            examples.CUSTOMER_KEY,
        ],
    )
    @idempotent
    def post(self, request, name: str):
        rate_card = rate_card_or_404(name)
        data = parsed(VersionScheduleSerializer, request.data)
        try:
            version = rate_card_version_schedule(rate_card=rate_card, **data)
        except DjangoValidationError as error:
            raise refusal(error) from None
        fresh = rate_card_version_get(rate_card=rate_card, number=version.number)
        return Response(RateCardVersionSerializer(fresh).data, status=status.HTTP_201_CREATED)


class VersionPricesView(GenericAPIView):
    serializer_class = PriceSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="rate_card_prices_create",
        summary="Add a price to a version",
        description="A price of any kind: per_event (the formula is a call's money), "
        "graduated or volume (the formula is a call's quantity, the period's total priced "
        "by `tiers`), package (by `package_size` and `package_price`). `name` defaults to "
        "the model pattern. Only while the version has rated nothing (else 409).",
        tags=TAGS,
        request=PriceInSerializer,
        responses={
            201: PriceSerializer,
            400: REFUSED,
            403: FORBIDDEN,
            404: OpenApiResponse(ErrorSerializer, description="No such card or version."),
            409: LOCKED,
        },
        examples=[
            examples.PRICE,
            examples.PRICE_ANSWER,
            examples.PRICE_REFUSED,
            examples.VERSION_NOT_FOUND,
            examples.VERSION_LOCKED,
            examples.CUSTOMER_KEY,
        ],
    )
    @idempotent
    def post(self, request, name: str, version: int):
        found = _version_or_404(rate_card_or_404(name), version)
        data = parsed(PriceInSerializer, request.data)
        try:
            price = price_create(version=found, **data)
        except DjangoValidationError as error:
            raise refusal(error) from None
        price.refresh_from_db()  # its figures as stored, with their places
        return Response(PriceSerializer(price).data, status=status.HTTP_201_CREATED)


class PriceDetailView(GenericAPIView):
    serializer_class = PriceSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="rate_card_prices_partial_update",
        summary="Change a price",
        description="Sets the fields given; `rates` merge (an amount as text keeps the "
        "rate's unit, an amount with its unit sets both or adds the rate, `null` removes "
        "it). Only while the version has rated nothing (else 409).",
        tags=TAGS,
        request=PriceChangeSerializer,
        responses={
            200: PriceSerializer,
            400: REFUSED,
            403: FORBIDDEN,
            404: OpenApiResponse(ErrorSerializer, description="No such card, version or price."),
            409: LOCKED,
        },
        examples=[
            examples.PRICE_CHANGE,
            examples.PRICE_ANSWER,
            examples.PRICE_REFUSED,
            examples.PRICE_NOT_FOUND,
            examples.VERSION_LOCKED,
            examples.CUSTOMER_KEY,
        ],
    )
    def patch(self, request, name: str, version: int, price: str):
        found = _price_or_404(_version_or_404(rate_card_or_404(name), version), price)
        data = parsed(PriceChangeSerializer, request.data)
        if data:
            try:
                found = price_change(price=found, **data)
            except DjangoValidationError as error:
                raise refusal(error) from None
            found.refresh_from_db()  # its figures as stored, with their places
        return Response(PriceSerializer(found).data)

    @extend_schema(
        operation_id="rate_card_prices_destroy",
        summary="Remove a price",
        description="Only while the version has rated nothing (else 409). The audit trail "
        "keeps the price as it was.",
        tags=TAGS,
        responses={
            204: None,
            403: FORBIDDEN,
            404: OpenApiResponse(ErrorSerializer, description="No such card, version or price."),
            409: LOCKED,
        },
        examples=[examples.PRICE_NOT_FOUND, examples.VERSION_LOCKED, examples.CUSTOMER_KEY],
    )
    def delete(self, request, name: str, version: int, price: str):
        found = _price_or_404(_version_or_404(rate_card_or_404(name), version), price)
        try:
            price_delete(price=found)
        except DjangoValidationError as error:
            raise refusal(error) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
