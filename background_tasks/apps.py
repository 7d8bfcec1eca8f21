from django.apps import AppConfig


class BackgroundTasksConfig(AppConfig):
    name = "background_tasks"
    verbose_name = "Background tasks"
