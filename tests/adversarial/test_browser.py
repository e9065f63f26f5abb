"""What a DevBox produced reaches browsers as inert data; the token-protected UI still works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.harness import FerryStack
from tests.integration.test_web_ui import ARGS, CHROMIUM

PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
TOKEN = "ui-token-0123456789"


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_devbox_text_is_shown_as_text(astack: FerryStack, page) -> None:  # noqa: F811
    script = "\n".join([
        f"echo '{PAYLOAD}'",
        # A forged event line (root turns can write the runner's file) with markup in it.
        f"echo '{PAYLOAD}' >> /ferry/out/turns/t1/events.jsonl",
        f"printf '%s' '{PAYLOAD}' > /dev/null",
    ])
    run = astack.create_run(script, run_as_root=True, title=PAYLOAD)
    astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    page.goto(astack.api_url + "/ui/runs")
    page.locator("a.card", has_text="onerror").first.click()
    steps = page.locator("#steps .step")
    expect(steps.filter(has_text="forged event line").first).to_be_visible(timeout=15000)
    expect(page.locator("h2.title")).to_have_text(PAYLOAD)
    page.click("#tab-review")
    expect(page.locator("#artifacts")).to_be_visible(timeout=10000)
    page.click("#tab-timeline")
    expect(steps.first).to_be_visible(timeout=10000)
    assert page.locator("#view img, #view script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert steps.filter(has_text=PAYLOAD).count() >= 2  # the output and the forged line, as text


def test_artifacts_are_attachments_never_pages(astack: FerryStack, page) -> None:  # noqa: F811
    html = "<html><body><script>document.title='ran'</script>hello</body></html>"
    run = astack.create_run(f"mkdir -p .ferry/artifacts && echo \"{html}\" > .ferry/artifacts/page.html\n"
                            "echo '<svg onload=alert(1)>' > .ferry/artifacts/pic.svg")
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    base = f"{astack.api_url}/runs/{run['id']}/artifacts/attempts/1/artifacts"
    with astack.client() as c:
        for name in ("page.html", "pic.svg"):
            r = c.get(f"{base}/{name}")
            assert r.status_code == 200
            assert r.headers["content-disposition"].startswith("attachment")
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in r.headers["content-security-policy"]
            assert not r.headers["content-type"].startswith(("text/html", "image/svg"))
        ui = c.get("/ui/runs")
        assert "script-src 'self'" in ui.headers["content-security-policy"]
    page.goto(astack.api_url + "/")
    with page.expect_download() as download:  # a download, not a page on the API's origin
        page.evaluate(f"window.location.href = {base + '/page.html'!r}")
    assert download.value.suggested_filename == "page.html"
    assert page.title() == "Ferry"


@pytest.fixture(scope="module")
def tstack(tmp_path_factory, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("token-ui"), env={"FERRY_API_TOKEN": TOKEN})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_with_a_token_the_ui_loads_and_asks_for_it(tstack: FerryStack, page) -> None:  # noqa: F811
    run = tstack.create_run("echo behind-the-token", title="token run")
    tstack.wait_status(run["id"], {"completed"}, timeout=60)
    page.goto(tstack.api_url + "/")
    dialog = page.locator("#login")
    expect(dialog).to_be_visible(timeout=10000)
    page.fill("#logintoken", "wrong-token")
    page.click("#loginbtn")
    expect(page.locator("#loginerr")).to_contain_text("not accepted", timeout=10000)
    page.fill("#logintoken", TOKEN)
    page.click("#loginbtn")
    expect(dialog).to_be_hidden(timeout=10000)
    page.locator("a.card", has_text="token run").first.click()
    expect(page.locator("#steps .step", has_text="behind-the-token").first).to_be_visible(
        timeout=15000)
    # The logs tab works too: fetched with the token, shown as plain text.
    page.click("#tab-output")
    expect(page.locator("#logs")).to_contain_text("behind-the-token", timeout=10000)
    # The token stays in this browser: a reload (of a deep link) needs no second prompt.
    page.reload()
    expect(page.locator("#logs")).to_contain_text("behind-the-token", timeout=10000)
    page.goto(tstack.api_url + "/ui/runs")
    expect(page.locator("a.card", has_text="token run").first).to_be_visible(timeout=10000)
    expect(dialog).to_be_hidden()
    # Forgetting the token asks again.
    page.click("#tokenbtn")
    page.click("#logout")
    page.reload()
    expect(dialog).to_be_visible(timeout=10000)
