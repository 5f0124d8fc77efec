"""The portal's one access rule: a request acts for the customer of its portal user.

Every portal view is wrapped in `customer_view`, which hands the view that customer; views
look every object up through it (another customer's object is then simply not found:
404). Anonymous visitors are sent to the login page; staff and any other user without a
portal user are refused (403), so the admin's accounts never see a customer's portal.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from .models import PortalUser


def portal_user_of(user) -> PortalUser | None:
    """The user's portal user, or None for anyone who may not use the portal."""
    if not user.is_authenticated or not user.is_active or user.is_staff or user.is_superuser:
        return None
    return PortalUser.objects.select_related("customer").filter(user=user).first()


def customer_view(view=None, *, admin_for_post: bool = False):
    """Call `view(request, customer, ...)` for the request's portal user's customer.

    `admin_for_post`: a POST needs the admin role (a viewer gets 403)."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("portal:login"))
            portal_user = portal_user_of(request.user)
            if portal_user is None:
                raise PermissionDenied("Only a customer's portal users may use the portal.")
            if admin_for_post and request.method == "POST" and not portal_user.is_admin:
                raise PermissionDenied("Only the customer's portal admins may change this.")
            request.portal_user = portal_user
            return view(request, portal_user.customer, *args, **kwargs)

        return wrapped

    return decorate(view) if view is not None else decorate
