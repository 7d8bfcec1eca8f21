from django.contrib import admin
from django.utils import timezone

from apps.peoples.admin import ScopedAdmin, site_time
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.conversation import describe
from apps.y_helpdesk.models import EscalationMatrix, Ticket, TicketComment, TicketEvent


class ReadOnlyInline(admin.TabularInline):
    """A ticket's conversation and audit trail: shown, never added to, changed or deleted here
    (comments are added on the ticket's page, history by the saves themselves)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="when (site time)")
    def when(self, row) -> str:
        site = row.ticket.site
        return f"{timezone.localtime(row.at, site.tzinfo):%d %b %Y, %H:%M} ({site.time_zone})"


class TicketCommentInline(ReadOnlyInline):
    model = TicketComment
    fields = ("when", "author", "text")
    readonly_fields = fields
    verbose_name_plural = "conversation"


class TicketEventInline(ReadOnlyInline):
    model = TicketEvent
    fields = ("when", "actor", "what")
    readonly_fields = fields
    verbose_name = "history entry"
    verbose_name_plural = "history"

    @admin.display(description="what")
    def what(self, event: TicketEvent) -> str:
        return f"{event.get_action_display()}: {describe(event)}"


@admin.register(Ticket)
class TicketAdmin(ScopedAdmin):
    list_display = (
        "number",
        "description",
        "site",
        "status",
        "priority",
        "escalation_level",
        "raised",
    )
    raised = site_time("created_at", "raised")
    list_filter = ("status", "priority", "source", "escalation_level")
    search_fields = ("description",)
    list_select_related = ("site",)
    readonly_fields = ("escalation_level", "escalated_at", "version", "created_by", "modified_by")
    raw_id_fields = ("jobneed", "asset")
    inlines = [TicketCommentInline, TicketEventInline]

    def save_model(self, request, obj, form, change):
        save_ticket(obj, request.user, created=not change)


@admin.register(EscalationMatrix)
class EscalationMatrixAdmin(ScopedAdmin):
    list_display = ("client", "site", "category", "job", "level", "frequency_value", "frequency")
    list_filter = ("frequency", "level")
    raw_id_fields = ("job",)
