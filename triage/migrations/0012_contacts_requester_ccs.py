"""Contacts per customer, a requester and CCs per ticket; Customer.contact_email becomes a Contact.

One migration: the Contact model, the ticket's fields, the data move, and the old field's removal.
It runs after 0011_ticket_merge_links (built beside it), so the event kinds here list both's."""

import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
from django.db import migrations, models


def contact_email_to_contacts(apps, schema_editor):
    """One contact per customer with a contact address. Two customers with the same address (any
    case) kept only the first by id, as routing did (it took the lowest id); an address that an
    address route gives to another customer stays with that customer (the route won before)."""
    Customer = apps.get_model("triage", "Customer")
    Contact = apps.get_model("triage", "Contact")
    MailRoute = apps.get_model("mailgate", "MailRoute")
    taken: set[str] = set()
    for customer in Customer.objects.exclude(contact_email="").order_by("pk").iterator():
        email = customer.contact_email.strip().lower()
        if not email or email in taken:
            continue
        if MailRoute.objects.filter(kind="address", value=email).exclude(customer_id=customer.pk).exists():
            continue
        taken.add(email)
        Contact.objects.create(customer=customer, email=email, created_at=customer.created_at)
    _fire_deferred_checks(schema_editor)


def _fire_deferred_checks(schema_editor):
    # PostgreSQL defers the new rows' foreign-key checks to commit, and refuses to ALTER a table
    # with checks pending ("pending trigger events"): run them now, before the column is dropped.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def contacts_to_contact_email(apps, schema_editor):
    Customer = apps.get_model("triage", "Customer")
    Contact = apps.get_model("triage", "Contact")
    for customer in Customer.objects.all().iterator():
        first = Contact.objects.filter(customer=customer).order_by("created_at", "id").first()
        if first is not None:
            Customer.objects.filter(pk=customer.pk).update(contact_email=first.email)
    _fire_deferred_checks(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("triage", "0011_ticket_merge_links"),
        ("mailgate", "0006_held_mail_decisions"),
    ]

    operations = [
        migrations.CreateModel(
            name="Contact",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(blank=True, max_length=200)),
                ("email", models.EmailField(max_length=254)),
                ("phone", models.CharField(blank=True, max_length=40)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="contacts", to="triage.customer"
                    ),
                ),
            ],
            options={
                "ordering": ["created_at", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        django.db.models.functions.text.Lower("email"), name="contact_email_unique_ci"
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="ticket",
            name="requester",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="requested_tickets",
                to="triage.contact",
            ),
        ),
        migrations.AddField(
            model_name="ticket",
            name="ccs",
            field=models.ManyToManyField(blank=True, related_name="copied_tickets", to="triage.contact"),
        ),
        migrations.AlterField(
            model_name="ticketevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Ticket filed"),
                    ("reply", "Public reply"),
                    ("note", "Internal note"),
                    ("status", "Status change"),
                    ("assignment", "Assignment"),
                    ("priority", "Priority change"),
                    ("tags", "Tags changed"),
                    ("servers", "Servers linked"),
                    ("people", "People changed"),
                    ("sla", "SLA breach"),
                    ("collection", "Collection"),
                    ("fix", "Fix"),
                    ("merge", "Merge"),
                    ("link", "Related tickets"),
                ],
                max_length=12,
            ),
        ),
        migrations.RunPython(contact_email_to_contacts, contacts_to_contact_email),
        migrations.RemoveField(
            model_name="customer",
            name="contact_email",
        ),
    ]
