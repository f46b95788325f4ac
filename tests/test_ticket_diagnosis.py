"""The ticket's diagnosis across runs and servers: later runs add, never erase; Verify and Possible close the loop."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnostics.knowledge import followups, outcomes, verification
from diagnostics.knowledge.diagnosis import run_diagnose, ticket_findings
from diagnostics.knowledge.matcher import match_run_bounded
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import CollectionRun, Evidence, FixRecipe, Match, RecipeOutcome, RunState
from tests.conftest import login
from tests.diagnosing import diagnosed
from tests.test_fixes_view import IRQ_LINE, KERNEL_LOG
from tests.test_knowledge_ranking import IDENT_SOCKETS, IDENT_STRACE
from triage.models import Server

HOST_HEALTH = {  # a generic run: no strace, no sockets, nothing the ident finding was proved by
    "load": " 10:00:01 up 3 days,  2 users,  load average: 0.10, 0.20, 0.30\n",
    "disk": "Filesystem     1K-blocks    Used Available Use% Mounted on\n/dev/sda1 10000000 2000000 8000000 20% /\n",
}
QUIET_STRACE = "4411  10:02:11.402980 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 5 <0.000012>\n"
QUIET_SOCKETS = 'state ESTAB 1\nESTAB 0 0 10.9.0.5:22 10.9.0.1:50450 users:(("sshd",pid=10,fd=4))\n'


def keys(ticket) -> list[str]:
    return [f.symptom.key for f in ticket_findings(ticket=ticket).findings]


def later(run: CollectionRun, minutes: int) -> CollectionRun:
    CollectionRun.objects.filter(pk=run.pk).update(finished_at=timezone.now() + timedelta(minutes=minutes))
    run.refresh_from_db()
    return run


def test_a_later_generic_run_does_not_hide_an_earlier_specific_finding(kb, make_run, ticket):
    diagnosed(make_run({"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE}))
    diagnosed(later(make_run(HOST_HEALTH), 5))
    assert keys(ticket) == ["ident-lookup-timeout"]
    assert ranked_fixes(ticket=ticket)[0].recipe.key == "tcpserver-disable-ident"


def test_a_failed_run_does_not_blank_the_list(kb, make_run, ticket, server):
    diagnosed(make_run({"kernel_log": KERNEL_LOG}))
    failed = CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook_name="Host health",
        state=RunState.FAILED,
        reason="Unknown host key.",
        finished_at=timezone.now() + timedelta(minutes=1),
    )
    run_diagnose(run_id=failed.pk)
    assert keys(ticket) == ["bnx2-irq-link-flap"]


def test_a_later_run_that_collected_the_proof_and_found_nothing_clears_the_finding(kb, make_run, ticket):
    before = make_run({"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE})
    diagnosed(before)
    after = later(make_run({"sockets": QUIET_SOCKETS, "strace": QUIET_STRACE}), 5)
    diagnosed(after)
    diagnosis = ticket_findings(ticket=ticket)
    assert diagnosis.findings == []
    assert [(c.before.run_id, c.after.pk) for c in diagnosis.cleared] == [(before.pk, after.pk)]


def test_a_finding_names_every_run_that_proved_it(kb, make_run, ticket):
    first, second = make_run({"kernel_log": KERNEL_LOG}), make_run({"kernel_log": KERNEL_LOG})
    diagnosed(first), diagnosed(later(second, 5))
    (finding,) = ticket_findings(ticket=ticket).findings
    assert [r.pk for r in finding.runs] == [first.pk, second.pk] and finding.match.run_id == second.pk


def test_findings_are_kept_per_server(kb, make_run, ticket, server, customer):
    other = Server.objects.create(customer=customer, name="mx2", address="192.0.2.12")
    diagnosed(make_run({"kernel_log": KERNEL_LOG}))
    elsewhere = make_run({"kernel_log": "[1.0] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex\n"})
    CollectionRun.objects.filter(pk=elsewhere.pk).update(server=other, finished_at=timezone.now() + timedelta(hours=1))
    run_diagnose(run_id=elsewhere.pk)
    assert keys(ticket) == ["bnx2-irq-link-flap"], "a healthy mx2 says nothing about mx1"


@pytest.mark.parametrize(
    ("subject", "first"),
    [
        ("Mail sits 30 seconds before sending", "ident-lookup-timeout"),
        ("Server unreachable on its inner network interface", "bnx2-irq-link-flap"),
    ],
)
def test_the_symptom_that_explains_the_complaint_ranks_first(kb, make_run, ticket, subject, first):
    ticket.subject, ticket.description = subject, subject
    ticket.save(update_fields=["subject", "description"])
    diagnosed(make_run({"kernel_log": KERNEL_LOG, "strace": IDENT_STRACE}))
    fixes = ranked_fixes(ticket=ticket)
    assert fixes[0].finding.symptom.key == first and fixes[0].explains_complaint
    assert {f.finding.symptom.key for f in fixes} == {"ident-lookup-timeout", "bnx2-irq-link-flap"}


def test_matching_past_its_budget_says_so_and_keeps_earlier_findings(kb, make_run, ticket):
    run = make_run({"kernel_log": KERNEL_LOG})
    diagnosed(run)
    outcome = match_run_bounded(run=run, budget=0)
    assert "budget" in outcome.note and "not evaluated" in outcome.note
    assert Match.objects.filter(run=run, matched=True).exists()
    assert keys(ticket) == ["bnx2-irq-link-flap"]


def test_evidence_nothing_reads_still_settles_the_run(kb, make_run, ticket):
    run = make_run({"kernel_log": KERNEL_LOG})
    Evidence.objects.filter(run=run).update(probe="no-such-probe")  # evidence no parser or signature expects
    run_diagnose(run_id=run.pk)
    run.refresh_from_db()
    assert run.is_settled


def test_a_possible_symptom_shows_to_techs_and_one_click_collects_what_would_settle_it(
    client, tech, kb, make_run, ticket, django_capture_on_commit_callbacks
):
    diagnosed(make_run({"kernel_log": IRQ_LINE + "\n"}))  # the IRQ message alone: conditions only partly hold
    (possible,) = [p for p in ticket_findings(ticket=ticket).possible if p.match.symptom.key == "bnx2-irq-link-flap"]
    page = unescape(login(client, tech).get(reverse("ticket", args=[ticket.pk])).content.decode())
    assert "Possible" in page and possible.match.symptom.title in page and "Collect what would settle it" in page

    response = client.post(
        reverse("ticket_settle_possible", args=[ticket.pk]),
        {"symptom": "bnx2-irq-link-flap", "server": possible.match.run.server_id},
    )
    assert response.status_code == 302
    run = CollectionRun.objects.filter(ticket=ticket).order_by("-id").first()
    assert run.playbook_name.startswith("Settle: ") and run.state == RunState.QUEUED
    wanted = set(possible.missing_probes or possible.signature_probes)
    # Exactly the missing probes that can run without a tech's choice (log_tail needs a path).
    assert {step["probe"] for step in run.steps} == wanted - {"log_tail"}


def test_settling_a_symptom_that_is_not_possible_is_refused_with_a_reason(client, tech, kb, ticket, server):
    response = login(client, tech).post(
        reverse("ticket_settle_possible", args=[ticket.pk]), {"symptom": "disk-full", "server": server.pk}
    )
    assert response.status_code == 200 and "no longer possible" in response.content.decode()
    assert not CollectionRun.objects.filter(ticket=ticket).exists()


def _verify(ticket, tech, outputs: dict[str, str]) -> tuple[CollectionRun, str]:
    """Accept the ident fix, ask to verify it, and answer the verify run with ``outputs``."""
    recipe = FixRecipe.objects.get(key="tcpserver-disable-ident")
    outcomes.outcome_record_accepted(ticket=ticket, recipe=recipe, by=tech)
    run = verification.verify_request(ticket=ticket, recipe=recipe, by=tech)
    for step, spec in enumerate(run.steps):
        Evidence.objects.create(
            run=run,
            step=step,
            probe=spec["probe"],
            command=spec["probe"],
            exit_status=0,
            output=outputs[spec["probe"]].encode(),
        )
    CollectionRun.objects.filter(pk=run.pk).update(
        state=RunState.SUCCEEDED, finished_at=timezone.now() + timedelta(minutes=10)
    )
    run_diagnose(run_id=run.pk)
    run.refresh_from_db()
    return run, recipe


def proving_run(make_run, outputs):
    """A recorded run with the steps a playbook would give it (strace needs its target)."""
    run = make_run(outputs)
    run.steps = [
        {"probe": p, "params": {"process": "tcpserver", "seconds": 30} if p == "strace" else {}} for p in outputs
    ]
    run.save(update_fields=["steps"])
    diagnosed(run)
    return run


def test_verify_recollects_the_proof_and_a_symptom_gone_makes_the_fix_verified(kb, make_run, ticket, tech):
    before = proving_run(make_run, {"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE, "kernel_log": "[1.0] boot\n"})
    run, recipe = _verify(ticket, tech, {"sockets": QUIET_SOCKETS, "strace": QUIET_STRACE})
    assert run.verifies_run_id == before.pk and {s["probe"] for s in run.steps} == {"sockets", "strace"}
    assert {s["params"].get("process") for s in run.steps if s["probe"] == "strace"} == {
        s["params"].get("process") for s in before.steps if s["probe"] == "strace"
    }, "the same parameters"
    (comparison,) = verification.verification_compare(run=run)
    assert comparison.verdict == "gone" and comparison.before.run_id == before.pk
    assert RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.VERIFIED).exists()
    assert ticket.events.filter(body__startswith="Verified: ").count() == 1
    run_diagnose(run_id=run.pk)  # diagnosed again (the knowledge base changed): the verdict is not repeated
    assert ticket.events.filter(body__startswith="Verified: ").count() == 1


def test_verify_says_so_when_the_symptom_is_still_present(kb, make_run, ticket, tech):
    proving_run(make_run, {"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE})
    run, _recipe = _verify(ticket, tech, {"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE})
    (comparison,) = verification.verification_compare(run=run)
    assert comparison.verdict == "still present"
    assert not RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.VERIFIED).exists()
    assert ticket.events.filter(body__contains="still present").exists()


def test_verify_is_refused_when_nothing_it_fixes_is_found(kb, ticket, tech):
    recipe = FixRecipe.objects.get(key="tcpserver-disable-ident")
    with pytest.raises(verification.ValidationError):
        verification.verify_request(ticket=ticket, recipe=recipe, by=tech)


def test_the_ticket_keeps_following_a_finished_run_until_it_is_diagnosed(client, tech, kb, make_run, ticket):
    run = make_run({"kernel_log": KERNEL_LOG})  # finished, not yet diagnosed
    url = reverse("ticket_collections", args=[ticket.pk])
    page = login(client, tech).get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in page and "Turn off MSI" not in page
    run_diagnose(run_id=run.pk)
    page = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' not in page and "Turn off MSI" in page


def test_the_sweeper_diagnoses_a_run_whose_worker_died_between_the_steps(kb, make_run, ticket):
    from diagnostics.services import runs

    run = make_run({"kernel_log": KERNEL_LOG})
    CollectionRun.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(minutes=5))
    swept = runs.runs_sweep()
    assert swept["rediagnosed"] == 1  # enqueued to the test broker; the task itself is:
    from diagnostics.tasks import diagnose_run

    diagnose_run(run.pk)
    run.refresh_from_db()
    assert run.is_settled and Match.objects.filter(run=run, matched=True).exists()


def test_a_settle_possible_form_rejects_junk(client, tech, kb, ticket):
    response = login(client, tech).post(
        reverse("ticket_settle_possible", args=[ticket.pk]), {"symptom": "<script>", "server": "x"}
    )
    assert response.status_code == 200
    assert not CollectionRun.objects.filter(ticket=ticket).exists()


def test_followups_step_params_come_from_the_shipped_playbooks(kb):
    from diagnostics.services.playbooks import playbooks_ensure

    playbooks_ensure()
    step = followups._step_for("strace")
    assert step is not None and step["params"], "strace needs a target; a shipped playbook gives one"
