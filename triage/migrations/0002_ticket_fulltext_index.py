"""Full-text index for ticket search on PostgreSQL (SQLite searches by substring).

Kept out of Meta.indexes because SQLite cannot build it; the expression must
match selectors.TICKET_DOCUMENT_SQL exactly for the planner to use it.
"""

from django.db import migrations

INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS ticket_fulltext ON triage_ticket "
    "USING gin (to_tsvector('english'::regconfig, subject || ' ' || description))"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INDEX_SQL)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS ticket_fulltext")


class Migration(migrations.Migration):
    dependencies = [("triage", "0001_initial")]
    operations = [migrations.RunPython(create_index, drop_index)]
