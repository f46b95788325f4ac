from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "triage"
    verbose_name = "Ticket desk"

    def ready(self):
        from django.urls import register_converter

        from triage.converters import IdConverter

        # Ids in every app's paths always fit the integer columns: a 30-digit id is a 404, not an overflow.
        register_converter(IdConverter, "id")
