"""Fixtures shared by the whole suite."""

import importlib
import os

import pytest
import tiktoken
from django.apps import apps as django_apps
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from billing.terms import price_terms_forget
from common import tasks
from contracts.selectors import customer_ids_forget
from contracts.services import api_key_create, customer_create
from metering.models import TokenizerRule
from tests.db_split import runtime_split_end, runtime_split_start

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, made by the owner; on PostgreSQL the tests then
    connect as the runtime role (tests/db_split.py)."""
    with django_db_blocker.unblock():
        split = runtime_split_start()
    yield
    if split:
        with django_db_blocker.unblock():
            runtime_split_end()


@pytest.fixture(autouse=True)
def _fresh_customer_ids():
    """Rolled-back tests can hand the same primary key to another customer."""
    customer_ids_forget()
    price_terms_forget()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test starts with unused budgets: the counters of rate limits live in the
    cache, and every test calls from 127.0.0.1, with keys whose ids rolled-back tests reuse."""
    cache.clear()


@pytest.fixture(autouse=True)
def _no_deferred_nudges(monkeypatch, settings):
    """A deferred nudge would rate or seal in a thread of its own while the test reads;
    tests where it is the subject put the real one back (tests/common/test_tasks.py,
    tests/metering/test_rating_nudge.py). Every commit that stores events seals them at
    once, in-process: tests read a sealed log unless sealing is their subject."""
    monkeypatch.setattr(tasks.Nudge, "defer", lambda nudge, delay: None)
    monkeypatch.setattr(tasks.sealing_nudge, "last", float("-inf"))
    settings.TOKENTILL_SEAL_NUDGE_SECONDS = 0


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Logins in tests check passwords hashed with a fast hasher; production keeps PBKDF2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_http(settings):
    """Tests talk plain HTTP to the test client; production redirects to HTTPS."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _tokenizer_table(request):
    """Tests with the database see the tokenizer table as its migration seeds it, even
    after a transactional test's flush emptied it."""
    uses = {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    if not uses and not request.node.get_closest_marker("django_db"):
        return
    request.getfixturevalue("transactional_db" if _transactional(request) else "db")
    if not TokenizerRule.objects.exists():
        seed = importlib.import_module("metering.migrations.0013_seed_tokenizer_rules")
        seed.seed(django_apps, None)


def _transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    return bool({"transactional_db", "live_server"} & names) or bool(
        marker and marker.kwargs.get("transaction")
    )


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def operator_key(db) -> str:
    """The plain text of a fresh operator API key."""
    _, key = api_key_create(name="test operator")
    return key


@pytest.fixture
def api(operator_key) -> APIClient:
    """An API client that sends a valid operator key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator_key}")
    return client


@pytest.fixture
def acme(db):
    return customer_create(
        external_id="acme", name="Acme Corp", currency="USD", email="billing@acme.example"
    )


def _encoding_or_skip(name: str):
    try:
        return tiktoken.get_encoding(name)
    except Exception as error:  # no cache folder and no internet: tiktoken raises many kinds
        pytest.skip(
            f"tiktoken's {name} cannot be loaded ({type(error).__name__}); set "
            "TIKTOKEN_CACHE_DIR to a folder holding it (scripts/test uses ../shared/tiktoken)"
        )


@pytest.fixture
def o200k():
    return _encoding_or_skip("o200k_base")


@pytest.fixture
def cl100k():
    return _encoding_or_skip("cl100k_base")


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, answering plain HTTP.

    The test settings are production's (DEBUG off), so Django's SecurityMiddleware would
    redirect every request to HTTPS; it reads SECURE_SSL_REDIRECT once, when the server
    builds its handler, so the setting is off while the server starts.
    """
    from django.test.utils import override_settings
    from pytest_django.live_server_helper import LiveServer

    address = (
        request.config.getvalue("liveserver")
        or os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    with override_settings(SECURE_SSL_REDIRECT=False):
        server = LiveServer(address)
    yield server
    server.stop()
