"""Rated usage in the admin: read-only, so billing ops can see what rating did and why.

Rollups are written by the rater only (billing.services); the admin never adds, changes
or deletes one. Unpriced and failed usage is a click away (the status filter), each row
with the reason it has no money.
"""

from datetime import datetime

from django.contrib import admin, messages
from django.utils.translation import ngettext

from common.admin import ReadOnlyAdmin

from . import admin_invoices  # noqa: F401  (invoices, periods, credit notes)
from .models import RatedEvent, StripeCustomer, StripeEvent, TopUpInvoice, UsageRollup
from .stripe_events import stripe_event_apply

# The periods the filter offers: the most recent ones that have usage.
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
class UsageRollupAdmin(ReadOnlyAdmin):
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


# --- Stripe: events received, customers and top-up invoices pushed (read-only) -------------


class ProcessedFilter(admin.SimpleListFilter):
    title = "processed"
    parameter_name = "processed"

    def lookups(self, request, model_admin):
        return [("yes", "Applied"), ("no", "Not applied (error)")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(processed_at__isnull=self.value() == "no")
        return queryset


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    """Stripe's webhook events as received, each stored once. One that could not be applied
    (its invoice was not known yet, say) shows its error; "Reprocess" applies it again,
    which is harmless for one already applied."""

    list_display = ["stripe_id", "type", "created", "received_at", "processed_at", "error"]
    list_filter = ["type", ProcessedFilter]
    search_fields = ["=stripe_id"]
    search_help_text = "A Stripe event id, exactly."
    ordering = ["-created", "-pk"]
    readonly_fields = [field.name for field in StripeEvent._meta.fields]
    actions = ["reprocess_selected"]

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_stripeevent")

    @admin.action(description="Reprocess the selected events", permissions=["reprocess"])
    def reprocess_selected(self, request, queryset):
        applied = sum(stripe_event_apply(event=event) for event in queryset.order_by("created"))
        failed = len(queryset) - applied
        self.message_user(
            request,
            ngettext("%d event applied.", "%d events applied.", applied) % applied
            + (f" {failed} still failing: see their error." if failed else ""),
            messages.WARNING if failed else messages.SUCCESS,
        )


@admin.register(StripeCustomer)
class StripeCustomerAdmin(ReadOnlyAdmin):
    list_display = ["customer", "stripe_id", "created_at"]
    list_select_related = ["customer"]
    search_fields = ["=customer__external_id", "=stripe_id"]
    readonly_fields = [field.name for field in StripeCustomer._meta.fields]


@admin.register(TopUpInvoice)
class TopUpInvoiceAdmin(ReadOnlyAdmin):
    list_display = ["request", "stripe_id", "stripe_status", "stripe_pushed_at", "stripe_error"]
    list_select_related = ["request__wallet"]
    list_filter = ["stripe_status"]
    search_fields = ["=stripe_id"]
    readonly_fields = [field.name for field in TopUpInvoice._meta.fields]
