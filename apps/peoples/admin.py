from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from apps.core.times import local_label
from apps.onboarding.models import BusinessUnit, SiteGroup, TypeAssist
from apps.peoples.access import of_their_client
from apps.peoples.models import GroupMembership, People, PeopleGroup


def admin_scope(queryset: QuerySet, person) -> QuerySet:
    """What a non-superuser sees of a model in the admin: rows visible to them (models with
    ``visible_to``), their client's rows (models with a client), or nothing (the platform's
    own models are for operators)."""
    if person.is_superuser:
        return queryset
    if hasattr(queryset, "visible_to"):
        return queryset.visible_to(person)
    if any(field.name == "client" for field in queryset.model._meta.get_fields()):
        return of_their_client(queryset, person)
    return queryset.none()


def site_time(field: str, label: str, site: str = "site"):
    """A list column showing `field` in its row's site's time, the zone named: site work reads
    in site time in the admin as on the pages (anything else shows in the person's zone, as
    the admin's header says)."""

    @admin.display(description=f"{label} (site time)", ordering=field)
    def show(model_admin, row) -> str:  # a method of the ModelAdmin it is set on
        unit = getattr(row, site)
        value = getattr(row, field)
        return f"{local_label(value, unit.tzinfo)} ({unit.time_zone})" if value else "-"

    return show


class ScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose lists, objects and related choices follow apps.peoples.access."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return admin_scope(super().get_queryset(request), request.user)

    def _scoped_choices(self, db_field, request: HttpRequest, kwargs: dict) -> dict:
        related: type[Model] = db_field.remote_field.model
        kwargs.setdefault("queryset", admin_scope(related._default_manager.all(), request.user))
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(
            db_field, request, **self._scoped_choices(db_field, request, kwargs)
        )

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(
            db_field, request, **self._scoped_choices(db_field, request, kwargs)
        )


@admin.register(People)
class PeopleAdmin(ScopedAdmin, UserAdmin):
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
    # What only an operator may change: who else becomes one, and which client a person is of.
    OPERATOR_FIELDS = ("client", "is_staff", "is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + self.OPERATOR_FIELDS

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
class PeopleGroupAdmin(ScopedAdmin):
    list_display = ("name", "client", "site", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name",)
    list_select_related = ("client", "site")
    inlines = [GroupMembershipInline]


# The sites' own admin: scoped like every other list, so it lives beside the scoping (onboarding
# sits below peoples and cannot use it).
@admin.register(TypeAssist)
class TypeAssistAdmin(ScopedAdmin):
    list_display = ("category", "code", "name", "enabled")
    list_filter = ("category", "enabled")
    search_fields = ("code", "name")


@admin.register(BusinessUnit)
class BusinessUnitAdmin(ScopedAdmin):
    list_display = ("code", "name", "kind", "parent", "client", "time_zone", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("code", "name")
    list_select_related = ("parent", "client")
    autocomplete_fields = ("parent",)


@admin.register(SiteGroup)
class SiteGroupAdmin(ScopedAdmin):
    list_display = ("name", "client", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name",)
    list_select_related = ("client",)
    filter_horizontal = ("sites",)
