import functools

from triage import access
from triage.health import WorkerHealth, worker_health


def _worker_down() -> WorkerHealth | None:
    health = worker_health()
    return None if health.alive else health


def desk(request):
    """Navigation flags for the base template (what this user's roles let them open)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    is_staff = access.has_role(user, access.TECH, access.ADMIN, access.MANAGER)
    return {
        # Every staff page says so when no worker is alive: collections, mail and SLA flags wait.
        # A callable, cached per request: only pages that show the banner (base.html) query.
        "worker_down": functools.cache(_worker_down) if is_staff else None,
        "nav_can_work": access.can_work_tickets(user),
        "nav_can_read": is_staff,
        "nav_is_admin": access.has_role(user, access.ADMIN),
        "nav_dashboards": access.has_role(user, access.MANAGER, access.ADMIN),
    }
