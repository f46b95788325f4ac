"""Access rules the API adds to triage/access.py (which stays the authority for everything else)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied

from triage import access


def token_access(*, user: User | AnonymousUser) -> User:
    """Staff manage their own API tokens; a user with no role gets none (they could do nothing with one).
    Returns the user, now known to be signed in."""
    if isinstance(user, AnonymousUser) or not access.has_role(user, *access.ROLES):
        raise PermissionDenied
    return user
