"""Which playbook to collect first, from the ticket's words and from what similar resolved tickets needed.

A tech opening Collect should not have to guess. Each enabled playbook scores:

- its own name and description against the complaint (``words.overlap``);
- the symptoms it can prove (at least half of a signature's probes are among its steps) whose titles
  share words with the complaint: "mail sits 30 s before sending" meets the ident symptom, which
  "Mail is slow to send" collects for;
- resolved tickets whose words are like this one's and whose fix was confirmed (fixed or verified):
  each votes for the playbooks of its runs that found the symptom fixed, by how alike the tickets are.

The proposal says why, in words a tech can check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnostics.knowledge import words
from diagnostics.knowledge.diagnosis import signature_probes_by_symptom
from diagnostics.models import Match, Playbook, RecipeOutcome, Symptom
from triage.models import Ticket

SIMILAR_FROM = 0.25  # Jaccard similarity of two tickets' words to count as "similar"
HISTORY = 300  # confirmed fixes looked at, newest first: the desk's recent experience
HISTORY_WEIGHT = 2.0
SYMPTOM_WEIGHT = 0.75


@dataclass
class Proposal:
    playbook: Playbook
    score: float
    reasons: list[str] = field(default_factory=list)


def _similar_resolved(complaint: set[str], *, exclude: int) -> list[tuple[float, Ticket, int]]:
    """(similarity, ticket, fixed recipe id) for recent confirmed fixes of tickets like this one."""
    confirmed = (
        RecipeOutcome.objects.filter(kind__in=(RecipeOutcome.FIXED, RecipeOutcome.VERIFIED))
        .exclude(ticket_id=exclude)
        .select_related("ticket")
        .order_by("-id")[:HISTORY]  # newest first by key: no sort over every outcome
    )
    similar = []
    for outcome in confirmed:
        theirs = words.words(f"{outcome.ticket.subject}\n{outcome.ticket.description}")
        if not theirs or not complaint:
            continue
        similarity = len(complaint & theirs) / len(complaint | theirs)
        if similarity >= SIMILAR_FROM:
            similar.append((similarity, outcome.ticket, outcome.recipe_id))
    return similar


def playbook_proposal(*, ticket: Ticket) -> Proposal | None:
    """The playbook to propose for ``ticket``, with its reasons; None when nothing speaks for any."""
    playbooks = list(Playbook.objects.filter(enabled=True).order_by("name"))
    if not playbooks:
        return None
    complaint = words.words(f"{ticket.subject}\n{ticket.description}")
    proposals = {p.pk: Proposal(p, 0.0) for p in playbooks}

    for proposal in proposals.values():
        book = proposal.playbook
        own = complaint & (words.words(book.name) | words.words(book.description))
        proposal.score += words.overlap(complaint, title=book.name, body=book.description)
        if own:
            proposal.reasons.append("the ticket mentions " + ", ".join(sorted(own)[:5]))

    # The symptom that best explains the complaint among those a playbook can prove (the best, not
    # the sum: a broad playbook covering many loosely related symptoms must not win by breadth).
    reads = signature_probes_by_symptom()
    symptoms = {s.pk: s for s in Symptom.objects.filter(pk__in=list(reads))}
    best_symptom: dict[int, tuple[float, str]] = {}
    for symptom_id, probes in reads.items():
        symptom = symptoms.get(symptom_id)
        relevance = words.overlap(complaint, title=f"{symptom.title} {symptom.key}") if symptom else 0
        if symptom is None or relevance < 1 or not probes:
            continue
        for proposal in proposals.values():
            collected = {step.get("probe") for step in proposal.playbook.steps or []}
            if len(probes & collected) * 2 >= len(probes):
                best_symptom[proposal.playbook.pk] = max(
                    best_symptom.get(proposal.playbook.pk, (0, "")), (relevance, symptom.title)
                )
    for playbook_id, (relevance, title) in best_symptom.items():
        proposals[playbook_id].score += SYMPTOM_WEIGHT * relevance
        proposals[playbook_id].reasons.append(f"it collects the evidence of “{title}”")

    similar = _similar_resolved(complaint, exclude=ticket.pk)
    for similarity, past, recipe_id in similar:
        found_by = (
            Match.objects.filter(run__ticket=past, matched=True, symptom__recipes=recipe_id)
            .values_list("run__playbook_id", flat=True)
            .distinct()
        )
        for playbook_id in found_by:
            if playbook_id in proposals:
                proposals[playbook_id].score += HISTORY_WEIGHT * similarity
                proposals[playbook_id].reasons.append(f"similar ticket #{past.pk} was diagnosed with it")
    best = max(proposals.values(), key=lambda p: (p.score, -p.playbook.pk))
    if best.score <= 0:
        return None
    best.reasons = _tidy(best.reasons)
    return best


def _tidy(reasons: list[str]) -> list[str]:
    """Each reason once; at most three similar tickets and three symptoms named."""
    kept, tickets, symptoms = [], 0, 0
    for reason in dict.fromkeys(reasons):
        if reason.startswith("similar ticket"):
            tickets += 1
            if tickets > 3:
                continue
        if reason.startswith("it collects"):
            symptoms += 1
            if symptoms > 3:
                continue
        kept.append(reason)
    return kept
