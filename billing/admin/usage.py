"""Rated usage in the admin: read-only, so billing ops can see what rating did and why.

Rollups are written by the rater only (billing.rating.rater); the admin never adds, changes
or deletes one. Unpriced and failed usage is a click away (the status filter), each row
with the reason it has no money. Re-rating and price corrections are pages of their own
(`rerating`), carried by UsageRollupAdmin. Rollups and rated events show their exact
money, the 12 places rating keeps (they explain invoice lines); the draw-down records,
what credits paid of each period, show billed money.
"""

from datetime import datetime

from django.contrib import admin
from django.utils.html import format_html

from common.admin import (
    ReadOnlyAdmin,
    count_text,
    customer_display,
    instant_display,
    money_display,
)

from ..models import RatedEvent, UsageDrawDown, UsageRollup
from .rerating import RerateAdmin

PERIOD_CHOICES = 24


class PeriodFilter(admin.SimpleListFilter):
    """Billing periods by their start (periods of different cycles can share one)."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        starts = (
            UsageRollup.objects.order_by("-period_start")
            .values_list("period_start", flat=True)
            .distinct()[:PERIOD_CHOICES]
        )
        return [(start.isoformat(), f"from {start:%Y-%m-%d %H:%M} UTC") for start in starts]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            start = datetime.fromisoformat(self.value())
        except ValueError:
            return queryset.none()
        return queryset.filter(period_start=start)


@admin.register(UsageRollup)
class UsageRollupAdmin(RerateAdmin, ReadOnlyAdmin):
    """The list leads with who and when, then what (the model; its feature and the price
    that rated it beneath), the events and the exact money, or why there is none."""

    list_display = ["customer_shown", "period", "rated_as", "events", "money"]
    list_filter = ["status", PeriodFilter]
    list_select_related = ["customer", "price__version__rate_card"]
    search_fields = ["=customer__external_id", "model"]
    search_help_text = "A customer's external id (exactly), or part of a model name."
    ordering = ["-period_start", "customer__external_id", "status", "line", "model", "feature"]
    show_full_result_count = False
    fields = ("customer", "period", "status", "model", "feature", "line", "price", "terms",
              "reason", "events", "amount_shown", "quantity", "first_event_shown",
              "last_event_shown", "updated_shown", "input_tokens", "output_tokens",
              "cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens",
              "key")  # fmt: skip
    readonly_fields = fields
    customer_shown = customer_display()
    amount_shown = money_display(
        "amount", "customer.currency", description="amount (exact)", exact=True
    )
    first_event_shown = instant_display("first_event_at", description="first event (UTC)")
    last_event_shown = instant_display("last_event_at", description="last event (UTC)")
    updated_shown = instant_display("updated_at", description="updated (UTC)")

    @admin.display(description="period", ordering="period_start")
    def period(self, rollup: UsageRollup) -> str:
        return f"{rollup.period_start:%Y-%m-%d}"

    @admin.display(description="model · feature · price")
    def rated_as(self, rollup: UsageRollup) -> str:
        """The model, and beneath it the feature and the price (its rate card version, and
        its name where that is not the model's): two rollups of one model differ there."""
        beneath = [rollup.feature] if rollup.feature else []
        if rollup.price is not None:
            version = rollup.price.version
            card = f"{version.rate_card.name} v{version.number}"
            beneath.append(card if rollup.line == rollup.model else f"{rollup.line}, {card}")
        if not beneath:
            return rollup.model
        return format_html("{}<br><small>{}</small>", rollup.model, " · ".join(beneath))

    @admin.display(description="events", ordering="event_count")
    def events(self, rollup: UsageRollup) -> str:
        return count_text(rollup.event_count)

    @admin.display(description="amount (exact)")
    def money(self, rollup: UsageRollup) -> str:
        """The exact money of a per-event price; the quantity of a tiered one (priced for
        the whole period when it is billed); why there is no money for the rest."""
        if rollup.status != UsageRollup.Status.RATED:
            return f"{rollup.get_status_display()}: {rollup.reason}"
        if rollup.price is not None and rollup.price.kind != rollup.price.Kind.PER_EVENT:
            return f"quantity {count_text(rollup.quantity)} (tiered)"
        return self.amount_shown(rollup)


@admin.register(RatedEvent)
class RatedEventAdmin(ReadOnlyAdmin):
    list_display = ["event", "customer_shown", "event_model", "amount_shown", "quantity",
                    "rated_shown", "reason"]  # fmt: skip
    list_select_related = ["event", "rollup__customer"]
    search_fields = ["=event__event_id"]
    search_help_text = "An event id, exactly."
    show_full_result_count = False
    fields = ("event", "rollup", "amount_shown", "quantity", "reason", "rated_shown")
    readonly_fields = fields
    amount_shown = money_display(
        "amount", "rollup.customer.currency", description="amount (exact)", exact=True
    )
    rated_shown = instant_display("rated_at", description="rated at (UTC)")
    customer_shown = customer_display("rollup.customer")

    @admin.display(description="model", ordering="event__model")
    def event_model(self, rated: RatedEvent) -> str:
        return rated.event.model


@admin.register(UsageDrawDown)
class UsageDrawDownAdmin(ReadOnlyAdmin):
    """Each customer's period: what prepaid credits have paid of its usage so far, what
    they could not (billed in arrears), the allowance left, and the rounding invoices
    settled. Written by the draw-down and closing only."""

    list_display = ["customer_shown", "period", "drawn_shown", "short_shown",
                    "allowance_left_shown", "settled_shown"]  # fmt: skip
    list_select_related = ["customer"]
    search_fields = ["=customer__external_id"]
    search_help_text = "A customer's external id, exactly."
    ordering = ["-period_start", "customer__external_id"]
    fields = ("customer", "period", "drawn_shown", "short_shown", "allowance_left_shown",
              "settled_shown", "updated_shown")  # fmt: skip
    readonly_fields = fields
    customer_shown = customer_display()
    drawn_shown = money_display("drawn", "customer.currency", description="credits drawn")
    short_shown = money_display("short", "customer.currency", description="short (in arrears)")
    allowance_left_shown = money_display(
        "allowance_left", "customer.currency", description="allowance left"
    )
    settled_shown = money_display("settled", "customer.currency", description="rounding settled")
    updated_shown = instant_display("updated_at", description="updated (UTC)")

    @admin.display(description="period from", ordering="period_start")
    def period(self, record: UsageDrawDown) -> str:
        return f"{record.period_start:%Y-%m-%d}"
