from triage import access


def desk(request):
    """Navigation flags for the base template (what this user's roles let them open)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_can_work": access.can_work_tickets(user),
        "nav_can_read": access.has_role(user, access.TECH, access.ADMIN, access.MANAGER),
        "nav_is_admin": access.has_role(user, access.ADMIN),
        "nav_dashboards": access.has_role(user, access.MANAGER, access.ADMIN),
    }
