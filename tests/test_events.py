"""The desk's event bus (triage.events): side effects start from explicit calls in the services,
never from receivers on model saves, and its docstring lists every subscriber."""

from __future__ import annotations

import pytest
from django.db.models.signals import post_save, pre_save

from mailgate.models import OutboundMessage
from triage import events, services
from triage.celery import app
from triage.models import EventKind, Ticket, TicketEvent
from webhooks import services as webhooks
from webhooks.models import Delivery, EventType

pytest_plugins = ["tests.mailgate_fixtures"]

SUBSCRIBERS = {
    events.TICKET_EVENT_RECORDED: ["webhooks.subscribers.ticket_event", "mailgate.subscribers.ticket_event"],
    events.FIXES_SUGGESTED: ["webhooks.subscribers.fixes"],
}


@pytest.fixture
def endpoint(settings):
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = True
    endpoint, _ = webhooks.endpoint_create(
        name="Portal", url="http://127.0.0.1:9/hooks", event_types=list(EventType.values)
    )
    return endpoint


@pytest.fixture
def requested_ticket(customer, tech) -> Ticket:
    """A ticket with a requester, so a reply on it is mailed to the customer."""
    return services.ticket_create(
        subject="Mail sits 30 seconds",
        description="Outlook waits.",
        customer=customer,
        created_by=tech,
        requester=customer.contacts.get(),
    )


@pytest.fixture
def eager_tasks():
    """Celery tasks run in-process when enqueued, so a test sees what the worker would do."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_the_registered_subscribers_are_the_ones_the_module_docstring_lists():
    assert events.subscribers() == SUBSCRIBERS
    for names in SUBSCRIBERS.values():
        for name in names:
            assert f"``{name}``" in events.__doc__


def test_no_receiver_listens_to_timeline_saves():
    assert not post_save.has_listeners(TicketEvent)
    assert not pre_save.has_listeners(TicketEvent)


def test_an_unknown_topic_is_refused():
    with pytest.raises(ValueError, match="unknown topic"):
        events.subscribe("ticket_deleted", lambda **kwargs: None)


@pytest.mark.django_db
def test_a_timeline_entry_written_past_the_service_sends_nothing(
    endpoint, requested_ticket, tech, django_capture_on_commit_callbacks
):
    Delivery.objects.all().delete()
    with django_capture_on_commit_callbacks() as enqueued:
        TicketEvent.objects.create(ticket=requested_ticket, kind=EventKind.REPLY, actor=tech, body="Hello.")
    assert enqueued == []
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_the_same_entry_written_by_the_service_records_its_webhook_and_enqueues_its_mail(
    endpoint, requested_ticket, tech, django_capture_on_commit_callbacks
):
    Delivery.objects.all().delete()
    with django_capture_on_commit_callbacks() as enqueued:
        services.ticket_reply(ticket=requested_ticket, author=tech, body="Hello.")
    # The reply, and the move to triaging a first reply makes (workflow.REPLY_MOVES).
    changes = [d.payload["data"]["change"] for d in Delivery.objects.order_by("pk")]
    assert changes == [{"kind": "reply", "body": "Hello."}, {"kind": "status", "from": "new", "to": "triaging"}]
    assert len(enqueued) == 3, "each webhook delivery and the reply's mail notification, on commit"


@pytest.mark.django_db(transaction=True)
def test_a_reply_through_the_service_reaches_the_customer_and_a_direct_write_does_not(
    sink, requested_ticket, tech, django_capture_on_commit_callbacks, eager_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        TicketEvent.objects.create(ticket=requested_ticket, kind=EventKind.REPLY, actor=tech, body="Unseen.")
    assert sink.messages == [] and not OutboundMessage.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_reply(ticket=requested_ticket, author=tech, body="We are on it.")
    (sent,) = sink.messages
    assert sent["To"] == "ops@northwind.test" and "We are on it." in sent.get_content()
