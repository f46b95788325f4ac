"""Matching stored runs against the shipped knowledge base: the right symptom and lines; a healthy host gets nothing."""

from __future__ import annotations

from diagnostics.knowledge import matcher, services
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import CollectionRun, Evidence, Match, RunState, Symptom

KERNEL_LOG = """\
[Mon Nov  8 16:40:01 2010] EXT3-fs: mounted filesystem with ordered data mode.
[Mon Nov  8 16:45:12 2010] bnx2: eth1 NIC Copper Link is Up, 1000 Mbps full duplex
[Mon Nov  8 16:49:42 2010] do_IRQ: 1.221 No irq handler for vector (irq -1)
[Mon Nov  8 16:49:45 2010] bnx2: eth0 NIC Copper Link is Down
[Mon Nov  8 16:49:48 2010] bnx2: eth0 NIC Copper Link is Up, 1000 Mbps full duplex
"""
STRACE = """\
4411  10:02:11.402311 accept(3, {sa_family=AF_INET, sin_port=htons(50213), sin_addr=inet_addr("198.51.100.7")}, [16]) = 4 <0.000031>
4411  10:02:11.402980 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 5 <0.000012>
4411  10:02:11.403120 connect(5, {sa_family=AF_INET, sin_port=htons(113), sin_addr=inet_addr("198.51.100.7")}, 16) = -1 ETIMEDOUT (Connection timed out) <26.013502>
4411  10:02:37.417001 close(5)                = 0 <0.000010>
4411  10:02:37.417220 write(4, "220 mx1.example.net ESMTP\\r\\n", 27) = 27 <0.000021>
"""  # noqa: E501 - verbatim strace lines
HEALTHY = {
    "kernel_log": "[Mon Nov  8 16:40:01 2010] EXT4-fs (sda1): mounted filesystem with ordered data mode.\n"
    "[Mon Nov  8 16:45:12 2010] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex\n",
    "mounts": "/dev/sda1 on / type ext4 (rw,relatime)\ntmpfs on /tmp type tmpfs (rw,nosuid,nodev)\n",
    "sockets": "state ESTAB 12\nstate TIME-WAIT 3\n"
    'ESTAB 0 0 192.0.2.10:22 198.51.100.20:51514 users:(("sshd",pid=812,fd=4))\n',
    "resolvers": "nameserver 192.0.2.53\nnameserver 192.0.2.53 12 ms OK\n",
    "strace": "4411  10:02:11.402980 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 5 <0.000012>\n",
}


def test_a_kernel_irq_message_with_bnx2_link_down_matches_the_nic_symptom_citing_its_lines(kb, make_run):
    run = make_run({"load": "up 3 days", "kernel_log": KERNEL_LOG})
    matches = [m for m in matcher.match_run(run=run) if m.matched]
    assert [m.symptom.key for m in matches] == ["bnx2-irq-link-flap"]
    cited = [(c["probe"], c["step"], c["line_start"]) for c in matches[0].citations]
    assert ("kernel_log", 1, 3) in cited and ("kernel_log", 1, 4) in cited
    assert len(cited) == len(set(cited)), "a line cited by two conditions is listed once"
    assert "interrupt with no handler" in matches[0].why
    assert matches[0].confidence == "strong"


def test_the_irq_message_alone_is_only_a_near_miss(kb, make_run):
    run = make_run({"kernel_log": KERNEL_LOG.splitlines()[2] + "\n"})
    (match,) = matcher.match_run(run=run)
    assert match.symptom.key == "bnx2-irq-link-flap"
    assert match.near_miss and not match.matched and match.confidence == "possible"


def test_a_blocking_connect_to_port_113_ranks_the_ident_fixes(kb, make_run):
    run = make_run({"strace": STRACE})
    matches = [m for m in matcher.match_run(run=run) if m.matched]
    assert [m.symptom.key for m in matches] == ["ident-lookup-timeout"]
    assert 3 in {c["line_start"] for c in matches[0].citations}
    fixes = ranked_fixes(run=run)
    # strace alone does not show which MTA runs: one entry, the other MTAs' fixes as its alternatives.
    assert len(fixes) == 1
    assert {fixes[0].recipe.key, *(a.recipe.key for a in fixes[0].alternatives)} == {
        "tcpserver-disable-ident",
        "sendmail-disable-ident",
        "exim-disable-ident",
    }
    assert all(a.fits is None for a in fixes[0].alternatives)


def test_a_healthy_host_matches_nothing(kb, make_run):
    run = make_run(HEALTHY)
    assert [m for m in matcher.match_run(run=run) if m.matched] == []
    assert ranked_fixes(ticket=run.ticket) == []


def test_matching_twice_keeps_one_match_per_symptom(kb, make_run):
    run = make_run({"kernel_log": KERNEL_LOG, "strace": STRACE})
    first = matcher.match_run(run=run)
    second = matcher.match_run(run=run)
    assert {m.pk for m in first} == {m.pk for m in second}
    assert Match.objects.filter(run=run).count() == len(first) == 2


def test_a_symptom_edited_through_the_service_is_recompiled(kb, make_run):
    run = make_run({"kernel_log": KERNEL_LOG})
    matcher.match_run(run=run)
    symptom = Symptom.objects.get(key="bnx2-irq-link-flap")
    data = services.symptom_data(symptom)
    data["signature"] = {"probe": "kernel_log", "regex": "EXT3-fs: mounted", "describe": "ext3 mounted"}
    _, outcome = services.symptom_save(data=data, by=None, note="test")
    assert outcome == "updated"
    (match,) = matcher.match_run(run=run)
    assert match.why == "ext3 mounted" and match.symptom_version == 2
    assert [c["line_start"] for c in match.citations] == [1]


def test_a_disabled_symptom_loses_its_matches_on_the_next_match(kb, make_run):
    run = make_run({"kernel_log": KERNEL_LOG})
    matcher.match_run(run=run)
    data = services.symptom_data(Symptom.objects.get(key="bnx2-irq-link-flap"))
    services.symptom_save(data={**data, "enabled": False}, by=None)
    assert matcher.rematch_open_tickets() == 1
    assert not Match.objects.filter(run=run).exists()


def test_finishing_a_run_only_records_its_state_and_the_diagnosis_step_matches_it(kb, ticket, server):
    from diagnostics.knowledge.diagnosis import run_diagnose
    from diagnostics.services.runs import _finish

    run = CollectionRun.objects.create(ticket=ticket, server=server, playbook_name="mail", state=RunState.RUNNING)
    Evidence.objects.create(
        run=run, step=0, probe="kernel_log", command="dmesg", exit_status=0, output=KERNEL_LOG.encode()
    )
    _finish(run, state=RunState.SUCCEEDED, reason="All probes ran.")
    run.refresh_from_db()
    assert run.is_terminal and not run.is_settled, "finished, but pages keep following it until it is diagnosed"
    assert not Match.objects.filter(run=run).exists()

    run_diagnose(run_id=run.pk)
    run.refresh_from_db()
    assert run.is_settled and run.diagnosis_note == ""
    assert Match.objects.get(run=run, matched=True).symptom.key == "bnx2-irq-link-flap"


def test_regexes_go_through_one_multi_pattern_scan_with_the_same_answers(kb, make_run):
    symptoms = matcher.compiled_symptoms()
    plan = matcher.current_plan()
    leaves = [leaf for s in symptoms for leaf in s.signature.regex_leaves()]
    assert plan.scanner is not None and plan.cap >= 20
    assert sum(leaf in plan.scan_ids for leaf in leaves) >= len(leaves) * 0.8  # most go through the scan

    run = make_run({"kernel_log": KERNEL_LOG, "strace": STRACE, **HEALTHY})
    evidence = list(Evidence.objects.filter(run=run).order_by("step"))
    scanned = matcher.documents_for(evidence, plan=plan)
    searched = matcher.documents_for(evidence)  # no scan: every regex searches on its own
    for symptom in symptoms:
        with_scan, without = symptom.signature.evaluate(scanned), symptom.signature.evaluate(searched)
        assert (with_scan.held, with_scan.score) == (without.held, without.score), symptom.key
        assert matcher.distinct_citations(with_scan.citations) == matcher.distinct_citations(without.citations)
