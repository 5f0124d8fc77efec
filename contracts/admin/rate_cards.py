"""Rate cards, their versions and prices, and the model catalog in the admin.

They are shown here (ReadOnlyAdmin, ReadOnlyInline), never edited: prices change through
the price builder's pages (contracts.admin.price_builder), which call contracts.services,
and a version that has rated usage never changes.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from common.admin import ReadOnlyAdmin, ReadOnlyInline, instant_display
from contracts.models import CatalogPrice, Price, PriceCorrection, RateCard, RateCardVersion
from contracts.selectors import rate_card_customers
from pricing.matching import selectors_competing
from pricing.money import plain

from .price_builder.card_views import RateCardPagesAdmin
from .price_builder.forms import rates_text


class PriceInline(ReadOnlyInline):
    model = Price
    fields = ("position", "name", "model_pattern", "feature", "kind", "rates", "formula")
    readonly_fields = fields


@admin.register(RateCard)
class RateCardAdmin(RateCardPagesAdmin, ReadOnlyAdmin):
    """Rate cards are made and priced through the price builder (contracts.admin.price_builder);
    a card's name and currency stay as created, since contracts and rated usage refer to them."""

    list_display = ("name", "currency", "created_shown")
    search_fields = ("name",)
    created_shown = instant_display("created_at", description="created (UTC)")
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
        corrections = PriceCorrection.objects.filter(rate_card_id=object_id).prefetch_related(
            "versions"
        )
        extra_context = {
            **(extra_context or {}),
            "versions": versions,
            "corrections": corrections,
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
class RateCardVersionAdmin(ReadOnlyAdmin):
    list_display = ("rate_card", "number", "effective_shown", "locked_shown", "correction", "note")
    list_filter = ("rate_card",)
    inlines = [PriceInline]
    effective_shown = instant_display("effective_from", description="from (UTC)")
    locked_shown = instant_display("locked_at", description="locked (UTC)")


@admin.register(PriceCorrection)
class PriceCorrectionAdmin(ReadOnlyAdmin):
    """Who corrected which price from when, and why: made on the rate card's page
    (*Correct a price from…*, billing's admin), over the API or by `correct_price`."""

    list_display = ("rate_card", "price_name", "effective_shown", "created_by", "created_shown",
                    "reason")  # fmt: skip
    list_filter = ("rate_card",)
    search_fields = ("price_name", "created_by", "reason")
    readonly_fields = [field.name for field in PriceCorrection._meta.fields]
    effective_shown = instant_display("effective_from", description="from (UTC)")
    created_shown = instant_display("created_at", description="made (UTC)")


@admin.register(CatalogPrice)
class CatalogPriceAdmin(ReadOnlyAdmin):
    list_display = ("provider", "model", "effective_from", "rates_shown", "batch")
    list_filter = ("provider",)
    search_fields = ("model",)

    @admin.display(description="rates")
    def rates_shown(self, price: CatalogPrice) -> str:
        rates = (f"{name.replace('_', ' ')} {amount}" for name, amount in price.rates.items())
        return f"{', '.join(rates)} ({price.currency} per 1M tokens)"

    @admin.display(description="batch discount", ordering="batch_discount")
    def batch(self, price: CatalogPrice) -> str | None:
        return None if price.batch_discount is None else f"{plain(price.batch_discount * 100)} %"
