"""The rules for staff accounts live in triage.users and a server's roles in triage.services: the admin
pages, the create_admin command and the API's server writes call them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from tests.conftest import make_user
from triage import access, services, users
from triage.models import Server, ServerRole


def _roles(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_a_new_account_has_its_roles_and_a_password_that_works(roles, client):
    user = users.user_create(
        username="newbie",
        password="sturdy-Kettle-42",
        roles=[access.TECH],
        email="newbie@desk.test",
        first_name="New",
        last_name="Bie",
    )
    assert _roles(user) == {access.TECH} and user.is_active and not user.is_staff
    assert (user.first_name, user.last_name, user.email) == ("New", "Bie", "newbie@desk.test")
    assert client.login(username="newbie", password="sturdy-Kettle-42")


def test_an_account_is_refused_with_every_reason_and_nothing_is_created(roles, tech):
    with pytest.raises(ValidationError) as refused:
        users.user_create(
            username=tech.username.upper(), password=tech.username.upper() + "1", roles=[access.TECH, "owner"]
        )
    errors = refused.value.message_dict
    assert errors["username"] == ["That user name is taken."]
    assert any("too similar" in message for message in errors["password"])
    assert errors["roles"] == ["Unknown roles: owner"]
    assert not get_user_model().objects.filter(username=tech.username.upper()).exists()


def test_a_common_password_is_refused(roles):
    with pytest.raises(ValidationError, match="too common"):
        users.user_create(username="newbie", password="password", roles=[])
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_an_admin_changes_anothers_roles_and_deactivates_them(admin_user, tech):
    users.user_update(user=tech, roles=[access.MANAGER], is_active=False, by=admin_user)
    tech.refresh_from_db()
    assert _roles(tech) == {access.MANAGER} and not tech.is_active


# "keep", not "roles": that name is conftest's fixture.
@pytest.mark.parametrize(("keep", "is_active"), [([access.TECH], True), ([access.ADMIN], False)])
def test_an_admin_cannot_demote_or_deactivate_themself(admin_user, keep, is_active):
    with pytest.raises(ValidationError, match="cannot remove your own admin role or deactivate yourself"):
        users.user_update(user=admin_user, roles=keep, is_active=is_active, by=admin_user)
    admin_user.refresh_from_db()
    assert _roles(admin_user) == {access.ADMIN} and admin_user.is_active


def test_a_superuser_may_drop_the_admin_role_but_not_deactivate_themself(roles):
    root = make_user("root", access.ADMIN)
    root.is_superuser = True
    root.save()
    users.user_update(user=root, roles=[access.TECH], is_active=True, by=root)
    assert _roles(root) == {access.TECH}
    with pytest.raises(ValidationError):
        users.user_update(user=root, roles=[access.TECH], is_active=False, by=root)


def test_a_server_is_saved_with_exactly_its_roles(customer):
    ServerRole.objects.create(name="mail")
    server = services.server_save(
        server=Server(customer=customer, name="mx9", address="192.0.2.9"), role_names=["mail", "web"]
    )
    assert sorted(server.roles.values_list("name", flat=True)) == ["mail", "web"]
    assert ServerRole.objects.filter(name="mail").count() == 1  # named again, not made twice
    services.server_save(server=server, role_names=["cache"])
    assert list(Server.objects.get(pk=server.pk).roles.values_list("name", flat=True)) == ["cache"]
