from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from apps.integrations.cdc import connect_change_publishing
        from apps.integrations.partner_events import connect_partner_events

        connect_change_publishing()
        connect_partner_events()
