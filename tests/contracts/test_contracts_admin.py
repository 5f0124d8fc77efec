"""The contract admin: the list, a contract with its terms history, and the add, amend and
end pages that call the services."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages

from contracts.models import Contract, ContractTerms
from contracts.services import contract_amend, contract_create, contract_end, customer_create
from tests.admin_pages import shown

from .contract_support import PER_1M, card_create, changes, contracts_snapshot, utc

CONTRACTS_URL = "/admin/contracts/contract/"
ADD_URL = f"{CONTRACTS_URL}add/"
FEB = utc(2025, 2, 1)
MAR = utc(2025, 3, 1)
APR = utc(2025, 4, 1)
JUL = utc(2025, 7, 1)
FOUR_PLACES = "Ensure that there are no more than 4 decimal places."
OVERRIDE = {"gpt-4o": {"rate_in": {"amount": "2.00", "per": PER_1M}}}


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def form_errors(response) -> dict:
    return {
        field: list(errors) for field, errors in response.context["adminform"].form.errors.items()
    }


def change_url(contract: Contract) -> str:
    return f"{CONTRACTS_URL}{contract.pk}/change/"


def amend_url(contract: Contract) -> str:
    return f"{CONTRACTS_URL}{contract.pk}/amend/"


def end_url(contract: Contract) -> str:
    return f"{CONTRACTS_URL}{contract.pk}/end/"


@pytest.fixture
def signed(acme, standard):
    """Acme's contract from 1 February, amended from 1 March."""
    contract = contract_create(
        customer=acme,
        starts_at=FEB,
        rate_card=standard,
        fixed_fee="500",
        note="Signed",
        created_by="ops",
    )
    contract_amend(
        contract=contract,
        effective_from=MAR,
        included_allowance="200",
        price_overrides=OVERRIDE,
        note="Allowance from March",
        created_by="ops",
    )
    return contract


def user_with(*codenames: str) -> User:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


# --- the list -----------------------------------------------------------------------------


def test_the_list_shows_customer_cycle_span_and_current_rate_card(
    admin_client, signed, globex, premium
):
    contract_create(
        customer=globex, starts_at=FEB, ends_at=JUL, rate_card=premium, billing_cycle="yearly"
    )

    response = admin_client.get(CONTRACTS_URL)

    assert response.status_code == 200
    rows = [
        [str(column) for column in row]
        for row in response.context["cl"].result_list.values_list(
            "customer__external_id", "billing_cycle", "starts_at", "ends_at"
        )
    ]
    assert rows == [
        ["acme", "monthly", "2025-02-01 00:00:00+00:00", "None"],
        ["globex", "yearly", "2025-02-01 00:00:00+00:00", "2025-07-01 00:00:00+00:00"],
    ]
    content = response.content.decode()
    assert '<td class="field-current_rate_card">Standard</td>' in content
    assert '<td class="field-current_rate_card">Premium</td>' in content
    assert f'<a href="{change_url(signed)}">acme</a>' in content
    assert shown(response, "customer_shown") == ["acme", "globex"]
    assert shown(response, "starts_shown") == ["2025-02-01 00:00", "2025-02-01 00:00"]
    assert shown(response, "ends_shown") == ["-", "2025-07-01 00:00"]
    assert f'<a href="{CONTRACTS_URL}?customer={signed.customer_id}">all of acme</a>' in content


def test_the_list_is_searched_by_the_customers_external_id(admin_client, signed, globex, standard):
    contract_create(customer=globex, starts_at=FEB, rate_card=standard)

    response = admin_client.get(CONTRACTS_URL, {"q": "glob"})

    assert [c.customer.external_id for c in response.context["cl"].result_list] == ["globex"]


def test_the_list_filtered_by_customer_shows_only_their_contracts(
    admin_client, signed, globex, standard
):
    contract_create(customer=globex, starts_at=FEB, rate_card=standard)

    response = admin_client.get(CONTRACTS_URL, {"customer": globex.pk})

    assert response.status_code == 200
    assert [c.customer.external_id for c in response.context["cl"].result_list] == ["globex"]
    customer_filter = response.context["cl"].filter_specs[0]
    assert (customer_filter.title, customer_filter.lookup_choices) == (
        "customer",
        [(str(globex.pk), "Globex (globex)")],
    )


@pytest.mark.parametrize("value", ["999999", "acme"])
def test_the_list_filtered_by_an_unknown_customer_is_empty(admin_client, signed, value):
    response = admin_client.get(CONTRACTS_URL, {"customer": value})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert response.context["cl"].filter_specs[0].lookup_choices == [
        (value, f"no customer '{value}'")
    ]


def test_the_customer_filter_is_hidden_until_used(admin_client, signed):
    response = admin_client.get(CONTRACTS_URL)

    assert [spec.title for spec in response.context["cl"].filter_specs if spec.has_output()] == [
        "billing cycle"
    ]


def test_the_list_costs_the_same_queries_however_many_contracts(
    admin_client, standard, django_assert_max_num_queries
):
    for number in range(8):
        customer = customer_create(external_id=f"c{number}", name=f"C{number}", currency="USD")
        contract_create(customer=customer, starts_at=FEB, rate_card=standard)

    with django_assert_max_num_queries(10):
        response = admin_client.get(CONTRACTS_URL)

    assert response.status_code == 200


# --- a contract's page ------------------------------------------------------------------


def test_a_contract_shows_its_whole_terms_history_oldest_first(clock, admin_client, signed):
    response = admin_client.get(change_url(signed))

    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    assert [
        (
            form.original.number,
            form.original.effective_from,
            form.original.rate_card.name,
            form.original.fixed_fee,
            form.original.included_allowance,
            form.original.price_overrides,
            form.original.note,
            form.original.created_by,
        )
        for form in inline
    ] == [
        (1, FEB, "Standard", Decimal(500), Decimal(0), {}, "Signed", "ops"),
        (2, MAR, "Standard", Decimal(500), Decimal(200), OVERRIDE, "Allowance from March", "ops"),
    ]
    assert list(inline.fieldsets[0][1]["fields"]) == [
        "terms_number",
        "effective_shown",
        "card",
        "fee_shown",
        "allowance_shown",
        "minimum_shown",
        "discount",
        "overage",
        "overrides",
        "note",
    ]
    content = response.content.decode()
    assert shown(response, "effective_shown") == ["2025-02-01 00:00", "2025-03-01 00:00"]
    assert shown(response, "fee_shown") == ["500.00 USD", "500.00 USD"]
    assert shown(response, "allowance_shown") == ["0.00 USD", "200.00 USD"]
    assert shown(response, "minimum_shown") == ["0.00 USD", "0.00 USD"]
    assert shown(response, "discount") == ["0 %", "0 %"]
    assert shown(response, "overrides") == ["—", "gpt-4o"]
    assert f'href="{amend_url(signed)}">Amend</a>' in content
    assert f'href="{end_url(signed)}">End contract</a>' in content
    assert "Allowance from March" in content


def test_a_contract_and_its_terms_are_never_edited_or_deleted(admin_client, signed):
    before = contracts_snapshot()

    page = admin_client.get(change_url(signed))
    edit = admin_client.post(change_url(signed), {"anchor_day": "15"})
    delete = admin_client.post(f"{CONTRACTS_URL}{signed.pk}/delete/", {"post": "yes"})
    terms_admin = admin_client.get("/admin/contracts/contractterms/")

    assert page.context["adminform"].form.fields == {}
    assert (edit.status_code, delete.status_code, terms_admin.status_code) == (403, 403, 404)
    (inline,) = page.context["inline_admin_formsets"]
    assert (inline.has_add_permission, inline.has_change_permission) == (False, False)
    assert inline.has_delete_permission is False
    assert contracts_snapshot() == before


def test_someone_who_may_only_view_contracts_gets_no_amend_or_end(client, signed):
    client.force_login(user_with("view_contract"))
    before = contracts_snapshot()

    page = client.get(change_url(signed))
    responses = [
        client.get(amend_url(signed)),
        client.post(amend_url(signed), {"effective_from_0": "2025-04-01"}),
        client.get(end_url(signed)),
        client.post(end_url(signed), {"ends_at_0": "2025-07-01", "ends_at_1": "00:00"}),
        client.get(ADD_URL),
    ]

    assert page.status_code == 200
    assert "Amend</a>" not in page.content.decode()
    assert [r.status_code for r in responses] == [403, 403, 403, 403, 403]
    assert contracts_snapshot() == before


# --- adding a contract ------------------------------------------------------------------


def add_body(customer, rate_card, **changes_) -> dict:
    return {
        "customer": customer.pk,
        "starts_at_0": "2025-02-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "",
        "ends_at_1": "",
        "billing_cycle": "quarterly",
        "anchor_day": "",
        "anchor_month": "",
        "rate_card": rate_card.pk,
        "fixed_fee": "500.00",
        "included_allowance": "200",
        "overage_policy": "block",
        "minimum_commitment": "0",
        "discount_percent": "12.5",
        "price_overrides": '{"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}}',
        "note": "Signed on 28 January",
        **changes_,
    }


def test_the_add_page_asks_for_customer_start_cycle_anchor_and_first_terms(admin_client, acme):
    response = admin_client.get(ADD_URL)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.fields) == [
        "rate_card",
        "fixed_fee",
        "included_allowance",
        "overage_policy",
        "credits_cover_arrears",
        "minimum_commitment",
        "discount_percent",
        "price_overrides",
        "note",
        "customer",
        "starts_at",
        "ends_at",
        "billing_cycle",
        "anchor_day",
        "anchor_month",
        "payment_terms_days",
    ]
    assert [name for name, _ in response.context["adminform"].fieldsets] == [
        None,
        "Billing cycle",
        "Terms",
    ]


def test_adding_a_contract_calls_the_service(clock, admin_client, acme, standard):
    response = admin_client.post(ADD_URL, add_body(acme, standard))

    contract = Contract.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(contract)
    assert messages_of(response) == [f"Contract {contract} added."]
    assert (
        contract.customer,
        contract.starts_at,
        contract.ends_at,
        contract.billing_cycle,
        contract.anchor_day,
        contract.anchor_month,
    ) == (acme, FEB, None, "quarterly", 1, 2)
    assert list(
        ContractTerms.objects.values_list(
            "number",
            "effective_from",
            "rate_card__name",
            "fixed_fee",
            "included_allowance",
            "overage_policy",
            "minimum_commitment",
            "discount_percent",
            "price_overrides",
            "note",
            "created_by",
        )
    ) == [
        (
            1,
            FEB,
            "Standard",
            Decimal("500"),
            Decimal("200"),
            "block",
            Decimal("0"),
            Decimal("12.5"),
            OVERRIDE,
            "Signed on 28 January",
            "admin",
        )
    ]
    assert changes() == [("acme", FEB)]
    assert list(LogEntry.objects.values_list("action_flag", "object_id")) == [
        (ADDITION, str(contract.pk))
    ]


def test_adding_with_an_anchor_and_an_end(admin_client, acme, standard):
    body = add_body(
        acme,
        standard,
        billing_cycle="yearly",
        anchor_day="31",
        anchor_month="3",
        ends_at_0="2026-03-31",
        ends_at_1="00:00",
        price_overrides="",
    )

    response = admin_client.post(ADD_URL, body)

    assert response.status_code == 302
    contract = Contract.objects.get()
    assert (contract.billing_cycle, contract.anchor_day, contract.anchor_month) == (
        "yearly",
        31,
        3,
    )
    assert contract.ends_at == utc(2026, 3, 31)
    assert contract.terms.get().price_overrides == {}


@pytest.mark.parametrize(
    ("body_changes", "errors"),
    [
        ({"anchor_day": "32"}, {"anchor_day": ["Use a day from 1 to 31."]}),
        ({"fixed_fee": "-1"}, {"fixed_fee": ["Must not be negative."]}),
        ({"discount_percent": "101"}, {"discount_percent": ["Use a percentage from 0 to 100."]}),
        (
            {"ends_at_0": "2025-02-01", "ends_at_1": "00:00"},
            {"ends_at": ["A contract must end after it starts."]},
        ),
        (
            {"price_overrides": '{"gpt-5": {"rate_in": {"amount": "1", "per": 1}}}'},
            {"price_overrides": ["Standard has no price named 'gpt-5'."]},
        ),
        (
            {"price_overrides": '{"gpt-4o": {"rate_in": {"amount": 2.0, "per": 1000000}}}'},
            {
                "price_overrides": [
                    "gpt-4o: 'rate_in': write the amount as text, e.g. \"2.50\" "
                    "(money is never a float)."
                ]
            },
        ),
        ({"price_overrides": "{not json"}, {"price_overrides": ["Enter a valid JSON."]}),
        ({"starts_at_0": "", "starts_at_1": ""}, {"starts_at": ["This field is required."]}),
        ({"fixed_fee": "1.00001"}, {"fixed_fee": [FOUR_PLACES]}),
    ],
)
def test_a_refused_contract_shows_form_errors_and_stores_nothing(
    admin_client, acme, standard, body_changes, errors
):
    response = admin_client.post(ADD_URL, add_body(acme, standard, **body_changes))

    assert response.status_code == 200
    assert form_errors(response) == errors
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}
    assert LogEntry.objects.count() == 0


def test_a_contract_before_its_rate_card_has_prices_is_added_with_a_warning(
    admin_client, acme, standard
):
    customer_page = f"/admin/contracts/customer/{acme.pk}/change/"
    body = add_body(acme, standard, starts_at_0="2024-12-01")

    response = admin_client.post(f"{ADD_URL}?customer={acme.pk}&next={customer_page}", body)

    contract = Contract.objects.get()
    assert (response.status_code, response["Location"]) == (302, customer_page)
    assert messages_of(response) == [
        f"Contract {contract} added.",
        "Standard has prices from 2025-01-01 00:00 UTC: usage before then stays unpriced "
        "until the card has prices from the contract's start.",
    ]
    assert contract.starts_at == utc(2024, 12, 1)


def test_the_add_page_opened_for_a_customer_has_them_chosen_and_cancels_back(admin_client, acme):
    customer_page = f"/admin/contracts/customer/{acme.pk}/change/"

    response = admin_client.get(f"{ADD_URL}?customer={acme.pk}&next={customer_page}")

    assert response.context["adminform"].form["customer"].value() == str(acme.pk)
    assert f'<a href="{customer_page}" class="closelink">' in response.content.decode()


def test_an_empty_post_names_the_required_fields(admin_client, signed):
    before = contracts_snapshot()

    responses = [admin_client.post(ADD_URL, {}), admin_client.post(amend_url(signed), {})]

    required = ["This field is required."]
    assert form_errors(responses[0]) == dict.fromkeys(
        (
            "rate_card",
            "fixed_fee",
            "included_allowance",
            "overage_policy",
            "minimum_commitment",
            "discount_percent",
            "customer",
            "starts_at",
            "billing_cycle",
        ),
        required,
    )
    assert form_errors(responses[1]) == dict.fromkeys(
        (
            "rate_card",
            "fixed_fee",
            "included_allowance",
            "overage_policy",
            "minimum_commitment",
            "discount_percent",
            "effective_from",
        ),
        required,
    )
    assert contracts_snapshot() == before


def test_a_rate_card_in_another_currency_is_a_form_error(admin_client, acme):
    euro = card_create("Euro", "EUR")

    response = admin_client.post(ADD_URL, add_body(acme, euro))

    assert form_errors(response) == {
        "rate_card": ["Euro (EUR) is priced in EUR; acme is billed in USD."]
    }
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_an_overlapping_contract_is_a_form_wide_error(admin_client, signed, standard):
    before = contracts_snapshot()

    response = admin_client.post(
        ADD_URL, add_body(signed.customer, standard, starts_at_0="2026-01-01")
    )

    assert response.status_code == 200
    assert form_errors(response) == {
        "__all__": [
            "acme already has a contract from 2025-02-01 00:00 UTC (open-ended): contracts of "
            "a customer cannot overlap; end that one first."
        ]
    }
    assert "acme already has a contract" in response.content.decode()
    assert contracts_snapshot() == before


def test_the_customer_field_searches_customers_as_you_type(admin_client, acme, globex):
    response = admin_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "contracts",
            "model_name": "contract",
            "field_name": "customer",
            "term": "glo",
        },
    )

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(globex.pk), "text": "Globex (globex)"}]


# --- amending ---------------------------------------------------------------------------


def amend_body(**changes_) -> dict:
    return {
        "effective_from_0": "2025-04-15",
        "effective_from_1": "12:00:00",
        "rate_card": "",
        "fixed_fee": "500",
        "included_allowance": "200",
        "overage_policy": "block",
        "minimum_commitment": "0",
        "discount_percent": "0",
        "price_overrides": '{"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}}',
        "note": "",
        **changes_,
    }


def test_the_amend_page_holds_the_latest_terms(admin_client, signed, standard):
    response = admin_client.get(amend_url(signed))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.fields)[-1] == "effective_from"
    assert {name: form[name].value() for name in form.fields} == {
        "effective_from": None,
        "rate_card": standard.pk,
        "fixed_fee": "500.00",  # as a person writes it, not 500.0000
        "included_allowance": "200.00",
        "overage_policy": "arrears",
        "credits_cover_arrears": True,
        "minimum_commitment": "0.00",
        "discount_percent": "0",
        "price_overrides": '{"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}}',
        "note": None,
    }
    assert [
        (terms["number"], terms["fixed_fee"], terms["allowance"], terms["overage"])
        for terms in response.context["terms_history"]
    ] == [(1, "500.00 USD", "0.00 USD", "arrears; later credits pay it"),
          (2, "500.00 USD", "200.00 USD", "arrears; later credits pay it")]  # fmt: skip
    assert (
        "<td>{&quot;gpt-4o&quot;: {&quot;rate_in&quot;: {&quot;amount&quot;: &quot;2.00&quot;, "
        "&quot;per&quot;: 1000000}}}</td>" in response.content.decode()
    )
    assert "The form holds the latest terms (number 2, from 2025-03-01 00:00 UTC)" in (
        response.content.decode()
    )


def test_amending_calls_the_service_from_the_instant_given(clock, admin_client, signed, premium):
    body = amend_body(
        rate_card=premium.pk, discount_percent="10", price_overrides="{}", note="To Premium"
    )

    response = admin_client.post(amend_url(signed), body)

    assert response.status_code == 302
    assert response["Location"] == change_url(signed)
    assert messages_of(response) == ["Amended: terms 3 from 2025-04-15 12:00 UTC."]
    terms = ContractTerms.objects.get(number=3)
    assert (
        terms.effective_from,
        terms.rate_card.name,
        terms.fixed_fee,
        terms.included_allowance,
        terms.overage_policy,
        terms.discount_percent,
        terms.price_overrides,
        terms.note,
        terms.created_by,
    ) == (
        utc(2025, 4, 15, 12),
        "Premium",
        Decimal(500),
        Decimal(200),
        "block",
        Decimal(10),
        {},
        "To Premium",
        "admin",
    )
    assert changes()[-1] == ("acme", utc(2025, 4, 15, 12))
    assert list(LogEntry.objects.values_list("action_flag", "change_message")) == [
        (CHANGE, "Amended: terms 3 from 2025-04-15 12:00 UTC.")
    ]


@pytest.mark.parametrize(
    ("body_changes", "errors"),
    [
        (
            {"effective_from_0": "2025-03-01", "effective_from_1": "00:00"},
            {"effective_from": ["Must be after the latest terms start (2025-03-01 00:00 UTC)."]},
        ),
        ({"effective_from_0": ""}, {"effective_from": ["This field is required."]}),
        (
            {"effective_from_0": "2025-02-15", "included_allowance": "-1"},
            {
                "effective_from": ["Must be after the latest terms start (2025-03-01 00:00 UTC)."],
                "included_allowance": ["Must not be negative."],
            },
        ),
        (
            {"price_overrides": '{"gpt-4o": {"rate_x": {"amount": "1", "per": 1}}}'},
            {
                "price_overrides": [
                    "gpt-4o: no rate named rate_x (it has rate_cached, rate_in, rate_out)."
                ]
            },
        ),
    ],
)
def test_a_refused_amendment_shows_form_errors_and_stores_nothing(
    admin_client, signed, standard, body_changes, errors
):
    before = contracts_snapshot()

    response = admin_client.post(
        amend_url(signed), amend_body(rate_card=standard.pk, **body_changes)
    )

    assert response.status_code == 200
    assert form_errors(response) == errors
    assert contracts_snapshot() == before


def test_an_amendment_after_the_end_is_refused(admin_client, signed, standard):
    contract_end(contract=signed, ends_at=APR)
    before = contracts_snapshot()

    response = admin_client.post(amend_url(signed), amend_body(rate_card=standard.pk))

    assert form_errors(response) == {
        "effective_from": ["Must be before the contract ends (2025-04-01 00:00 UTC)."]
    }
    assert contracts_snapshot() == before


def test_an_unknown_contract_has_no_amend_or_end_page(admin_client, signed):
    assert admin_client.get(f"{CONTRACTS_URL}{signed.pk + 1}/amend/").status_code == 404
    assert admin_client.get(f"{CONTRACTS_URL}{signed.pk + 1}/end/").status_code == 404


# --- ending -----------------------------------------------------------------------------


def test_ending_calls_the_service(admin_client, signed):
    response = admin_client.post(end_url(signed), {"ends_at_0": "2025-07-01", "ends_at_1": "00:00"})

    assert response.status_code == 302
    assert response["Location"] == change_url(signed)
    assert messages_of(response) == ["Ends at 2025-07-01 00:00 UTC."]
    assert Contract.objects.get().ends_at == JUL
    assert changes()[-1] == ("acme", JUL)


def test_an_empty_end_reopens_the_contract(admin_client, signed):
    contract_end(contract=signed, ends_at=JUL)
    page = admin_client.get(end_url(signed))

    response = admin_client.post(end_url(signed), {"ends_at_0": "", "ends_at_1": ""})

    assert page.context["adminform"].form["ends_at"].value() == JUL
    assert messages_of(response) == ["Open-ended."]
    assert Contract.objects.get().ends_at is None


def test_ending_where_it_ends_changes_nothing(admin_client, signed):
    before = contracts_snapshot()

    response = admin_client.post(end_url(signed), {"ends_at_0": "", "ends_at_1": ""})

    assert messages_of(response) == ["Nothing changed."]
    assert contracts_snapshot() == before
    assert LogEntry.objects.count() == 0


def test_a_refused_end_shows_form_errors_and_stores_nothing(admin_client, signed):
    before = contracts_snapshot()

    response = admin_client.post(end_url(signed), {"ends_at_0": "2025-03-01", "ends_at_1": "00:00"})

    assert response.status_code == 200
    assert form_errors(response) == {
        "ends_at": ["Must be after the latest terms start (2025-03-01 00:00 UTC)."]
    }
    assert contracts_snapshot() == before


def test_the_pages_offer_quick_instants_beside_the_admins_pickers(
    clock, admin_client, admin_user, signed
):
    clock.current = utc(2025, 3, 10, 12)  # in the monthly period of 1 March to 1 April
    admin_client.force_login(admin_user)  # the session of the fixture's login expired

    add = admin_client.get(ADD_URL).content.decode()
    amend = admin_client.get(amend_url(signed)).content.decode()
    end = admin_client.get(end_url(signed)).content.decode()

    # the add page works it out in the browser from the cycle and anchors being typed
    assert (
        '<a href="#" role="button" data-quick-for="id_starts_at" '
        'data-period="billing_cycle anchor_day anchor_month">start of this period</a>'
    ) in add
    # the amend and end pages from the contract's own period
    assert (
        '<a href="#" role="button" data-quick-for="id_effective_from" '
        'data-at="2025-03-01T00:00:00Z">start of this period (2025-03-01)</a>'
    ) in amend
    assert (
        '<a href="#" role="button" data-quick-for="id_ends_at" '
        'data-at="2025-04-01T00:00:00Z">end of this period (2025-04-01 00:00)</a>'
    ) in end
    for page in (add, amend, end):
        assert "contracts/quick_dates.js" in page and "DateTimeShortcuts.js" in page
