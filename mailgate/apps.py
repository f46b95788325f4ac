from django.apps import AppConfig


class MailgateConfig(AppConfig):
    name = "mailgate"
    verbose_name = "Mail gateway"

    def ready(self) -> None:
        # Signed up on the desk's event bus, whose docstring lists every subscriber (triage.events).
        from mailgate import desk_extension, subscribers
        from triage import events, extensions

        events.subscribe(events.TICKET_EVENT_RECORDED, subscribers.ticket_event)
        # The desk's uploads, {requester} and contact checks take in this app's parts without triage importing it.
        extensions.register(app_label=self.label, extension=desk_extension.EXTENSION)
