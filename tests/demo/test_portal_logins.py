"""The demo's portal logins: created once after load_demo, and they log in."""

from django.core.management import call_command

from contracts.services import customer_create
from portal.models import PortalUser


def test_the_demo_logins_are_created_once_and_log_in(db, client):
    for external_id in ("acme", "initech"):
        customer_create(external_id=external_id, name=external_id.title(), currency="USD")

    call_command("load_portal_demo")
    call_command("load_portal_demo")

    logins = PortalUser.objects.order_by("user__username").values_list(
        "user__username", "customer__external_id", "role"
    )
    assert list(logins) == [
        ("ada@acme.example", "acme", "admin"),
        ("ian@initech.example", "initech", "viewer"),
    ]
    assert client.login(username="ada@acme.example", password="tokentill-demo")
    assert client.get("/portal/").status_code == 200
