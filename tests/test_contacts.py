"""A customer's contacts and a ticket's people: one owner per address (any case), a requester and CCs
that are the ticket's customer's, changed through the service like any ticket change (timeline entry,
version, a stale page refused), the pages that manage them, the API, and the data move from
Customer.contact_email."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from mailgate import services as mail_services
from tests.conftest import login
from tests.test_api import api_as
from triage import services
from triage.contacts import services as contacts
from triage.models import Contact, Customer, EventKind, SlaTier, Status, Ticket

HTMX = {"HX-Request": "true"}


@pytest.fixture
def olga(customer) -> Contact:
    return customer.contacts.get(email="ops@northwind.test")


@pytest.fixture
def kim(customer) -> Contact:
    return contacts.contact_create(customer=customer, email="Kim@Northwind.TEST", name="Kim Noc", phone="+49 30 1")


@pytest.fixture
def contoso(roles) -> Customer:
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    contacts.contact_create(customer=other, email="it@contoso.test", name="Contoso IT")
    return other


# --- Contacts -------------------------------------------------------------------------


def test_an_address_is_stored_lower_case_and_belongs_to_one_contact_whatever_its_case(kim, contoso):
    assert kim.email == "kim@northwind.test"
    with pytest.raises(ValidationError) as refused:
        contacts.contact_create(customer=contoso, email="KIM@northwind.test")
    assert refused.value.message_dict == {"email": ["kim@northwind.test is already a contact of Northwind Hosting."]}
    # The database holds the rule too, against two requests racing past the check.
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(customer=contoso, email="KIM@NORTHWIND.test")


def test_a_contact_and_an_address_route_never_give_one_address_to_two_customers(customer, contoso):
    mail_services.mail_route_add(customer=contoso, value="boss@contoso.test")
    with pytest.raises(ValidationError, match=r"boss@contoso\.test is routed to Contoso"):
        contacts.contact_create(customer=customer, email="boss@contoso.test")
    with pytest.raises(ValidationError, match=r"it@contoso\.test is a contact of Contoso"):
        mail_services.mail_route_add(customer=customer, value="it@contoso.test")
    # The customer's own route and contact may be the same address.
    assert contacts.contact_create(customer=contoso, email="boss@contoso.test").customer == contoso


def test_editing_a_contact_keeps_the_rule(kim, olga):
    with pytest.raises(ValidationError, match="already a contact of Northwind Hosting"):
        contacts.contact_update(contact=kim, email="OPS@northwind.test", name="Kim")
    assert contacts.contact_update(contact=kim, email="kim.noc@northwind.test", name="Kim N.").email == (
        "kim.noc@northwind.test"
    )


def test_the_customer_page_lists_contacts_and_offers_editing_to_techs_not_managers(
    client, customer, kim, tech, manager
):
    page = login(client, manager).get(reverse("customer", args=[customer.pk])).content.decode()
    assert "kim@northwind.test" in page and "Kim Noc" in page and "ops@northwind.test" in page
    assert reverse("contact_new", args=[customer.pk]) not in page and "Remove</button>" not in page
    page = login(client, tech).get(reverse("customer", args=[customer.pk])).content.decode()
    assert reverse("contact_new", args=[customer.pk]) in page and reverse("contact_edit", args=[kim.pk]) in page
    listing = client.get(reverse("customers")).content.decode()
    assert "ops@northwind.test" in listing  # the first (main) contact


def test_adding_a_contact_taken_by_another_customer_is_a_form_error_naming_that_customer(
    client, customer, contoso, tech
):
    response = login(client, tech).post(
        reverse("contact_new", args=[customer.pk]), {"email": "IT@contoso.test", "name": "Who"}
    )
    assert response.status_code == 400
    assert "it@contoso.test is already a contact of Contoso." in response.content.decode()
    assert not customer.contacts.filter(email="it@contoso.test").exists()

    response = client.post(
        reverse("contact_new", args=[customer.pk]), {"email": "lee@northwind.test", "name": "Lee", "phone": "123"}
    )
    assert response.status_code == 302
    assert customer.contacts.get(email="lee@northwind.test").name == "Lee"


def test_a_contact_edited_in_the_browser(client, kim, tech):
    response = login(client, tech).post(
        reverse("contact_edit", args=[kim.pk]), {"email": "kim2@northwind.test", "name": "Kim", "phone": ""}
    )
    assert response.status_code == 302
    kim.refresh_from_db()
    assert (kim.email, kim.name, kim.phone) == ("kim2@northwind.test", "Kim", "")


def test_removing_a_requester_clears_them_from_open_tickets_with_a_timeline_entry(client, ticket, kim, olga, tech):
    services.ticket_set_people(ticket=ticket, requester=kim, ccs=[olga], by=tech)
    closed = services.ticket_create(subject="Old", description="x", customer=ticket.customer, requester=kim)
    services.ticket_change_status(ticket=closed, status=Status.RESOLVED, by=tech)
    services.ticket_change_status(ticket=closed, status=Status.CLOSED, by=tech)
    closed.refresh_from_db()
    closed_version = closed.version
    ticket.refresh_from_db()
    version = ticket.version

    response = login(client, tech).post(reverse("contact_remove", args=[kim.pk]))

    assert response.status_code == 302
    assert "taken off 1 open ticket" in client.get(response["Location"]).content.decode()
    ticket.refresh_from_db()
    closed.refresh_from_db()
    assert ticket.requester is None and list(ticket.ccs.all()) == [olga] and ticket.version == version + 1
    entry = ticket.events.filter(kind=EventKind.PEOPLE).last()
    assert entry.actor == tech and entry.data["requester"] == {"from": "kim@northwind.test", "to": None}
    assert closed.requester is None and closed.version == closed_version  # history, not work: just unlinked
    assert not Contact.objects.filter(pk=kim.pk).exists()


def test_the_mail_routes_command_lists_the_contacts_with_the_routes(customer, kim):
    out = io.StringIO()
    call_command("mail_routes", "Northwind Hosting", "--add", "northwind.test", stdout=out)
    assert out.getvalue().splitlines() == [
        "address  ops@northwind.test  (contact)",
        "address  kim@northwind.test  (contact)",
        "domain   northwind.test",
    ]


# --- A ticket's people ----------------------------------------------------------------


def test_setting_the_people_records_who_changed_what_and_moves_the_version(ticket, kim, olga, tech):
    services.ticket_set_people(ticket=ticket, requester=olga, ccs=[kim, olga], by=tech)

    ticket.refresh_from_db()
    assert ticket.requester == olga and list(ticket.ccs.all()) == [kim]  # the requester is not also copied
    assert ticket.version == 2
    entry = ticket.events.get(kind=EventKind.PEOPLE)
    assert (entry.actor, entry.version) == (tech, 2)
    assert entry.data == {
        "requester": {"from": None, "to": "ops@northwind.test"},
        "ccs": {"from": [], "to": ["kim@northwind.test"]},
    }
    services.ticket_set_people(ticket=ticket, requester=olga, ccs=[kim], by=tech)  # nothing changes
    ticket.refresh_from_db()
    assert ticket.version == 2


def test_people_of_another_customer_are_refused_with_a_clear_error(ticket, contoso, olga, tech):
    foreign = contoso.contacts.get()
    with pytest.raises(ValidationError) as refused:
        services.ticket_set_people(ticket=ticket, requester=foreign, ccs=[olga], by=tech)
    assert refused.value.message_dict == {"requester": ["it@contoso.test is not a contact of Northwind Hosting."]}
    with pytest.raises(ValidationError) as refused:
        services.ticket_set_people(ticket=ticket, requester=olga, ccs=[foreign], by=tech)
    assert refused.value.message_dict == {"ccs": ["Not contacts of Northwind Hosting: it@contoso.test."]}
    with pytest.raises(ValidationError, match="not a contact of Northwind Hosting"):
        services.ticket_create(subject="x", description="y", customer=ticket.customer, requester=foreign)
    ticket.refresh_from_db()
    assert ticket.requester is None and ticket.version == 1


def test_the_copies_are_bounded(ticket, tech):
    many = [
        contacts.contact_create(customer=ticket.customer, email=f"c{i}@northwind.test")
        for i in range(services.MAX_CCS + 1)
    ]
    with pytest.raises(ValidationError, match=f"At most {services.MAX_CCS} people in copy"):
        services.ticket_set_people(ticket=ticket, requester=None, ccs=many, by=tech)


def test_a_stale_people_change_is_refused(ticket, kim, tech):
    services.ticket_change_priority(ticket=ticket, priority=1, by=tech)
    with pytest.raises(services.TicketChanged):
        services.ticket_set_people(ticket=ticket, requester=kim, ccs=[], by=tech, expected_version=1)
    ticket.refresh_from_db()
    assert ticket.requester is None


def test_the_people_part_answers_htmx_with_its_own_parts_and_the_reply_recipients(client, ticket, kim, olga, tech):
    response = login(client, tech).post(
        reverse("ticket_people", args=[ticket.pk]), {"requester": kim.pk, "ccs": [olga.pk], "version": 1}, headers=HTMX
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="action-people"' in page and 'id="ticket-facts" hx-swap-oob="true"' in page
    assert 'id="reply-recipients" hx-swap-oob="true"' in page
    assert "Mailed to kim@northwind.test, copy to ops@northwind.test." in page
    assert "Kim Noc &lt;kim@northwind.test&gt;" in page  # the facts, escaped
    assert "<textarea" not in page and 'id="reply-composer"' not in page  # drafts survive


def test_a_stale_people_form_is_a_409_saying_what_changed(client, ticket, kim, tech):
    services.ticket_set_tags(ticket=ticket, tag_names=["urgent"], by=tech)
    response = login(client, tech).post(
        reverse("ticket_people", args=[ticket.pk]), {"requester": kim.pk, "version": 1}, headers=HTMX
    )
    assert response.status_code == 409
    assert "Not saved: this ticket changed after you loaded it." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.requester is None


def test_a_new_contact_typed_on_the_ticket_joins_the_customer_and_the_copies(client, ticket, tech):
    response = login(client, tech).post(
        reverse("ticket_people", args=[ticket.pk]),
        {"requester": "", "new_cc": "Lee@Partner.test", "new_cc_name": "Lee", "version": 1},
        headers=HTMX,
    )
    assert response.status_code == 200
    lee = Contact.objects.get(email="lee@partner.test")
    assert (lee.customer, lee.name) == (ticket.customer, "Lee")
    assert list(ticket.ccs.all()) == [lee]


def test_a_new_contact_typed_on_the_ticket_that_is_another_customers_is_refused(client, ticket, contoso, tech):
    response = login(client, tech).post(
        reverse("ticket_people", args=[ticket.pk]), {"new_cc": "it@contoso.test", "version": 1}, headers=HTMX
    )
    page = response.content.decode()
    assert "it@contoso.test is already a contact of Contoso." in page
    assert not ticket.ccs.exists() and Contact.objects.get(email="it@contoso.test").customer == contoso
    ticket.refresh_from_db()
    assert ticket.version == 1


def test_a_new_contact_on_a_stale_page_is_not_kept_either(client, ticket, tech):
    services.ticket_set_tags(ticket=ticket, tag_names=["urgent"], by=tech)
    response = login(client, tech).post(
        reverse("ticket_people", args=[ticket.pk]), {"new_cc": "lee@partner.test", "version": 1}, headers=HTMX
    )
    assert response.status_code == 409
    assert not Contact.objects.filter(email="lee@partner.test").exists()


def test_the_new_ticket_form_takes_a_requester_of_the_chosen_customer_only(client, customer, contoso, olga, tech):
    login(client, tech)
    form = {"customer": customer.pk, "subject": "Disk full", "description": "df says 100%", "priority": 3}
    response = client.post(reverse("ticket_new"), {**form, "requester": contoso.contacts.get().pk})
    assert response.status_code == 200
    assert "it@contoso.test is not a contact of Northwind Hosting." in response.content.decode()
    assert not Ticket.objects.exists()

    response = client.post(reverse("ticket_new"), {**form, "requester": olga.pk})
    assert response.status_code == 302
    assert Ticket.objects.get().requester == olga


def test_the_requester_fills_the_macro_placeholder(ticket, kim, tech):
    from triage.macros import selectors as macro_selectors

    assert macro_selectors.placeholder_values(ticket=ticket, user=tech)["requester"] is None
    services.ticket_set_people(ticket=ticket, requester=kim, ccs=[], by=tech)
    ticket.refresh_from_db()
    assert macro_selectors.placeholder_values(ticket=ticket, user=tech)["requester"] == "Kim Noc"


# --- API ----------------------------------------------------------------------------


def test_the_api_shows_and_changes_the_people(ticket, kim, olga, contoso, tech):
    api = api_as(tech)
    url = reverse("api:ticket", args=[ticket.pk])
    assert api.get(url).json()["requester"] is None

    response = api.patch(url, {"requester": kim.pk, "ccs": [olga.pk]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["requester"] == {"id": kim.pk, "name": "Kim Noc", "email": "kim@northwind.test"}
    assert [c["email"] for c in body["ccs"]] == ["ops@northwind.test"]
    assert body["timeline"][-1]["kind"] == "people"

    response = api.patch(url, {"ccs": [contoso.contacts.get().pk]}, format="json")
    assert response.status_code == 400 and "Not contacts of Northwind Hosting" in response.json()["ccs"][0]
    response = api.patch(url, {"requester": None}, format="json")  # the CCs stay as they were
    assert response.json()["requester"] is None and len(response.json()["ccs"]) == 1


def test_the_api_files_a_ticket_with_its_people(customer, kim, olga, tech):
    response = api_as(tech).post(
        reverse("api:tickets"),
        {"customer": customer.pk, "subject": "VPN", "description": "down", "requester": olga.pk, "ccs": [kim.pk]},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["requester"]["email"] == "ops@northwind.test"
    assert [c["id"] for c in response.json()["ccs"]] == [kim.pk]


# --- The data move ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_one_contact_per_contact_address_and_keeps_routing_as_it_was():
    executor = MigrationExecutor(connection)
    before = [("triage", "0011_ticket_merge_links")]
    try:
        executor.migrate(before)
        old = (
            MigrationExecutor(connection).loader.project_state([*before, ("mailgate", "0006_held_mail_decisions")]).apps
        )
        OldCustomer, OldTier = old.get_model("triage", "Customer"), old.get_model("triage", "SlaTier")
        OldRoute = old.get_model("mailgate", "MailRoute")
        tier = OldTier.objects.create(name="Gold")
        made = {
            name: OldCustomer.objects.create(name=name, sla_tier=tier, contact_email=address).pk
            for name, address in [
                ("First", "Ops@First.test"),
                ("Second", "ops@first.TEST"),
                ("Routed", ""),
                ("Third", "shared@route.test"),
                ("Empty", ""),
            ]
        }
        OldRoute.objects.create(customer_id=made["Routed"], kind="address", value="shared@route.test")

        executor = MigrationExecutor(connection)
        executor.migrate([("triage", "0012_contacts_requester_ccs")])

        assert list(Contact.objects.values_list("customer__name", "email")) == [("First", "ops@first.test")]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
