from django.contrib import admin

from apps.attendance.models import AttendanceEvent


@admin.register(AttendanceEvent)
class AttendanceEventAdmin(admin.ModelAdmin):
    list_display = ("person", "kind", "at", "site")
    list_filter = ("kind",)
    date_hierarchy = "at"
    raw_id_fields = ("person",)
