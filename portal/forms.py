"""The portal's forms: logging in, resetting a password, the alert settings, API keys."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm

from pricing.money import RATED_PLACES, plain

from .access import portal_user_of


class PortalAuthenticationForm(AuthenticationForm):
    """Django's login form, for portal users only (staff sign in to the admin)."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if portal_user_of(user) is None:
            raise forms.ValidationError(
                "This account cannot sign in to the portal.", code="not_portal_user"
            )


class PortalPasswordResetForm(PasswordResetForm):
    """Reset links go to portal users only, never to staff accounts; also to those invited
    who have not set a password yet (Django's form skips them), so an expired invitation
    is replaced by asking for a reset."""

    def get_users(self, email):
        return get_user_model()._default_manager.filter(
            email__iexact=email,
            is_active=True,
            is_staff=False,
            is_superuser=False,
            portal_user__isnull=False,
        )


def _shares(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise forms.ValidationError("Give whole percentages, e.g. 50, 75, 90, 100.") from None


class AlertSettingsForm(forms.Form):
    """The settings a customer's admin may change; wallets.models validates them in full."""

    budget = forms.DecimalField(
        required=False,
        min_value=0,
        decimal_places=RATED_PLACES,
        max_digits=32,
        help_text="Usage per billing period, after discount. Empty: no budget alerts.",
    )
    budget_shares = forms.CharField(
        required=False,
        label="Budget alerts at (%)",
        help_text="Percentages of the budget, e.g. 50, 75, 90, 100. Empty: none.",
    )
    credit_shares = forms.CharField(
        required=False,
        label="Credit alerts at (%)",
        help_text="Percentages of each credit grant used. Empty: none.",
    )
    balance_below = forms.DecimalField(
        required=False,
        min_value=0,
        decimal_places=RATED_PLACES,
        max_digits=32,
        label="Alert when the credit balance is below",
    )
    emails = forms.CharField(
        required=False,
        label="Alert emails",
        max_length=500,
        help_text="Addresses separated by commas. Empty: the billing email.",
    )
    webhook_url = forms.URLField(
        required=False,
        label="Webhook URL",
        max_length=500,
        assume_scheme="https",
        help_text="Alerts are POSTed here as signed JSON. Empty: no webhook.",
    )

    def clean_budget_shares(self):
        return _shares(self.cleaned_data["budget_shares"])

    def clean_credit_shares(self):
        return _shares(self.cleaned_data["credit_shares"])

    @staticmethod
    def initial_from(alert_settings) -> dict:
        return {
            "budget": _plain(alert_settings.budget),
            "budget_shares": ", ".join(map(str, alert_settings.budget_shares)),
            "credit_shares": ", ".join(map(str, alert_settings.credit_shares)),
            "balance_below": _plain(alert_settings.balance_below),
            "emails": alert_settings.emails,
            "webhook_url": alert_settings.webhook_url,
        }


def _plain(value):
    """100.000000000000 shown as 100, 12.5 as 12.5."""
    return None if value is None else plain(value)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the key is for, e.g. the service or dashboard that will use it.",
    )
