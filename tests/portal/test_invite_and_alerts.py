"""Staff invite a customer's people; the emailed link sets a password that logs them in.
A customer's admins change the alert settings; viewers see them and cannot."""

import re
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError

from portal.models import PortalUser
from portal.services import portal_user_invite
from wallets.models import AlertSettings
from wallets.selectors import alert_settings_for

from .conftest import PASSWORD, logged_in, table

NEW_PASSWORD = "Correct-horse-battery-42"


def link_in(message) -> str:
    (link,) = re.findall(r"http://testserver(/portal/set-password/\S+/)", message.body)
    return link


def test_an_invited_user_sets_a_password_with_the_emailed_link_and_logs_in(client, acme, clock):
    portal_user = portal_user_invite(
        customer=acme,
        email="New.Person@Acme.example",
        role="viewer",
        invited_by="ops",
        base_url="http://testserver/",
    )

    user = portal_user.user
    assert (user.username, user.email, user.is_staff) == (
        "new.person@acme.example",
        "new.person@acme.example",
        False,
    )
    assert user.has_usable_password() is False
    (message,) = mail.outbox
    assert message.to == ["new.person@acme.example"]
    assert message.subject == "You are invited to the Acme Corp usage portal"
    assert "ops has invited you" in message.body

    # The link opens the set-password form (Django moves the token into the session)
    form = client.get(link_in(message), follow=True)
    assert form.status_code == 200
    assert "Choose a password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert (done.status_code, done["Location"]) == (302, "/portal/set-password/done/")

    # The password works, and the link does not work twice
    login = client.post(
        "/portal/login/", {"username": "new.person@acme.example", "password": NEW_PASSWORD}
    )
    assert (login.status_code, login["Location"]) == (302, "/portal/")
    client.logout()
    again = client.get(link_in(message), follow=True)
    assert "This link has expired or was used already." in again.content.decode()


def test_an_address_with_an_account_is_not_invited_again(acme, acme_viewer):
    with pytest.raises(ValidationError, match="already has an account"):
        portal_user_invite(customer=acme, email="vic@acme.example", role="admin", invited_by="ops")
    assert PortalUser.objects.count() == 1
    assert mail.outbox == []


def test_staff_invite_from_the_admin(admin_client, acme, clock):
    response = admin_client.post(
        "/admin/portal/portaluser/add/",
        {"customer": acme.pk, "email": "ann@acme.example", "role": "admin"},
    )

    assert (response.status_code, response["Location"]) == (
        302,
        "/admin/portal/portaluser/",
    )
    portal_user = PortalUser.objects.get()
    assert (portal_user.customer, portal_user.role, portal_user.invited_by) == (
        acme,
        "admin",
        "admin",
    )
    assert "http://testserver/portal/set-password/" in mail.outbox[0].body


def test_password_reset_mails_portal_users_only(client, acme_viewer, staff):
    client.post("/portal/password-reset/", {"email": "vic@acme.example"})
    client.post("/portal/password-reset/", {"email": "ops@tokentill.example"})

    (message,) = mail.outbox
    assert message.to == ["vic@acme.example"]
    assert "/portal/set-password/" in message.body


def test_an_invited_user_whose_link_expired_asks_for_a_new_one(client, acme, clock):
    portal_user_invite(customer=acme, email="late@acme.example", role="viewer", invited_by="ops")

    client.post("/portal/password-reset/", {"email": "late@acme.example"})

    _invitation, reset = mail.outbox
    assert reset.to == ["late@acme.example"]
    assert reset.subject == "Reset your usage portal password"
    assert "http://testserver/portal/set-password/" in reset.body


def test_a_customer_admin_changes_the_alert_settings(client, acme_admin, acme):
    response = logged_in(client, acme_admin).post(
        "/portal/alerts/",
        {
            "budget": "100",
            "budget_shares": "50, 90",
            "credit_shares": "",
            "balance_below": "",
            "emails": "cfo@acme.example, ops@acme.example",
            "webhook_url": "https://hooks.acme.example/tokentill",
        },
    )

    assert (response.status_code, response["Location"]) == (302, "/portal/alerts/")
    saved = alert_settings_for(customer=acme)
    assert (saved.budget, saved.budget_shares, saved.credit_shares, saved.balance_below) == (
        D("100"),
        [50, 90],
        [],
        None,
    )
    assert saved.emails == "cfo@acme.example, ops@acme.example"
    assert saved.webhook_url == "https://hooks.acme.example/tokentill"


def test_bad_alert_settings_are_refused_field_by_field(client, acme_admin, acme):
    response = logged_in(client, acme_admin).post(
        "/portal/alerts/",
        {"budget": "-5", "budget_shares": "50, fifty", "emails": "not an address"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Ensure this value is greater than or equal to 0." in html
    assert "Give whole percentages, e.g. 50, 75, 90, 100." in html
    assert AlertSettings.objects.filter(customer=acme).exists() is False


def test_model_validation_errors_are_shown_on_the_form(client, acme_admin, acme):
    response = logged_in(client, acme_admin).post(
        "/portal/alerts/", {"budget": "0", "budget_shares": "50", "emails": "not an address"}
    )

    html = response.content.decode()
    assert "Must be greater than 0." in html
    assert "Enter a valid email address." in html
    assert AlertSettings.objects.filter(customer=acme).exists() is False


def test_a_viewer_sees_the_settings_and_cannot_change_them(client, acme_viewer, acme):
    client = logged_in(client, acme_viewer)

    page = client.get("/portal/alerts/")
    response = client.post("/portal/alerts/", {"budget": "1", "budget_shares": "50"})

    assert page.status_code == 200
    assert '<form method="post" class="settings"' not in page.content.decode()
    assert "Only your organisation's portal admins can change these." in page.content.decode()
    assert response.status_code == 403
    assert AlertSettings.objects.filter(customer=acme).exists() is False


def test_the_alerts_that_fired_are_listed(client, globex_admin, usage):
    page = logged_in(client, globex_admin).get("/portal/alerts/")

    rows = table(page, "alerts")[1:]
    # globex's 10.00 call used 1,000 % of its 1.00 budget: each default share fired (newest first)
    assert [row[2] for row in rows] == [
        f"globex: {share} % of your 1.00 USD budget used" for share in (100, 90, 75, 50)
    ]
    # Each to the email set (sent after the rating's commit: delivered, or still pending)
    assert {row[3].split(" (")[0] for row in rows} == {"Email"}


def test_invited_users_cannot_log_in_before_setting_a_password(client, acme, clock):
    portal_user_invite(customer=acme, email="x@acme.example", role="viewer", invited_by="ops")

    response = client.post("/portal/login/", {"username": "x@acme.example", "password": ""})

    assert response.status_code == 200
    assert get_user_model().objects.get(username="x@acme.example").has_usable_password() is False
    assert PASSWORD not in response.content.decode()
