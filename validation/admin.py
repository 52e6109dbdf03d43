"""Django admin for baselines (raw editing; the schema editor page comes with the validation gate)."""
from django.contrib import admin

from collection.admin import HistoryInline

from . import services
from .models import Alert, AlertDelivery, AuditEntry, Baseline


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "name", "origin", "row_count", "is_active", "created_at"]
    list_filter = ["source", "origin", "is_active"]
    readonly_fields = ["source", "origin", "origin_detail", "profile", "row_count", "is_active", "created_at",
                       "created_by"]
    actions = ["activate"]

    def has_add_permission(self, request):
        return False  # made from a reference file or from batches, by the services

    @admin.action(description="Make the selected baseline its source's active one")
    def activate(self, request, queryset):
        for baseline in queryset:
            services.baseline_activate(baseline=baseline, by=request.user)
        self.message_user(request, f"Activated {queryset.count()} baseline(s).")


class DeliveryInline(HistoryInline):
    model = AlertDelivery
    readonly_fields = ["channel", "target", "attempt", "ok", "status_code", "error", "at"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["source", "kind", "occurrences", "opened_at", "last_seen_at", "resolved_at"]
    list_filter = ["kind", "source", ("resolved_at", admin.EmptyFieldListFilter)]
    readonly_fields = [f.name for f in Alert._meta.fields]
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: nobody edits or deletes the audit log from the app."""

    list_display = ["at", "actor", "action", "source", "batch", "baseline", "detail"]
    list_filter = ["action", "source"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
