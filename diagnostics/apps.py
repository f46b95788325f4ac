from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"
    verbose_name = "Diagnostics"

    def ready(self) -> None:
        # The desk's ticket page shows collections and fixes without triage importing this app.
        from diagnostics import ticket_page
        from triage import ticket_page as desk_page

        desk_page.register(app_label=self.label, extension=ticket_page.EXTENSION)
