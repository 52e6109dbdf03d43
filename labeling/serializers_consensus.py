"""Shapes of the consensus-run and adjudication API: runs (summary and detail), the queue, a decision."""
from rest_framework import serializers

from .models import Adjudication, ConsensusRun
from .serializers import RecordSerializer


class ApiErrorSerializer(serializers.Serializer):
    """Every refusal of these endpoints: a code, a message, and what it is about."""

    error = serializers.CharField(help_text="e.g. invalid_label, reason_required, not_allowed, already_adjudicated")
    detail = serializers.CharField()
    field = serializers.CharField(required=False)
    value = serializers.JSONField(required=False)


class ConsensusRunInSerializer(serializers.Serializer):
    """Optional model parameters of a run requested on demand (each defaults as documented)."""

    tol = serializers.FloatField(required=False, min_value=0, max_value=0.999999,
                                 help_text="EM stops when no posterior moves by more than this (default 1e-6).")
    max_iter = serializers.IntegerField(required=False, min_value=1, max_value=10_000,
                                        help_text="Iteration cap (default 100).")
    smoothing = serializers.FloatField(required=False, min_value=0, max_value=100,
                                       help_text="Pseudo-count added to every confusion cell and prior (default 0.01).")


class ConsensusRunSerializer(serializers.ModelSerializer):
    """A run as listed: what it is, which labels it saw, and how it ended."""

    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    # Plain strings in the schema: as enums their names would collide with the batch's status.
    status = serializers.CharField(help_text="queued, running, done or failed")
    method = serializers.CharField(help_text="dawid_skene or majority")
    trigger = serializers.CharField(help_text="labels (enough new labels), schedule or demand")
    url = serializers.SerializerMethodField()

    class Meta:
        model = ConsensusRun
        fields = ["id", "url", "project", "method", "status", "trigger", "parameters", "requested_by",
                  "max_annotation_id", "label_count", "labels_sha256", "item_count", "rater_count", "items_changed",
                  "iterations", "converged", "log_likelihood", "error", "created_at", "started_at", "finished_at"]

    def get_url(self, run) -> str:
        request = self.context.get("request")
        path = f"/api/v1/consensus-runs/{run.pk}"
        return request.build_absolute_uri(path) if request else path


class ConsensusRunDetailSerializer(ConsensusRunSerializer):
    """A run with its model: classes, priors, and each rater's confusion matrix and accuracy.

    Keys of `rater_confusion` and `rater_accuracy` are rater ids (as strings); a process-feedback
    label's author is "rule:<id>" (the rule that mapped it) or "feedback:<actor>"."""

    classes = serializers.ListField(child=serializers.JSONField())
    class_priors = serializers.ListField(child=serializers.FloatField())
    rater_confusion = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.FloatField())),
        help_text="{rater: K x K}, rows the true class and columns the label given, in `classes` order.")
    rater_accuracy = serializers.DictField(child=serializers.FloatField())

    class Meta(ConsensusRunSerializer.Meta):
        fields = ConsensusRunSerializer.Meta.fields + ["classes", "class_priors", "rater_confusion",
                                                       "rater_accuracy"]


class ItemLabelSerializer(serializers.Serializer):
    """One label of an item, with who gave it and how good they are."""

    id = serializers.IntegerField()
    value = serializers.JSONField()
    provenance = serializers.CharField(help_text="human, imported or process_feedback")
    counted = serializers.BooleanField(help_text="Whether it counts toward consensus (feedback: if the project "
                                                 "says so).")
    created_at = serializers.DateTimeField()
    rater = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True, help_text="Empty for process feedback.")
    kind = serializers.CharField(allow_null=True, help_text="generalist, expert or end_user.")
    author = serializers.CharField(help_text="The rater's username, or the feedback rule that mapped the label.")
    gold_answered = serializers.IntegerField(help_text="Gold answers of this rater in the project.")
    gold_accuracy = serializers.FloatField(allow_null=True, help_text="Share of them that were right.")
    model_accuracy = serializers.FloatField(allow_null=True,
                                            help_text="The rater's accuracy under the latest done consensus run.")


class PosteriorSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    method = serializers.CharField()
    label = serializers.JSONField(allow_null=True)
    confidence = serializers.FloatField()
    classes = serializers.ListField(child=serializers.JSONField())
    posterior = serializers.ListField(child=serializers.FloatField(), help_text="In `classes` order.")


class AdjudicationItemSerializer(serializers.Serializer):
    """An item waiting for adjudication: its record, every label, and the latest run's posterior."""

    id = serializers.IntegerField()
    state = serializers.CharField()
    consensus = serializers.JSONField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    record = RecordSerializer()
    labels = ItemLabelSerializer(many=True)
    posterior = PosteriorSerializer(allow_null=True)
    adjudication_url = serializers.CharField()

    def to_representation(self, item) -> dict:
        request = self.context.get("request")
        path = f"/api/v1/items/{item.pk}/adjudication"
        record = item.record
        return {"id": item.pk, "state": item.state, "consensus": item.consensus, "confidence": item.confidence,
                "record": {"external_id": record.external_id, "features": record.features,
                           "observed_at": serializers.DateTimeField().to_representation(record.observed_at)
                           if record.observed_at else None},
                "labels": ItemLabelSerializer(item.labels, many=True).data,
                "posterior": item.posterior,
                "adjudication_url": request.build_absolute_uri(path) if request else path}


class AdjudicationInSerializer(serializers.Serializer):
    value = serializers.JSONField(required=False, help_text="The final label (by the project's label kind).")
    unlabelable = serializers.BooleanField(required=False, default=False,
                                           help_text="Staff: close the item without a label instead.")
    reason = serializers.CharField(allow_blank=True, trim_whitespace=True, max_length=2000,
                                   help_text="Why: kept with the decision. Required.")


class AdjudicationSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    item_state = serializers.CharField(source="item.state", help_text="complete, or unlabelable")

    class Meta:
        model = Adjudication
        fields = ["id", "item", "project", "value", "unlabelable", "reason", "previous_consensus", "decided_by",
                  "decided_at", "item_state"]
