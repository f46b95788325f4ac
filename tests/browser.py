"""Browser fixtures and helpers shared by the browser tests (registered as a plugin in conftest).

Always Debian's chromium, headless: browser downloads are impossible here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD = "correct-horse-battery"

# Applied by each browser test module: `pytestmark = [*BROWSER_MARKS, ...]`.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} to drive"),
]


@pytest.fixture(scope="module")
def browser():
    # Browser downloads are impossible here, so always Debian's chromium; launched once per module.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


# Every page reports what its Content-Security-Policy blocked (triage/csp.py); bound into each page
# before any of its own scripts run, and kept across navigations.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}`
                              + (e.sample ? `: ${e.sample}` : ""));
});
"""


@pytest.fixture
def page(browser, live_server) -> Page:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    # Fail in seconds, not Playwright's default 30 s, when an element never shows up.
    context.set_default_timeout(5_000)
    violations: list[str] = []
    context.expose_function("__reportCspViolation", lambda report: violations.append(report))
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.csp_violations = violations
    yield page
    context.close()
    assert not violations, f"the Content-Security-Policy blocked: {violations}"


def sign_in(page: Page, user, *, then: str = "/tickets/") -> None:
    """Sign in through the real login form, landing on `then`."""
    page.goto(f"/login/?next={then}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def mark_document(page: Page) -> None:
    """Tag the loaded document; the tag survives an htmx swap but not a page load."""
    page.evaluate("window.__sameDocument = true")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded instead of swapping a fragment"


def save_screenshot(page: Page, name: str) -> None:
    """Refresh docs/screenshots/<name>.png, only when asked (`make screenshots`), so a test
    run never rewrites tracked files."""
    if os.environ.get("TRIAGE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret makes Playwright add an inline style, which our CSP rightly blocks.
    page.screenshot(path=SCREENSHOTS / f"{name}.png", caret="initial")
