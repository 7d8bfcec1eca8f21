from django.apps import AppConfig


class DemoConfig(AppConfig):
    """manage.py load_demo_data: it builds data of every app, so it sits above them all."""

    name = "apps.demo"
    label = "demo"
    verbose_name = "Demo data"
