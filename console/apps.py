from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from console import schema  # noqa: F401 - registers the OpenAPI authentication extensions
