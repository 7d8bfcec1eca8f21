from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.integrations.models import (
    NocAlert,
    PartnerDelivery,
    PartnerSubscription,
    RejectedSyncRecord,
    SyncBatch,
)
from apps.peoples.access import of_their_client
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


@admin.register(PartnerSubscription)
class PartnerSubscriptionAdmin(ScopedAdmin):
    list_display = ("name", "client", "event", "url", "enabled")
    list_filter = ("event", "enabled")
    search_fields = ("name", "url")


@admin.register(PartnerDelivery)
class PartnerDeliveryAdmin(ScopedAdmin):
    list_display = ("subscription", "subject", "status", "response_status", "created_at")
    list_filter = ("status", "subscription__event")
    search_fields = ("subject", "task_id")
    readonly_fields = [f.name for f in PartnerDelivery._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        deliveries = admin.ModelAdmin.get_queryset(self, request)
        return of_their_client(deliveries, request.user, client="subscription__client")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(SyncBatch)
class SyncBatchAdmin(ScopedAdmin):
    list_display = ("table", "sender", "records", "applied", "status", "created_at")
    list_filter = ("table", "status")
    readonly_fields = [f.name for f in SyncBatch._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
