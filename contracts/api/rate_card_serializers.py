"""Shapes of the rate card API: rate cards, their versions and prices, and the model price
catalog; what a request may carry and what an answer looks like.

As everywhere in the API, serializers check shape (types, required and unknown fields);
the rules on values (rate names and units, amounts of at least 0, formulas, tiers, names
unique within a version) are the models' and the services', so the API and the admin's
price builder refuse the same things with the same words. Money is text (`"2.50"`), never
a JSON number.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import DECIMAL_TEXT, InstantField, MoneyField, OutputSerializer, StrictSerializer
from contracts.models import RATE_UNITS, Price

AMOUNT_TEXT = {"type": "string", "format": "decimal", "pattern": DECIMAL_TEXT.pattern}
RATE_SCHEMA = {
    "type": "object",
    "description": "An amount as text and its unit: per 1, 1000 or 1000000 units.",
    "properties": {"amount": AMOUNT_TEXT, "per": {"type": "integer", "enum": [*RATE_UNITS]}},
    "required": ["amount", "per"],
}
RATES_HELP = (
    'Named rates with their unit: {"rate_in": {"amount": "2.50", "per": 1000000}}. In the '
    "formula a rate is the price of one unit (2.50 per 1M is 0.0000025)."
)
FORMULA_HELP = (
    "One expression over the call's metrics and the rates, e.g. `input_tokens * rate_in + "
    "output_tokens * rate_out` (docs/guide/pricing.md, the formula language). per_event: "
    "the money of one call; tiered and package prices: the quantity a call adds. Kept "
    "exactly as sent: a refusal gives the line and column."
)
DISPLAY_NAME_HELP = (
    'What the customer\'s invoice lines call the price, e.g. GPT-4o; "" (the default): its '
    "`name`. One line, no spaces at either end. Copied into new versions and clones."
)
KIND_HELP = (
    "per_event (the default), graduated, volume or package: the last three price the "
    "period's total quantity by `tiers`, or by `package_size` and `package_price`."
)


@extend_schema_field(RATE_SCHEMA)
class RateField(serializers.Field):
    """A rate with its unit, `{"amount": "2.50", "per": 1000000}`: the amount as text. The
    price's own check reads the values (a known unit, an amount of at least 0)."""

    default_error_messages = {
        # DRF formats the messages: braces are doubled.
        "invalid": 'Give the amount as text and its unit: {{"amount": "2.50", "per": 1000000}}.',
        "not_text": 'Write the amount as a string, e.g. "2.50": money is never a JSON number.',
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict) or set(data) != {"amount", "per"}:
            self.fail("invalid")
        if not isinstance(data["amount"], str):
            self.fail("not_text")
        if type(data["per"]) is not int:
            self.fail("invalid")
        return {"amount": data["amount"], "per": data["per"]}

    def to_representation(self, value):
        return value


@extend_schema_field(
    {
        "oneOf": [
            {**AMOUNT_TEXT, "description": 'An amount, e.g. "8.00": the rate keeps its unit.'},
            RATE_SCHEMA,
        ],
        "nullable": True,
        "description": "null removes the rate.",
    }
)
class RateChangeField(RateField):
    """A rate as a change gives it: an amount as text (the rate keeps its unit), an amount
    with its unit, or null to remove the rate."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            return data
        if isinstance(data, int | float) and not isinstance(data, bool):
            self.fail("not_text")
        return super().to_internal_value(data)


@extend_schema_field(
    {**AMOUNT_TEXT, "nullable": True, "description": 'A quantity as text, e.g. "1000".'}
)
class QuantityField(MoneyField):
    """A quantity written as text, as money is: a JSON number may already be a float."""

    default_error_messages = {
        "not_text": 'Write the quantity as a string, e.g. "1000000": never a JSON number.',
        "invalid": "'{value}' is not a decimal number such as \"1000000\".",
    }


# --- requests ---------------------------------------------------------------------------


class TierInSerializer(StrictSerializer):
    """A row of a tiered price's table."""

    up_to = QuantityField(
        allow_null=True, help_text="The quantity the tier goes up to, included; null for the last."
    )
    unit_price = MoneyField(help_text="The price of one unit in the tier.")
    flat_fee = MoneyField(
        required=False, help_text="Charged once the tier is entered; 0 if left out."
    )


class PriceFieldsSerializer(StrictSerializer):
    """What a price is made of; the subclasses say which fields are required."""

    name = serializers.CharField(
        max_length=200, help_text="Unique within the version; corrections and overrides use it."
    )
    display_name = serializers.CharField(
        max_length=200,
        allow_blank=True,
        trim_whitespace=False,
        help_text=DISPLAY_NAME_HELP,
    )
    position = serializers.IntegerField(
        min_value=0, help_text="Order within the version; the first wins between equal matches."
    )
    model_pattern = serializers.CharField(
        max_length=200, help_text="A model name, or a pattern with * such as gpt-4o*."
    )
    feature = serializers.CharField(
        max_length=200, allow_blank=True, help_text="Only calls for this feature; empty: any."
    )
    property_filters = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text='Properties a call must have, e.g. {"inference": "batch"}.',
    )
    kind = serializers.ChoiceField(choices=Price.Kind.choices, help_text=KIND_HELP)
    rates = serializers.DictField(child=RateField(), help_text=RATES_HELP)
    extra_metrics = serializers.ListField(
        child=serializers.CharField(),
        help_text="Metrics beyond the standard ones that the formula uses.",
    )
    formula = serializers.CharField(trim_whitespace=False, help_text=FORMULA_HELP)
    tiers = TierInSerializer(many=True, help_text="graduated and volume: the table, in order.")
    package_size = QuantityField(allow_null=True, help_text="package: units in a package.")
    package_price = MoneyField(allow_null=True, help_text="package: the price of one package.")

    def __init__(self, *args, needed: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.required = name in needed


class PriceInSerializer(PriceFieldsSerializer):
    """A new price: `model_pattern`, `rates` and `formula` at least. `name` defaults to
    the model pattern and `position` to after the version's last price."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, needed=("model_pattern", "rates", "formula"), **kwargs)

    def validate(self, attrs):
        attrs.setdefault("name", attrs["model_pattern"])
        return attrs


class PriceChangeSerializer(PriceFieldsSerializer):
    """A change to a price: the fields given are set, the others stay. `rates` merge: an
    amount as text keeps the rate's unit, an amount with its unit sets both (or adds the
    rate), null removes the rate; rates not named stay."""

    rates = serializers.DictField(
        child=RateChangeField(),
        help_text='The rates to set, e.g. {"rate_out": "8.00"}; the others stay. '
        'null removes a rate; {"amount", "per"} adds one.',
    )


class PriceSetSerializer(PriceChangeSerializer):
    """A price of a new version or a clone, by name: a price of the copy is changed (the
    fields given), a new name is a new price (`model_pattern`, `rates` with their units
    and `formula` at least)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, needed=("name",), **kwargs)


class RateCardCreateSerializer(StrictSerializer):
    """A new rate card, with its first version's prices if given."""

    name = serializers.CharField(max_length=200, help_text="Unique; it names the card in URLs.")
    currency = serializers.CharField(
        max_length=3, trim_whitespace=False, help_text="ISO 4217 in capitals: every price's."
    )
    description = serializers.CharField(required=False, allow_blank=True)
    effective_from = InstantField(
        required=False,
        help_text="When its first version starts, with an offset; the past too (the 1st of "
        "the month). Leave out: now.",
    )
    prices = PriceInSerializer(many=True, required=False, help_text="The first version's prices.")


class PriceChangesSerializer(StrictSerializer):
    """Changes to a copy of the latest version's prices."""

    prices = PriceSetSerializer(
        many=True,
        required=False,
        help_text="Prices set by name: a price of the copy changes in the fields given; a "
        "new name is a new price.",
    )
    remove = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Names of prices to drop."
    )


class VersionScheduleSerializer(PriceChangesSerializer):
    """A new version from an instant: the latest version's prices with the changes given."""

    effective_from = InstantField(
        help_text="When it takes over: after the latest version starts, and not in the past "
        "once that one has rated usage."
    )
    note = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Why, for the record."
    )


class RateCardCloneSerializer(PriceChangesSerializer):
    """A new card from this one's latest prices, in its currency or another."""

    name = serializers.CharField(max_length=200, help_text="The new card's name.")
    currency = serializers.CharField(
        max_length=3,
        trim_whitespace=False,
        required=False,
        help_text="Leave out: the card's. In another currency, `prices` must give every "
        "price's money anew (all its rates; tiers or package_price): money does not convert.",
    )
    description = serializers.CharField(required=False, allow_blank=True)
    effective_from = InstantField(
        required=False, help_text="When the new card's first version starts. Leave out: now."
    )


class RateCardFromCatalogSerializer(StrictSerializer):
    """A rate card priced from the model catalog at list price plus a markup."""

    name = serializers.CharField(max_length=200)
    markup = MoneyField(help_text='Over list price, as a fraction: "0.20" for +20 %, "0" at list.')
    models = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Catalog model names, e.g. gpt-4o; with `providers`, both are priced.",
    )
    providers = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Every model of these providers, e.g. openai. Neither this nor `models`: "
        "every model.",
    )
    description = serializers.CharField(required=False, allow_blank=True)
    effective_from = InstantField(required=False, help_text="Leave out: now; the past too.")


class RateCardListQuerySerializer(serializers.Serializer):
    currency = serializers.CharField(required=False, help_text="Only cards in this currency.")


class CatalogQuerySerializer(serializers.Serializer):
    provider = serializers.CharField(required=False, help_text="Only this provider's models.")
    model = serializers.CharField(required=False, help_text="Only this model.")


# --- answers ----------------------------------------------------------------------------


class RateSerializer(OutputSerializer):
    amount = serializers.CharField(help_text='As typed, e.g. "2.50".')
    per = serializers.ChoiceField(choices=[*RATE_UNITS], help_text="Units the amount is for.")


class TierSerializer(OutputSerializer):
    up_to = serializers.CharField(allow_null=True, help_text="null for the last tier.")
    unit_price = serializers.CharField()
    flat_fee = serializers.CharField(default="0")


class PriceSerializer(OutputSerializer):
    """A price as stored: every kind has every field (tiers empty and package fields null
    where the kind does not use them)."""

    name = serializers.CharField()
    display_name = serializers.CharField(help_text=DISPLAY_NAME_HELP)
    position = serializers.IntegerField()
    model_pattern = serializers.CharField()
    feature = serializers.CharField(help_text='"" for any feature.')
    property_filters = serializers.DictField(child=serializers.CharField())
    kind = serializers.ChoiceField(choices=Price.Kind.choices)
    rates = serializers.DictField(child=RateSerializer())
    extra_metrics = serializers.ListField(child=serializers.CharField())
    formula = serializers.CharField()
    tiers = TierSerializer(many=True)
    package_size = MoneyField(allow_null=True)
    package_price = MoneyField(allow_null=True)


class VersionFieldsSerializer(OutputSerializer):
    number = serializers.IntegerField()
    effective_from = InstantField(help_text="From when it prices usage.")
    note = serializers.CharField()
    locked_at = InstantField(
        allow_null=True,
        help_text="When it first rated usage: from then on it never changes. null: its "
        "prices may still change.",
    )
    correction = serializers.IntegerField(
        source="correction_id", allow_null=True, help_text="The price correction that made it."
    )


class RateCardVersionSerializer(VersionFieldsSerializer):
    """A version with its prices, in their order."""

    prices = PriceSerializer(many=True)


class RateCardVersionSummarySerializer(VersionFieldsSerializer):
    price_count = serializers.IntegerField(help_text="How many prices it has.")


class RateCardFieldsSerializer(OutputSerializer):
    name = serializers.CharField()
    currency = serializers.CharField()
    description = serializers.CharField()
    created_at = InstantField()


class RateCardSerializer(RateCardFieldsSerializer):
    """A rate card with every version, oldest first, and their prices."""

    versions = RateCardVersionSerializer(many=True)


class RateCardSummarySerializer(RateCardFieldsSerializer):
    """A rate card in a list: its versions without their prices."""

    versions = RateCardVersionSummarySerializer(many=True)


class LongContextSerializer(OutputSerializer):
    threshold_input_tokens = serializers.IntegerField(
        help_text="Above this many input tokens (cached and written included), these rates "
        "price the whole call."
    )
    rates = serializers.DictField(child=serializers.CharField(), help_text="Per 1M tokens.")


class CatalogEntrySerializer(OutputSerializer):
    """A model's public list price, in force from `effective_from`, per 1M tokens."""

    provider = serializers.CharField()
    model = serializers.CharField()
    match = serializers.CharField(help_text="The model pattern its price gets.")
    effective_from = serializers.DateField()
    currency = serializers.CharField()
    rates = serializers.DictField(
        child=serializers.CharField(),
        help_text="Per 1M tokens, as text: input, output, cached_input, cache_write, …",
    )
    long_context = LongContextSerializer(allow_null=True)
    batch_discount = MoneyField(
        allow_null=True, help_text="Taken off input and output by the provider's batch API."
    )
    # A field named `source` shadows Field.source for the type checker only: DRF takes
    # declared fields off the class.
    source = serializers.CharField(help_text="Where the price is published.")  # type: ignore[assignment]
    notes = serializers.CharField()
