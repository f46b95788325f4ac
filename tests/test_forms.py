"""Form validation: bad input gets a clear error beside its field, never a 500, and loses nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import login
from triage.forms import ServerForm, parse_tag_names
from triage.models import Customer, Server, SlaTier, Ticket


def _errors(response) -> str:
    return response.content.decode()


def test_a_ticket_needs_a_subject_description_and_customer(client, tech, customer):
    login(client, tech)
    response = client.post(reverse("ticket_new"), {"subject": "", "description": "", "priority": "3"})
    assert response.status_code == 200
    body = _errors(response)
    assert body.count("This field is required.") == 3
    assert Ticket.objects.count() == 0


def test_a_refused_ticket_keeps_what_was_typed(client, tech, customer):
    login(client, tech)
    response = client.post(
        reverse("ticket_new"),
        {
            "customer": customer.pk,
            "subject": "Mail is slow",
            "description": "Users wait 30 seconds",
            "priority": "7",
            "tags": "mail",
        },
    )
    body = _errors(response)
    assert "Select a valid choice" in body
    assert 'value="Mail is slow"' in body and "Users wait 30 seconds" in body


def test_servers_of_another_customer_are_refused(client, tech, customer, server):
    other = Customer.objects.create(name="Other Co", sla_tier=SlaTier.objects.get(name="Standard"))
    foreign = Server.objects.create(customer=other, name="web9", address="198.51.100.9")
    login(client, tech)
    response = client.post(
        reverse("ticket_new"),
        {
            "customer": customer.pk,
            "subject": "s",
            "description": "d",
            "priority": "3",
            "servers": [foreign.pk],
        },
    )
    assert "Not servers of Northwind Hosting: web9." in _errors(response)
    assert Ticket.objects.count() == 0


def test_a_valid_ticket_is_filed_with_its_servers_and_tags(client, tech, customer, server):
    login(client, tech)
    response = client.post(
        reverse("ticket_new"),
        {
            "customer": customer.pk,
            "subject": "Mail is slow",
            "description": "30 s",
            "priority": "2",
            "servers": [server.pk],
            "tags": "Mail, slow-send mail",
            "assignee": tech.pk,
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("ticket", args=[ticket.pk])
    assert list(ticket.servers.all()) == [server]
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["mail", "slow-send"]
    assert ticket.assignee == tech and ticket.priority == 2


@pytest.mark.parametrize("raw,names", [("", []), ("mail", ["mail"]), ("Mail, mail  web", ["mail", "web"])])
def test_tags_are_normalised(raw, names):
    assert parse_tag_names(raw) == names


@pytest.mark.parametrize("raw", ["no way", "a;b", "<b>", "x" * 41, "-dash"])
def test_bad_tags_are_refused_with_a_reason(client, tech, ticket, raw):
    login(client, tech)
    response = client.post(reverse("ticket_tags", args=[ticket.pk]), {"tags": raw.replace(" ", ";")})
    assert "Not a valid tag" in _errors(response)
    assert list(ticket.tags.values_list("name", flat=True)) == ["mail"]


def test_an_empty_reply_is_refused(client, tech, ticket):
    login(client, tech)
    response = client.post(reverse("ticket_reply", args=[ticket.pk]), {"body": "   "})
    assert "This field is required." in _errors(response)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None


def test_only_techs_and_admins_can_be_assigned(client, tech, manager, ticket):
    login(client, tech)
    response = client.post(reverse("ticket_assign", args=[ticket.pk]), {"assignee": manager.pk})
    assert "Select a valid choice" in _errors(response)
    ticket.refresh_from_db()
    assert ticket.assignee is None


@pytest.mark.parametrize(
    "address,ok",
    [
        ("mail.example.com", True),
        ("192.0.2.10", True),
        ("2001:db8::1", True),
        ("MX1.Example.COM.", True),
        ("bad host", False),
        ("-x.example", False),
        ("a;rm -rf /", False),
        ("$(reboot)", False),
        ("", False),
    ],
)
def test_server_addresses_must_be_host_names_or_ip_addresses(customer, address, ok):
    form = ServerForm(
        {
            "customer": customer.pk,
            "name": "mx9",
            "address": address,
            "ssh_port": 22,
            "ssh_user": "root",
            "roles": "mail",
        }
    )
    assert form.is_valid() is ok, form.errors


@pytest.mark.parametrize(
    "field,value",
    [("ssh_port", 0), ("ssh_port", 70000), ("ssh_user", "root; id"), ("ssh_user", "Root"), ("roles", "mail, $(x)")],
)
def test_server_ssh_settings_are_validated(customer, field, value):
    data = {
        "customer": customer.pk,
        "name": "mx9",
        "address": "192.0.2.1",
        "ssh_port": 22,
        "ssh_user": "root",
        "roles": "mail",
    }
    data[field] = value
    form = ServerForm(data)
    assert not form.is_valid() and field in form.errors


def test_an_admin_adds_a_server_with_roles(client, admin_user, customer):
    login(client, admin_user)
    response = client.post(
        reverse("server_new"),
        {
            "customer": customer.pk,
            "name": "cache1",
            "address": "203.0.113.5",
            "ssh_port": 2222,
            "ssh_user": "diag",
            "roles": "cache, web",
        },
    )
    server = Server.objects.get(name="cache1")
    assert response.status_code == 302
    assert sorted(server.roles.values_list("name", flat=True)) == ["cache", "web"]


def test_a_duplicate_customer_name_is_a_field_error(client, admin_user, customer):
    login(client, admin_user)
    response = client.post(reverse("customer_new"), {"name": customer.name, "sla_tier": SlaTier.objects.first().pk})
    assert "Customer with this Name already exists." in _errors(response)


def test_an_admin_creates_a_user_with_a_role_and_a_strong_password(client, admin_user):
    login(client, admin_user)
    weak = client.post(reverse("user_new"), {"username": "newbie", "roles": ["tech"], "password": "password"})
    assert "This password is too common." in _errors(weak)
    client.post(reverse("user_new"), {"username": "newbie", "roles": ["tech"], "password": "sturdy-Kettle-42"})
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="newbie")
    assert list(user.groups.values_list("name", flat=True)) == ["tech"]


def test_an_admin_cannot_lock_themself_out(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("user_edit", args=[admin_user.pk]), {"roles": ["tech"], "is_active": "on"})
    assert "cannot remove your own admin role" in _errors(response)
    assert admin_user.groups.filter(name="admin").exists()


TEXT = st.text(max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.fixed_dictionaries(
        {
            "customer": TEXT,
            "subject": TEXT,
            "description": TEXT,
            "priority": TEXT,
            "servers": TEXT,
            "tags": TEXT,
            "assignee": TEXT,
        }
    )
)
def test_any_new_ticket_input_gets_a_page_never_a_server_error(client, tech, customer, data):
    login(client, tech)
    data = {k: v.replace("\x00", "") for k, v in data.items()}
    response = client.post(reverse("ticket_new"), data)
    assert response.status_code in (200, 302)
