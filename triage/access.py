"""Who may do what: one access helper per object type, used by every view.

Roles are Django groups. Techs work tickets; admins also manage customers,
servers and users; managers read everything and see dashboards but change
nothing. A signed-in user with no role sees nothing at all. Each helper raises
PermissionDenied, so a view cannot forget to act on a refusal.
"""

from __future__ import annotations

from typing import Literal

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import PermissionDenied

TECH = "tech"
ADMIN = "admin"
MANAGER = "manager"
ROLES = (TECH, ADMIN, MANAGER)

User = AbstractUser | AnonymousUser


def roles_of(user: User) -> frozenset[str]:
    """The user's roles, cached on the user object for the request."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_triage_roles", None)
    if cached is None:
        names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if user.is_superuser:
            names.add(ADMIN)
        cached = frozenset(names)
        user._triage_roles = cached  # type: ignore[attr-defined]  # a per-request cache on the user object
    return cached


def has_role(user: User, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def _require(user: User, *roles: str) -> None:
    if not has_role(user, *roles):
        raise PermissionDenied


def ticket_access(*, user: User, action: Literal["view", "work"]) -> None:
    """Every staff role reads every ticket; techs and admins work them."""
    if action == "view":
        _require(user, TECH, ADMIN, MANAGER)
    else:
        _require(user, TECH, ADMIN)


def customer_access(*, user: User, action: Literal["view", "manage"]) -> None:
    if action == "view":
        _require(user, TECH, ADMIN, MANAGER)
    else:
        _require(user, ADMIN)


def contact_access(*, user: User, action: Literal["view", "manage"]) -> None:
    """A customer's contacts: every staff role reads them; techs and admins add, edit and remove them,
    as a tech adds a CC from a ticket in the course of work. Which whole addresses and domains are a
    customer's (mail routes) stays admins' business (mail_route_access)."""
    if action == "view":
        _require(user, TECH, ADMIN, MANAGER)
    else:
        _require(user, TECH, ADMIN)


def can_manage_contacts(user: User) -> bool:
    return has_role(user, TECH, ADMIN)


def server_access(*, user: User, action: Literal["view", "manage"]) -> None:
    if action == "view":
        _require(user, TECH, ADMIN, MANAGER)
    else:
        _require(user, ADMIN)


def user_access(*, user: User, action: Literal["manage"] = "manage") -> None:
    _require(user, ADMIN)


def dashboard_access(*, user: User) -> None:
    _require(user, MANAGER, ADMIN)


def run_access(*, user: User, action: Literal["view", "run"]) -> None:
    """Collections: every staff role reads their evidence; techs and admins start them."""
    ticket_access(user=user, action="view" if action == "view" else "work")


def collection_setup_access(*, user: User) -> None:
    """Credentials, host keys, playbooks and the audit log are admins' business."""
    _require(user, ADMIN)


def can_work_tickets(user: User) -> bool:
    return has_role(user, TECH, ADMIN)


def knowledge_access(*, user: User, action: Literal["view", "edit"]) -> None:
    """The knowledge base: every staff role reads symptoms, recipes and their history;
    only admins change them or preview drafts against stored evidence."""
    if action == "view":
        _require(user, TECH, ADMIN, MANAGER)
    else:
        _require(user, ADMIN)


def sla_setup_access(*, user: User) -> None:
    """SLA tiers' clocks and the business calendars behind them are configuration: admins only."""
    _require(user, ADMIN)


def macro_access(*, user: User) -> None:
    """Macros are written by admins; techs apply them on a ticket (ticket_access "work")."""
    _require(user, ADMIN)


def webhook_access(*, user: User) -> None:
    """Webhook endpoints, their secrets and delivery logs are configuration: admins only."""
    _require(user, ADMIN)


def mailbox_access(*, user: User) -> None:
    """The IMAP mailboxes the desk polls (and their passwords) are configuration: admins only."""
    _require(user, ADMIN)


def held_mail_access(*, user: User) -> None:
    """Held and rejected inbound mail: techs and admins file it as tickets or reject it (it is
    unfiled customer mail, so not for managers' read-only eyes until it is a ticket)."""
    _require(user, TECH, ADMIN)


def mail_route_access(*, user: User) -> None:
    """Which addresses and domains belong to which customer is configuration: admins only."""
    _require(user, ADMIN)
