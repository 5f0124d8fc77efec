"""The portal's world: two customers on the Standard card (gpt-4o), each with a portal user,
usage, credits, alerts and a closed November invoice; a staff member with no portal user.

The clock stands at 2026-11-15 12:00 UTC (tests/billing/conftest.py's NOW) unless a test
moves it.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.invoicing.closing import periods_close_due
from billing.models import Invoice
from contracts.services import contract_create, customer_create
from portal.models import PortalUser
from tests.billing.conftest import NOVEMBER, NOW, event, ingest, standard_card
from tests.billing.conftest import rate as rate_pending
from tests.billing.invoice_support import Clock, clock_set
from wallets.alerts import alert_settings_update
from wallets.models import CreditGrant
from wallets.services import credit_grant

PASSWORD = "a-long-portal-password-7"
MILLION_OUT = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's rates
#: 1,234 x 2.50/1M + 567 x 10.00/1M = 0.008755
SMALL = {"input_tokens": 1234, "output_tokens": 567}
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return clock_set(monkeypatch, NOW)


@pytest.fixture
def rate_card(db, clock):
    return standard_card()


@pytest.fixture
def globex(db):
    return customer_create(
        external_id="globex", name="Globex Inc", currency="USD", email="billing@globex.example"
    )


@pytest.fixture
def contracts(acme, globex, rate_card):
    """acme: a fee of 30.00 a month, an allowance of 5.00, 10 % off; globex: list prices."""
    contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        fixed_fee=D("30"),
        included_allowance=D("5"),
        discount_percent=D("10"),
    )
    contract_create(customer=globex, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)


def portal_user(customer, email: str, role: str = PortalUser.Role.VIEWER) -> PortalUser:
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    return PortalUser.objects.create(
        user=user, customer=customer, role=role, invited_at=timezone.now()
    )


@pytest.fixture
def acme_admin(acme, clock) -> PortalUser:
    return portal_user(acme, "ada@acme.example", PortalUser.Role.ADMIN)


@pytest.fixture
def acme_viewer(acme, clock) -> PortalUser:
    return portal_user(acme, "vic@acme.example", PortalUser.Role.VIEWER)


@pytest.fixture
def globex_admin(globex, clock) -> PortalUser:
    return portal_user(globex, "gil@globex.example", PortalUser.Role.ADMIN)


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        username="ops", email="ops@tokentill.example", password=PASSWORD, is_staff=True
    )


@pytest.fixture
def usage(contracts, acme, globex, clock):
    """November so far (the clock at Nov 15 12:00): acme has 50.00 of credits and made three
    calls of 10.00 and one of 0.008755, on "chat" and "search"; globex has 777.00 of
    credits, a budget of 1.00 (its alerts fired) and one call on a model it keeps to itself."""
    credit_grant(customer=acme, amount="50", source=CreditGrant.Source.PURCHASED)
    credit_grant(customer=globex, amount="777", source=CreditGrant.Source.PROMOTIONAL)
    alert_settings_update(customer=globex, budget=D("1"), emails="alerts@globex.example")
    ingest(
        event("a1", datetime(2026, 11, 3, 9, tzinfo=UTC), metrics=MILLION_OUT, feature="chat"),
        event("a2", datetime(2026, 11, 3, 10, tzinfo=UTC), metrics=MILLION_OUT, feature="chat"),
        event("a3", datetime(2026, 11, 14, 8, tzinfo=UTC), metrics=MILLION_OUT, feature="search"),
        event("a4", datetime(2026, 11, 15, 11, tzinfo=UTC), metrics=SMALL, feature="search"),
        event(
            "g1",
            datetime(2026, 11, 10, tzinfo=UTC),
            metrics=MILLION_OUT,
            feature="globex-secret-feature",
            customer="globex",
        ),
    )
    rate_pending()


@pytest.fixture
def invoices(usage, clock) -> dict[str, Invoice]:
    """November closed on December 2 for both: acme's and globex's invoices, by customer."""
    clock.now = DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 2
    return {invoice.customer.external_id: invoice for invoice in Invoice.objects.all()}


def logged_in(client, portal_user_or_user):
    user = getattr(portal_user_or_user, "user", portal_user_or_user)
    client.force_login(user)
    return client


class _Tables(HTMLParser):
    """The text of each cell of each table row, by table id."""

    def __init__(self):
        super().__init__()
        self.tables, self._table, self._row, self._cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(response, table_id: str) -> list[list[str]]:
    """The rows (header, body and footer) of the table with this id in the page."""
    parser = _Tables()
    parser.feed(response.content.decode())
    return parser.tables[table_id]


def text_of(response, element_id: str) -> str:
    """The text inside the element with this id (no nested elements of the same tag)."""
    html = response.content.decode()
    start = html.index(f'id="{element_id}"')
    start = html.index(">", start) + 1
    end = html.index("<", start)
    return html[start:end].strip()
