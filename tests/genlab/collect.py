"""Collections on generalisation-lab hosts through the product's own path (what the Celery task calls):
``run_request`` then ``run_execute``, then ``ranked_fixes(run=...)`` on the finished run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import connections

from diagnostics import services
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import CollectionRun, Match, Playbook
from diagnostics.playbooks import DEFAULT_PLAYBOOKS
from tests.genlab.base import Scenario
from tests.lab_servers import lab_server
from triage import services as desk
from triage.models import Server

CAPTURE_PROBES = ("strace", "tcpdump")


def shipped_playbook(name: str, *, seconds: int) -> Playbook:
    """The shipped playbook `name`, its capture probes cut to `seconds` (one row per name and window)."""
    book = next(b for b in DEFAULT_PLAYBOOKS if b["name"] == name)
    window = {"seconds": seconds}
    steps = [
        {"probe": s["probe"], "params": {**s["params"], **(window if s["probe"] in CAPTURE_PROBES else {})}}
        for s in book["steps"]
    ]
    playbook, _ = Playbook.objects.get_or_create(
        name=f"{name} ({seconds} s captures)", defaults={"description": book["description"], "steps": steps}
    )
    return playbook


@dataclass
class Outcome:
    """One shipped playbook on one scenario host: the finished run and its fixes in rank order."""

    playbook: str
    run: CollectionRun
    fixes: list[dict]
    seconds: float  # request -> diagnosis available (the fixes computed), for the bench only

    @property
    def keys(self) -> list[str]:
        return [fix["recipe"].key for fix in self.fixes]

    def describe(self) -> str:
        lines = [f"{self.playbook}: run {self.run.pk} {self.run.state}: {self.run.reason}"]
        for match in Match.objects.filter(run=self.run).select_related("symptom").order_by("-score"):
            lines.append(f"  {match.symptom.key} matched={match.matched} score={match.score} why={match.why}")
        for fix in self.fixes:
            texts = [c.get("text", "")[:120] for c in fix["citations"]][:4]
            lines.append(f"  fix {fix['recipe'].key} {fix['score']} {texts}")
        return "\n".join(lines)


def scenario_server(*, customer, scenario: Scenario) -> Server:
    return lab_server(customer, scenario.host)


def collect_all(
    *, customer, tech, scenario: Scenario, playbooks: tuple[str, ...] | None = None, at_once: bool = False
) -> dict[str, Outcome]:
    """Run each playbook (default: ``scenario.playbooks``) on the scenario's host, one ticket for all.

    at_once: start them together, as a tech may, each on a thread of its own (as a threaded Celery worker
    runs them); the outcomes are the same, and a host whose fault makes every login wait out dead
    resolvers costs one wait instead of one per playbook. Only one shipped playbook attaches strace, so
    no two runs compete to trace the same process."""
    server = scenario_server(customer=customer, scenario=scenario)
    ticket = desk.ticket_create(
        subject=scenario.subject, description=scenario.subject, customer=customer, servers=[server], created_by=tech
    )
    names = playbooks or scenario.playbooks
    playbook_of = {name: shipped_playbook(name, seconds=scenario.capture) for name in names}

    def collect(name: str) -> Outcome:
        started = time.monotonic()
        run = services.run_request(ticket=ticket, server=server, playbook=playbook_of[name], by=None, enqueue=False)
        run = services.run_execute(run_id=run.pk, worker="genlab")
        fixes = ranked_fixes(run=run)
        return Outcome(playbook=name, run=run, fixes=fixes, seconds=time.monotonic() - started)

    if not at_once:
        return {name: collect(name) for name in names}

    def on_own_thread(name: str) -> Outcome:
        try:
            return collect(name)
        finally:
            connections.close_all()  # this thread's own database connection

    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="genlab") as pool:
        return dict(zip(names, pool.map(on_own_thread, names), strict=True))
