"""Store each ticket's full-text document instead of recomputing it (issue 5).

The GIN index of 0002 was on an expression, so any row the planner reached other than through that
index paid `to_tsvector` again (about 30-70 us a ticket). A search across all statuses walks the
deadline order (index ticket_due of 0004) checking each row's document until the page is full: for
a word in 0.5% of tickets that is ~18,000 documents, 0.4-0.7 s of to_tsvector. A stored generated
column makes the check a comparison, and the GIN index (same name, ticket_fulltext) moves onto it.

PostgreSQL only; the column is not a model field (SQLite has no tsvector and searches by substring),
so Django neither selects nor writes it, and PostgreSQL keeps it current on every insert and update.
selectors.TICKET_DOCUMENT_SQL names it.
"""

from django.db import migrations

FORWARD = [
    "ALTER TABLE triage_ticket ADD COLUMN IF NOT EXISTS search_document tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, subject || ' ' || description)) STORED",
    "DROP INDEX IF EXISTS ticket_fulltext",
    "CREATE INDEX ticket_fulltext ON triage_ticket USING gin (search_document)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS ticket_fulltext",
    "ALTER TABLE triage_ticket DROP COLUMN IF EXISTS search_document",
    "CREATE INDEX ticket_fulltext ON triage_ticket "
    "USING gin (to_tsvector('english'::regconfig, subject || ' ' || description))",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("triage", "0004_ticket_queue_order_indexes")]
    operations = [migrations.RunPython(forward, backward)]
