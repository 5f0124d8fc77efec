"""The seller's details in the admin: one row, prefilled from the TOKENTILL_SELLER_*
settings, every save in the audit trail; bad input stores nothing."""

import pytest

from billing.models import SellerDetails
from billing.selectors import seller_details
from common.models import AuditEntry

URL = "/admin/billing/sellerdetails/"
GOOD = {
    "name": "Tokentill Networks Ltd",
    "address": "1 Harbour Street\r\nLondon E1 6AN",
    "tax_id": "GB123456789",
    "email": "billing@tokentill.example",
}


@pytest.fixture
def from_settings(settings):
    settings.TOKENTILL_SELLER_NAME = "From Settings Ltd"
    settings.TOKENTILL_SELLER_ADDRESS = "2 Env Road\nLeeds"
    settings.TOKENTILL_SELLER_TAX_ID = "GB000"
    settings.TOKENTILL_SELLER_EMAIL = "env@tokentill.example"


def test_until_saved_the_settings_are_the_seller_and_prefill_the_form(admin_client, from_settings):
    listed = admin_client.get(URL)
    form = admin_client.get(f"{URL}add/").context["adminform"].form

    assert listed.status_code == 302
    assert listed["Location"] == f"{URL}add/"
    assert form.initial["name"] == "From Settings Ltd"
    assert form.initial["address"] == "2 Env Road\nLeeds"
    assert seller_details().address_lines == ["2 Env Road", "Leeds"]


def test_saving_makes_the_one_row_audited_and_the_list_opens_it(admin_client, from_settings):
    response = admin_client.post(f"{URL}add/", GOOD)

    row = SellerDetails.objects.get()
    assert response.status_code == 302
    assert admin_client.get(URL)["Location"] == f"{URL}{row.pk}/change/"
    assert admin_client.get(f"{URL}add/").status_code == 403  # one row only
    assert seller_details().name == "Tokentill Networks Ltd"
    assert seller_details().address_lines == ["1 Harbour Street", "London E1 6AN"]
    entry = AuditEntry.objects.get(action="sellerdetails.create")
    assert entry.after["tax_id"] == "GB123456789"

    admin_client.post(f"{URL}{row.pk}/change/", {**GOOD, "tax_id": "GB987654321"})

    change = AuditEntry.objects.get(action="sellerdetails.change")
    assert (change.before["tax_id"], change.after["tax_id"]) == ("GB123456789", "GB987654321")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("tax_id", "GB;1", "Use 1-50 letters, digits, spaces or - . / (starting and ending "
         "with a letter or digit)."),
        ("email", "not-an-email", "Enter a valid email address."),
        ("name", "", "This field is required."),
        ("address", "\n".join("abcdefghi"), "Use at most 8 lines."),
    ],
)  # fmt: skip
def test_bad_details_are_refused_and_store_nothing(admin_client, field, value, error):
    response = admin_client.post(f"{URL}add/", {**GOOD, field: value})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [error]}
    assert not SellerDetails.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="sellerdetails").exists()
