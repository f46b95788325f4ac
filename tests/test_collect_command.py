"""manage.py collect when its run is no longer its own: a message, not a traceback."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from diagnostics.models import CollectionRun, Playbook, RunState

# Stands in for a worker (or the sweeper's re-enqueue) taking the command's run between its
# request and its execution: a trigger moves every new run to a state no claim accepts.
_TABLE = CollectionRun._meta.db_table
_TAKE = f"UPDATE {_TABLE} SET state = '{RunState.SUCCEEDED.value}' WHERE id = NEW.id;"  # noqa: S608 - our constants


def _runs_are_taken_as_they_are_created() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE FUNCTION test_take_run() RETURNS trigger AS $$ BEGIN {_TAKE} RETURN NULL; END $$"
                " LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER test_take_run AFTER INSERT ON {_TABLE} FOR EACH ROW EXECUTE FUNCTION test_take_run()"
            )
        else:
            cursor.execute(f"CREATE TRIGGER test_take_run AFTER INSERT ON {_TABLE} BEGIN {_TAKE} END")


@pytest.mark.django_db
def test_it_says_the_run_was_taken_when_a_worker_claimed_it_first(ticket, server):
    playbook = Playbook.objects.create(name="Load", steps=[{"probe": "load", "params": {}}])
    _runs_are_taken_as_they_are_created()
    with pytest.raises(CommandError, match=r"run \d+ was deleted or taken by a worker before it started"):
        call_command("collect", str(ticket.pk), str(server.pk), "--playbook", playbook.name)
    assert CollectionRun.objects.get(ticket=ticket).state == RunState.SUCCEEDED  # untouched by the command
