"""Rated usage in the admin: read-only, so billing ops can see what rating did and why.

Rollups are written by the rater only (billing.rating.rater); the admin never adds, changes
or deletes one. Unpriced and failed usage is a click away (the status filter), each row
with the reason it has no money. Re-rating and price corrections are pages of their own
(`rerating`), carried by UsageRollupAdmin.
"""

from datetime import datetime

from django.contrib import admin

from common.admin import ReadOnlyAdmin

from ..models import RatedEvent, UsageRollup
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
    list_display = [
        "customer_id_shown",
        "period_start",
        "status",
        "price_line",
        "model",
        "feature",
        "event_count",
        "amount",
        "quantity",
        "reason",
    ]
    list_filter = ["status", PeriodFilter]
    list_select_related = ["customer", "price__version__rate_card"]
    search_fields = ["=customer__external_id", "model"]
    search_help_text = "A customer's external id (exactly), or part of a model name."
    ordering = ["-period_start", "customer__external_id", "status", "line", "model", "feature"]
    show_full_result_count = False
    readonly_fields = [field.name for field in UsageRollup._meta.fields]

    @admin.display(description="customer", ordering="customer__external_id")
    def customer_id_shown(self, rollup: UsageRollup) -> str:
        return rollup.customer.external_id

    @admin.display(description="line / price", ordering="line")
    def price_line(self, rollup: UsageRollup) -> str:
        if rollup.price is None:
            return "—"
        version = rollup.price.version
        return f"{rollup.line} ({version.rate_card.name} v{version.number})"


@admin.register(RatedEvent)
class RatedEventAdmin(ReadOnlyAdmin):
    list_display = ["event", "rollup", "amount", "quantity", "reason", "rated_at"]
    list_select_related = ["event", "rollup"]
    search_fields = ["=event__event_id"]
    search_help_text = "An event id, exactly."
    show_full_result_count = False
    readonly_fields = [field.name for field in RatedEvent._meta.fields]
