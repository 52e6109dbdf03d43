"""Input and output shapes of the labeling API. A rater's views never show gold flags or other raters' labels."""
from rest_framework import serializers

from .models import Assignment, LabelingProject, QueueItem


class ChoiceSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField(required=False)
    hotkey = serializers.CharField(required=False, allow_blank=True)


class ProjectSerializer(serializers.ModelSerializer):
    choices = ChoiceSerializer(many=True)
    lease_seconds = serializers.SerializerMethodField()

    class Meta:
        model = LabelingProject
        fields = ["id", "name", "instructions", "label_kind", "choices", "scale_min", "scale_max", "text_max_length",
                  "overlap", "lease_seconds"]

    def get_lease_seconds(self, project) -> int:
        return int(project.lease_duration.total_seconds())


class RecordSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    features = serializers.JSONField()
    observed_at = serializers.DateTimeField(allow_null=True)


class AssignmentSerializer(serializers.Serializer):
    """A lease as its rater sees it: the item's record and when the lease ends (gold items look the same).

    The fields document the shape; `to_representation` builds it directly, since `next` answers many
    times a second and DRF's field-by-field path costs more than the claim itself."""

    id = serializers.IntegerField()
    project = serializers.IntegerField()
    item = serializers.IntegerField()
    state = serializers.ChoiceField(choices=Assignment.State.choices)
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    record = RecordSerializer()  # attached by the view (selectors.item_record)
    annotation_url = serializers.URLField()
    skip_url = serializers.URLField()

    def to_representation(self, lease) -> dict:
        request = self.context.get("request")
        base = request.build_absolute_uri("/")[:-1] if request else ""
        record = lease.record
        return {"id": lease.pk, "project": lease.project_id, "item": lease.item_id, "state": lease.state,
                "leased_at": _iso(lease.leased_at), "expires_at": _iso(lease.expires_at),
                "record": {"external_id": record.external_id, "features": record.features,
                           "observed_at": _iso(record.observed_at)},
                "annotation_url": f"{base}/api/v1/assignments/{lease.pk}/annotation",
                "skip_url": f"{base}/api/v1/assignments/{lease.pk}/skip"}


def _iso(moment) -> str | None:
    """As DRF's DateTimeField writes it (ISO 8601, UTC as Z)."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class AnnotationInSerializer(serializers.Serializer):
    value = serializers.JSONField(help_text="A choice's value, a list of them, a whole number or a text, "
                                            "by the project's label kind.")


class AnnotationOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.IntegerField()
    item = serializers.IntegerField()
    value = serializers.JSONField()
    created_at = serializers.DateTimeField()

    def to_representation(self, annotation) -> dict:  # built directly, as for AssignmentSerializer
        return {"id": annotation.pk, "assignment": annotation.assignment_id, "item": annotation.item_id,
                "value": annotation.value, "created_at": _iso(annotation.created_at)}


class SkipInSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class HistorySerializer(serializers.ModelSerializer):
    item = serializers.IntegerField(source="item_id")
    external_id = serializers.CharField(source="item.record.external_id")
    label = serializers.JSONField(allow_null=True)

    class Meta:
        model = Assignment
        fields = ["id", "item", "external_id", "state", "label", "skip_reason", "finished_at"]


class ItemAdminSerializer(serializers.ModelSerializer):
    """An item as an admin sees it: its slots, state, consensus and whether it is gold."""

    external_id = serializers.CharField(source="record.external_id")
    # A plain string in the schema: its enum would collide by name with the assignment's state.
    state = serializers.CharField(help_text="open or complete")

    class Meta:
        model = QueueItem
        fields = ["id", "external_id", "state", "needed", "submitted_count", "leased_count", "feedback_count",
                  "skipped_count", "consensus", "agreement", "is_gold", "gold_answer", "completed_at"]


class ItemRaterSerializer(serializers.ModelSerializer):
    """An item as a rater sees it: the record and their own label, nothing of anyone else's."""

    record = RecordSerializer()
    my_label = serializers.JSONField(allow_null=True)

    class Meta:
        model = QueueItem
        fields = ["id", "record", "my_label"]


class TokenInSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenOutSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
