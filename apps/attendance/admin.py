from django.contrib import admin

from apps.attendance.models import AttendanceEvent
from apps.peoples.admin import ScopedAdmin


@admin.register(AttendanceEvent)
class AttendanceEventAdmin(ScopedAdmin):
    list_display = ("person", "kind", "at", "site")
    list_filter = ("kind",)
    date_hierarchy = "at"
    raw_id_fields = ("person",)
