from django.contrib import admin

from apps.peoples.admin import ScopedAdmin
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.models import EscalationMatrix, Ticket, TicketEvent


class TicketEventInline(admin.TabularInline):
    model = TicketEvent
    fields = ("at", "action", "actor", "details")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Ticket)
class TicketAdmin(ScopedAdmin):
    list_display = ("number", "description", "site", "status", "priority", "escalation_level")
    list_filter = ("status", "priority", "source", "escalation_level")
    search_fields = ("description",)
    list_select_related = ("site",)
    readonly_fields = ("escalation_level", "escalated_at", "version", "created_by", "modified_by")
    raw_id_fields = ("jobneed", "asset")
    inlines = [TicketEventInline]

    def save_model(self, request, obj, form, change):
        save_ticket(obj, request.user, created=not change)


@admin.register(EscalationMatrix)
class EscalationMatrixAdmin(ScopedAdmin):
    list_display = ("client", "site", "category", "job", "level", "frequency_value", "frequency")
    list_filter = ("frequency", "level")
    raw_id_fields = ("job",)
