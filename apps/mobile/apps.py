from django.apps import AppConfig


class MobileConfig(AppConfig):
    name = "apps.mobile"
    label = "mobile"
    verbose_name = "Mobile devices and sync"
