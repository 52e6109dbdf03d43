"""Shapes of the labels API (every individual label out, bulk import in) and of assigning an item to a rater."""
from rest_framework import serializers

from .models import Annotation, Assignment, QueueItem, Rater
from .services.labels_io import iso


class LabelSerializer(serializers.Serializer):
    """One label as staff read it. The fields document the shape; `to_representation` builds it from the
    selector's row directly (pages hold up to 5,000 labels)."""

    annotation_id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    external_id = serializers.CharField(help_text="The record's external id.")
    source = serializers.CharField(help_text="The name of the record's source.")
    rater_id = serializers.IntegerField(allow_null=True, help_text="Null for process feedback.")
    rater_username = serializers.CharField(allow_null=True, help_text="Null for process feedback.")
    rater_kind = serializers.ChoiceField(choices=Rater.Kind.choices, allow_null=True)
    actor = serializers.CharField(allow_blank=True, help_text="Process feedback: the actor's pseudonym.")
    provenance = serializers.ChoiceField(choices=Annotation.Provenance.choices)
    rule_id = serializers.IntegerField(allow_null=True, help_text="Process feedback: the rule that made it.")
    value = serializers.JSONField(help_text="A choice's value, a list of them, a whole number or a text, "
                                            "by the project's label kind.")
    created_at = serializers.DateTimeField()
    is_gold = serializers.BooleanField(help_text="Given while the item was gold: scores the rater, never counts "
                                                 "toward consensus.")
    correct = serializers.BooleanField(allow_null=True, help_text="Gold answers: whether it matched the known answer.")
    undone_at = serializers.DateTimeField(allow_null=True, help_text="Withdrawn by its rater (undo).")
    item_state = serializers.ChoiceField(choices=QueueItem.State.choices)
    consensus = serializers.JSONField(allow_null=True, help_text="The item's consensus, once it has one.")

    def to_representation(self, row: dict) -> dict:
        return {**row, "created_at": iso(row["created_at"]), "undone_at": iso(row["undone_at"])}


class LabelPageSerializer(serializers.Serializer):
    results = LabelSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page; null on the last one.")


class LabelLineSerializer(serializers.Serializer):
    """One line of an import (the checks themselves are the import service's)."""

    external_id = serializers.CharField(max_length=200, help_text="The record's external id.")
    source = serializers.CharField(required=False, help_text="The record's source; optional when the project "
                                                             "has one source.")
    rater = serializers.CharField(help_text="The rater's username; they must be a member of the project.")
    value = serializers.JSONField(help_text="A value that fits the project's label kind.")
    created_at = serializers.DateTimeField(required=False, help_text="ISO 8601 (UTC without a zone); default now.")


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Labels written.")
    unchanged = serializers.IntegerField(help_text="Lines already imported with the same value (no-ops).")
    items = serializers.IntegerField(help_text="Items whose labels changed, re-settled.")


class LineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="The line (NDJSON, CSV) or position (JSON array), from 1.")
    field = serializers.CharField(allow_null=True)
    value = serializers.JSONField(allow_null=True)
    code = serializers.CharField(help_text="malformed, unknown_field, missing, invalid, unknown_source, "
                                           "invalid_label, invalid_timestamp, unknown_rater, not_a_member, "
                                           "unknown_record, not_queued, gold_item, duplicate, conflict, "
                                           "already_labeled, leased")
    detail = serializers.CharField()


class ImportRejectedSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="invalid_labels")
    detail = serializers.CharField()
    errors = LineErrorSerializer(many=True, help_text="At most 100, in line order.")
    more = serializers.IntegerField(help_text="Errors past the first 100, not listed.")


class LabelsErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    field = serializers.CharField(required=False)
    value = serializers.JSONField(required=False)


class AssignInSerializer(serializers.Serializer):
    rater = serializers.CharField(help_text="The rater's username.")
    lease_seconds = serializers.IntegerField(required=False, min_value=60, max_value=30 * 24 * 3600,
                                             help_text="How long the rater holds the item; default the project's "
                                                       "lease time.")


class AssignedSerializer(serializers.ModelSerializer):
    """The lease a staff member made: who holds which item until when."""

    rater = serializers.CharField(source="rater.user.username")
    # A plain string in the schema: its enum would collide by name with the item's state.
    state = serializers.CharField(help_text="leased")
    handed_back = serializers.IntegerField(allow_null=True, help_text="The rater's other lease in the project, "
                                                                      "handed back to the queue.")

    class Meta:
        model = Assignment
        fields = ["id", "item", "project", "rater", "state", "is_gold", "leased_at", "expires_at", "handed_back"]
