"""Demo portal logins, after load_demo: an admin for acme and a viewer for initech, each
with the demo password. Idempotent: run again, it changes nothing."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from contracts.models import Customer
from portal.models import PortalUser

PASSWORD = "tokentill-demo"  # noqa: S105 - the documented login of a local demo
LOGINS = (
    ("ada@acme.example", "acme", PortalUser.Role.ADMIN),
    ("ian@initech.example", "initech", PortalUser.Role.VIEWER),
)


class Command(BaseCommand):
    help = "Create the demo's portal logins (after load_demo)."

    @transaction.atomic
    def handle(self, *args, **options):
        users = get_user_model().objects
        for email, external_id, role in LOGINS:
            customer = Customer.objects.filter(external_id=external_id).first()
            if customer is None or users.filter(username=email).exists():
                continue
            user = users.create_user(username=email, email=email, password=PASSWORD)
            PortalUser.objects.create(
                user=user, customer=customer, role=role, invited_by="demo",
                invited_at=timezone.now(),
            )  # fmt: skip
            self.stdout.write(f"Portal login {email} / {PASSWORD} ({role} of {external_id})")
