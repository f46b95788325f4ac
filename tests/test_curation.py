"""Admins curate the knowledge base in the browser: forms that explain every problem and lose
nothing, "try it" on stored runs before saving, version history with diffs; techs record which
suggested fix they are applying and which one fixed the ticket."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from diagnostics.knowledge import outcomes
from diagnostics.knowledge import services as knowledge
from diagnostics.models import FixRecipe, KnowledgeRevision, Match, RecipeOutcome, Symptom
from tests.conftest import login
from tests.diagnosing import diagnosed
from triage.celery import app
from triage.models import EventKind, Status

KERNEL_LOG = """\
Nov  8 16:40:01 drjmailgw kernel: [3017631.102934] EXT3-fs: mounted filesystem with ordered data mode.
Nov  8 16:45:12 drjmailgw kernel: [3017942.530118] bnx2: eth1 NIC Copper Link is Up, 1000 Mbps full duplex
Nov  8 16:49:42 drjmailgw kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)
Nov  8 16:49:45 drjmailgw kernel: [3018175.401877] bnx2: eth0 NIC Copper Link is Down
"""
IRQ_LINE = "Nov  8 16:49:42 drjmailgw kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)"
HEALTHY_LOG = "Nov  8 16:40:01 mx1 kernel: [    2.102934] EXT4-fs (sda1): mounted filesystem with ordered data\n"
IRQ_SIGNATURE = """\
all:
- probe: kernel_log
  regex: No irq handler for vector
  weight: 2
  describe: the kernel reports an interrupt with no handler
"""
BAD_REGEX = """\
any:
- probe: kernel_log
  regex: No irq handler
- probe: kernel_log
  regex: 'Link is (Down'
"""
BAD_PREDICATE = """\
facts: syscalls
where:
  syscall: {like: connect}
"""


def _symptom_form(**overrides) -> dict:
    form = {
        "key": "irq-no-handler",
        "title": "Interrupts with no handler",
        "explanation": "The kernel got an interrupt nobody claimed.",
        "impact": "4",
        "likelihood": "2",
        "threshold": "0.6",
        "enabled": "on",
        "signature": IRQ_SIGNATURE,
        "note": "first draft",
    }
    return {**form, **overrides}


def _recipe_form(**overrides) -> dict:
    form = {
        "key": "irq-firmware",
        "title": "Update the NIC firmware",
        "fixes": ["irq-no-handler"],
        "applies_when": "",
        "risk": "medium",
        "needs": "reboot",
        "steps": "Download the firmware.\nApply it in a maintenance window.\n",
        "snippets": "- label: check\n  language: sh\n  text: ethtool -i eth0\n",
        "references": "https://www.kernel.org/doc/html/latest/PCI/msi-howto.html\n",
        "note": "",
    }
    return {**form, **overrides}


@pytest.fixture
def irq_symptom(admin_user):
    symptom, _ = knowledge.symptom_save(
        data={
            "key": "irq-no-handler",
            "title": "Interrupts with no handler",
            "threshold": 0.6,
            "signature": {"probe": "kernel_log", "regex": "No irq handler for vector"},
        },
        by=admin_user,
        note="created for the test",
    )
    return symptom


@pytest.fixture
def irq_recipe(irq_symptom, admin_user):
    recipe, _ = knowledge.recipe_save(
        data={"key": "irq-firmware", "title": "Update the NIC firmware", "fixes": [irq_symptom.key], "steps": ["Do."]},
        by=admin_user,
    )
    return recipe


@pytest.fixture
def matched_run(make_run):
    """A finished run of the ticket whose kernel log matches the IRQ symptom, matched as a collection would be."""

    def make(outputs: dict[str, str], *, on=None):
        run = make_run(outputs, on=on)
        diagnosed(run)
        return run

    return make


# --- access ----------------------------------------------------------------------------------


def test_a_tech_reads_the_catalogue_but_cannot_edit_or_try(client, tech, irq_symptom):
    login(client, tech)
    page = client.get(reverse("kb")).content.decode()
    assert "irq-no-handler" in page and reverse("kb_symptom_edit", args=[irq_symptom.key]) not in page
    assert client.get(reverse("kb_symptom_edit", args=[irq_symptom.key])).status_code == 403
    response = client.post(reverse("kb_symptom_edit", args=[irq_symptom.key]), _symptom_form(title="Hijacked"))
    assert response.status_code == 403
    assert client.post(reverse("kb_symptom_new"), _symptom_form(key="tech-made")).status_code == 403
    assert client.post(reverse("kb_symptom_try"), {"signature": IRQ_SIGNATURE}).status_code == 403
    assert Symptom.objects.get(key=irq_symptom.key).title == "Interrupts with no handler"
    assert not Symptom.objects.filter(key="tech-made").exists()


def test_an_outsider_sees_nothing_of_the_knowledge_base(client, outsider, irq_recipe):
    login(client, outsider)
    for url in (
        reverse("kb"),
        reverse("kb_symptom_history", args=["irq-no-handler"]),
        reverse("kb_recipe_history", args=[irq_recipe.key]),
        reverse("kb_recipe_edit", args=[irq_recipe.key]),
    ):
        response = client.get(url)
        assert response.status_code == 403 and b"irq" not in response.content


def test_only_admins_get_the_navigation_link(client, tech, admin_user):
    login(client, tech)
    assert 'href="/kb/"' not in client.get(reverse("queue")).content.decode()
    login(client, admin_user)
    assert 'href="/kb/"' in client.get(reverse("queue")).content.decode()


# --- forms: validation that loses nothing ----------------------------------------------------


def test_a_bad_regex_is_explained_beside_the_signature_and_the_draft_is_kept(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("kb_symptom_new"), _symptom_form(signature=BAD_REGEX))
    page = unescape(response.content.decode())
    assert response.status_code == 200
    assert "signature.any[1].regex: bad regular expression" in page
    assert "symptom.signature" not in page  # paths read as the admin wrote them
    assert "Link is (Down" in page and "Interrupts with no handler" in page and "first draft" in page
    assert not Symptom.objects.filter(key="irq-no-handler").exists()
    assert not KnowledgeRevision.objects.exists()


def test_a_bad_predicate_is_explained_and_nothing_is_saved(client, admin_user, irq_symptom):
    login(client, admin_user)
    response = client.post(
        reverse("kb_symptom_edit", args=[irq_symptom.key]), _symptom_form(signature=BAD_PREDICATE, title="Changed")
    )
    page = unescape(response.content.decode())
    assert 'signature.where.syscall: unknown operator "like"' in page
    assert "{like: connect}" in page and 'value="Changed"' in page
    irq_symptom.refresh_from_db()
    assert irq_symptom.version == 1 and irq_symptom.title == "Interrupts with no handler"


def test_a_bad_predicate_in_a_recipes_applies_when_is_explained(client, admin_user, irq_symptom):
    login(client, admin_user)
    response = client.post(reverse("kb_recipe_new"), _recipe_form(applies_when=BAD_PREDICATE))
    page = unescape(response.content.decode())
    assert 'applies_when.signature.where.syscall: unknown operator "like"' in page
    assert "Apply it in a maintenance window." in page and "ethtool -i eth0" in page
    assert not FixRecipe.objects.exists()


def test_yaml_that_does_not_parse_is_a_clear_error(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("kb_symptom_new"), _symptom_form(signature="all: [probe: kernel_log"))
    page = unescape(response.content.decode())
    assert "Not valid YAML" in page and "all: [probe: kernel_log" in page
    assert not Symptom.objects.exists()


def test_a_new_symptom_cannot_take_an_existing_key(client, admin_user, irq_symptom):
    login(client, admin_user)
    response = client.post(reverse("kb_symptom_new"), _symptom_form(title="Another"))
    assert "already exists" in response.content.decode()
    assert Symptom.objects.get(key=irq_symptom.key).title == "Interrupts with no handler"


def test_an_edit_bumps_the_version_and_leaves_a_revision(client, admin_user, irq_symptom):
    login(client, admin_user)
    form = _symptom_form(threshold="0.8", note="stricter", key="renamed-ignored")
    response = client.post(reverse("kb_symptom_edit", args=[irq_symptom.key]), form)
    assert response.status_code == 302
    assert response["Location"] == reverse("kb_symptom_history", args=[irq_symptom.key])
    irq_symptom.refresh_from_db()
    assert irq_symptom.version == 2 and irq_symptom.threshold == 0.8 and irq_symptom.updated_by == admin_user
    assert not Symptom.objects.filter(key="renamed-ignored").exists()  # the key is fixed once created
    revision = KnowledgeRevision.objects.get(kind="symptom", key=irq_symptom.key, version=2)
    assert revision.note == "stricter" and revision.by == admin_user and revision.data["threshold"] == 0.8


@pytest.fixture
def eager_tasks():
    """Celery tasks run in-process when enqueued, so a test sees what the worker would do."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_an_edit_matches_open_tickets_again(
    client, admin_user, irq_symptom, irq_recipe, make_run, ticket, django_capture_on_commit_callbacks, eager_tasks
):
    run = make_run({"kernel_log": "[Mon Nov  8 16:49:42 2010] irq 17: nobody cared (try booting with irqpoll)\n"})
    diagnosed(run)
    assert not Match.objects.filter(run=run, matched=True).exists()
    login(client, admin_user)
    widened = (
        "any:\n- probe: kernel_log\n  regex: No irq handler for vector\n- probe: kernel_log\n  regex: nobody cared\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("kb_symptom_edit", args=[irq_symptom.key]), _symptom_form(signature=widened))
    assert response.status_code == 302
    match = Match.objects.get(run=run, symptom=irq_symptom)
    assert match.matched and match.symptom_version == 2
    assert RecipeOutcome.objects.filter(ticket=ticket, recipe=irq_recipe, kind=RecipeOutcome.SUGGESTED).exists()


def test_saving_without_a_change_keeps_the_version(client, admin_user, irq_symptom):
    login(client, admin_user)
    form = client.get(reverse("kb_symptom_edit", args=[irq_symptom.key])).context["form"]
    data = {name: form[name].value() for name in form.fields if name not in ("key", "note", "caused_by")}
    data["enabled"] = "on" if data["enabled"] else ""
    response = client.post(reverse("kb_symptom_edit", args=[irq_symptom.key]), data, follow=True)
    assert "Nothing changed" in response.content.decode()
    irq_symptom.refresh_from_db()
    assert irq_symptom.version == 1 and KnowledgeRevision.objects.filter(key=irq_symptom.key).count() == 1


def test_an_admin_creates_a_recipe_from_lines_and_yaml(client, admin_user, irq_symptom):
    login(client, admin_user)
    response = client.post(reverse("kb_recipe_new"), _recipe_form(applies_when="probe: kernel_log\nregex: bnx2\n"))
    assert response.status_code == 302
    recipe = FixRecipe.objects.get(key="irq-firmware")
    assert recipe.steps == ["Download the firmware.", "Apply it in a maintenance window."]
    assert recipe.snippets == [{"label": "check", "language": "sh", "text": "ethtool -i eth0"}]
    assert list(recipe.symptoms.values_list("key", flat=True)) == [irq_symptom.key]
    assert recipe.applies_when == {"probe": "kernel_log", "regex": "bnx2"} and recipe.risk == "medium"

    page = client.get(reverse("kb_recipe_edit", args=[recipe.key])).content.decode()
    assert "Download the firmware.\nApply it in a maintenance window." in unescape(page)


# --- try it ----------------------------------------------------------------------------------


def test_try_it_shows_the_runs_a_draft_would_match_and_the_lines_it_cites(
    client, admin_user, ticket, make_run, irq_symptom
):
    flapping = make_run({"load": "up 3 days\n", "kernel_log": KERNEL_LOG})
    healthy = make_run({"load": "up 3 days\n", "kernel_log": HEALTHY_LOG})
    login(client, admin_user)

    response = client.post(
        reverse("kb_symptom_try"), {"signature": IRQ_SIGNATURE, "threshold": "0.6"}, HTTP_HX_REQUEST="true"
    )
    page = unescape(response.content.decode())
    assert response.status_code == 200
    assert "<html" not in page  # a fragment for htmx to swap in
    assert f'id="preview-run-{flapping.pk}"' in page and f'id="preview-run-{healthy.pk}"' not in page
    assert "would match" in page and ticket.reference in page and "mx1" in page
    row = page[page.index(f'id="preview-run-{flapping.pk}"') :]
    assert '<td class="num">1</td><td class="mono">kernel_log</td><td class="num">3</td>' in row
    assert IRQ_LINE in row
    assert "Matches <strong>1</strong> of the 2 newest finished runs" in page
    assert KnowledgeRevision.objects.count() == 1 and Symptom.objects.count() == 1  # nothing saved


def test_try_it_says_when_a_run_holds_but_stays_below_the_threshold(client, admin_user, make_run):
    run = make_run({"kernel_log": KERNEL_LOG})
    draft = "all:\n- probe: kernel_log\n  regex: No irq handler\n- not:\n    probe: kernel_log\n    regex: bnx2\n"
    login(client, admin_user)
    page = client.post(reverse("kb_symptom_try"), {"signature": draft, "threshold": "0.9"}).content.decode()
    assert f'id="preview-run-{run.pk}"' in page and "partly holds" in page and "would match" not in page


def test_try_it_explains_a_broken_draft_instead_of_running_it(client, admin_user, make_run):
    make_run({"kernel_log": KERNEL_LOG})
    login(client, admin_user)
    page = unescape(client.post(reverse("kb_symptom_try"), {"signature": BAD_REGEX}).content.decode())
    assert "signature.any[1].regex: bad regular expression" in page and "preview-run" not in page
    page = unescape(client.post(reverse("kb_symptom_try"), {"signature": "any: [x"}).content.decode())
    assert "signature: Not valid YAML" in page


def test_try_it_on_a_recipes_applies_when_lists_the_runs_it_fits(client, admin_user, make_run):
    bnx2 = make_run({"kernel_log": KERNEL_LOG})
    other = make_run({"kernel_log": HEALTHY_LOG})
    login(client, admin_user)
    page = client.post(reverse("kb_recipe_try"), {"applies_when": "probe: kernel_log\nregex: '\\bbnx2\\b'\n"})
    page = unescape(page.content.decode())
    assert f'id="preview-run-{bnx2.pk}"' in page and f'id="preview-run-{other.pk}"' not in page
    assert "Fits <strong>1</strong>" in page and "bnx2: eth0 NIC Copper Link is Down" in page
    general = client.post(reverse("kb_recipe_try"), {"applies_when": "  "}).content.decode()
    assert "general advice" in general


def test_try_it_escapes_evidence_text(client, admin_user, make_run):
    make_run({"kernel_log": "kernel: <script>alert(1)</script> No irq handler for vector\n"})
    login(client, admin_user)
    page = client.post(reverse("kb_symptom_try"), {"signature": IRQ_SIGNATURE}).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; No irq handler for vector" in page


# --- history ---------------------------------------------------------------------------------


def test_the_history_lists_versions_and_diffs_consecutive_ones(client, admin_user, irq_symptom):
    login(client, admin_user)
    client.post(reverse("kb_symptom_edit", args=[irq_symptom.key]), _symptom_form(threshold="0.8", note="stricter"))
    page = unescape(client.get(reverse("kb_symptom_history", args=[irq_symptom.key])).content.decode())
    assert page.index('id="v2"') < page.index('id="v1"')  # newest first
    v2 = page[page.index('id="v2"') : page.index('id="v1"')]
    assert "stricter" in v2 and "ada" in v2
    assert "--- irq-no-handler v1" in v2 and "+++ irq-no-handler v2" in v2
    assert "\n-threshold: 0.6\n" in v2 and "\n+threshold: 0.8\n" in v2 and "\n key: irq-no-handler\n" in v2
    assert "+explanation: The kernel got an interrupt nobody claimed." in v2
    v1 = page[page.index('id="v1"') :]
    assert "--- (nothing)" in v1 and "created for the test" in v1


def test_the_history_diff_is_escaped(client, admin_user, irq_symptom, manager):
    login(client, admin_user)
    client.post(reverse("kb_symptom_edit", args=[irq_symptom.key]), _symptom_form(title="<script>alert(1)</script>"))
    login(client, manager)  # managers read the history too
    page = client.get(reverse("kb_symptom_history", args=[irq_symptom.key])).content.decode()
    assert "<script>alert(1)</script>" not in page and "+title: &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_history_of_an_unknown_key_is_not_found(client, admin_user):
    login(client, admin_user)
    assert client.get(reverse("kb_symptom_history", args=["never-was"])).status_code == 404


# --- outcomes on the ticket ------------------------------------------------------------------


def test_a_tech_accepts_a_suggested_fix_once(client, tech, ticket, matched_run, irq_recipe):
    matched_run({"kernel_log": KERNEL_LOG})
    login(client, tech)
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert f'name="recipe" value="{irq_recipe.pk}"' in page and ">Accept</button>" in page

    for _ in range(2):
        response = client.post(reverse("ticket_accept_fix", args=[ticket.pk]), {"recipe": irq_recipe.pk})
        assert response.status_code == 302
    accepted = RecipeOutcome.objects.get(ticket=ticket, recipe=irq_recipe, kind=RecipeOutcome.ACCEPTED)
    assert accepted.by == tech
    events = ticket.events.filter(kind=EventKind.FIX)
    assert [e.body for e in events] == ["Applying suggested fix: Update the NIC firmware"]
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert "Accepted: being applied" in page and ">Accept</button>" not in page


def test_a_fix_that_was_not_suggested_cannot_be_accepted(client, tech, ticket, irq_recipe):
    login(client, tech)
    response = client.post(reverse("ticket_accept_fix", args=[ticket.pk]), {"recipe": irq_recipe.pk})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with pytest.raises(Exception, match="was not suggested"):
        outcomes.outcome_record_accepted(ticket=ticket, recipe=irq_recipe, by=tech)
    assert not RecipeOutcome.objects.exists()


def test_a_manager_cannot_accept_a_fix(client, manager, ticket, matched_run, irq_recipe):
    matched_run({"kernel_log": KERNEL_LOG})
    login(client, manager)
    assert ">Accept</button>" not in client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert client.post(reverse("ticket_accept_fix", args=[ticket.pk]), {"recipe": irq_recipe.pk}).status_code == 403
    assert not RecipeOutcome.objects.filter(kind=RecipeOutcome.ACCEPTED).exists()


def test_resolving_records_the_fix_that_solved_it_and_the_counts_show_it(
    client, tech, admin_user, ticket, matched_run, irq_recipe
):
    matched_run({"kernel_log": KERNEL_LOG})
    login(client, tech)
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert 'name="fixed_by"' in page and "None of these" in page

    response = client.post(
        reverse("ticket_status", args=[ticket.pk]), {"status": Status.RESOLVED, "note": "", "fixed_by": irq_recipe.pk}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    kinds = set(RecipeOutcome.objects.filter(ticket=ticket, recipe=irq_recipe).values_list("kind", flat=True))
    assert kinds == {RecipeOutcome.SUGGESTED, RecipeOutcome.ACCEPTED, RecipeOutcome.FIXED}
    assert ticket.events.filter(kind=EventKind.FIX, body="Fixed by: Update the NIC firmware").exists()
    assert outcomes.recipe_outcome_counts()[irq_recipe.pk] == {
        "suggested": 1,
        "accepted": 1,
        "fixed": 1,
        "rejected": 0,
        "verified": 0,
    }
    assert "Fixed this ticket" in client.get(reverse("ticket", args=[ticket.pk])).content.decode()

    login(client, admin_user)
    page = client.get(reverse("kb")).content.decode()
    row = page[page.index(f'id="recipe-{irq_recipe.key}"') :]
    assert '<td class="num outcome-suggested">1</td><td class="num outcome-accepted">1</td>' in row
    assert '<td class="num outcome-fixed">1</td>' in row
    symptom_row = page[page.index('id="symptom-irq-no-handler"') :]
    assert '<td class="num runs-matched">1</td>' in symptom_row


def test_resolving_without_naming_a_fix_records_none(client, tech, ticket, matched_run, irq_recipe):
    matched_run({"kernel_log": KERNEL_LOG})
    login(client, tech)
    response = client.post(reverse("ticket_status", args=[ticket.pk]), {"status": Status.RESOLVED, "fixed_by": ""})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    assert not RecipeOutcome.objects.exclude(kind=RecipeOutcome.SUGGESTED).exists()


def test_a_ticket_with_no_suggestions_resolves_as_before(client, tech, ticket):
    login(client, tech)
    assert 'name="fixed_by"' not in client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert client.post(reverse("ticket_status", args=[ticket.pk]), {"status": Status.RESOLVED}).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED


def test_a_fix_is_named_only_when_resolving(client, tech, ticket, matched_run, irq_recipe):
    matched_run({"kernel_log": KERNEL_LOG})
    login(client, tech)
    response = client.post(
        reverse("ticket_status", args=[ticket.pk]), {"status": Status.TRIAGING, "fixed_by": irq_recipe.pk}
    )
    assert response.status_code == 200 and "when resolving the ticket" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and not RecipeOutcome.objects.filter(kind=RecipeOutcome.FIXED).exists()


def test_resolving_again_after_a_reopen_names_the_fix_that_held(tech, ticket, matched_run, irq_recipe, admin_user):
    matched_run({"kernel_log": KERNEL_LOG})
    other, _ = knowledge.recipe_save(
        data={"key": "irq-bios", "title": "Update the BIOS", "fixes": ["irq-no-handler"], "steps": ["Do."]},
        by=admin_user,
    )
    matched_run({"kernel_log": KERNEL_LOG})  # suggests the new recipe too
    outcomes.outcome_record_fixed(ticket=ticket, recipe=irq_recipe, by=tech)
    outcomes.outcome_record_fixed(ticket=ticket, recipe=other, by=tech)
    fixed = RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.FIXED)
    assert list(fixed.values_list("recipe__key", flat=True)) == ["irq-bios"]


def test_evidence_text_in_a_ticket_fix_is_escaped(client, tech, ticket, matched_run, irq_recipe):
    matched_run({"kernel_log": "kernel: <script>alert(1)</script> No irq handler for vector\n"})
    login(client, tech)
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- bounded matching: drafts that cannot be bounded, stored rows that became invalid, the budget ---------------

UNBOUNDED_REGEX = """\
any:
- probe: kernel_log
  regex: No irq handler
- probe: kernel_log
  regex: '(a+)\\1b'
"""


def test_a_pattern_that_cannot_be_bounded_is_refused_by_the_form_and_the_draft_is_kept(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("kb_symptom_new"), _symptom_form(signature=UNBOUNDED_REGEX))
    page = unescape(response.content.decode())
    assert response.status_code == 200
    assert "signature.any[1].regex: this pattern cannot be run in bounded time (backreference)" in page
    assert "(a+)\\1b" in page and "Interrupts with no handler" in page and "first draft" in page
    assert not Symptom.objects.filter(key="irq-no-handler").exists()


def test_try_it_refuses_a_draft_that_cannot_be_bounded_and_runs_nothing(client, admin_user, make_run):
    make_run({"kernel_log": "a" * 80 + "b\n"})
    login(client, admin_user)
    page = unescape(client.post(reverse("kb_symptom_try"), {"signature": UNBOUNDED_REGEX}).content.decode())
    assert "signature.any[1].regex: this pattern cannot be run in bounded time (backreference)" in page
    assert "preview-run" not in page and "Matches" not in page


def test_try_it_runs_a_catastrophic_for_re_draft_on_the_scan_and_answers(client, admin_user, make_run):
    hostile = make_run({"kernel_log": "kernel: " + "a" * 120 + "b\n"})
    matching = make_run({"kernel_log": "kernel: aaaa\n"})
    login(client, admin_user)
    draft = "probe: kernel_log\nregex: '(a|aa)+$'\n"
    page = client.post(reverse("kb_symptom_try"), {"signature": draft, "threshold": "0.6"}).content.decode()
    assert f'id="preview-run-{matching.pk}"' in page and f'id="preview-run-{hostile.pk}"' not in page
    assert "Matches <strong>1</strong> of the 2 newest finished runs" in page


def test_try_it_stops_when_its_budget_runs_out_and_says_so(client, admin_user, make_run, settings):
    make_run({"kernel_log": KERNEL_LOG})
    make_run({"kernel_log": KERNEL_LOG})
    settings.TRIAGE_MATCH_BUDGET_SECONDS = 0
    login(client, admin_user)
    page = unescape(client.post(reverse("kb_symptom_try"), {"signature": IRQ_SIGNATURE}).content.decode())
    assert "Stopped after 0 of 2 runs: the matching budget of 0 s ran out before scanning kernel_log output." in page
    assert "preview-run-" not in page
    assert "Matches <strong>0</strong> of the 0 run(s) examined before it stopped" in page


def test_a_stored_signature_that_became_invalid_shows_as_not_evaluated(client, admin_user, irq_symptom):
    # Saved before validation refused lookarounds: straight into the table, as an old database holds it.
    Symptom.objects.filter(pk=irq_symptom.pk).update(
        signature={"probe": "kernel_log", "regex": "No irq handler(?! for)"}
    )
    login(client, admin_user)
    listing = unescape(client.get(reverse("kb")).content.decode())
    row = listing[listing.index('id="symptom-irq-no-handler"') :].split("</tr>")[0]
    assert "not evaluated" in row
    assert "signature.regex: this pattern cannot be run in bounded time (negative lookahead)" in row
    edit = unescape(client.get(reverse("kb_symptom_edit", args=[irq_symptom.key])).content.decode())
    assert "This symptom is not being evaluated" in edit and "(negative lookahead)" in edit
    assert "No irq handler(?! for)" in edit  # the stored draft is there to be fixed
