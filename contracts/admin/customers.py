"""Customers and operator API keys in the admin; every write goes through contracts.services."""

from django.contrib import admin, messages
from django.utils.translation import ngettext

from common.admin import adopt
from contracts.models import ApiKey, Customer
from contracts.services import api_key_create, api_key_revoke, customer_create, customer_update

CUSTOMER_CHANGEABLE_FIELDS = ("name", "email", "status")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "currency", "status", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("external_id", "name", "email")
    fields = ("external_id", "name", "currency", "email", "status", "created_at", "updated_at")
    add_fields = ("external_id", "name", "currency", "email")

    def get_fields(self, request, obj=None):
        # A new customer starts active; its status is changed afterwards.
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Events and money refer to these two: they are fixed once the customer exists.
        return ("external_id", "currency", "created_at", "updated_at")

    def has_delete_permission(self, request, obj=None):
        # Usage, invoices and ledger entries point at customers: close one instead.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            changed = {
                name: form.cleaned_data[name]
                for name in CUSTOMER_CHANGEABLE_FIELDS
                if name in form.changed_data
            }
            if changed:
                customer_update(customer=obj, **changed)
            return
        customer = customer_create(**{name: form.cleaned_data[name] for name in self.add_fields})
        adopt(obj, customer)


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("active", "revoked"):
            return queryset.filter(revoked_at__isnull=self.value() == "active")
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Operator keys are created here (shown once); every key, customers' read-only keys
    too, is looked at and revoked here; never edited or deleted."""

    list_display = ("name", "masked_key", "customer", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("customer",)
    list_filter = (ApiKeyStateFilter,)
    search_fields = ("name", "prefix")
    actions = ("revoke_selected",)
    readonly_fields = (
        "name",
        "masked_key",
        "customer",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )

    @admin.display(description="key")
    def masked_key(self, obj: ApiKey) -> str:
        return f"tt_{obj.prefix}_…"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name",)
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        # A key's name and secret are fixed: the change view is read-only.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting would lose who used the API and when: revoke instead.
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("contracts.change_apikey")

    def save_model(self, request, obj, form, change):
        api_key, plain_key = api_key_create(name=form.cleaned_data["name"])
        adopt(obj, api_key)
        messages.success(
            request,
            f"The new API key for “{api_key.name}” is {plain_key} — copy it now, "
            "it will not be shown again.",
        )

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        active = [api_key for api_key in queryset if api_key.is_active]
        for api_key in active:
            api_key_revoke(api_key=api_key)
        self.message_user(
            request,
            ngettext("Revoked %d key.", "Revoked %d keys.", len(active)) % len(active),
            messages.SUCCESS,
        )
