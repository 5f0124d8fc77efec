"""Customers and operator API keys in the admin; every write goes through contracts.services."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import ngettext

from common.admin import adopt
from pricing.matching import selectors_competing

from .admin_price_builder import PriceBuilderAdminMixin, rates_text
from .models import ApiKey, CatalogPrice, Customer, Price, RateCard, RateCardVersion
from .selectors import rate_card_customers
from .services import api_key_create, api_key_revoke, customer_create, customer_update

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


class ViewOnlyAdmin(admin.ModelAdmin):
    """Shown, not edited here: prices change through the price builder's pages, which call
    the services (a version that has rated usage never changes)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PriceInline(admin.TabularInline):
    model = Price
    fields = ("position", "name", "model_pattern", "feature", "kind", "rates", "formula")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RateCard)
class RateCardAdmin(PriceBuilderAdminMixin, ViewOnlyAdmin):
    """Rate cards are made and priced through the price builder (contracts.admin_price_builder);
    a card's name and currency stay as created, since contracts and rated usage refer to them."""

    list_display = ("name", "currency", "created_at")
    search_fields = ("name",)
    fields = ("name", "currency", "description", "created_at")
    actions = ("clone_selected", "schedule_selected")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        card = self.get_object(request, object_id)
        versions = RateCardVersion.objects.filter(rate_card_id=object_id).order_by("number")
        versions = list(versions.prefetch_related("prices"))
        for version in versions:
            prices = list(version.prices.all())
            for price in prices:
                price.rates_text = rates_text(price.rates, price.formula)
            version.competing = [
                f"A call both “{prices[winner].name}” ({prices[winner].model_pattern}) and "
                f"“{prices[other].name}” ({prices[other].model_pattern}) match gets "
                f"“{prices[winner].name}”: {why}."
                for winner, other, why in selectors_competing([p.selector() for p in prices])
            ]
        extra_context = {
            **(extra_context or {}),
            "versions": versions,
            "customers": rate_card_customers(rate_card=card) if card else [],
            "may_add_price": self.has_add_price_permission(request),
            "may_change_price": self.has_change_price_permission(request),
            "may_clone": self.has_clone_permission(request),
            "may_schedule": self.has_schedule_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Clone the selected rate card…", permissions=["clone"])
    def clone_selected(self, request, queryset):
        return self._one_selected(request, queryset, "clone")

    @admin.action(
        description="Schedule a new version of the selected rate card…", permissions=["schedule"]
    )
    def schedule_selected(self, request, queryset):
        return self._one_selected(request, queryset, "schedule")

    def _one_selected(self, request, queryset, page: str):
        """Both actions ask about one card (a new name, an instant) on a page of their own."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one rate card.", messages.WARNING)
            return None
        url = reverse(f"admin:contracts_ratecard_{page}", args=[queryset.get().pk])
        return HttpResponseRedirect(url)


@admin.register(RateCardVersion)
class RateCardVersionAdmin(ViewOnlyAdmin):
    list_display = ("rate_card", "number", "effective_from", "locked_at", "note")
    list_filter = ("rate_card",)
    inlines = [PriceInline]


@admin.register(CatalogPrice)
class CatalogPriceAdmin(ViewOnlyAdmin):
    list_display = ("provider", "model", "effective_from", "rates", "batch_discount")
    list_filter = ("provider",)
    search_fields = ("model",)


from . import admin_contracts  # noqa: E402, F401  (registers the contract admin)
