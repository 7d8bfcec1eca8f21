from django.apps import AppConfig


class PeoplesConfig(AppConfig):
    name = "apps.peoples"
    label = "peoples"
    verbose_name = "People"
