from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"
    verbose_name = "Diagnostics"

    def ready(self) -> None:
        # The desk's pages, macros and merges take in this app's parts without triage importing it.
        from diagnostics import desk_extension
        from triage import extensions

        extensions.register(app_label=self.label, extension=desk_extension.EXTENSION)
