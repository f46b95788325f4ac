"""Signals other apps (webhooks, notifications) subscribe to; sent inside the writer's
transaction, so receivers that talk to the outside world should act on commit."""

from django.dispatch import Signal

# Sent once per matching of a run that suggested fixes the ticket had not had before:
# sender=CollectionRun, run=the run, recipe_ids=the newly suggested recipes' ids.
fixes_suggested = Signal()
