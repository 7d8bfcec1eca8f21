from django.contrib import admin

from apps.activity.actions import save_job
from apps.activity.models import (
    Asset,
    Job,
    Jobneed,
    JobneedDetails,
    Question,
    QuestionSet,
    Reminder,
)
from apps.peoples.admin import ScopedAdmin, site_time


@admin.register(Asset)
class AssetAdmin(ScopedAdmin):
    list_display = ("code", "name", "site", "status", "enabled")
    list_filter = ("status", "enabled")
    search_fields = ("code", "name")
    list_select_related = ("site",)


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 1


@admin.register(QuestionSet)
class QuestionSetAdmin(ScopedAdmin):
    list_display = ("name", "client", "enabled")
    search_fields = ("name",)
    inlines = [QuestionInline]


class CheckpointInline(admin.TabularInline):
    model = Job
    fk_name = "parent"
    fields = ("seqno", "name", "asset", "question_set", "enabled")
    extra = 0
    verbose_name = "checkpoint"


@admin.register(Job)
class JobAdmin(ScopedAdmin):
    list_display = ("name", "identifier", "site", "cron", "enabled", "planned_up_to")
    planned_up_to = site_time("last_generated_at", "planned up to")
    list_filter = ("identifier", "enabled")
    search_fields = ("name",)
    list_select_related = ("site",)
    readonly_fields = (
        "client",
        "last_generated_at",
        "created_by",
        "modified_by",
        "created_at",
        "modified_at",
    )
    inlines = [CheckpointInline]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(parent__isnull=True)

    def save_model(self, request, obj, form, change):
        save_job(obj, created=not change, changed=form.changed_data, by=request.user)


class DetailsInline(admin.TabularInline):
    model = JobneedDetails
    fields = ("seqno", "question", "answer_type", "min_value", "max_value", "answer", "is_alert")
    extra = 0


@admin.register(Jobneed)
class JobneedAdmin(ScopedAdmin):
    list_display = ("description", "identifier", "site", "planned", "expires", "status")
    planned = site_time("plan_at", "planned")
    expires = site_time("expiry_at", "expires")
    list_filter = ("status", "identifier")
    search_fields = ("description",)
    date_hierarchy = "plan_at"
    list_select_related = ("site",)
    raw_id_fields = ("job", "parent", "people", "group", "performed_by", "asset")
    # Status moves only through apps.activity.state_machine, never by free editing.
    readonly_fields = ("status", "autoclosed_at", "autoclose_notified_at", "alert_mail_sent_at")
    inlines = [DetailsInline]


@admin.register(Reminder)
class ReminderAdmin(ScopedAdmin):
    list_display = ("description", "site", "due", "status", "attempts", "sent")
    list_select_related = ("site",)
    due = site_time("due_at", "due")
    sent = site_time("sent_at", "sent")
    list_filter = ("status",)
    raw_id_fields = ("job", "jobneed", "rule", "people", "group")
