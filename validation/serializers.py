"""API shapes of the validation app: a batch's verdict and an admin's review."""
from rest_framework import serializers

from .models import Anomaly, ValidationRun


class AnomalySerializer(serializers.ModelSerializer):
    class Meta:
        model = Anomaly
        fields = ["kind", "feature", "metric", "value", "threshold", "severity", "explanation"]


class ValidationRunSerializer(serializers.ModelSerializer):
    batch = serializers.IntegerField(source="batch_id")
    status = serializers.CharField(source="batch.status")
    baseline = serializers.IntegerField(source="baseline_id", allow_null=True)
    anomalies = AnomalySerializer(many=True)
    metrics = serializers.SerializerMethodField()

    class Meta:
        model = ValidationRun
        fields = ["batch", "status", "verdict", "reasons", "shift", "drifted_share", "baseline", "anomalies",
                  "metrics", "started_at", "finished_at"]

    def get_metrics(self, run) -> dict:
        """Per feature, each metric with its value, effective threshold and p-value where one exists."""
        return run.report.get("metrics", {})


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
