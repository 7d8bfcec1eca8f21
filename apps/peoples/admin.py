from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from apps.peoples.models import GroupMembership, People, PeopleGroup


@admin.register(People)
class PeopleAdmin(UserAdmin):
    ordering = ("code",)
    list_display = ("code", "name", "loginid", "email", "site", "designation", "is_active")
    list_filter = (
        "is_active",
        "is_verified",
        "is_client_admin",
        "receives_alert_mails",
        "is_staff",
    )
    search_fields = ("code", "name", "loginid", "email", "mobile")
    list_select_related = ("site", "designation")
    fieldsets = (
        (None, {"fields": ("loginid", "password")}),
        ("Identity", {"fields": ("code", "name", "email", "mobile")}),
        ("Organisation", {"fields": ("client", "site", "designation", "work_type")}),
        (
            "Flags",
            {"fields": ("is_active", "is_verified", "is_client_admin", "receives_alert_mails")},
        ),
        ("Admin access", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("loginid", "code", "name", "email", "password1", "password2"),
            },
        ),
    )


class GroupMembershipInline(admin.TabularInline):
    model = GroupMembership
    extra = 1
    autocomplete_fields = ("people",)


@admin.register(PeopleGroup)
class PeopleGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "client", "site", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name",)
    list_select_related = ("client", "site")
    inlines = [GroupMembershipInline]
