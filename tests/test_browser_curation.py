"""Curating a symptom in a real browser: edit the signature, try it on stored evidence through
htmx, save, and find the new version in the history."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from diagnostics.knowledge import services as knowledge
from diagnostics.models import Symptom
from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in

pytestmark = BROWSER_MARKS

KERNEL_LOG = (
    "Nov  8 16:45:12 drjmailgw kernel: [3017942.530118] bnx2: eth1 NIC Copper Link is Up, 1000 Mbps full duplex\n"
    "Nov  8 16:49:42 drjmailgw kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)\n"
    "Nov  8 16:49:45 drjmailgw kernel: [3018175.401877] bnx2: eth0 NIC Copper Link is Down\n"
)
DRAFT = """\
all:
- probe: kernel_log
  regex: No irq handler for vector
  weight: 2
  describe: the kernel reports an interrupt with no handler
- probe: kernel_log
  regex: 'bnx2: \\S+ NIC .*Link is Down'
  describe: the bnx2 NIC link went down
"""


def test_an_admin_tries_a_signature_on_stored_runs_and_saves_a_new_version(page, admin_user, make_run):
    knowledge.symptom_save(
        data={
            "key": "irq-no-handler",
            "title": "Interrupts with no handler",
            "signature": {"probe": "kernel_log", "regex": "No irq handler for vector"},
        },
        by=admin_user,
    )
    run = make_run({"load": "up 3 days\n", "kernel_log": KERNEL_LOG})
    sign_in(page, admin_user, then="/kb/")
    page.get_by_role("navigation").get_by_role("link", name="Knowledge base").click()
    page.get_by_role("link", name="irq-no-handler", exact=True).click()
    expect(page).to_have_url(re.compile(r"/kb/symptoms/irq-no-handler/edit/$"))

    mark_document(page)
    page.fill("#id_signature", DRAFT)
    page.fill("#id_note", "also require the link to drop")
    page.get_by_role("button", name="Try it").click()
    preview = page.locator(f"#preview-run-{run.pk}")
    expect(preview).to_contain_text("would match")
    expect(preview.locator("code.cited-line").first).to_have_text(
        "Nov  8 16:49:42 drjmailgw kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)"
    )
    expect(preview).to_contain_text("bnx2: eth0 NIC Copper Link is Down")
    assert_same_document(page)  # the preview swapped in; the draft was not submitted
    assert Symptom.objects.get(key="irq-no-handler").version == 1
    save_screenshot(page, "kb-try-it")

    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/kb/symptoms/irq-no-handler/history/$"))
    expect(page.locator(".messages")).to_contain_text("updated: version 2")
    expect(page.locator("#versions tbody tr").first).to_contain_text("v2")
    expect(page.locator("#versions tbody tr").first).to_contain_text("also require the link to drop")
    expect(page.locator("#v2 pre.diff")).to_contain_text("+  - probe: kernel_log")
    assert Symptom.objects.get(key="irq-no-handler").version == 2
