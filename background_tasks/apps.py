from django.apps import AppConfig


class BackgroundTasksConfig(AppConfig):
    name = "background_tasks"
    verbose_name = "Background tasks"

    def ready(self) -> None:
        # Every process (web, management commands, workers) registers every task once the apps
        # are loaded: apps start tasks by registered name (apps.core.enqueue).
        from background_tasks import tasks  # noqa: F401
