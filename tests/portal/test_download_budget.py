"""The portal's downloads (invoice and credit-note PDFs, usage CSVs) count against the
portal user's exports budget (common.throttling): past it, 429 with `Retry-After`; pages
are not counted."""

import pytest

from common import throttling

from .conftest import logged_in

WINDOW_START = 1_800_000_000.0  # a whole number of minutes since the epoch


@pytest.fixture(autouse=True)
def stopped_clock(monkeypatch):
    monkeypatch.setattr(throttling, "clock", lambda: WINDOW_START + 15)  # 45 s left


def test_a_portal_user_past_the_exports_budget_is_told_when_to_retry(
    client, acme_viewer, acme_admin, invoices, settings
):
    settings.TOKENTILL_THROTTLE_EXPORTS = "2/minute"
    number = invoices["acme"].number
    viewer = logged_in(client, acme_viewer)

    answers = [
        viewer.get(f"/portal/invoices/{number}.pdf").status_code,
        viewer.get("/portal/usage.csv?period=2026-11-01").status_code,
    ]
    refused = viewer.get(f"/portal/invoices/{number}.pdf")
    page = viewer.get(f"/portal/invoices/{number}/")

    assert answers == [200, 200]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"
    assert refused["Content-Type"] == "text/plain; charset=utf-8"
    assert refused.content.decode() == (
        "Too many downloads: the limit is 2 per minute. Try again in 45 seconds."
    )
    assert page.status_code == 200
    # Another portal user of the same customer has a budget of their own.
    admin = logged_in(client, acme_admin)
    assert admin.get(f"/portal/invoices/{number}.pdf").status_code == 200
