"""Who may call which API view: the default permission of every view (REST_FRAMEWORK).

An operator key may call everything. A customer's key may only read (GET, HEAD) the views
that declare `customer_scoped = True`, and only for its own customer: any other view or
method is 403, and another customer's id is the same 404 as an unknown one, so a key never
learns which customers exist. A view that forgets to declare itself stays closed to
customers' keys.
"""

from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission

from .authentication import CustomerKeyUser
from .selectors import customer_ids_by_external_id

CUSTOMER_KEY_METHODS = ("GET", "HEAD")


class ApiKeyPermission(BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401 with the Bearer challenge
        if not isinstance(user, CustomerKeyUser):
            return True
        readable = getattr(view, "customer_scoped", False)
        if not readable or request.method not in CUSTOMER_KEY_METHODS:
            raise PermissionDenied("A customer's API key cannot call this endpoint.")
        external_id = view.kwargs.get("external_id")
        ids = customer_ids_by_external_id(external_ids=[external_id])
        if ids.get(external_id) != user.customer_id:
            raise NotFound(f"No customer with external_id '{external_id}'.")
        return True
