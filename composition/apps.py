from django.apps import AppConfig


class CompositionConfig(AppConfig):
    name = "composition"
    verbose_name = "Composition (commands spanning every app)"
