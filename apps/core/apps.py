from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Task platform"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.core.beat import install_beat_schedule_after_migrate

        post_migrate.connect(install_beat_schedule_after_migrate, sender=self)
