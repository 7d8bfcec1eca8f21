from django.apps import AppConfig


class WorkOrderManagementConfig(AppConfig):
    name = "apps.work_order_management"
    label = "work_order_management"
    verbose_name = "Work permits and SLA reports"
