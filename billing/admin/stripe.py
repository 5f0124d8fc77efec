"""Stripe in the admin: webhook events as received (with *Reprocess*), the Stripe ids of
customers, and top-ups charged through Stripe. Read-only: Stripe's side is Stripe's."""

from django.contrib import admin, messages
from django.utils.translation import ngettext

from common.admin import ReadOnlyAdmin

from ..models import StripeCustomer, StripeEvent, TopUpInvoice
from ..stripe.events import stripe_event_apply


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
