"""Suggested fixes on the ticket page and cited lines on the run page, from real matcher output."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import Evidence, FixRecipe
from tests.conftest import login
from tests.diagnosing import diagnosed
from tests.test_knowledge_ranking import FD_AT_LIMIT, IDENT_SOCKETS, hung_upstream_sockets
from triage import services

# Verbatim shape of the seed story's syslog (drjmailgw), with noise around the two lines that matter.
KERNEL_LOG = """\
Nov  8 16:40:01 drjmailgw kernel: [3017631.102934] EXT3-fs: mounted filesystem with ordered data mode.
Nov  8 16:45:12 drjmailgw kernel: [3017942.530118] bnx2: eth1 NIC Copper Link is Up, 1000 Mbps full duplex
Nov  8 16:49:42 drjmailgw kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)
Nov  8 16:49:45 drjmailgw kernel: [3018175.401877] bnx2: eth0 NIC Copper Link is Down
Nov  8 16:49:48 drjmailgw kernel: [3018178.611020] bnx2: eth0 NIC Copper Link is Up, 1000 Mbps full duplex
"""
IRQ_LINE = "Nov  8 16:49:42 drjmailgw kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)"
LINK_DOWN = "Nov  8 16:49:45 drjmailgw kernel: [3018175.401877] bnx2: eth0 NIC Copper Link is Down"
STRACE = """\
4411  10:02:11.402980 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 5 <0.000012>
4411  10:02:11.403120 connect(5, {sa_family=AF_INET, sin_port=htons(113), sin_addr=inet_addr("198.51.100.7")}, 16) = -1 ETIMEDOUT (Connection timed out) <26.013502>
4411  10:02:37.417001 close(5)                = 0 <0.000010>
"""  # noqa: E501 - verbatim strace lines
HEALTHY = {
    "load": " 10:02:11 up 41 days,  3:12,  1 user,  load average: 0.08, 0.03, 0.01\n",
    "kernel_log": "Nov  8 16:40:01 mx1 kernel: [    2.102934] EXT4-fs (sda1): mounted filesystem with ordered data\n"
    "Nov  8 16:45:12 mx1 kernel: [    9.530118] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex\n",
    "mounts": "/dev/sda1 on / type ext4 (rw,relatime)\ntmpfs on /tmp type tmpfs (rw,nosuid,nodev)\n",
}
SCRIPT = "<script>alert(1)</script>"
NO_MATCH = "No known symptom matches the evidence collected so far."
NO_EVIDENCE = "Nothing to suggest yet: no evidence has been collected."


@pytest.fixture
def make_run(make_run):
    """The shared recorded run, matched as a finished collection would be."""

    def make(outputs: dict[str, str], *, on=None):
        run = make_run(outputs, on=on)
        diagnosed(run)
        return run

    return make


def _page(client, user, url) -> str:
    login(client, user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _fixes_panel(page: str) -> str:
    start = page.index('id="fixes"')
    return page[start : page.index("</section>", start)]


def test_the_ticket_lists_the_bnx2_fix_first_with_its_cited_lines(client, tech, ticket, kb, make_run):
    run = make_run({"load": "up 3 days\n", "strace": STRACE, "kernel_log": KERNEL_LOG})
    panel = _fixes_panel(_page(client, tech, reverse("ticket", args=[ticket.pk])))

    titles = [unescape(t) for t in re.findall(r"<h3>(.*?)</h3>", panel)]
    bnx2 = FixRecipe.objects.get(key="bnx2-disable-msi").title
    # The ticket complains about mail: the ident fix explains it and goes first; the NIC fix follows.
    assert titles[0] in {r.title for r in FixRecipe.objects.filter(key__endswith="-disable-ident")}
    assert bnx2 in titles[1:]
    first = panel.split('<li class="fix">')[1 + titles.index(bnx2)]
    assert unescape(IRQ_LINE) in unescape(first) and LINK_DOWN in unescape(first)
    assert "Strong" in first and "Needs: a reboot" in first and "Medium risk" in first
    assert '<pre class="snippet">options bnx2 disable_msi=1</pre>' in first
    assert '<a href="https://www.kernel.org/doc/html/latest/PCI/msi-howto.html"' in first
    assert f'href="/runs/{run.pk}/#ev-2-L3"' in first and f'href="/runs/{run.pk}/#ev-2-L4"' in first


def test_every_link_from_a_fix_lands_on_a_highlighted_line_of_the_run(client, tech, ticket, kb, make_run):
    make_run({"load": "up 3 days\n", "strace": STRACE, "kernel_log": KERNEL_LOG})
    panel = _fixes_panel(_page(client, tech, reverse("ticket", args=[ticket.pk])))
    links = set(re.findall(r'href="(/runs/\d+/)#(ev-\d+-L\d+)"', panel))
    assert len(links) >= 3  # two kernel lines and the strace connect()

    for path, anchor in links:
        page = client.get(path).content.decode()
        element = re.search(rf'<span class="([^"]*)" id="{anchor}">(.*?)</span>', page)
        assert element, f"{path}#{anchor} does not exist"
        assert "cited" in element.group(1).split()
    run_page = client.get(sorted(links)[0][0]).content.decode()
    assert re.search(r'<li class="step step-done" id="ev-2">\s*<details open>', run_page)
    assert re.search(r'<li class="step step-done" id="ev-0">\s*<details>', run_page), "an uncited step stays shut"
    assert 'id="ev-2-L1"' in run_page and 'class="ln" id="ev-2-L1"' in run_page
    box = run_page[run_page.index("Matched symptoms") : run_page.index("</div>", run_page.index("Matched symptoms"))]
    assert "bnx2 NIC link flaps" in box and 'href="#ev-2-L3"' in box


def test_a_healthy_ticket_gets_only_the_no_match_sentence(client, tech, ticket, kb, make_run):
    make_run(HEALTHY)
    panel = _fixes_panel(_page(client, tech, reverse("ticket", args=[ticket.pk])))
    assert NO_MATCH in panel
    assert "<h3>" not in panel and "/runs/" not in panel and "snippet" not in panel


def test_a_ticket_without_collections_says_no_evidence_was_collected(client, manager, ticket, kb):
    page = _page(client, manager, reverse("ticket", args=[ticket.pk]))
    assert NO_EVIDENCE in page and NO_MATCH not in page


def test_output_is_escaped_on_the_ticket_and_the_run(client, tech, ticket, kb, make_run):
    hostile = KERNEL_LOG + f"Nov  8 16:49:51 drjmailgw kernel: bnx2: eth0 {SCRIPT} NIC Copper Link is Down\n"
    run = make_run({"kernel_log": hostile})
    ticket_page = _page(client, tech, reverse("ticket", args=[ticket.pk]))
    run_page = client.get(reverse("run", args=[run.pk])).content.decode()
    for page in (ticket_page, run_page):
        assert SCRIPT not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f'href="/runs/{run.pk}/#ev-0-L6"' in ticket_page
    assert 'class="ln cited" id="ev-0-L6"' in run_page


def test_only_web_links_become_links(client, tech, ticket, kb, make_run):
    FixRecipe.objects.filter(key="bnx2-disable-msi").update(
        references=["javascript:alert(1)", "RHEL knowledge base article 12345", "http://example.net/bnx2"]
    )
    make_run({"kernel_log": KERNEL_LOG})
    panel = _fixes_panel(_page(client, tech, reverse("ticket", args=[ticket.pk])))
    assert 'href="javascript' not in panel and "<span>javascript:alert(1)</span>" in panel
    assert "<span>RHEL knowledge base article 12345</span>" in panel
    assert '<a href="http://example.net/bnx2"' in panel


def test_a_manager_reads_the_fixes_too(client, manager, ticket, kb, make_run):
    make_run({"kernel_log": KERNEL_LOG})
    page = _page(client, manager, reverse("ticket", args=[ticket.pk]))
    assert FixRecipe.objects.get(key="bnx2-disable-msi").title in unescape(_fixes_panel(page))
    assert "Send reply" not in page


@pytest.mark.parametrize("role,sees", [("tech", False), ("manager", False), ("admin_user", True)])
def test_only_admins_see_near_misses(request, client, kb, make_run, role, sees):
    run = make_run({"kernel_log": IRQ_LINE + "\n"})  # the IRQ message alone: conditions only partly hold
    run_page = _page(client, request.getfixturevalue(role), reverse("run", args=[run.pk]))
    assert ("Near misses (admins)" in run_page) is sees
    assert ("bnx2 NIC link flaps" in unescape(run_page)) is sees
    ticket_page = client.get(reverse("ticket", args=[run.ticket_id])).content.decode()
    assert NO_MATCH in ticket_page and "Near misses" not in ticket_page


def test_a_line_cited_past_the_preview_still_has_its_anchor(client, tech, ticket, kb, make_run):
    filler = "".join(
        f"Nov  8 16:{i // 60 % 60:02d}:{i % 60:02d} drjmailgw postfix/smtpd[{i}]: connect from x\n"
        for i in range(Evidence.PREVIEW_BYTES // 60 + 100)
    )
    run = make_run({"kernel_log": filler + IRQ_LINE + "\n" + LINK_DOWN + "\n"})
    last = len(filler.splitlines()) + 2
    run_page = _page(client, tech, reverse("run", args=[run.pk]))
    assert "Showing the first 256 KiB" in run_page
    assert re.search(rf'<span class="ln cited" id="ev-0-L{last}">.*?</span>', run_page)
    assert f'href="/runs/{run.pk}/#ev-0-L{last}"' in client.get(reverse("ticket", args=[ticket.pk])).content.decode()


def test_a_finding_cleared_by_a_later_run_of_the_same_probes_is_no_longer_suggested(client, tech, ticket, kb, make_run):
    make_run({"kernel_log": KERNEL_LOG})
    make_run(HEALTHY)  # the same server, its kernel log collected again after the fix
    assert NO_MATCH in _page(client, tech, reverse("ticket", args=[ticket.pk]))
    other = services.ticket_create(
        subject="Link flaps",
        description="eth0 drops",
        customer=ticket.customer,
        priority=2,
        servers=[],
        tag_names=[],
        created_by=tech,
        now=timezone.now(),
    )
    assert NO_EVIDENCE in client.get(reverse("ticket", args=[other.pk])).content.decode()


def test_each_fix_says_whether_it_fits_the_host(client, tech, ticket, kb, make_run):
    make_run({"sockets": IDENT_SOCKETS, "strace": STRACE})
    panel = unescape(_fixes_panel(_page(client, tech, reverse("ticket", args=[ticket.pk]))))
    cards = {re.search(r"<h3>(.*?)</h3>", card).group(1): card for card in panel.split('<li class="fix">')[1:]}
    titles = list(cards)
    assert titles[0] == FixRecipe.objects.get(key="tcpserver-disable-ident").title
    assert "Fits this host: tcpserver owns" in cards[titles[0]]
    exim = FixRecipe.objects.get(key="exim-disable-ident").title
    assert exim not in cards, "the other MTAs' fixes are alternatives on the same card, not cards of their own"
    assert re.search(rf"Alternatives:.*{re.escape(exim)}.*not on this host", cards[titles[0]], re.S)


def test_a_consequence_says_what_it_follows_from(client, tech, ticket, kb, make_run):
    make_run({"sockets": hung_upstream_sockets("10.9.0.77", 25), "fd_usage": FD_AT_LIMIT})
    panel = unescape(_fixes_panel(_page(client, tech, reverse("ticket", args=[ticket.pk]))))
    cards = {re.search(r"<h3>(.*?)</h3>", card).group(1): card for card in panel.split('<li class="fix">')[1:]}
    raise_limit = cards[FixRecipe.objects.get(key="raise-nofile-limit").title]
    cause = "Upstream connections hang after the handshake until file descriptors run out"
    assert f"Probably a consequence of {cause}, also found" in raise_limit
    assert next(iter(cards)) == FixRecipe.objects.get(key="upstream-timeouts-and-fd-alerts").title


def test_the_ticket_page_follows_a_running_collection_then_brings_the_fixes(client, tech, ticket, server, kb):
    from diagnostics.models import CollectionRun, Evidence, RunState

    steps = [{"probe": "load", "params": {}}, {"probe": "kernel_log", "params": {}}, {"probe": "disk", "params": {}}]
    run = CollectionRun.objects.create(
        ticket=ticket, server=server, playbook_name="Network", steps=steps, state=RunState.RUNNING
    )
    Evidence.objects.create(
        run=run,
        step=0,
        probe="load",
        command="uptime",
        exit_status=0,
        duration=1.2,
        output=b"up 3 days\n",
        output_bytes=10,
    )
    page = _page(client, tech, reverse("ticket", args=[ticket.pk]))
    fragment = _page(client, tech, reverse("ticket_collections", args=[ticket.pk]))
    for html in (page, fragment):
        live = html[html.index('id="ticket-runs"') :]
        assert 'hx-trigger="every 1s"' in live.split(">", 1)[0]
        assert 'aria-valuenow="33"' in live
        assert '<li class="step-done">load' in live and "exit 0 · 1.2 s" in live
        assert '<li class="step-waiting">kernel_log' in live
    assert "hx-swap-oob" not in fragment

    Evidence.objects.create(
        run=run,
        step=1,
        probe="kernel_log",
        command="dmesg",
        exit_status=0,
        output=KERNEL_LOG.encode(),
        output_bytes=len(KERNEL_LOG),
    )
    run.state, run.finished_at = RunState.SUCCEEDED, timezone.now()
    run.save()
    diagnosed(run)
    fragment = _page(client, tech, reverse("ticket_collections", args=[ticket.pk]))
    assert "hx-trigger" not in fragment.split(">", 1)[0], "a finished run is not polled"
    assert 'id="fixes" hx-swap-oob="true"' in fragment
    assert FixRecipe.objects.get(key="bnx2-disable-msi").title in unescape(fragment)
