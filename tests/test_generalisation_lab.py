"""The generalisation lab (issue 10 part 10): each war story rebuilt with other details, and healthy
look-alikes, collected through the product's own path with the shipped playbooks.

- A faulty variant gets the right fix FIRST under the playbook meant for its complaint, and the right fix
  somewhere in the list under every shipped playbook that collects its evidence.
- A healthy decoy gets no suggestion from any shipped playbook.

The scenarios live in ``tests/genlab`` (one module per war story; ``bench/diagnosis.py`` prints a table from
the same builders). Hosts are contained (own processes, /tmp, /var/log, load average, vm counters and kernel
ring buffer), so nothing here reads the machine's load or a process outside the lab, and no assertion is
about time. Scenarios of one war story share a build; capture windows are cut to seconds.
"""

from __future__ import annotations

import re

import pytest

from diagnostics.knowledge.proposal import playbook_proposal
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import RunState
from tests.genlab.base import PLAYBOOK_NAMES, Env
from tests.genlab.catalogue import INDEX, Builder
from tests.genlab.collect import collect_all
from tests.lab import lab  # noqa: F401 - the module-scoped lab fixture

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("kb")]


@pytest.fixture(scope="module")
def builder(lab):  # noqa: F811 - the fixture imported above
    env = Env(lab)
    the_builder = Builder(env)
    yield the_builder
    the_builder.close()
    env.close()


def _report(outcomes) -> str:
    return "\n".join(outcome.describe() for outcome in outcomes.values())


def _finished(outcomes, context: str) -> None:
    """Every run reached the host and ran its probes (a failed run would suggest nothing, proving nothing)."""
    for playbook, outcome in outcomes.items():
        assert outcome.run.state in (RunState.SUCCEEDED, RunState.PARTIAL), f"under {playbook!r}\n{context}"


def assert_right_fix_first_and_under_every_playbook_with_its_evidence(scenario, outcomes, context: str) -> None:
    assert scenario.playbook in scenario.evidence
    meant = outcomes[scenario.playbook]
    assert meant.keys and meant.keys[0] == scenario.recipe, context
    # The playbook the product proposes for the complaint (no guessing by the tech) finds it first too.
    proposal = playbook_proposal(ticket=meant.run.ticket)
    assert proposal is not None, context
    proposed = re.sub(r" \(\d+ s captures\)$", "", proposal.playbook.name)  # the lab's short-capture copies
    assert outcomes[proposed].keys[:1] == [scenario.recipe], f"proposed {proposed!r}\n{context}"
    # And the ticket, which remembers every playbook's evidence, still puts it first.
    ticket_fixes = [fix.recipe.key for fix in ranked_fixes(ticket=meant.run.ticket)]
    assert ticket_fixes[:1] == [scenario.recipe], f"the ticket's list: {ticket_fixes}\n{context}"
    for playbook, outcome in outcomes.items():
        assert scenario.recipe in outcome.keys, f"under {playbook!r}\n{context}"


def assert_nothing_suggested(scenario, outcomes, context: str) -> None:
    assert set(outcomes) == set(PLAYBOOK_NAMES), "every shipped playbook runs on a decoy"
    for playbook, outcome in outcomes.items():
        if scenario.forbidden is None:
            assert outcome.keys == [], f"under {playbook!r}\n{context}"
        else:
            assert not scenario.forbidden & set(outcome.keys), f"under {playbook!r}\n{context}"


# One test per scenario, in catalogue order, so each war story's hosts are built once and its traffic
# stops before the next story's starts.
@pytest.mark.parametrize(("group", "name"), INDEX, ids=[name for _, name in INDEX])
def test_shipped_playbooks_put_the_right_fix_first_on_variants_and_suggest_nothing_on_decoys(
    builder, customer, tech, group, name, request
):
    scenario = builder.scenario(group, name)
    if scenario.xfail:
        request.applymarker(pytest.mark.xfail(strict=True, reason=scenario.xfail))
    # A faulty host's playbooks run at once (a healthy one's one after another, so that no run's traffic
    # can show up in another's capture where the test demands silence).
    outcomes = collect_all(customer=customer, tech=tech, scenario=scenario, at_once=not scenario.healthy)
    context = f"{scenario.name}\n{_report(outcomes)}"
    _finished(outcomes, context)
    if scenario.healthy:
        assert_nothing_suggested(scenario, outcomes, context)
    else:
        assert_right_fix_first_and_under_every_playbook_with_its_evidence(scenario, outcomes, context)
