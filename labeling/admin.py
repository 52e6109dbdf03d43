"""Django admin for labeling: raters, projects (members, sources, rules), items (counts read-only), rules."""
from django.contrib import admin, messages

from collection.admin import HistoryInline

from . import services
from .models import (
    Adjudication,
    Annotation,
    Assignment,
    ConsensusRun,
    FeedbackRule,
    LabelingProject,
    Membership,
    QueueItem,
    Rater,
    RoutedBatch,
)


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "domains", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user", "invited_by"]
    actions = ["issue_token"]

    @admin.action(description="Issue (or show) the selected raters' API tokens")
    def issue_token(self, request, queryset):
        for rater in queryset.select_related("user"):
            self.message_user(request, f"{rater.user.get_username()}: Token {services.rater_token(rater=rater)}",
                              messages.WARNING)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ["rater"]
    readonly_fields = ["added_by", "added_at"]


class FeedbackRuleInline(admin.TabularInline):
    model = FeedbackRule
    extra = 0
    fields = ["position", "signal", "op", "threshold", "label", "use_event_value", "enabled"]


class RoutedBatchInline(HistoryInline):
    model = RoutedBatch
    readonly_fields = ["batch", "item_count", "actor", "routed_at"]


@admin.register(LabelingProject)
class LabelingProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "label_kind", "overlap", "gold_rate", "lease_duration", "is_active", "created_at"]
    list_filter = ["label_kind", "is_active"]
    search_fields = ["name"]
    filter_horizontal = ["sources"]
    readonly_fields = ["created_by", "created_at"]
    inlines = [MembershipInline, FeedbackRuleInline, RoutedBatchInline]
    actions = ["queue_admitted", "apply_feedback"]
    # Changing these applies to the items already waiting (services.project_resettle), not only to new ones.
    RESETTLE_FIELDS = {"overlap", "max_extra_raters", "min_confidence"}
    RESETTLE_HELP = {
        "overlap": "How many raters label each item. A change applies to the open items too (never fewer than "
                   "their labels and live leases) and to items waiting in adjudication: they are settled again.",
        "max_extra_raters": "When an item's majority is a tie or under the minimum confidence, one more rater is "
                            "asked, up to this many; after that the item goes to adjudication. A change applies to "
                            "open items and reopens adjudication items that may now get another rater.",
        "min_confidence": "Lowest majority share an item may close with (a Dawid-Skene run uses its posterior). "
                          "A change applies to open and adjudication items.",
    }

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        for name, text in self.RESETTLE_HELP.items():
            if name in form.base_fields:
                form.base_fields[name].help_text = text
        return form

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if change and self.RESETTLE_FIELDS & set(form.changed_data):
            counts = services.project_resettle(project=obj)
            self.message_user(request, f"{obj.name}: {counts['items']} waiting item(s) settled again under the new "
                                       f"settings: {counts['complete']} complete, {counts['adjudication']} to "
                                       f"adjudication, {counts['reopened']} reopened, {counts['stuck']} with no "
                                       f"rater left sent to adjudication.")

    def save_formset(self, request, form, formset, change):
        for row in formset.save(commit=False):
            if isinstance(row, Membership) and row.added_by_id is None:
                row.added_by = request.user
            row.save()
        for row in formset.deleted_objects:
            row.delete()
        formset.save_m2m()

    @admin.action(description="Queue the admitted batches of their sources (those not queued yet)")
    def queue_admitted(self, request, queryset):
        for project in queryset:
            routed = services.project_queue_admitted(project=project, actor=f"user:{request.user.get_username()}")
            self.message_user(request, f"{project.name}: {len(routed)} batch(es), "
                                       f"{sum(r.item_count for r in routed)} new item(s).")

    @admin.action(description="Map their feedback to labels by their rules now")
    def apply_feedback(self, request, queryset):
        for project in queryset:
            result = services.feedback_apply_rules(project=project)
            self.message_user(request, f"{project.name}: {result['created']} label(s) from feedback, "
                                       f"{result['unmappable']} event(s) whose label does not fit.")


class AnnotationInline(HistoryInline):
    model = Annotation
    fk_name = "item"
    fields = readonly_fields = ["provenance", "rater", "actor", "value", "correct", "created_at", "undone_at"]


@admin.register(QueueItem)
class QueueItemAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "record", "state", "needed", "submitted_count", "leased_count",
                    "feedback_count", "consensus", "agreement", "is_gold"]
    list_filter = ["project", "state", "is_gold"]
    raw_id_fields = ["record"]
    # The slots are the queue's own bookkeeping: editing them by hand would break its guarantees.
    readonly_fields = ["project", "record", "needed", "leased_count", "submitted_count", "feedback_count",
                       "skipped_count", "state", "consensus", "agreement", "completed_at", "created_at"]
    fields = readonly_fields[:2] + ["is_gold", "gold_answer"] + readonly_fields[2:]
    inlines = [AnnotationInline]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        # Only the gold flag and answer change here, by targeted updates: saving the whole row would
        # write back counts that raters may have changed since the form was loaded.
        if not obj.is_gold:
            if "is_gold" in form.changed_data:
                # Un-ticked: its gold answers stay gold (never counted), and the item is settled again.
                services.item_unset_gold(item=obj)
            return
        try:
            services.item_set_gold(item=obj, answer=obj.gold_answer)
        except services.InvalidLabel as exc:
            self.message_user(request, f"Not saved: the gold answer {exc.value!r}: {exc}", messages.ERROR)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "item", "rater", "state", "leased_at", "expires_at", "finished_at"]
    list_filter = ["project", "state"]
    readonly_fields = [f.name for f in Assignment._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(FeedbackRule)
class FeedbackRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "position", "enabled"]
    list_filter = ["project", "enabled", "signal"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Kept records (runs, decisions): shown, never added or changed by hand; their services write them."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ConsensusRun)
class ConsensusRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "method", "status", "trigger", "label_count", "items_changed", "created_at",
                    "finished_at"]
    list_filter = ["project", "method", "status"]
    exclude = ["rater_confusion"]


@admin.register(Adjudication)
class AdjudicationAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "item", "decided_by", "value", "unlabelable", "decided_at"]
    list_filter = ["project", "unlabelable"]
    raw_id_fields = ["item"]
