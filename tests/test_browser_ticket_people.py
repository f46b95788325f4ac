"""A ticket's People in a real browser (headless chromium, live server): a tech with a reply half
typed sets the requester and copies a new contact, the draft is still there, sends the reply, and
the desk's mail for it is To the requester with the new contact copied."""

from __future__ import annotations

from playwright.sync_api import expect

from mailgate import tasks
from mailgate.models import OutboundMessage
from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in
from triage.contacts import services as contacts
from triage.models import Contact, EventKind

pytestmark = BROWSER_MARKS

REPLY = "Hello Kim, the queue on mx1 is draining now."


def test_a_tech_sets_the_people_while_a_reply_waits_and_the_reply_goes_to_them(page, tech, ticket):
    kim = contacts.contact_create(customer=ticket.customer, email="kim@northwind.test", name="Kim Noc")
    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    expect(page.locator("#reply-recipients")).to_have_text("Mailed to ops@northwind.test.")
    mark_document(page)
    page.locator("#id_body").press_sequentially(REPLY)
    expect(page.locator("#reply-draft-state")).to_contain_text("Draft saved")

    page.select_option("#id_requester", label="Kim Noc <kim@northwind.test>")
    page.fill("#id_new_cc", "Lee@Partner.test")
    page.fill("#id_new_cc_name", "Lee Partner")
    page.get_by_role("button", name="Save people").click()

    expect(page.locator(".timeline .event-people")).to_contain_text(
        "Requester: none → kim@northwind.test; in copy: nobody → lee@partner.test"
    )
    expect(page.locator(".ticket-side .facts .requester")).to_have_text("Kim Noc <kim@northwind.test>")
    expect(page.locator(".ticket-side .facts .ccs")).to_have_text("Lee Partner <lee@partner.test>")
    expect(page.locator("#reply-recipients")).to_have_text("Mailed to kim@northwind.test, copy to lee@partner.test.")
    expect(page.locator("#id_body")).to_have_value(REPLY)  # the half-typed reply survived
    expect(page.locator(f"#action-people input[type=checkbox][value='{kim.pk}']")).not_to_be_checked()
    save_screenshot(page, "ticket-people")
    lee = Contact.objects.get(email="lee@partner.test")
    assert (lee.customer, lee.name) == (ticket.customer, "Lee Partner")
    assert_same_document(page)

    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".timeline .event-reply")).to_contain_text("the queue on mx1 is draining")
    expect(page.locator("#id_body")).to_have_value("")
    assert_same_document(page)

    reply = ticket.events.get(kind=EventKind.REPLY)
    assert tasks.notify_event(reply.pk) == {"customer": "sent"}  # what the worker does with it
    sent = OutboundMessage.objects.get(event=reply)
    assert (sent.to_address, sent.cc) == ("kim@northwind.test", ["lee@partner.test"])
