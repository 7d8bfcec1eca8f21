from django.contrib import admin

from apps.integrations.models import NocAlert, RejectedSyncRecord
from apps.peoples.admin import ScopedAdmin


@admin.register(NocAlert)
class NocAlertAdmin(ScopedAdmin):
    list_display = (
        "kind",
        "subject",
        "source",
        "occurrences",
        "last_seen",
        "published_at",
        "mailed_at",
    )
    list_filter = ("kind",)
    search_fields = ("subject", "source")
    readonly_fields = [f.name for f in NocAlert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(RejectedSyncRecord)
class RejectedSyncRecordAdmin(ScopedAdmin):
    list_display = ("table", "record_uuid", "reason", "sender", "received_at")
    list_filter = ("table",)
    search_fields = ("record_uuid", "reason")
    readonly_fields = [f.name for f in RejectedSyncRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
