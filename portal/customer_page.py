"""The customer page's portal users section (contracts.admin.customers draws it): who of
the customer's people may sign in to the portal, with inviting one a click away."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from contracts.admin.customers import customer_page_section
from contracts.models import Customer

from .models import PortalUser


@customer_page_section(
    key="portal",
    order=70,
    title="Portal users",
    template="admin/contracts/customer/section_portal.html",
)
def portal_users_section(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    user = request.user
    if not user.has_perm("portal.view_portaluser"):
        return None
    people = PortalUser.objects.filter(customer=customer).select_related("user")
    return {
        "people": list(people.order_by("user__email")),
        "all_url": f"{reverse('admin:portal_portaluser_changelist')}?q={customer.external_id}",
        "invite_url": user.has_perm("portal.add_portaluser")
        and reverse("admin:portal_portaluser_add"),
    }
