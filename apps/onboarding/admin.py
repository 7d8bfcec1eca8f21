from django.contrib import admin

from apps.onboarding.models import BusinessUnit, SiteGroup, TypeAssist
from apps.peoples.admin import ScopedAdmin


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
