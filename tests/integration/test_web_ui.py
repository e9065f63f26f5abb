"""The web UI in headless Chromium (Debian's), driven by Playwright against the real stack.

Every page the tests open records the browser's requests: none may leave the API's
loopback origin. Screenshots of the main pages go to `test-output/screenshots/`
(docs/web-ui.md shows copies).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.harness import FerryStack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("FERRY_TEST_OUTPUT", "test-output")) / "screenshots"


class Browser:
    """Pages that record every request they make."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.requests: list[str] = []

    def page(self, width: int = 1280, height: int = 900) -> Page:
        page = self.browser.new_page(viewport={"width": width, "height": height})
        page.on("request", lambda r: self.requests.append(r.url))
        return page

    def offsite(self, origin: str) -> list[str]:
        return [u for u in self.requests
                if not u.startswith(("blob:", "data:")) and
                f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" != origin]


@pytest.fixture
def browser(stack: FerryStack) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = Browser(p.chromium.launch(executable_path=CHROMIUM, args=ARGS))
        try:
            yield b
        finally:
            b.browser.close()
    assert b.requests, "the browser made no request at all"
    assert b.offsite(stack.api_url) == []


@pytest.fixture
def page(browser: Browser) -> Page:
    return browser.page()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                                          "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout


def make_origin(tmp: Path) -> Path:
    work, bare = tmp / "seed", tmp / "origin.git"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "app.py").write_text("def total(xs):\n    return sum(xs)\n\n\nprint(total([1, 2]))\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "initial")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


SCRIPT = "\n".join([
    "for i in 1 2 3 4 5 6 7 8; do echo tick-$i; sleep 0.5; done",
    'ferry-ask "Rename total to sum_all?" --id rename --options yes,no --default yes',
    "sed -i 's/total/sum_all/g' app.py",
    "echo '# notes' > NOTES.md",
])


def test_a_run_from_the_form_streams_asks_and_is_reviewed(stack: FerryStack, page: Page,
                                                          tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    page.goto(stack.api_url + "/ui/new")
    page.fill("#instructions", SCRIPT)
    page.fill("#title", "ui review run")
    page.fill("#repo", str(origin))
    page.fill("#branch", "main")
    page.locator("#instructions").press("Control+Enter")
    expect(page).to_have_url(re.compile(r"/ui/runs/[a-z0-9-]+$"), timeout=10000)
    run_id = page.url.rsplit("/", 1)[1]
    # The loop's output streams in while it runs, before its exec step exists.
    expect(page.locator("#liveout")).to_contain_text("tick-2", timeout=20000)
    expect(page.locator("#livecmd")).to_contain_text("for i in 1 2 3")
    assert page.locator("#steps .step.k-exec", has_text="tick-").count() == 0
    expect(page.locator("#steps .step.k-exec", has_text="tick-8").first).to_be_visible(timeout=20000)
    # The question: answered inline with its recommended default.
    form = page.locator("#questions form")
    expect(form).to_contain_text("Rename total to sum_all?", timeout=20000)
    expect(page.locator("#status")).to_have_text("waiting for input")
    expect(form.locator("input[value=yes]")).to_be_checked()
    form.locator("button[type=submit]").click()
    expect(page.locator("#status")).to_have_text("completed", timeout=30000)
    expect(page.locator(".step.k-report_result")).to_be_visible()
    shot(page, "run")
    # Review: the side-by-side diff with both files and highlighted code.
    page.click("#tab-review")
    expect(page).to_have_url(re.compile(r"/review$"))
    page.click("#split")
    expect(page.locator("table.diff.split").first).to_be_visible(timeout=10000)
    expect(page.locator(".filelist")).to_contain_text("app.py")
    expect(page.locator(".filelist")).to_contain_text("NOTES.md")
    expect(page.locator("table.diff.split td.ddel", has_text="total").first).to_be_visible()
    expect(page.locator("table.diff.split td.dadd", has_text="sum_all").first).to_be_visible()
    expect(page.locator("table.diff .hl-k", has_text="def").first).to_be_visible()
    shot(page, "diff")
    # Request changes: the comment is the next turn (a script, for this engine).
    page.fill("#comment", "echo 'more' >> NOTES.md")
    page.click("#changes")
    expect(page.locator("#reviewresult")).to_contain_text("Changes requested", timeout=10000)
    # The page shows the new diff by itself once the follow-up turn is done.
    expect(page.locator("#reviewresult")).to_contain_text("ready for review", timeout=60000)
    expect(page.locator("#diff")).to_contain_text("more", timeout=10000)
    expect(page.locator("table.diff.split").first).to_be_visible()
    page.reload()
    expect(page.locator("#diff")).to_contain_text("more", timeout=10000)
    # Accept: committed and pushed to the origin; the page shows the branch.
    expect(page.locator("#accept")).to_be_enabled()
    page.click("#accept")
    expect(page.locator("#pushedbranch")).to_have_text(f"ferry/{run_id}", timeout=30000)
    expect(page.locator("#accepted")).to_contain_text("pushed")
    assert "sum_all" in git(origin, "show", f"ferry/{run_id}:app.py")
    assert git(origin, "show", f"ferry/{run_id}:NOTES.md") == "# notes\nmore\n"


def test_deep_links_reload_and_the_back_button(stack: FerryStack, page: Page) -> None:
    run = stack.create_run("echo deep-link-target", title="deep link run")
    stack.wait_status(run["id"], {"completed"})
    page.goto(f"{stack.api_url}/ui/runs/{run['id']}")
    expect(page.locator("h2.title")).to_have_text("deep link run", timeout=10000)
    expect(page.locator(".step", has_text="deep-link-target").first).to_be_visible(timeout=10000)
    page.reload()
    expect(page.locator("h2.title")).to_have_text("deep link run", timeout=10000)
    page.click("#tab-output")
    expect(page.locator("#logs")).to_contain_text("deep-link-target", timeout=10000)
    page.go_back()
    expect(page).to_have_url(f"{stack.api_url}/ui/runs/{run['id']}")
    expect(page.locator(".step", has_text="deep-link-target").first).to_be_visible(timeout=10000)
    page.click("nav >> text=Runs")
    expect(page.locator(f"a.card[data-id='{run['id']}']")).to_be_visible(timeout=10000)
    page.go_back()
    expect(page.locator("h2.title")).to_have_text("deep link run", timeout=10000)
    # The Temporal UI link names the Run's workflow.
    href = page.locator("#temporal-link").get_attribute("href") or ""
    assert href.endswith(f"/namespaces/default/workflows/run-{run['id']}"), href


def test_the_board_columns_filters_and_phone_width(stack: FerryStack, browser: Browser) -> None:
    done = stack.create_run("echo board-done", title="board done run")
    waiting = stack.create_run('ferry-ask "Board question?" --id q --options a,b --default a',
                               title="board waiting run")
    stack.wait_status(done["id"], {"completed"})
    stack.wait_status(waiting["id"], {"waiting_for_input"})
    page = browser.page()
    page.goto(stack.api_url + "/ui/runs")
    col = page.locator(".col[data-status=waiting_for_input]")
    expect(col.locator(f"a.card.waiting[data-id='{waiting['id']}']")).to_be_visible(timeout=10000)
    expect(page.locator(f".col[data-status=completed] a.card[data-id='{done['id']}']")).to_be_visible()
    count = int(col.locator(".count").inner_text())
    assert count == col.locator("a.card").count() >= 1
    shot(page, "board")
    page.fill("#q", "board waiting")
    expect(page.locator(f"a.card[data-id='{done['id']}']")).to_have_count(0)
    expect(page.locator(f"a.card[data-id='{waiting['id']}']")).to_be_visible()
    assert "q=board+waiting" in page.url
    page.click("text=List")
    expect(page.locator("table.runlist")).to_contain_text("board waiting run", timeout=10000)
    page.select_option("select[name=status]", "completed")
    expect(page.locator("table.runlist")).not_to_contain_text("board waiting run")
    # A phone: nothing scrolls sideways (board, run page, form).
    phone = browser.page(390, 844)
    for path, ready in (("/ui/runs", "a.card"), (f"/ui/runs/{waiting['id']}", ".step"),
                        ("/ui/new", "#instructions"), ("/ui/schedules", "#newsched")):
        phone.goto(stack.api_url + path)
        expect(phone.locator(ready).first).to_be_visible(timeout=10000)
        phone.wait_for_timeout(300)
        no_horizontal_scroll(phone)
    phone.goto(f"{stack.api_url}/ui/runs/{waiting['id']}")
    expect(phone.locator("#questions form")).to_be_visible(timeout=10000)
    no_horizontal_scroll(phone)
    shot(phone, "phone-run")
    phone.locator("#questions button[type=submit]").click()
    stack.wait_status(waiting["id"], {"completed"})


def test_new_run_form_checks_fields_like_the_api(stack: FerryStack, page: Page) -> None:
    page.goto(stack.api_url + "/ui/new")
    page.fill("#instructions", "   ")
    page.click("#start")
    expect(page.locator("#err-instructions")).to_have_text("instructions must not be empty")
    page.fill("#instructions", "echo x")
    page.fill("#branch", "../evil")
    page.click("#start")
    expect(page.locator("#err-branch")).to_contain_text("plain git branch name")
    page.fill("#branch", "")
    page.click("summary:has-text('Budgets')")
    page.fill("input[name=max_turns]", "0")
    page.click("#start")
    expect(page.locator("#err-max_turns")).to_contain_text("from 1 to 10000")
    page.fill("input[name=max_turns]", "")
    # One the form does not check is still shown by its field, from the API's 422.
    page.click("summary:has-text('Advanced')")
    page.fill("textarea[name=env]", "FERRY_X=1")
    page.click("#start")
    expect(page.locator("#err-env")).to_contain_text("FERRY_X is reserved")
    expect(page).to_have_url(f"{stack.api_url}/ui/new")


def test_schedules_page_creates_pauses_and_deletes(stack: FerryStack, page: Page) -> None:
    page.goto(stack.api_url + "/ui/schedules")
    page.click("#newsched")
    page.fill("#s-name", "ui-every-2s")
    page.select_option("#s-kind", "interval")
    page.fill("#s-every", "2s")
    page.fill("#s-instructions", "echo from-a-schedule")
    expect(page.locator("#s-target option")).not_to_have_count(0)  # the hosts, from /targets
    page.click("#s-save")
    expect(page).to_have_url(f"{stack.api_url}/ui/schedules/ui-every-2s", timeout=10000)
    expect(page.locator("#schedstate")).to_have_text("active")
    # Its Runs appear on its page (the page refreshes itself).
    expect(page.locator("#schedruns a.card").first).to_be_visible(timeout=30000)
    page.click("button[data-act=pause]")
    expect(page.locator("#schedstate")).to_have_text("paused", timeout=10000)
    shot(page, "schedule")
    page.goto(stack.api_url + "/ui/schedules")
    row = page.locator("tr[data-id=ui-every-2s]")
    expect(row).to_contain_text("paused", timeout=10000)
    expect(row).to_contain_text("every 2s")
    shot(page, "schedules")
    page.once("dialog", lambda d: d.accept())
    row.locator("button[data-act=delete]").click()
    expect(page.locator("tr[data-id=ui-every-2s]")).to_have_count(0, timeout=10000)
    with stack.client() as c:
        assert c.get("/schedules/ui-every-2s").status_code == 404


def test_cron_preview_and_targets_page(stack: FerryStack, page: Page) -> None:
    page.goto(stack.api_url + "/ui/schedules")
    page.click("#newsched")
    page.select_option("#s-kind", "cron")
    page.fill("#s-cron", "0 9 * * 1")
    expect(page.locator("#cronpreview")).to_contain_text("Next:", timeout=10000)
    page.fill("#s-cron", "not a cron")
    expect(page.locator("#cronpreview")).to_contain_text("cron", timeout=10000)
    page.goto(stack.api_url + "/ui/targets")
    expect(page.locator(".target").first).to_contain_text("healthy", timeout=10000)


def test_api_docs_render_offline(stack: FerryStack, browser: Browser) -> None:
    page = browser.page()
    page.goto(stack.api_url + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20000)
    page.goto(stack.api_url + "/redoc")
    expect(page.locator("text=Start a Run").first).to_be_visible(timeout=20000)


def test_triggers_page_creates_tests_and_deletes(stack: FerryStack, page: Page) -> None:
    page.goto(stack.api_url + "/ui/triggers")
    page.click("summary:has-text('New trigger')")
    page.fill("#t-name", "ui-hook")
    page.fill("#t-secret", "ui-hook-secret")
    page.fill("#t-instructions", "echo from-the-hook")
    expect(page.locator("#t-target option")).not_to_have_count(0)
    page.click("#trigform button[type=submit]")
    card = page.locator("section[data-name=ui-hook]")
    expect(card).to_contain_text("/hooks/ui-hook", timeout=10000)
    # A test delivery, signed in the browser with the secret typed there.
    card.locator("summary:has-text('Test delivery')").click()
    card.locator(".tsecret").fill("ui-hook-secret")
    card.locator("[data-test]").click()
    expect(card.locator(".tresult")).to_contain_text("started", timeout=10000)
    run_id = card.locator(".tresult a").inner_text()
    assert stack.wait_status(run_id, {"completed"})["trigger"] == "ui-hook"
    card.locator(".tsecret").fill("wrong-secret")
    card.locator("[data-test]").click()
    expect(card.locator(".tresult")).to_contain_text("X-Hub-Signature-256", timeout=10000)
    page.once("dialog", lambda d: d.accept())
    card.locator("[data-del]").click()
    expect(page.locator("section[data-name=ui-hook]")).to_have_count(0, timeout=10000)


def test_the_engine_picker_shows_what_the_workers_can_run(stack: FerryStack, page: Page) -> None:
    page.goto(stack.api_url + "/ui/new")
    plan = page.locator("#engine option[value=claude-code-plan]")
    expect(plan).to_contain_text("Claude Code — Plan", timeout=10000)
    # This test stack's worker holds no model credential.
    expect(plan).to_contain_text("unavailable: set CLAUDE_CODE_OAUTH_TOKEN", timeout=10000)
    expect(plan).to_be_disabled()
    expect(page.locator("#engine option[value=script]")).to_be_enabled()
