from django.contrib import admin

from tickets.models import SlaPolicy, Ticket, TicketTemplate, TimelineEntry


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    """Admins tune what each plan is owed; changes apply to the clocks at once."""

    list_display = ["plan", "severity", "acknowledge_minutes", "first_update_minutes", "mitigation_minutes"]
    list_editable = ["acknowledge_minutes", "first_update_minutes", "mitigation_minutes"]
    list_filter = ["plan", "severity"]


@admin.register(TicketTemplate)
class TicketTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "subject", "position"]
    prepopulated_fields = {"slug": ["name"]}


class TimelineInline(admin.TabularInline):
    model = TimelineEntry
    extra = 0
    fields = ["at", "actor_name", "kind", "visibility", "body", "delivery_status"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Read only: tickets change through the console's services, which write the timeline and audit log."""

    list_display = ["number", "title", "customer", "severity", "status", "assignee", "sla_state", "created_at"]
    list_filter = ["status", "severity", "sla_state", "escalation_level"]
    search_fields = ["number", "title"]
    inlines = [TimelineInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
