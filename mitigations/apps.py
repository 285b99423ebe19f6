from django.apps import AppConfig


class MitigationsConfig(AppConfig):
    name = "mitigations"
