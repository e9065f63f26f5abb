"""The web UI in headless Chromium (Debian's), driven by Playwright against the real API."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.integration.harness import FerryStack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_start_a_run_and_watch_it_live(stack: FerryStack, page) -> None:
    page.goto(stack.api_url + "/")
    page.fill("#instructions", "echo from-the-ui\nsleep 1\necho second")
    page.fill("#title", "ui run")
    page.click("button[type=submit]")
    steps = page.locator("#steps .step")
    expect(steps.filter(has_text="from-the-ui").first).to_be_visible(timeout=15000)
    expect(page.locator("#status")).to_have_text("completed", timeout=20000)
    expect(steps.filter(has_text="Ran 3 commands; all succeeded.")).to_have_count(1)
    expect(steps).to_have_count(6)
    expect(page.locator("#runs .run", has_text="ui run").first).to_be_visible(timeout=5000)


def test_validation_errors_are_shown(stack: FerryStack, page) -> None:
    page.goto(stack.api_url + "/")
    page.fill("#instructions", "   ")
    page.click("button[type=submit]")
    expect(page.locator("#formerr")).to_contain_text("instructions must not be empty")
