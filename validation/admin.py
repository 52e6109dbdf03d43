"""Django admin for baselines (raw editing; the schema editor page comes with the validation gate)."""
from django.contrib import admin

from collection.admin import HistoryInline
from collection.admin import SourceAdmin as CollectionSourceAdmin
from collection.models import Source

from . import services
from .models import Alert, AlertDelivery, AuditEntry, Baseline, SourcePolicy


class SourcePolicyInline(admin.StackedInline):
    """Validation's settings for the source, on the source's own form (a row is saved only when one changes)."""

    model = SourcePolicy
    can_delete = False
    extra = 1
    max_num = 1


# The source form is collection's; validation adds its policy to it, since collection knows nothing of validation.
admin.site.unregister(Source)


@admin.register(Source)
class SourceAdmin(CollectionSourceAdmin):
    list_display = [*CollectionSourceAdmin.list_display[:-1], "quarantine_on", "privacy_check", "created_at"]
    inlines = [*CollectionSourceAdmin.inlines, SourcePolicyInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("policy")

    @admin.display(description="Quarantine on")
    def quarantine_on(self, source):
        return _policy(source).get_quarantine_on_display()

    @admin.display(description="Personal data")
    def privacy_check(self, source):
        return _policy(source).get_privacy_check_display()


def _policy(source: Source) -> SourcePolicy:
    try:
        return source.policy
    except SourcePolicy.DoesNotExist:
        return SourcePolicy(source=source)


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
