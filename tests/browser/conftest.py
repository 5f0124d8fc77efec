"""A real browser for the admin: Playwright's sync API driving Debian's chromium, headless.

Playwright is installed without its own browsers (scripts/test never runs `playwright
install`): it drives the chromium that Debian packages at /usr/bin/chromium, which
scripts/test installs when it is missing. Under scripts/test (TOKENTILL_REQUIRE_BROWSER=1)
a missing browser fails these tests with the reason; elsewhere they are skipped with it.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("TOKENTILL_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def _unavailable(reason: str):
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (TOKENTILL_REQUIRE_BROWSER=1: scripts/test needs the browser)")
    pytest.skip(reason)


@pytest.fixture
def browser(monkeypatch):
    """A headless chromium for one test.

    Playwright's sync API runs an event loop in this thread, and Django refuses database
    calls from a thread with a running loop unless DJANGO_ALLOW_ASYNC_UNSAFE is set; the
    test's own queries (creating the user, reading what was stored) need it. While that
    loop runs, Django keeps this thread's database connections apart from its usual ones
    (asgiref's Local), so they are closed here, before the loop stops, or they would
    outlive the test and keep PostgreSQL from dropping the test database.
    """
    from django.db import connections

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


@pytest.fixture
def page(browser, settings):
    """A fresh page, 1280 px wide, speaking plain HTTP to the live server.

    The test settings (DEBUG off) mark cookies Secure, which a browser does not send
    over http://localhost; the live server is plain HTTP, so they are not Secure here.
    """
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    # Let a preview still on its way finish, so no request of this test's outlives it.
    page.wait_for_load_state("networkidle")
    context.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (git ignores it)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


#: The password of the staff user the admin's browser tests sign in as ("ops").
OPS_PASSWORD = "run-billing-1"


def staff_with(django_user_model, permissions):
    """A staff user "ops" holding exactly these permissions (codenames)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("ops", password=OPS_PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    return user


def admin_log_in(page, url: str, username: str = "ops", password: str = OPS_PASSWORD) -> None:
    """Sign in to the admin at `url` and land on its index."""
    from playwright.sync_api import expect

    page.goto(f"{url}/admin/")
    page.get_by_label("Username:", exact=True).fill(username)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
