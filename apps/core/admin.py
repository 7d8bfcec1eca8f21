from django.apps import apps
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.core.dead_letters import requeue
from apps.core.models import BeatLock, DeadLetter, IdempotencyKey, WorkerHeartbeat


class OperatorAdmin(admin.ModelAdmin):
    """The task platform's own records: for operators (superusers) only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser


def restrict_library_admins(site: admin.AdminSite = admin.site) -> list[str]:
    """Re-register every admin that a library registered (django-celery-beat's periodic tasks
    and schedules, django-celery-results' task and group results, Django's permission groups)
    for operators only, and return their models' labels. Their rows belong to no client: a
    client's staff holding their model permissions would read every client's task results, or
    schedule any task with any arguments. The project's own admins (apps.*) are scoped by
    apps.peoples.admin.ScopedAdmin or are OperatorAdmins."""
    restricted = []
    for model in apps.get_models():
        if not site.is_registered(model):
            continue
        current = type(site.get_model_admin(model))
        if current.__module__.startswith("apps.") or issubclass(current, OperatorAdmin):
            continue
        site.unregister(model)
        site.register(model, type(f"Operators{current.__name__}", (OperatorAdmin, current), {}))
        restricted.append(model._meta.label)
    return restricted


@admin.register(DeadLetter)
class DeadLetterAdmin(OperatorAdmin):
    list_display = ("task_name", "task_id", "exception_type", "retries", "failed_at", "requeued_at")
    list_filter = ("task_name", "queue", "requeued_at")
    search_fields = ("task_name", "task_id", "exception_type")
    readonly_fields = [f.name for f in DeadLetter._meta.fields if f.name != "sealed_arguments"]
    exclude = ("sealed_arguments",)
    actions = ["requeue_selected"]

    @admin.action(description="Re-queue the selected tasks")
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        sent = 0
        for dead_letter in queryset:
            try:
                requeue(dead_letter)
                sent += 1
            except ValueError as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
        if sent:
            self.message_user(request, f"Re-queued {sent} task(s).", level=messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class PastLeaseFilter(admin.SimpleListFilter):
    """Claims whose run died and that no retry has taken over yet."""

    title = "lease"
    parameter_name = "lease"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("past", "In progress, past its lease")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "past":
            return queryset.filter(
                status=IdempotencyKey.Status.IN_PROGRESS, lease_expires_at__lt=timezone.now()
            )
        return queryset


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(OperatorAdmin):
    list_display = ("key", "status", "claims", "claimed_at", "lease_expires_at", "completed_at")
    list_filter = ("status", PastLeaseFilter)
    search_fields = ("key", "task_id")
    readonly_fields = [f.name for f in IdempotencyKey._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(OperatorAdmin):
    list_display = ("worker", "ran_at", "scheduled_for", "lateness_seconds", "beats")
    readonly_fields = [f.name for f in WorkerHeartbeat._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(BeatLock)
class BeatLockAdmin(OperatorAdmin):
    list_display = ("name", "holder", "acquired_at", "renewed_at", "expires_at")
    readonly_fields = [f.name for f in BeatLock._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
