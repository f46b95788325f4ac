"""Attaching a file to a note in a real browser (headless chromium, live server): htmx posts it as
multipart, the note appears in the timeline with the file's name and size without a page load, and
the link downloads the file (a download, not a page)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in

pytestmark = BROWSER_MARKS

LOG = b"Dec  3 11:02:01 mx1 postfix/qmgr[812]: 4012 messages in the active queue\n" * 40


def test_a_tech_attaches_a_file_to_a_note_sees_it_on_the_timeline_and_downloads_it(page, tech, ticket, tmp_path):
    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    mark_document(page)
    page.fill("#id_note-body", "Queue on mx1, log attached.")
    page.set_input_files(
        "#id_note-attachments",
        files=[
            {"name": "maillog.txt", "mimeType": "text/plain", "buffer": LOG},
        ],
    )
    page.get_by_role("button", name="Add note").click()

    files = page.locator(".timeline .event-note .event-attachments")
    expect(files).to_contain_text("maillog.txt")
    expect(files).to_contain_text("2.9\xa0KB")
    expect(page.locator("#id_note-body")).to_have_value("")
    assert_same_document(page)
    save_screenshot(page, "ticket-note-attachment")

    with page.expect_download() as download:
        files.get_by_role("link", name="maillog.txt").click()
    saved = tmp_path / "downloaded"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "maillog.txt"
    assert saved.read_bytes() == LOG
