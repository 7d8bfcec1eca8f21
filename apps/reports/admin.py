from django.contrib import admin

from apps.peoples.admin import ScopedAdmin
from apps.reports.models import GeneratedReport, PdfJob, ReportHistory, ScheduledReport


@admin.register(ScheduledReport)
class ScheduledReportAdmin(ScopedAdmin):
    list_display = (
        "name",
        "report_type",
        "site",
        "cron",
        "period",
        "file_format",
        "enabled",
        "last_generated_at",
    )
    list_filter = ("enabled", "report_type", "file_format")
    search_fields = ("name",)


@admin.register(GeneratedReport)
class GeneratedReportAdmin(ScopedAdmin):
    list_display = ("report_type", "site", "date_from", "date_to", "status", "mailed_at")
    list_filter = ("status", "report_type")
    readonly_fields = [f.name for f in GeneratedReport._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ReportHistory)
class ReportHistoryAdmin(ScopedAdmin):
    list_display = ("report_type", "person", "site", "file_format", "duration_ms", "generated_at")
    list_filter = ("report_type", "file_format")
    readonly_fields = [f.name for f in ReportHistory._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PdfJob)
class PdfJobAdmin(ScopedAdmin):
    list_display = ("title", "requested_by", "status", "progress", "expires_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in PdfJob._meta.fields]
