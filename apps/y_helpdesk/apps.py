from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "apps.y_helpdesk"
    label = "y_helpdesk"
    verbose_name = "Helpdesk"
