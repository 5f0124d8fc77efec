"""Wallets in the admin, read-only for now: each wallet with its grants and its ledger."""

from django.contrib import admin

from .models import CreditGrant, LedgerEntry, Wallet


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class GrantInline(ReadOnlyInline):
    model = CreditGrant
    fields = ("source", "amount", "remaining", "priority", "effective_at", "expires_at", "reason")
    readonly_fields = fields


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "amount", "grant", "reference", "reason", "created_by")
    readonly_fields = fields


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    """Grants and adjustments go through wallets.services; the ledger is never edited."""

    list_display = ("customer", "currency", "balance", "created_at")
    list_select_related = ("customer",)
    search_fields = ("customer__external_id", "customer__name")
    fields = ("customer", "currency", "balance", "created_at")
    readonly_fields = fields
    inlines = [GrantInline, LedgerInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
