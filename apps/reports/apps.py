from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"
    verbose_name = "Reports and dashboards"

    def ready(self) -> None:
        from apps.reports import freshness

        freshness.connect()
