"""Shapes of the usage answers: a period's rated usage (`billing.selectors.PeriodUsage`) and
a re-rating diff (`billing.rating.rerating.RerateDiff`). They shape what they are given; the
only arithmetic is the answer's own: per-segment charges (`PeriodCharges`) added up, and
the allowance left."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import ExactFigureField, InstantField, OutputSerializer
from pricing.money import exact_text

from .serializers import EXACT, exact, period


class TokensSerializer(OutputSerializer):
    """Token counts by kind, as summed over the group's events (billing.models.TOKEN_COLUMNS)."""

    input_tokens = serializers.IntegerField(help_text="Input (prompt) tokens, uncached.")
    output_tokens = serializers.IntegerField(help_text="Output (completion) tokens.")
    cached_input_tokens = serializers.IntegerField(help_text="Input tokens read from a cache.")
    cache_creation_input_tokens = serializers.IntegerField(
        help_text="Input tokens written to a cache."
    )
    reasoning_tokens = serializers.IntegerField(help_text="Reasoning tokens.")


def _figures():
    """A usage group's figures, declared after its name and details (fields keep the order
    they are made in)."""
    return (
        serializers.IntegerField(help_text="Events counted in the group."),
        exact("The quantity billed (tiered prices), or 0"),
        exact("The money rated, before discount"),
        TokensSerializer(),
    )


class UsageGroupSerializer(OutputSerializer):
    """Usage of one model (`by_model`) or feature (`by_feature`) in the period."""

    name = serializers.CharField(help_text='The model, or the feature ("" for none).')
    events, quantity, amount, tokens = _figures()


class PriceUsageSerializer(OutputSerializer):
    """Usage rated by one price under one set of terms (`by_price`), in time order."""

    name = serializers.CharField(help_text="The price's name.")
    rate_card = serializers.CharField(source="details.rate_card", help_text="Its rate card.")
    version = serializers.IntegerField(
        source="details.version", help_text="The rate card version the price belongs to."
    )
    kind = serializers.CharField(
        source="details.kind", help_text="per_event, graduated, volume or package."
    )
    terms = serializers.IntegerField(
        source="details.terms", help_text="The number of the contract terms that priced it."
    )
    events, quantity, amount, tokens = _figures()


class UnratedUsageSerializer(OutputSerializer):
    """Usage of one model and feature that could not be priced (`unpriced`) or rated
    (`failed`), for one reason: listed, never counted as free."""

    name = serializers.CharField(help_text="The model.")
    feature = serializers.CharField(source="details.feature", help_text='"" for none.')
    reason = serializers.CharField(source="details.reason", help_text="Why, in words.")
    events, quantity, amount, tokens = _figures()


class AllowanceSerializer(OutputSerializer):
    """The included allowance of the period's terms (`PeriodCharges`)."""

    included = serializers.SerializerMethodField(help_text=f"Included in the period, {EXACT}.")
    used = exact("Used by usage after discount", source="allowance_used")
    remaining = serializers.SerializerMethodField(help_text=f"Included less used, {EXACT}.")

    @extend_schema_field(ExactFigureField)
    def get_included(self, charges) -> str:
        return exact_text(sum(charges.allowances))

    @extend_schema_field(ExactFigureField)
    def get_remaining(self, charges) -> str:
        return exact_text(sum(charges.allowances) - charges.allowance_used)


class TermsSpanSerializer(OutputSerializer):
    """A stretch of the period under one set of terms, or under none (`terms: null`)."""

    start = InstantField(source="segment.start", help_text="The stretch's first instant.")
    end = InstantField(source="segment.end", help_text="Its end, exclusive.")
    terms = serializers.IntegerField(
        source="terms.number", allow_null=True, help_text="The contract terms' number."
    )
    rate_card = serializers.CharField(
        source="terms.rate_card.name", allow_null=True, help_text="The terms' rate card."
    )


class UsageSerializer(OutputSerializer):
    """A customer's rated usage and charges for a billing period, so far. `total` = usage -
    discount - allowance used + fixed fees + minimum true-up."""

    customer_id = serializers.CharField(
        source="customer.external_id", help_text="The customer's external id."
    )
    currency = serializers.CharField(source="customer.currency", help_text="ISO 4217 code.")
    period = period()
    usage = exact("Rated usage before discount")
    discount = serializers.SerializerMethodField(help_text=f"The terms' discount, {EXACT}.")
    allowance = AllowanceSerializer(source="charges")
    fixed_fees = serializers.SerializerMethodField(
        help_text=f"The terms' fixed fees, prorated to the period, {EXACT}."
    )
    minimum_true_up = exact(
        "What the minimum commitment adds to the usage", source="charges.minimum_true_up"
    )
    total = exact("The period's charges so far", source="charges.total")
    terms = TermsSpanSerializer(
        source="segments", many=True, help_text="The terms in force over the period, in order."
    )
    by_price = PriceUsageSerializer(many=True, help_text="Rated usage by price and terms.")
    by_model = UsageGroupSerializer(many=True, help_text="All usage by model, by name.")
    by_feature = UsageGroupSerializer(many=True, help_text="All usage by feature, by name.")
    unpriced = UnratedUsageSerializer(many=True, help_text="Usage no price matched.")
    failed = UnratedUsageSerializer(many=True, help_text="Usage that failed to rate.")
    pending_events = serializers.IntegerField(
        help_text=(
            "The period's events stored and not yet rated (rating runs within about a "
            "second), or waiting to be rated again; counted in no other figure."
        )
    )

    @extend_schema_field(ExactFigureField)
    def get_discount(self, usage) -> str:
        return exact_text(sum(usage.charges.discounts))

    @extend_schema_field(ExactFigureField)
    def get_fixed_fees(self, usage) -> str:
        return exact_text(sum(usage.charges.fixed_fees))


class RerateTotalSerializer(OutputSerializer):
    """The period's total as rated now and after re-rating."""

    now = exact("As rated now", source="old_total")
    after = exact("After re-rating", source="new_total")


class RerateSideSerializer(OutputSerializer):
    """A line's figures on one side of re-rating: as rated now, or as re-rating would rate
    it (`side`: "old" or "new", reading the line's `old_*` or `new_*`)."""

    events = serializers.IntegerField()
    quantity = exact("The quantity (tiered prices)")
    amount = exact("The money")
    # A field named `source`: DRF takes it from the class, the stubs see Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="The rate card versions and terms that rate it."
    )

    def __init__(self, *, side: str, **kwargs):
        self.side = side
        super().__init__(**kwargs)

    def get_attribute(self, line):
        return {name: getattr(line, f"{self.side}_{name}") for name in self.fields}


class RerateLineSerializer(OutputSerializer):
    """One line of the period (a price, or unpriced or failed usage, for a model and
    feature), now and after re-rating."""

    line = serializers.CharField(source="label", help_text="What the line is.")
    changed = serializers.BooleanField(
        help_text="Whether re-rating changes its events, quantity or money."
    )
    now = RerateSideSerializer(side="old")
    after = RerateSideSerializer(side="new")


class RerateSerializer(OutputSerializer):
    """What re-rating a period from the event log with today's prices and terms changes."""

    period = period()
    events = serializers.IntegerField(help_text="The period's events, all re-rated.")
    total = RerateTotalSerializer(source="*")
    applied = serializers.BooleanField(
        help_text="true when the events were queued for rating again (POST), false for a preview."
    )
    lines = RerateLineSerializer(many=True)


class RerateInSerializer(serializers.Serializer):
    """What a re-rating asks for (the view reads it, as it always has: this describes it)."""

    at = InstantField(help_text="An instant inside the period to re-rate.")
