"""Browser fixtures and helpers shared by the browser tests (registered as a plugin in conftest).

Always Debian's chromium, headless: browser downloads are impossible here.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tests.browser_network import BrowserNetwork, LiveServerThreadInNamespace
from tests.browser_network import browser_network as make_browser_network

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD = "correct-horse-battery"

# Applied by each browser test module: `pytestmark = [*BROWSER_MARKS, ...]`.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} to drive"),
]


@pytest.fixture(scope="session")
def browser_network() -> Iterator[BrowserNetwork | None]:
    """Chromium's network namespace (tests/browser_network.py), or None where it cannot be made (not root)."""
    network = make_browser_network()
    yield network
    if network is not None:
        network.close()


@pytest.fixture(scope="session")
def browser(browser_network):
    # Browser downloads are impossible here, so always Debian's chromium. Launched once per test
    # process: a launch costs about a CPU-second, and every test gets a fresh context of its own.
    # Playwright's driver starts in the browser's namespace, so chromium (its child) runs there, and
    # so do the requests the driver makes itself (route.fetch, context.request).
    with browser_network.entered() if browser_network is not None else contextlib.nullcontext():
        playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def live_server(browser_network) -> Iterator[LiveServer]:
    """pytest-django's live server on localhost, listening where chromium is: in its namespace when
    it has one (this replaces pytest-django's fixture, and with it its --liveserver option)."""
    server = LiveServer("localhost", start=False)
    if browser_network is not None:
        shared = server.thread
        server.thread = LiveServerThreadInNamespace(
            shared.host,
            network=browser_network,
            static_handler=shared.static_handler,
            connections_override=shared.connections_override,
            port=shared.port,
        )
        server.thread.daemon = True
    server.start()
    yield server
    server.stop()


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
    # The URL changes when the page arrives, before its deferred scripts (htmx, the page's own) have
    # run; a tech acts on a page that has finished loading, and so does the test. On a busy machine
    # a filter changed before htmx ran did nothing, and a box ticked before queue.js ran ticked no rows.
    page.wait_for_load_state("load")


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
