"""The fixed cast and the rule that nothing may be skipped in CI.

Cast: a tech, an admin, a manager, and an outsider (signed in, no role) who must see nothing.
"""

from __future__ import annotations

import io
import os
import random
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import DateTimeField, Model
from django.utils import timezone

from diagnostics.models import CollectionRun, Evidence, RunState
from tests import desk_template
from triage import access, services, users
from triage.models import Customer, Server, SlaTier

# The lab's fixtures (`lab`, `lab_host`: real hosts in network namespaces), the browser's, and
# docker-compose's (`compose`).
pytest_plugins = ["tests.lab", "tests.browser", "tests.compose", "tests.scheduling"]

# Playwright's sync API runs an event loop in the test thread; the ORM calls the
# tests make around it are synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

IN_CI = os.environ.get("CI", "").lower() == "true"

_skipped: list[str] = []

T = TypeVar("T")


# Unmarked modules whose tests take long (their durations in `make test`'s report): with root and browser
# tests they go first, so the many quick tests fill the end of a parallel run instead of one worker
# finishing a 50-second lab case while the others idle.
LONG_MODULES = frozenset(
    {
        "test_api_schemathesis",
        "test_rundesk",
        "test_seed_demo",
        "test_collection_queueing",
        "test_mailgate_imap",
        "test_worker_concurrency_settings",
        "test_embedded_broker",
        "test_commands",
        "test_database_restart",
        "test_reports_rollups",
    }
)


def _runs_long(item: pytest.Item) -> bool:
    module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return module in LONG_MODULES or any(item.iter_markers("root")) or any(item.iter_markers("browser"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A stable sort: each module's tests stay together (module-scoped fixtures are built once per worker).
    items.sort(key=lambda item: not _runs_long(item))


# Under pytest-xdist (`make test`: -n 4) these hooks also run in the controller, which receives every
# worker's reports: its summary lists the skips of all workers and its exit status fails the run.
def pytest_runtest_logreport(report):
    # An expected failure (xfail) is reported as "skipped" too; it ran, so it does not count.
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    # Tests that need root, namespaces or a browser must really run in CI.
    if IN_CI and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if IN_CI and _skipped:
        terminalreporter.write_line(f"FAILED: {len(_skipped)} test(s) skipped while CI=true:", red=True)
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)


@pytest.fixture(scope="session")
def django_db_keepdb(request, django_db_modify_db_settings) -> Iterator[bool]:
    """On SQLite each worker's test database starts as a copy of the migrated template
    (tests/desk_template.py) instead of migrating again; pytest-django, told to keep it, only checks
    that no migration is left to apply. The copy is removed here when the session ends."""
    from django.conf import settings

    reuse = bool(request.config.getvalue("reuse_db"))
    database = settings.DATABASES["default"]
    if reuse or database["ENGINE"] != "django.db.backends.sqlite3":
        yield reuse
        return
    path = desk_template.copy_to(Path(database["TEST"]["NAME"]))
    yield True
    path.unlink(missing_ok=True)


def make_user(username: str, *roles: str, password: str = "correct-horse-battery"):
    user = get_user_model().objects.create_user(username=username, password=password, email=f"{username}@desk.test")
    users.user_set_roles(user=user, roles=roles)
    return user


def make_cast() -> dict:
    """The roles and SLA tiers, and the cast's rows: tech, admin_user, manager, outsider, customer, server, ticket.

    What the function-scoped fixtures below build one by one, for a module that builds them once
    (`rows_for_scope`)."""
    users.roles_ensure()
    services.sla_tiers_ensure()
    cast = {
        "tech": make_user("tess", access.TECH),
        "admin_user": make_user("ada", access.ADMIN),
        "manager": make_user("manny", access.MANAGER),
        "outsider": make_user("olly"),
    }
    cast["customer"] = make_customer()
    cast["server"] = make_server(cast["customer"])
    cast["ticket"] = make_ticket(cast["customer"], cast["server"], cast["tech"])
    return cast


def make_customer() -> Customer:
    customer = Customer.objects.create(name="Northwind Hosting", sla_tier=SlaTier.objects.get(name="Gold"))
    customer.contacts.create(email="ops@northwind.test", name="Olga Ops")
    return customer


def make_server(customer: Customer) -> Server:
    return Server.objects.create(customer=customer, name="mx1", address="192.0.2.10")


def make_ticket(customer: Customer, server: Server, tech):
    return services.ticket_create(
        subject="Mail sits 30 seconds before sending",
        description="Outlook users wait 30 s after pressing Send.",
        customer=customer,
        priority=2,
        servers=[server],
        tag_names=["mail"],
        created_by=tech,
        now=timezone.now(),
    )


@pytest.fixture
def roles(db):
    users.roles_ensure()
    services.sla_tiers_ensure()


@pytest.fixture
def tech(roles):
    return make_user("tess", access.TECH)


@pytest.fixture
def admin_user(roles):
    return make_user("ada", access.ADMIN)


@pytest.fixture
def manager(roles):
    return make_user("manny", access.MANAGER)


@pytest.fixture
def outsider(roles):
    return make_user("olly")


@pytest.fixture
def customer(roles):
    return make_customer()


@pytest.fixture
def server(customer):
    return make_server(customer)


@pytest.fixture
def ticket(customer, server, tech):
    return make_ticket(customer, server, tech)


def rows_for_scope(django_db_blocker, build: Callable[[], T]) -> Iterator[T]:
    """Rows written once for a module's (or class's) tests, as Django's TestCase.setUpTestData does.

    Use from a module-scoped fixture: `yield from rows_for_scope(django_db_blocker, build)`, with a
    function-scoped fixture on `db` handing each test a deep copy of what `build` returned. An outer
    transaction holds the rows; each test's own `db` transaction nests in it as a savepoint and is rolled
    back after the test, and the outer one is rolled back when the scope ends, so no test sees another's
    writes and the next module finds the database empty. The database stays blocked between tests as
    usual. Not for transactional_db or live_server tests: they commit and flush beneath the outer
    transaction. While it is open the cast's fixtures (`tech`, `ticket`, ...) would clash with its rows,
    so every test in that scope takes its rows from the copy.
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            rows = build()
        except BaseException:
            outer.__exit__(*sys.exc_info())
            raise
    try:
        yield rows
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def seed():
    """A fresh random seed per test; lab tests draw their variable details (names, ports, limits) from it."""
    return random.SystemRandom().randrange(1 << 30)


@pytest.fixture
def rng(seed):
    return random.Random(seed)


@pytest.fixture(scope="session")
def shipped_kb_rows(django_db_setup, django_db_blocker) -> list[tuple[type[Model], list[dict]]]:
    """Every row `load_kb` writes into an empty knowledge base (symptoms, recipes, their links and
    revisions), per table: loaded once per test process by the command itself, read back, rolled back."""
    with django_db_blocker.unblock(), transaction.atomic():
        tables = apps.get_models(include_auto_created=True)  # with the many-to-many link tables
        before = {model: model._default_manager.count() for model in tables}
        call_command("load_kb", stdout=io.StringIO())
        rows = [
            (
                model,
                [
                    {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields}
                    for row in model._default_manager.order_by("pk")
                ],
            )
            for model in tables
            if model._default_manager.count() != before[model]
        ]
        transaction.set_rollback(True)
    return rows


@pytest.fixture
def kb(db, shipped_kb_rows):
    """The shipped knowledge base, as `make run` loads it (`load_kb`): the very rows the command wrote
    for this test process (shipped_kb_rows), inserted again with their ids, stamped now as a load now
    would stamp them. Loading it for real cost ~0.7 s of CPU a test; this, a few inserts."""
    now = timezone.now()
    with transaction.atomic():  # one commit under transactional_db, so the links' keys are checked at its end
        for model, rows in shipped_kb_rows:
            stamped = [f.attname for f in model._meta.concrete_fields if isinstance(f, DateTimeField)]
            model._default_manager.bulk_create([model(**{**row, **dict.fromkeys(stamped, now)}) for row in rows])
    # PostgreSQL's sequences do not follow rows inserted with their ids (a flush may have reset them).
    reset = connection.ops.sequence_reset_sql(no_style(), [model for model, _ in shipped_kb_rows])
    if reset:
        with connection.cursor() as cursor:
            for sql in reset:
                cursor.execute(sql)


@pytest.fixture
def make_run(ticket, server):
    """A finished run on `server` (of `ticket`, or `on=`) holding the given probe outputs as evidence."""

    def make(outputs: dict[str, str], *, on=None) -> CollectionRun:
        steps = [{"probe": probe, "params": {}} for probe in outputs]
        run = CollectionRun.objects.create(
            ticket=on or ticket,
            server=server,
            playbook_name="recorded",
            steps=steps,
            state=RunState.SUCCEEDED,
            finished_at=timezone.now(),
        )
        for step, (probe, text) in enumerate(outputs.items()):
            Evidence.objects.create(
                run=run,
                step=step,
                probe=probe,
                command=probe,
                exit_status=0,
                output=text.encode(),
                output_bytes=len(text.encode()),
            )
        return run

    return make


def login(client, user):
    client.force_login(user)
    return client


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


# For the modules that drive the desk's real collector worker (module-scoped: one Redis and one worker
# per module and test process).


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    """A Redis server of the module's own, which a test may kill and start again."""
    from tests.worker_support import RedisServer

    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def collector(redis, tmp_path_factory, django_db_setup, django_db_blocker):
    """The collector worker as the desk runs it, on that Redis."""
    from tests.worker_support import Worker, running, worker_env
    from triage import worker_commands

    tmp = tmp_path_factory.mktemp("collector")
    with django_db_blocker.unblock():
        env = worker_env(tmp, broker=redis.url())
    with running(Worker(worker_commands.collector_argv(), env, tmp / "collector.log")) as (worker,):
        yield worker
