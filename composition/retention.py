"""Retention: the bulky bytes (evidence outputs, pcaps, raw inbound mail, attachments) are
emptied once older than their kind's retention, in bounded batches.

What a desk must keep is kept: the rows themselves (command, exit status, sizes, timings,
who and when), the matches and citations the evidence proved, the ticket timeline, and the
ticket text parsed from the mail. A pruned row records when it was pruned
(``*_pruned_at``) so pages say so instead of showing an empty output, and the matcher never
re-evaluates a run whose evidence is gone (it would erase what it once proved).

Each batch is one short UPDATE of at most ``batch_size`` rows chosen by primary key, and
guarded by ``*_pruned_at IS NULL`` so two prunes at once never do the work twice. An
invocation does at most ``max_batches`` per kind; the daily beat run catches up a backlog
over several days rather than holding the database for hours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Length

from diagnostics.models import Evidence
from mailgate.models import Attachment, InboundMessage, Outcome


@dataclass(frozen=True)
class Kind:
    """One kind of prunable bytes: which rows are old enough, and what emptying them means."""

    name: str
    setting: str  # days to keep, 0 = forever
    eligible: Callable[[datetime], QuerySet]  # rows recorded before the cutoff and not yet pruned
    size: Callable[[], object]  # expression: the stored bytes of one row
    emptied: Callable[[datetime], dict]  # the UPDATE that prunes, given now
    pruned_flag: str

    @property
    def days(self) -> int:
        return getattr(settings, self.setting)


def _evidence(*, binary: bool) -> Callable[[datetime], QuerySet]:
    def eligible(cutoff: datetime) -> QuerySet:
        return Evidence.objects.filter(binary=binary, recorded_at__lt=cutoff, output_pruned_at__isnull=True).exclude(
            output=b"", stderr=b""
        )

    return eligible


def _evidence_kind(name: str, setting: str, *, binary: bool) -> Kind:
    """Text outputs and pcaps are pruned alike; only which rows are eligible and their retention differ."""
    return Kind(
        name=name,
        setting=setting,
        eligible=_evidence(binary=binary),
        size=lambda: Length("output") + Length("stderr"),
        emptied=lambda now: {"output": b"", "stderr": b"", "output_pruned_at": now},
        pruned_flag="output_pruned_at",
    )


KINDS = (
    _evidence_kind("evidence outputs", "TRIAGE_RETAIN_EVIDENCE_DAYS", binary=False),
    _evidence_kind("pcaps", "TRIAGE_RETAIN_PCAP_DAYS", binary=True),
    Kind(
        name="raw mail",
        setting="TRIAGE_RETAIN_RAW_MAIL_DAYS",
        # A message that failed to process is kept whole: it is what a retry or a person needs.
        eligible=lambda cutoff: (
            InboundMessage.objects.filter(received_at__lt=cutoff, raw_pruned_at__isnull=True)
            .exclude(outcome=Outcome.FAILED)
            .exclude(raw=b"")
        ),
        size=lambda: Length("raw"),
        emptied=lambda now: {"raw": b"", "raw_pruned_at": now},
        pruned_flag="raw_pruned_at",
    ),
    Kind(
        name="attachments",
        setting="TRIAGE_RETAIN_ATTACHMENT_DAYS",
        # Aged by the mail they came in, or (attached in the desk) by the entry they came with.
        eligible=lambda cutoff: Attachment.objects.filter(
            Q(message__received_at__lt=cutoff) | Q(message__isnull=True, event__created_at__lt=cutoff),
            content_pruned_at__isnull=True,
        ).exclude(content=b""),
        size=lambda: Length("content"),
        emptied=lambda now: {"content": b"", "content_pruned_at": now},
        pruned_flag="content_pruned_at",
    ),
)


@dataclass
class KindReport:
    name: str
    days: int
    cutoff: datetime | None  # None: kept forever
    rows: int = 0  # pruned (or, in a dry run, that would be)
    bytes: int = 0
    left: int = 0  # still eligible after this invocation's batches

    def describe(self, *, dry_run: bool) -> str:
        if self.cutoff is None:
            return f"{self.name}: kept forever"
        verb = "would prune" if dry_run else "pruned"
        line = (
            f"{self.name} (kept {self.days} days, older than {self.cutoff:%Y-%m-%d %H:%M} UTC): "
            f"{verb} {self.rows} ({self.bytes / 2**20:.1f} MiB)"
        )
        if self.left:
            line += f"; {self.left} more left for the next run"
        return line


def prune(*, now: datetime, batch_size: int = 200, max_batches: int = 50, dry_run: bool = False) -> list[KindReport]:
    """Prune every kind whose retention is set; returns what was (or would be) pruned per kind."""
    return [
        _prune_kind(kind, now=now, batch_size=batch_size, max_batches=max_batches, dry_run=dry_run) for kind in KINDS
    ]


def _prune_kind(kind: Kind, *, now: datetime, batch_size: int, max_batches: int, dry_run: bool) -> KindReport:
    if kind.days <= 0:
        return KindReport(name=kind.name, days=0, cutoff=None)
    cutoff = now - timedelta(days=kind.days)
    report = KindReport(name=kind.name, days=kind.days, cutoff=cutoff)
    model = kind.eligible(cutoff).model
    if dry_run:
        # The same rows the batches would take, without touching them.
        limit = batch_size * max_batches
        pks = list(kind.eligible(cutoff).order_by("pk").values_list("pk", flat=True)[:limit])
        report.rows = len(pks)
        report.bytes = _stored_bytes(kind, model, pks)
    else:
        for _ in range(max_batches):
            pks = list(kind.eligible(cutoff).order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            size = _stored_bytes(kind, model, pks)
            # Guarded by the flag: a concurrent prune that took these rows first makes this one a no-op.
            done = model.objects.filter(pk__in=pks, **{f"{kind.pruned_flag}__isnull": True}).update(**kind.emptied(now))
            report.rows += done
            report.bytes += size if done == len(pks) else 0
    report.left = kind.eligible(cutoff).count() - (report.rows if dry_run else 0)
    return report


def _stored_bytes(kind: Kind, model, pks: list[int]) -> int:
    if not pks:
        return 0
    total = model.objects.filter(pk__in=pks).aggregate(total=Coalesce(Sum(kind.size()), 0))["total"]
    return int(total)
