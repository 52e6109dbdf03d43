"""Django admin for raw editing: sources and their keys (generated and shown once), batches, records, feedback."""
from django.contrib import admin, messages
from django.utils.html import format_html

from . import services
from .models import Batch, BatchTransition, FeedbackEvent, Record, Source, SourceKey


class SourceKeyInline(admin.TabularInline):
    model = SourceKey
    extra = 0
    can_delete = False
    fields = ["prefix", "name", "rate", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request, obj=None):
        return False  # keys are made by the "generate a new API key" action, which shows the key once


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "from_model", "expected_interval", "created_at"]
    list_filter = ["kind", "from_model"]
    search_fields = ["name"]
    inlines = [SourceKeyInline]
    actions = ["generate_key"]

    @admin.action(description="Generate a new API key (shown once)")
    def generate_key(self, request, queryset):
        for source in queryset:
            key, raw = services.source_key_create(source=source, name="admin", created_by=request.user)
            self.message_user(
                request,
                format_html("New key for <b>{}</b>: <code>{}</code> — copy it now, it is not shown again.",
                            source.name, raw),
                messages.WARNING,
            )


@admin.register(SourceKey)
class SourceKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "source", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["source"]
    readonly_fields = ["prefix", "hashed", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            services.source_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class HistoryInline(admin.TabularInline):
    """Rows that are history: shown, never added, changed or deleted in the admin."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TransitionInline(HistoryInline):
    model = BatchTransition
    readonly_fields = ["from_status", "to_status", "actor", "note", "at"]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "status", "format", "record_count", "received_at", "ingested_at"]
    list_filter = ["status", "source", "format"]
    readonly_fields = [f.name for f in Batch._meta.fields]
    inlines = [TransitionInline]

    def has_add_permission(self, request):
        return False


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ["external_id", "source", "batch", "line", "is_current", "observed_at"]
    list_filter = ["source", "is_current"]
    search_fields = ["external_id"]
    raw_id_fields = ["batch"]
    show_full_result_count = False


@admin.register(FeedbackEvent)
class FeedbackEventAdmin(admin.ModelAdmin):
    list_display = ["external_id", "source", "signal", "value", "actor", "occurred_at", "record"]
    list_filter = ["source", "signal"]
    search_fields = ["external_id"]
    raw_id_fields = ["record"]
    show_full_result_count = False
