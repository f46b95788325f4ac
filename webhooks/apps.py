from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Outbound webhooks"

    def ready(self) -> None:
        # Receivers live in their own module; connecting them here keeps import order explicit.
        from django.db.models.signals import post_save

        from diagnostics.signals import fixes_suggested
        from triage.models import TicketEvent
        from webhooks import receivers

        post_save.connect(receivers.on_ticket_event, sender=TicketEvent, dispatch_uid="webhooks.ticket_event")
        fixes_suggested.connect(receivers.on_fixes_suggested, dispatch_uid="webhooks.fixes_suggested")
