"""Django admin for training sets: who owns and reads a set (its policy and split rule change on its page, where
the services check them); versions and erasure tombstones read-only, since both are records of what happened."""
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import Erasure, TrainingSet, TrainingSetVersion

POLICY_FIELDS = ["sources", "projects", "use_gold", "use_adjudicated", "use_consensus", "min_confidence",
                 "use_feedback", "use_batch_labels", "unlabeled", "split_kind", "split_fractions", "split_cutoffs",
                 "split_feature", "formats", "gate_on", "created_at"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TrainingSet)
class TrainingSetAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "split_kind", "created_at", "page"]
    search_fields = ["name", "description"]
    raw_id_fields = ["owner"]
    filter_horizontal = ["reader_groups"]
    fields = ["name", "description", "owner", "reader_groups", "page", *POLICY_FIELDS]
    readonly_fields = ["name", "page", *POLICY_FIELDS]

    def has_add_permission(self, request):
        return False  # made on /training-sets/, where the services check the policy and split rule

    def has_delete_permission(self, request, obj=None):
        return False  # its versions' files and manifests refer to it

    @admin.display(description="Page")
    def page(self, obj):
        return format_html('<a href="{}">policy, versions, publish</a>', reverse("trainingset", args=[obj.pk]))


@admin.register(TrainingSetVersion)
class TrainingSetVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "status", "rows_total", "gate_verdict", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "gate_verdict"]
    search_fields = ["training_set__name", "content_sha256"]
    exclude = ["profile"]


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "source", "status", "requested_by", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
