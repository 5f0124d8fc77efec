"""Billing webhooks in the admin: endpoints registered (saved through webhooks' services,
the secret shown for the receiver to check signatures), the events emitted and their
deliveries, read only, with actions that replay them."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import ngettext

from common.admin import ReadOnlyAdmin, ReadOnlyInline, adopt

from .events import EVENT_TYPES
from .models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from .services import (
    ENDPOINT_FIELDS,
    delivery_replay,
    endpoint_create,
    endpoint_disable,
    endpoint_update,
    event_redeliver,
)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(kind, kind) for kind in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type, those added later included. What each "
        "tells: docs/guide/webhooks.md.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ENDPOINT_FIELDS


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("url", "description", "enabled", "event_types_label")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    readonly_fields = ("secret", "created_at", "updated_at")
    actions = ("disable_selected",)

    def get_fields(self, request, obj=None):
        # The secret is made when the endpoint is saved: there is none to show before.
        return ENDPOINT_FIELDS if obj is None else (*ENDPOINT_FIELDS, *self.readonly_fields)

    @admin.display(description="event types")
    def event_types_label(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) or "all"

    def has_delete_permission(self, request, obj=None):
        return False  # disable it instead: its deliveries are kept

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in ENDPOINT_FIELDS}
        saved = endpoint_update(endpoint=obj, **fields) if change else endpoint_create(**fields)
        adopt(obj, saved)

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable_selected(self, request, queryset):
        for endpoint in queryset:
            endpoint_disable(endpoint=endpoint)
        count = len(queryset)
        self.message_user(
            request, ngettext("%d endpoint disabled.", "%d endpoints disabled.", count) % count
        )


class DeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fk_name = "event"
    fields = ("endpoint", "status", "attempts", "response_status", "last_error",
              "next_attempt_at", "delivered_at", "replay_of")  # fmt: skip
    readonly_fields = fields


class ReplayAdmin(ReadOnlyAdmin):
    """Facts shown read only, with an action that replays them."""

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.add_webhookdelivery")

    def _replayed(self, request, made: int, refused: list[str]) -> None:
        for message in refused:
            self.message_user(request, message, messages.ERROR)
        if made or not refused:
            self.message_user(
                request,
                ngettext("%d new delivery sent.", "%d new deliveries sent.", made) % made,
                messages.SUCCESS if made else messages.WARNING,
            )


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReplayAdmin):
    list_display = ("created_at", "type", "event_id", "customer")
    list_filter = ("type", "created_at")
    search_fields = ("event_id",)
    fields = ("event_id", "type", "created_at", "data")
    readonly_fields = fields
    inlines = [DeliveryInline]
    actions = ("replay_selected",)

    @admin.display(description="customer")
    def customer(self, event: WebhookEvent) -> str:
        return str(event.data.get("customer_id", ""))

    @admin.action(
        description="Deliver the selected events again to every enabled endpoint that takes them",
        permissions=["replay"],
    )
    def replay_selected(self, request, queryset):
        made = sum(len(event_redeliver(event=event)) for event in queryset)
        self._replayed(request, made, [])


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReplayAdmin):
    """Every delivery with its attempts; any can be replayed (a new delivery of its event)."""

    list_display = ("created_at", "event", "endpoint", "status", "attempts", "response_status",
                    "next_attempt_at", "delivered_at")  # fmt: skip
    list_filter = ("status", "event__type", "endpoint")
    list_select_related = ("event", "endpoint")
    search_fields = ("event__event_id", "endpoint__url")
    fields = ("event", "endpoint", "status", "attempts", "response_status", "last_error",
              "next_attempt_at", "delivered_at", "created_at", "replay_of", "history")  # fmt: skip
    readonly_fields = fields
    actions = ("replay_selected",)

    @admin.action(description="Replay the selected deliveries now", permissions=["replay"])
    def replay_selected(self, request, queryset):
        made, refused = 0, []
        for delivery in queryset.select_related("event", "endpoint"):
            try:
                delivery_replay(delivery=delivery)
            except ValidationError as error:
                refused.append(f"Delivery {delivery.pk}: {error.messages[0]}")
            else:
                made += 1
        self._replayed(request, made, refused)
