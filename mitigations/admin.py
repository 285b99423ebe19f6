from django.contrib import admin

from mitigations.models import (
    Approval,
    BackendState,
    EnforcementTarget,
    GlobalAllowlistEntry,
    ListItem,
    Mitigation,
    MitigationList,
)


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    readonly_fields = ["user", "at", "comment"]


@admin.register(Mitigation)
class MitigationAdmin(admin.ModelAdmin):
    """Read-mostly: state changes go through the pages and the API (services), never through the admin."""

    list_display = ["id", "customer", "kind", "action", "state", "expires_at", "author"]
    list_filter = ["state", "kind", "action"]
    search_fields = ["expression", "value", "title"]
    readonly_fields = [f.name for f in Mitigation._meta.concrete_fields]
    inlines = [ApprovalInline]


class ListItemInline(admin.TabularInline):
    model = ListItem
    extra = 0


@admin.register(MitigationList)
class MitigationListAdmin(admin.ModelAdmin):
    list_display = ["name", "purpose", "customer", "updated_at"]
    inlines = [ListItemInline]


@admin.register(GlobalAllowlistEntry)
class GlobalAllowlistEntryAdmin(admin.ModelAdmin):
    list_display = ["value", "reason", "created_at"]
    search_fields = ["value", "reason"]


@admin.register(BackendState)
class BackendStateAdmin(admin.ModelAdmin):
    list_display = ["key", "checked_at", "error"]


@admin.register(EnforcementTarget)
class EnforcementTargetAdmin(admin.ModelAdmin):
    """Where operators configure enforcement: nothing is installed anywhere that is not listed here."""

    list_display = ["name", "kind", "customer", "namespace", "command", "account_id", "zone_id", "enabled"]
    list_filter = ["kind", "enabled"]
