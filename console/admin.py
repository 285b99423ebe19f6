from django.contrib import admin

from console.models import Asset, AuditEvent, Customer, Profile


class AssetInline(admin.TabularInline):
    model = Asset
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "timezone"]
    list_filter = ["plan"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [AssetInline]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "customer"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read only: the audit log is append-only, even for administrators."""

    list_display = ["at", "actor_name", "action", "object_repr", "customer"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_name", "request_id"]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False
