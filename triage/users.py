"""Writes to staff accounts: creating one, its roles (the desk's access groups, access.ROLES) and
whether it may sign in. The rules every account follows live here, so the admin pages and the
create_admin command cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from triage import access


def roles_ensure() -> list[Group]:
    return [Group.objects.get_or_create(name=name)[0] for name in access.ROLES]


@transaction.atomic
def user_set_roles(*, user, roles: Iterable[str]) -> None:
    unknown = set(roles) - set(access.ROLES)
    if unknown:
        raise ValidationError(f"Unknown roles: {', '.join(sorted(unknown))}")
    groups = roles_ensure()
    user.groups.remove(*groups)
    user.groups.add(*[g for g in groups if g.name in set(roles)])
    # access.roles_of caches them on this user object, which may be asked again in the same request.
    user.__dict__.pop("_triage_roles", None)


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    roles: Iterable[str],
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
):
    """A new account holding ``roles``. Refused (ValidationError by field, nothing created) when the name
    is taken in any letter case, or the password fails AUTH_PASSWORD_VALIDATORS for this account (one
    resembling its name or address is refused too)."""
    User = get_user_model()
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, is_staff=is_staff)
    errors: dict[str, list[str]] = {}
    if User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["That user name is taken."]
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        errors["password"] = exc.messages
    unknown = set(roles) - set(access.ROLES)
    if unknown:
        errors["roles"] = [f"Unknown roles: {', '.join(sorted(unknown))}"]
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    user_set_roles(user=user, roles=roles)
    return user


@transaction.atomic
def user_update(*, user, roles: Iterable[str], is_active: bool, by) -> None:
    """Set ``user``'s roles and whether they may sign in. Nobody removes their own admin role (a superuser
    keeps admin rights without it) or deactivates themself: that could leave the desk with no admin."""
    roles = list(roles)
    if user == by and ((access.ADMIN not in roles and not user.is_superuser) or not is_active):
        raise ValidationError("You cannot remove your own admin role or deactivate yourself.")
    user_set_roles(user=user, roles=roles)
    user.is_active = is_active
    user.save(update_fields=["is_active"])
