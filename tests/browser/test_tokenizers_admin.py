"""Ops extend the tokenizer table in the admin: a Llama rule with its tokenizer.json
uploaded, and a file that is not one refused on the form; then the table's pages, at
desktop (1280 x 800) and phone (390 x 844) widths, saved to test-artifacts/."""

import os

import pytest

from metering.models import TokenizerRule
from tests.metering.test_tokenizers import tiny_tokenizer_json

from .conftest import admin_log_in, staff_with
from .test_price_corrections import pages_read

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

PERMISSIONS = ("add_tokenizerrule", "change_tokenizerrule", "view_tokenizerrule")


@pytest.fixture
def ops(django_user_model):
    return staff_with(django_user_model, PERMISSIONS)


def rule_form(page, base: str, pattern: str, file: dict) -> None:
    page.goto(f"{base}/admin/metering/tokenizerrule/add/")
    page.get_by_label("Pattern:").fill(pattern)
    page.get_by_label("Kind:").select_option("uploaded")
    page.get_by_label("Name:").fill("llama-3")
    page.get_by_label("Chat format:").select_option("none")
    page.get_by_label("File:").set_input_files(file)
    page.get_by_role("button", name="Save", exact=True).click()


def test_ops_upload_a_tokenizer_json_and_a_bad_file_is_refused(live_server, page, ops, artifacts):
    base = live_server.url
    admin_log_in(page, base)
    before = TokenizerRule.objects.count()

    # a file that is not a tokenizer.json: refused on its field, nothing stored
    bad = {"name": "tokenizer.json", "mimeType": "application/json", "buffer": b"[1, 2]"}
    rule_form(page, base, "llama-3*", bad)
    expect(page.locator(".field-file .errorlist")).to_contain_text(
        'not a Hugging Face tokenizer.json: it has no "model"'
    )
    page.screenshot(path=artifacts / "tokenizers_refused_desktop.png", full_page=True)
    assert TokenizerRule.objects.count() == before

    # the model's tokenizer.json: stored with its SHA-256
    good = {
        "name": "tokenizer.json",
        "mimeType": "application/json",
        "buffer": tiny_tokenizer_json(),
    }
    rule_form(page, base, "llama-3*", good)
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    rule = TokenizerRule.objects.get(pattern="llama-3*")
    assert (rule.kind, rule.name, rule.estimated, len(rule.sha256)) == (
        "uploaded", "llama-3", False, 64,
    )  # fmt: skip


def test_the_tokenizer_pages_read_at_desktop_and_phone_widths(
    live_server, browser, settings, ops, artifacts
):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    rule = TokenizerRule.objects.get(pattern="mistral-*")
    base = live_server.url
    pages = {
        "list": "/admin/metering/tokenizerrule/",
        "add": "/admin/metering/tokenizerrule/add/",
        "rule": f"/admin/metering/tokenizerrule/{rule.pk}/change/",
    }
    assert pages_read(browser, base, pages, "tokenizers", artifacts) == []
