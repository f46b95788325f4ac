from django.apps import AppConfig


class MailgateConfig(AppConfig):
    name = "mailgate"
    verbose_name = "Mail gateway"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from mailgate import receivers

        post_save.connect(receivers.ticket_event_saved, sender="triage.TicketEvent",
                          dispatch_uid="mailgate.ticket_event_saved")
