from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Outbound webhooks"

    def ready(self) -> None:
        # Signed up on the desk's event bus, whose docstring lists every subscriber (triage.events).
        from triage import events
        from webhooks import subscribers

        events.subscribe(events.TICKET_EVENT_RECORDED, subscribers.ticket_event)
        events.subscribe(events.FIXES_SUGGESTED, subscribers.fixes)
