"""The seller's details, printed at the top of every invoice and credit note: one row,
edited here and recorded in the audit trail. Until it is saved, documents use the
TOKENTILL_SELLER_* settings, which prefill its form."""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse

from common.admin import AuditedAdmin

from ..models import SellerDetails


@admin.register(SellerDetails)
class SellerDetailsAdmin(AuditedAdmin):
    fields = ("name", "address", "tax_id", "email")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not SellerDetails.objects.exists()

    def has_delete_permission(self, request, obj=None):
        # Documents always have a seller: change it instead.
        return False

    def changelist_view(self, request, extra_context=None):
        """The one row's page (or the form that creates it): there is no list to show."""
        row = SellerDetails.objects.order_by("pk").first()
        if row is None:
            return redirect(reverse("admin:billing_sellerdetails_add"))
        return redirect(reverse("admin:billing_sellerdetails_change", args=[row.pk]))

    def get_changeform_initial_data(self, request):
        return {
            "name": settings.TOKENTILL_SELLER_NAME,
            "address": settings.TOKENTILL_SELLER_ADDRESS,
            "tax_id": settings.TOKENTILL_SELLER_TAX_ID,
            "email": settings.TOKENTILL_SELLER_EMAIL,
        }

    def response_post_save_add(self, request, obj):
        return redirect(reverse("admin:billing_sellerdetails_change", args=[obj.pk]))

    def response_post_save_change(self, request, obj):
        return redirect(reverse("admin:billing_sellerdetails_change", args=[obj.pk]))
