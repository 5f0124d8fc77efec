"""Writes of the portal: inviting a customer's people."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from common.audit import audit_record
from contracts.models import Customer

from .models import PortalUser


def portal_user_invite(
    *,
    customer: Customer,
    email: str,
    role: str,
    invited_by: str,
    base_url: str | None = None,
) -> PortalUser:
    """Create a portal user of `customer` with no password, and email them a link to set
    one (Django's password-reset token: valid for PASSWORD_RESET_TIMEOUT, once, as setting
    the password changes what the token signs). `base_url` is where the portal is served
    (the admin passes the request's; default TOKENTILL_PORTAL_URL)."""
    email = email.strip().lower()
    validate_email(email)
    if role not in PortalUser.Role.values:
        raise ValidationError({"role": f"Choose one of {', '.join(PortalUser.Role.values)}."})
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.filter(username__iexact=email).exists():
            raise ValidationError({"email": f"{email} already has an account."})
        user = user_model(username=email, email=email, is_staff=False, is_superuser=False)
        user.set_unusable_password()
        user.full_clean()
        user.save()
        portal_user = PortalUser(
            user=user,
            customer=customer,
            role=role,
            invited_by=invited_by,
            invited_at=timezone.now(),
        )
        portal_user.full_clean()
        portal_user.save()
        audit_record("portal_user.invite", portal_user, customer=customer.external_id)
    link = (base_url or settings.TOKENTILL_PORTAL_URL).rstrip("/") + reverse(
        "portal:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {"customer": customer, "link": link, "invited_by": invited_by, "role": role}
    send_mail(
        subject=f"You are invited to the {customer.name} usage portal",
        message=render_to_string("portal/email/invite.txt", context),
        from_email=None,
        recipient_list=[email],
    )
    return portal_user
