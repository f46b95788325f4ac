"""Two admins editing the same symptom: the stale save is shown beside the newer version, not applied;
and text areas are stored with LF line endings, whatever the browser sent."""

from __future__ import annotations

from html import unescape

from django.urls import reverse

from diagnostics.models import KnowledgeRevision, Symptom
from tests.conftest import login, make_user
from tests.test_curation import _symptom_form, irq_symptom  # noqa: F401 - the fixture
from triage import access


def test_a_save_from_an_editor_opened_before_anothers_save_is_shown_not_applied(client, admin_user, irq_symptom):  # noqa: F811
    other = make_user("grace", access.ADMIN)
    # Both opened version 1. Grace saves first: a stricter threshold.
    login(client, other).post(
        reverse("kb_symptom_edit", args=[irq_symptom.key]),
        _symptom_form(threshold="0.9", note="stricter", base_version="1"),
    )
    irq_symptom.refresh_from_db()
    assert irq_symptom.version == 2 and irq_symptom.threshold == 0.9

    # The admin's stale editor still says version 1 and the old threshold.
    page = login(client, admin_user).post(
        reverse("kb_symptom_edit", args=[irq_symptom.key]),
        _symptom_form(threshold="0.6", title="Stray interrupts", note="retitled", base_version="1"),
    )
    text = unescape(page.content.decode())
    assert page.status_code == 200
    assert "was saved as version 2 by grace" in text and "nothing was saved" in text
    assert "threshold: 0.9" in text  # theirs, shown
    assert 'value="Stray interrupts"' in text  # mine, still in the form
    assert 'name="base_version" value="2"' in text  # saving again is deliberate
    irq_symptom.refresh_from_db()
    assert irq_symptom.version == 2 and irq_symptom.threshold == 0.9 and irq_symptom.title != "Stray interrupts"

    # Saving again from that page puts the admin's version over Grace's, knowingly.
    client.post(
        reverse("kb_symptom_edit", args=[irq_symptom.key]),
        _symptom_form(threshold="0.6", title="Stray interrupts", note="retitled", base_version="2"),
    )
    irq_symptom.refresh_from_db()
    assert irq_symptom.version == 3 and irq_symptom.title == "Stray interrupts"


def test_crlf_from_the_browser_is_stored_as_lf(client, admin_user, irq_symptom):  # noqa: F811
    login(client, admin_user).post(
        reverse("kb_symptom_edit", args=[irq_symptom.key]),
        _symptom_form(
            explanation="Line one.\r\nLine two.\rLine three.",
            base_version="1",
            signature="probe: kernel_log\r\nregex: No irq handler for vector\r\n",
        ),
    )
    symptom = Symptom.objects.get(key=irq_symptom.key)
    assert symptom.explanation == "Line one.\nLine two.\nLine three."
    revision = KnowledgeRevision.objects.get(kind="symptom", key=symptom.key, version=2)
    assert "\r" not in revision.data["explanation"]
