"""Retention (`manage.py prune`, composition/retention.py): old evidence outputs, pcaps, raw mail and
attachments are emptied in bounded batches, while the rows, the matches they proved, the ticket's
diagnosis and its timeline stay, and pages say what was pruned and when."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from composition import tasks
from diagnostics.knowledge.diagnosis import run_diagnose, ticket_findings
from diagnostics.models import Evidence, Match
from mailgate import services as mail_services
from mailgate.models import Attachment, InboundMessage, Outcome
from tests.conftest import login
from tests.diagnosing import diagnosed
from tests.mailgate_support import DESK, mail
from tests.test_fixes_view import KERNEL_LOG
from triage import services
from triage.models import TicketEvent

PCAP = b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(range(256)) * 4  # a pcap header and some packets


def prune(**options) -> str:
    out = StringIO()
    call_command("prune", stdout=out, **options)
    return out.getvalue()


def age(evidence_run, days: int) -> None:
    Evidence.objects.filter(run=evidence_run).update(recorded_at=timezone.now() - timedelta(days=days))


def add_pcap(run, *, step: int, days_old: int) -> Evidence:
    return Evidence.objects.create(
        run=run,
        step=step,
        probe="tcpdump",
        command="tcpdump -w -",
        exit_status=0,
        binary=True,
        output=PCAP,
        output_bytes=len(PCAP),
        recorded_at=timezone.now() - timedelta(days=days_old),
    )


@pytest.fixture
def retention(settings):
    settings.TRIAGE_RETAIN_EVIDENCE_DAYS = 365
    settings.TRIAGE_RETAIN_PCAP_DAYS = 30
    settings.TRIAGE_RETAIN_RAW_MAIL_DAYS = 30
    settings.TRIAGE_RETAIN_ATTACHMENT_DAYS = 60
    return settings


def test_old_evidence_is_emptied_and_its_findings_matches_and_timeline_stay(
    kb, retention, make_run, ticket, tech, client
):
    old = make_run({"kernel_log": KERNEL_LOG})
    matches_before = [(m.symptom.key, m.score, m.citations) for m in diagnosed(old)]
    assert matches_before, "the recorded kernel log proves a known symptom"
    add_pcap(old, step=1, days_old=400)
    age(old, 400)
    other_ticket = services.ticket_create(
        subject="NIC flapping again",
        description="Link drops.",
        customer=ticket.customer,
        priority=2,
        servers=[],
        tag_names=[],
        created_by=tech,
        now=timezone.now(),
    )
    recent = make_run({"kernel_log": KERNEL_LOG}, on=other_ticket)  # another ticket: this one's proof is all old
    diagnosed(recent)
    fresh_pcap = add_pcap(recent, step=1, days_old=10)
    findings_before = [f.symptom.key for f in ticket_findings(ticket=ticket).findings]
    assert findings_before
    timeline_before = TicketEvent.objects.filter(ticket=ticket).count()

    out = prune()

    assert "evidence outputs (kept 365 days" in out and "pruned 1 " in out
    pruned = Evidence.objects.get(run=old, step=0)
    assert bytes(pruned.output) == b"" and pruned.output_pruned_at is not None
    assert pruned.output_bytes == len(KERNEL_LOG.encode())  # what was recorded is still said
    assert (pruned.probe, pruned.exit_status, pruned.command) == ("kernel_log", 0, "kernel_log")
    assert bytes(Evidence.objects.get(run=old, step=1).output) == b""  # the 400-day-old pcap
    assert bytes(Evidence.objects.get(run=recent, step=0).output) == KERNEL_LOG.encode()
    assert bytes(Evidence.objects.get(pk=fresh_pcap.pk).output) == PCAP
    # A knowledge-base edit re-diagnoses open tickets: the pruned run keeps what it proved.
    run_diagnose(run_id=old.pk)
    assert [(m.symptom.key, m.score, m.citations) for m in Match.objects.filter(run=old)] == matches_before
    assert [f.symptom.key for f in ticket_findings(ticket=ticket).findings] == findings_before
    assert TicketEvent.objects.filter(ticket=ticket).count() == timeline_before

    login(client, tech)
    # The ticket still shows the fix the pruned evidence proved (its steps fall back to the
    # recipe's general text where they were filled from the host's own output).
    ticket_page = client.get(reverse("ticket", args=[ticket.pk]))
    assert ticket_page.status_code == 200
    fix_title = Match.objects.filter(run=old, matched=True).first().symptom.recipes.first().title
    assert fix_title in ticket_page.content.decode()
    page = client.get(reverse("run", args=[old.pk])).content.decode()
    assert f"Output pruned on {pruned.output_pruned_at:%Y-%m-%d}" in page
    assert reverse("evidence_raw", args=[old.pk, 0]) not in page
    download = client.get(reverse("evidence_raw", args=[old.pk, 0]))
    assert download.status_code == 410
    assert "pruned" in download.content.decode()
    assert client.get(reverse("api:evidence_raw", args=[old.pk, 0])).status_code == 410
    assert client.get(reverse("evidence_raw", args=[recent.pk, 0])).content == KERNEL_LOG.encode()


def test_a_dry_run_says_what_would_go_and_changes_nothing(retention, make_run):
    run = make_run({"kernel_log": KERNEL_LOG, "load": "load average: 0.1\n"})
    age(run, 400)

    out = prune(dry_run=True)

    assert "evidence outputs (kept 365 days" in out and "would prune 2 (0.0 MiB)" in out
    assert "pcaps (kept 30 days" in out and "raw mail" in out and "attachments" in out
    assert not Evidence.objects.filter(output_pruned_at__isnull=False).exists()
    assert "pruned 2 " in prune()


def test_each_invocation_does_bounded_batches_and_the_next_one_carries_on(retention, make_run):
    run = make_run({f"probe{i}": f"output {i}\n" for i in range(5)})
    age(run, 400)

    assert "pruned 4 (0.0 MiB); 1 more left for the next run" in prune(batch_size=2, max_batches=2)
    assert Evidence.objects.filter(output_pruned_at__isnull=True).count() == 1
    assert "pruned 1 " in prune(batch_size=2, max_batches=2)
    assert not Evidence.objects.filter(output_pruned_at__isnull=True).exists()
    assert "pruned 0 " in prune()


def test_zero_days_keeps_a_kind_forever(retention, make_run):
    retention.TRIAGE_RETAIN_EVIDENCE_DAYS = 0
    run = make_run({"kernel_log": KERNEL_LOG})
    age(run, 4000)

    assert "evidence outputs: kept forever" in prune()
    assert bytes(Evidence.objects.get(run=run).output) == KERNEL_LOG.encode()


def test_old_raw_mail_and_attachments_are_emptied_and_the_ticket_keeps_the_text(retention, customer, tech, client):
    retention.TRIAGE_MAIL_ADDRESSES = [DESK]
    received = timezone.now() - timedelta(days=90)
    message = mail(
        subject="Queue stuck since Monday",
        body="The queue holds 4000 messages.",
        attachments=[("mailq.txt", "text/plain", b"4000 messages\n" * 100)],
    )
    record = mail_services.inbound_receive(
        raw=message.as_bytes(), envelope_from="ops@northwind.test", envelope_to=[DESK], now=received
    )
    assert record.outcome == Outcome.CREATED
    kept = mail_services.inbound_receive(
        raw=mail(subject="Still stuck").as_bytes(),
        envelope_from="ops@northwind.test",
        envelope_to=[DESK],
        now=timezone.now() - timedelta(days=5),
    )
    failed = InboundMessage.objects.create(
        outcome=Outcome.FAILED, raw=b"Subject: x\r\n\r\nkept for retry", received_at=received, dedupe_key="failed-one"
    )

    out = prune()

    assert "raw mail (kept 30 days" in out and "pruned 1 " in out.split("raw mail")[1]
    record.refresh_from_db()
    assert bytes(record.raw) == b"" and record.raw_pruned_at is not None
    assert record.size == len(message.as_bytes()) and record.subject == "Queue stuck since Monday"
    assert bytes(InboundMessage.objects.get(pk=kept.pk).raw) != b""
    assert bytes(InboundMessage.objects.get(pk=failed.pk).raw) == b"Subject: x\r\n\r\nkept for retry"
    attachment = Attachment.objects.get(message=record)
    assert bytes(attachment.content) == b"" and attachment.content_pruned_at is not None
    assert attachment.size == 1400
    ticket = record.ticket
    assert "The queue holds 4000 messages." in ticket.description

    login(client, tech)
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert f'mailq.txt <span class="muted">(pruned on {attachment.content_pruned_at:%Y-%m-%d})' in page
    assert client.get(reverse("mail_attachment", args=[attachment.pk])).status_code == 410


def test_beat_runs_the_prune_daily_and_the_task_prunes(retention, make_run):
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    entry = next(e for e in schedule.values() if e["task"] == "triage.tasks.prune_retention")
    assert entry["schedule"].hour == {3}
    run = make_run({"kernel_log": KERNEL_LOG})
    age(run, 400)

    tasks.prune_retention()

    assert Evidence.objects.get(run=run).output_pruned_at is not None
