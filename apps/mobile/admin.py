from django.contrib import admin

from apps.mobile.models import MobileDevice, MobileMessage
from apps.peoples.admin import ScopedAdmin


@admin.register(MobileDevice)
class MobileDeviceAdmin(ScopedAdmin):
    list_display = ("device_id", "person", "enabled", "last_seen_at")
    list_filter = ("enabled",)
    search_fields = ("device_id", "person__name")
    raw_id_fields = ("person",)


@admin.register(MobileMessage)
class MobileMessageAdmin(ScopedAdmin):
    list_display = ("client_id", "device", "kind", "status", "created_at", "finished_at")
    list_filter = ("kind", "status")
    search_fields = ("client_id", "task_id")
    readonly_fields = [f.name for f in MobileMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
