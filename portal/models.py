"""Who may use the customer portal: a Django user tied to one customer, with a role."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from contracts.models import Customer


class PortalUser(models.Model):
    """A person of a customer's who signs in to the portal. They see that customer's data
    and nothing else; an admin may also change the customer's alert settings, a viewer
    only looks. A portal user is never staff: the admin and the portal are kept apart."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_user"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="portal_users")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    invited_by = models.CharField(max_length=150, blank=True)
    invited_at = models.DateTimeField()

    class Meta:
        verbose_name = "portal user"

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.customer.external_id}, {self.role})"

    def clean(self) -> None:
        if self.user_id and (self.user.is_staff or self.user.is_superuser):
            raise ValidationError("A portal user cannot be staff: invite another address.")

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN
