from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from console.models import ApiToken, Asset, AuditEvent, Customer, Profile
from console.services import api_token_revoke, customer_delete, two_factor_enrolment_issue


class AssetInline(admin.TabularInline):
    model = Asset
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "timezone", "archived_at"]
    list_filter = ["plan"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["archived_at"]
    inlines = [AssetInline]

    # The same guard as the API: a customer with live mitigations or open tickets is not deleted (409).
    def delete_model(self, request, obj: Customer) -> None:
        customer_delete(customer=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for customer in queryset:
            customer_delete(customer=customer, actor=request.user)


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "customer"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed and revoked here; they are created by their owner (the key is shown once)."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at"]
    exclude = ["key_hash"]

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj: ApiToken) -> None:
        api_token_revoke(token=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for token in queryset:
            api_token_revoke(token=token, actor=request.user)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read only: the audit log is append-only, even for administrators."""

    list_display = ["at", "actor_name", "action", "object_repr", "customer"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_name", "request_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class ConsoleUserAdmin(UserAdmin):
    """Django's user admin, plus issuing two-factor enrolment links (the link is shown once, here)."""

    actions = ["issue_enrolment_link"]

    @admin.action(description="Issue a two-factor enrolment link (single use)")
    def issue_enrolment_link(self, request, queryset) -> None:
        for user in queryset:
            try:
                issued = two_factor_enrolment_issue(user=user, actor=request.user)
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            self.message_user(
                request,
                format_html(
                    "Enrolment link for {} (single use, until {} UTC, shown only now): "
                    '<code class="enrolment-link">{}</code>',
                    user.get_username(),
                    f"{issued.enrolment.expires_at:%Y-%m-%d %H:%M}",
                    issued.url,
                ),
                messages.SUCCESS,
            )
