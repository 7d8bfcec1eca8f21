from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Task platform"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_migrate

        from apps.core import observability, soft_limits  # noqa: F401 (connects its signals)
        from apps.core.admin import restrict_library_admins
        from apps.core.beat import install_beat_schedule_after_migrate
        from apps.core.logging import redact_every_record

        post_migrate.connect(install_beat_schedule_after_migrate, sender=self)
        # Signed-link tokens out of every log line of every process (web, worker, beat).
        redact_every_record()
        # The admin has discovered every app's registrations by now (it is the first app).
        restrict_library_admins()
        # Here, so that web, worker and beat processes all report (Django sets up each).
        if settings.SENTRY_DSN:
            observability.configure_error_reporting(
                settings.SENTRY_DSN, settings.SENTRY_TRACES_SAMPLE_RATE, settings.INTELLIWIZ_ENV
            )
        if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
            observability.configure_tracing()
