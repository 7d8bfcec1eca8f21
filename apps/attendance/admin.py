from django.contrib import admin

from apps.attendance.models import AttendanceEvent
from apps.peoples.admin import ScopedAdmin, site_time


@admin.register(AttendanceEvent)
class AttendanceEventAdmin(ScopedAdmin):
    list_display = ("person", "kind", "punched", "site")
    list_select_related = ("person", "site")
    punched = site_time("at", "at")
    list_filter = ("kind",)
    date_hierarchy = "at"
    raw_id_fields = ("person",)
