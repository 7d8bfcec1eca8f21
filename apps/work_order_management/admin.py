from django.contrib import admin, messages
from django.db import transaction

from apps.core.enqueue import enqueue_on_commit
from apps.peoples.admin import ScopedAdmin, site_time
from apps.work_order_management.models import (
    ApprovalStep,
    PermitAnswer,
    PermitRemark,
    PermitSection,
    PermitType,
    Vendor,
    WorkPermit,
)


@admin.register(Vendor)
class VendorAdmin(ScopedAdmin):
    list_display = ("code", "name", "email", "client", "enabled")
    search_fields = ("code", "name", "email")


class SectionInline(admin.TabularInline):
    model = PermitSection
    extra = 1


@admin.register(PermitType)
class PermitTypeAdmin(ScopedAdmin):
    list_display = ("name", "kind", "client", "enabled")
    list_filter = ("kind", "enabled")
    inlines = [SectionInline]


class StepInline(admin.TabularInline):
    model = ApprovalStep
    fields = ("role", "person", "status", "decided_at", "remark")
    readonly_fields = fields
    extra = 0
    can_delete = False


class AnswerInline(admin.TabularInline):
    model = PermitAnswer
    fields = ("section", "seqno", "question", "answer")
    readonly_fields = fields
    extra = 0
    can_delete = False


class RemarkInline(admin.TabularInline):
    model = PermitRemark
    fields = ("at", "person", "text")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(WorkPermit)
class WorkPermitAdmin(ScopedAdmin):
    """Read-only: permits move only through their flow (web pages and decision links)."""

    list_display = ("__str__", "kind", "site", "vendor", "status", "score", "raised")
    raised = site_time("created_at", "raised")
    list_filter = ("kind", "status")
    search_fields = ("permit_type__name", "vendor__name")
    list_select_related = ("permit_type", "site", "vendor")
    inlines = [AnswerInline, StepInline, RemarkInline]
    actions = ["remind_pending"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Remind pending verifiers and approvers")
    def remind_pending(self, request, queryset) -> None:
        with transaction.atomic():
            for pk in queryset.values_list("pk", flat=True):
                enqueue_on_commit("send_email_notification_for_wp", pk)
        self.message_user(request, "Reminders queued.", level=messages.SUCCESS)
