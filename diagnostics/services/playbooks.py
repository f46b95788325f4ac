"""Playbooks: the defaults, and admins' edits validated against the probe registry."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from diagnostics import probes
from diagnostics.models import Playbook


def playbooks_ensure() -> list[Playbook]:
    """Create the default playbooks that do not exist yet (admins' edits are kept)."""
    from diagnostics.playbooks import DEFAULT_PLAYBOOKS

    made = []
    for book in DEFAULT_PLAYBOOKS:
        playbook, _ = Playbook.objects.get_or_create(
            name=book["name"], defaults={"description": book["description"], "steps": book["steps"]}
        )
        made.append(playbook)
    return made


def playbook_save(*, playbook: Playbook, name: str, description: str, steps: list, enabled: bool, by) -> Playbook:
    from diagnostics.playbooks import validate_steps

    try:
        steps = validate_steps(steps)
    except probes.ProbeError as exc:
        raise ValidationError({"steps": str(exc)}) from None
    playbook.name, playbook.description, playbook.steps, playbook.enabled = name, description, steps, enabled
    playbook.updated_at, playbook.updated_by = timezone.now(), by
    playbook.full_clean()
    playbook.save()
    return playbook
