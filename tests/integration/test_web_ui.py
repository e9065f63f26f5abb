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
    page.click("#new button[type=submit]")
    steps = page.locator("#steps .step")
    expect(steps.filter(has_text="from-the-ui").first).to_be_visible(timeout=15000)
    expect(page.locator("#status")).to_have_text("completed", timeout=20000)
    expect(steps.filter(has_text="Ran 3 commands; all succeeded.")).to_have_count(1)
    expect(steps).to_have_count(6)
    expect(page.locator("#runs .run", has_text="ui run").first).to_be_visible(timeout=5000)


def test_validation_errors_are_shown(stack: FerryStack, page) -> None:
    page.goto(stack.api_url + "/")
    page.fill("#instructions", "   ")
    page.click("#new button[type=submit]")
    expect(page.locator("#formerr")).to_contain_text("instructions must not be empty")


def test_answer_questions_and_follow_up_in_the_ui(stack: FerryStack, page) -> None:
    page.goto(stack.api_url + "/")
    page.fill("#instructions", 'ferry-ask "Which colour?" --id color --options red,blue '
                               '--default red --other\ncat "$FERRY_ANSWERS"')
    page.click("#new button[type=submit]")
    expect(page.locator("#status")).to_have_text("waiting for input", timeout=15000)
    form = page.locator("#questions form")
    expect(form).to_contain_text("Which colour?")
    expect(form.locator("input[value=red]")).to_be_checked()
    form.locator("input[value=__other__]").check()
    form.locator("input[name=q-color-other]").fill("green")
    form.locator("button[type=submit]").click()
    expect(page.locator("#steps .step", has_text='"other": "green"').first).to_be_visible(
        timeout=15000)
    expect(page.locator("#status")).to_have_text("completed", timeout=15000)
    # The DevBox is kept (default keep-alive): a follow-up runs in it, in the same Run.
    page.fill("#saytext", "echo follow-up-ran")
    page.click("#say button[type=submit]")
    expect(page.locator("#steps .step", has_text="follow-up-ran").first).to_be_visible(
        timeout=15000)
    expect(page.locator("#status")).to_have_text("completed", timeout=15000)
    # Once the DevBox is released, a message is refused with the way forward.
    with stack.client() as c:
        run_id = c.get("/runs", params={"limit": 1}).json()["runs"][0]["id"]
        assert c.delete(f"/runs/{run_id}/devbox").status_code == 202
    page.fill("#saytext", "echo late")
    page.click("#say button[type=submit]")
    expect(page.locator("#sayerr")).to_contain_text("from_run", timeout=10000)
