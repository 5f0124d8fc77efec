"""Authorizations over the API: ask before a model call, hold the credits, release if unused.

Thin: the serializer checks the request and counts the prompt's tokens (metering.tokens);
billing.authorizations decides.
"""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, FieldErrorsSerializer, StrictSerializer
from common.idempotency import idempotent
from common.throttling import INGEST
from metering.intake import MAX_METRIC
from metering.tokenizer_rules import counter_resolver
from metering.tokens import TokenizeError, count_messages, count_text
from pricing.metrics import METRIC_NAME
from pricing.rating import estimated_tokens_bound
from wallets.models import Hold
from wallets.services import hold_release

from ..authorizations import authorization_create
from . import examples
from .authorization_serializers import AuthorizationSerializer, HoldSerializer

_NO_HOLD = OpenApiResponse(ErrorSerializer, description="No hold with this id.")


class AuthorizationInSerializer(StrictSerializer):
    customer_id = serializers.CharField(max_length=255)
    model = serializers.CharField(max_length=200)
    feature = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    properties = serializers.DictField(
        child=serializers.CharField(max_length=200, allow_blank=True), required=False, default={}
    )
    prompt = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    messages = serializers.ListField(child=serializers.DictField(), required=False)
    max_output_tokens = serializers.IntegerField(min_value=0, max_value=MAX_METRIC, required=False)
    estimate = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_METRIC),
        required=False,
        help_text="Token counts at most, by metric, e.g. "
        '{"input_tokens": 1200, "output_tokens": 800}: instead of a prompt.',
    )
    reference = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    def validate(self, attrs):
        given = [name for name in ("prompt", "messages", "estimate") if name in attrs]
        if len(given) != 1:
            raise ValidationError("Send exactly one of prompt, messages or estimate.")
        if given != ["estimate"] and "max_output_tokens" not in attrs:
            raise ValidationError({"max_output_tokens": ["Required with a prompt or messages."]})
        if given == ["estimate"]:
            if "max_output_tokens" in attrs:
                raise ValidationError(
                    {"max_output_tokens": ["Give output_tokens in the estimate instead."]}
                )
            bad = sorted(name for name in attrs["estimate"] if not METRIC_NAME.match(name))
            if bad:
                raise ValidationError({"estimate": [f"'{bad[0]}' is not a metric name."]})
            if not attrs["estimate"]:
                raise ValidationError({"estimate": ["Give at least one token count."]})
        return attrs

    def metrics(self) -> dict[str, int]:
        """The worst-case token counts: the estimate, or the prompt counted by the tokenizer
        table (all of it as uncached input; an estimated count raised by the safety factor)
        plus max_output_tokens as output."""
        data = self.validated_data
        if "estimate" in data:
            return dict(data["estimate"])
        try:
            counter = counter_resolver()(data["model"])
            if "prompt" in data:
                count = count_text(counter=counter, text=data["prompt"])
            else:
                count = count_messages(counter=counter, messages=self.initial_data["messages"])
        except TokenizeError as error:
            where = "prompt" if "prompt" in data else error.path or "messages"
            raise ValidationError({where: [error.message]}) from error
        tokens = count.tokens
        if count.estimated:
            tokens = estimated_tokens_bound(tokens, settings.TOKENTILL_ESTIMATE_SAFETY_FACTOR)
        return {"input_tokens": tokens, "output_tokens": data["max_output_tokens"]}


class AuthorizationsView(APIView):
    throttle_scopes = {"POST": INGEST}

    @extend_schema(
        tags=["authorizations"],
        summary="Ask before a model call: hold its worst-case cost, or refuse it",
        description=(
            "Prices the call's worst case with the customer's terms: the prompt (text or chat "
            "messages, counted by the tokenizer table, all as uncached input; a count that is an "
            "estimate, such as a Claude model's, raised by the safety factor "
            f"{settings.TOKENTILL_ESTIMATE_SAFETY_FACTOR} and rounded up) plus `max_output_tokens` "
            "as output, or the token counts in `estimate`. The included allowance left this period"
            " pays first. Under a `block` contract the call is allowed only when the available "
            "credits (balance less active holds) cover the rest; under `arrears` it is always "
            "allowed and the credits that can cover it are held. An allowed call gets a `hold` (or"
            " none when there is nothing to hold), released when the usage event carrying its id "
            "as the `hold_id` property is rated, or when it expires "
            f"({settings.TOKENTILL_HOLD_SECONDS} s). A refused call has `allowed: false` and a "
            "`reason`: unknown_customer, no_contract, no_price, contract_blocked or "
            "insufficient_credits. Both answer 200."
        ),
        request=AuthorizationInSerializer,
        responses={
            200: AuthorizationSerializer,
            400: OpenApiResponse(FieldErrorsSerializer, description="A bad request."),
        },
        examples=[
            OpenApiExample(
                "Prompt",
                value={
                    "customer_id": "acme",
                    "model": "gpt-4o",
                    "messages": [{"role": "user", "content": "Summarise this contract."}],
                    "max_output_tokens": 800,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Estimate",
                value={
                    "customer_id": "acme",
                    "model": "gpt-4o",
                    "estimate": {"input_tokens": 1200, "output_tokens": 800},
                },
                request_only=True,
            ),
            examples.AUTHORIZATION_ALLOWED,
            examples.AUTHORIZATION_REFUSED,
        ],
    )
    @idempotent
    def post(self, request):
        serializer = AuthorizationInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        metrics = serializer.metrics()
        data = serializer.validated_data
        result = authorization_create(
            customer_id=data["customer_id"],
            model=data["model"],
            feature=data["feature"],
            properties=data["properties"],
            metrics=metrics,
            reference=data["reference"],
        )
        return Response(AuthorizationSerializer(result, context={"tokens": metrics}).data)


class HoldView(APIView):
    throttle_scopes = {"GET": INGEST, "HEAD": INGEST}

    @extend_schema(
        tags=["authorizations"],
        summary="A hold: active, settled (with the call's rated cost), released or expired",
        responses={200: HoldSerializer, 404: _NO_HOLD},
        examples=[examples.HOLD_SETTLED],
    )
    def get(self, request, hold_id):
        return Response(HoldSerializer(get_object_or_404(Hold, pk=hold_id)).data)


class HoldReleaseView(APIView):
    throttle_scopes = {"POST": INGEST}

    @extend_schema(
        tags=["authorizations"],
        summary="Release a hold whose call was not made",
        description="Gives the held credits back at once. Releasing a hold that is no longer "
        "active changes nothing and answers it as it is.",
        request=None,
        responses={200: HoldSerializer, 404: _NO_HOLD},
    )
    @idempotent
    def post(self, request, hold_id):
        hold = get_object_or_404(Hold, pk=hold_id)
        hold_release(hold=hold)
        hold.refresh_from_db()
        return Response(HoldSerializer(hold).data)
