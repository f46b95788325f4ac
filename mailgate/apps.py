from django.apps import AppConfig


class MailgateConfig(AppConfig):
    name = "mailgate"
    verbose_name = "Mail gateway"

    def ready(self) -> None:
        # Signed up on the desk's event bus, whose docstring lists every subscriber (triage.events).
        from mailgate import subscribers
        from triage import events

        events.subscribe(events.TICKET_EVENT_RECORDED, subscribers.ticket_event)
