"""Baselines: the reference a source's batches are checked against (a profile, an editable schema, thresholds)."""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from collection.models import Source


class BaselineQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Baseline(models.Model):
    """A source's training-data reference. One is active per source; older ones are kept."""

    class Origin(models.TextChoices):
        FILE = "file", "Reference file"
        BATCHES = "batches", "Admitted batches"
        TRAINING_SET = "training_set", "Training-set version"

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="baselines")
    name = models.CharField(max_length=200, blank=True)
    origin = models.CharField(max_length=20, choices=Origin.choices)
    origin_detail = models.CharField(max_length=500, blank=True, help_text="The file, or the batch ids.")
    # The profile's versioned JSON exactly as the engine wrote it (text keeps it byte for byte).
    profile = models.TextField()
    # Plain data an admin may edit: types, required, domains, ranges, environments.
    schema = models.JSONField()
    thresholds = models.JSONField(default=dict, blank=True, help_text="Per-feature and per-metric thresholds.")
    row_count = models.BigIntegerField(default=0)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    objects = BaselineQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source"], condition=Q(is_active=True),
                                    name="baseline_one_active_per_source"),
        ]

    def __str__(self) -> str:
        return f"{self.source.name}: {self.name or self.get_origin_display()} ({self.created_at:%Y-%m-%d})"


class ValidationRun(models.Model):
    """The verdict on one batch: against which baseline, why, and the full report."""

    class Verdict(models.TextChoices):
        PASS = "pass"
        WARN = "warn"
        FAIL = "fail"
        NO_BASELINE = "no_baseline", "No baseline"

    batch = models.OneToOneField("collection.Batch", on_delete=models.CASCADE, related_name="validation")
    baseline = models.ForeignKey(Baseline, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    reasons = models.JSONField(default=list)
    shift = models.CharField(max_length=20, blank=True)
    drifted_share = models.FloatField(null=True, blank=True)
    # Report.to_dict() of the engine, non-finite numbers as null (JSON has none).
    report = models.JSONField(default=dict)
    # The batch's profile (versioned JSON), for the charts of baseline against batch.
    profile = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"batch {self.batch_id}: {self.verdict}"


class QuarantinePolicy(models.TextChoices):
    """Which verdicts keep a source's batch out: `fail` only (a `warn` admits with an alert), or both."""

    ERRORS = ValidationRun.Verdict.FAIL, "Errors (a warning admits the batch and raises an alert)"
    WARNINGS = ValidationRun.Verdict.WARN, "Warnings and errors"


class PrivacyPolicy(models.TextChoices):
    """What personal data in a batch (email addresses, phone numbers, card numbers, IBANs, IP addresses as whole
    values; docs/validation.md, "Personal data") does: an error, a warning, or nothing (not even checked)."""

    ERROR = "error", "Error (personal data quarantines the batch)"
    WARN = "warn", "Warning (personal data is reported; the quarantine policy decides)"
    OFF = "off", "Off (not checked; profiles keep raw values)"


class SourcePolicy(models.Model):
    """How validation treats one source's batches. A source without a row has the defaults (`source_policy_get`);
    the row is made when a setting is first changed (`source_policy_set`)."""

    source = models.OneToOneField(Source, on_delete=models.CASCADE, primary_key=True, related_name="policy")
    quarantine_on = models.CharField(
        max_length=10, choices=QuarantinePolicy.choices, default=QuarantinePolicy.ERRORS,
        help_text="Which findings quarantine a batch; the others admit it and raise an alert.")
    privacy_check = models.CharField(
        max_length=10, choices=PrivacyPolicy.choices, default=PrivacyPolicy.ERROR,
        help_text="Features that look like personal data (at least 5% email addresses, phone numbers, card numbers, "
                  "IBANs or IP addresses): an error, a warning, or off. When on, the profiles of such a feature keep "
                  "no raw value of it.")

    class Meta:
        verbose_name_plural = "source policies"

    def __str__(self) -> str:
        return f"{self.source.name}: quarantine on {self.quarantine_on}, personal data {self.privacy_check}"

    def quarantines(self, verdict: str) -> bool:
        """Whether a verdict keeps the source's batch out: `fail` and `no_baseline` always, `warn` when the policy
        says so; `pass` never."""
        if verdict == ValidationRun.Verdict.WARN:
            return self.quarantine_on == QuarantinePolicy.WARNINGS
        return verdict in (ValidationRun.Verdict.FAIL, ValidationRun.Verdict.NO_BASELINE)


class DailyProfile(models.Model):
    """A source's batches of one day (UTC, by arrival) merged into one profile on the baseline's
    edges, and compared with that baseline: the points of the feature-drift-over-time chart.

    Kept per baseline, since profiles on different baselines' edges cannot be merged. Updated by
    the validate step in the transaction that records the batch's verdict.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="daily_profiles")
    baseline = models.ForeignKey(Baseline, on_delete=models.CASCADE, related_name="daily_profiles")
    day = models.DateField()
    profile = models.TextField(help_text="The merged profile (versioned JSON).")
    batch_count = models.IntegerField(default=0)
    row_count = models.BigIntegerField(default=0)
    # Report.to_dict()["metrics"] of the merged day against the baseline:
    # {feature: {metric: {"value", "threshold", "p_value"}}}, non-finite numbers as null.
    metrics = models.JSONField(default=dict)
    drifted = models.JSONField(default=list, help_text="Features whose drift reached its threshold that day.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source", "baseline", "day"]
        constraints = [models.UniqueConstraint(fields=["baseline", "day"], name="daily_profile_one_per_baseline_day")]
        indexes = [models.Index(fields=["source", "day"])]

    def __str__(self) -> str:
        return f"{self.source.name} {self.day} (baseline {self.baseline_id})"


class Anomaly(models.Model):
    """One finding of a run, kept as rows so that pages can filter and count them."""

    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="anomalies")
    kind = models.CharField(max_length=50)
    feature = models.CharField(max_length=200)
    metric = models.CharField(max_length=50, blank=True)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    severity = models.CharField(max_length=20)
    explanation = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]


class Alert(models.Model):
    """A data problem an admin should hear about. One open alert per source and kind; it closes
    itself when its condition clears."""

    class Kind(models.TextChoices):
        QUARANTINE = "quarantine", "Batch quarantined"
        WARN = "warn", "Batch admitted with warnings"
        INGEST_FAILED = "ingest_failed", "Ingest failed"
        VALIDATION_FAILED = "validation_failed", "Validation failed"
        SILENT_SOURCE = "silent_source", "Source went silent"
        RATER_PAUSED = "rater_paused", "Rater paused for gold accuracy"
        VERSION_REVIEW = "version_review", "Training-set version held by its gate"
        VERSION_FAILED = "version_failed", "Training-set version failed"
        ERASURE_FAILED = "erasure_failed", "Erasure could not rewrite files"

    # Data alerts are about a source; labeling alerts (a paused rater) about a `subject` instead,
    # such as "project:3/rater:12", with a link to where staff act on it.
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    subject = models.CharField(max_length=200, blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="The page where staff act on it.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    batch = models.ForeignKey("collection.Batch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="The latest batch that raised it.")
    message = models.TextField()
    occurrences = models.IntegerField(default=1)
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "kind"], condition=Q(resolved_at__isnull=True, subject=""),
                                    name="alert_one_open_per_source_and_kind"),
            models.UniqueConstraint(fields=["subject", "kind"], condition=Q(resolved_at__isnull=True) & ~Q(subject=""),
                                    name="alert_one_open_per_subject_and_kind"),
            models.CheckConstraint(condition=Q(source__isnull=False) | ~Q(subject=""), name="alert_is_about_something"),
        ]

    def __str__(self) -> str:
        about = self.source.name if self.source_id else self.subject
        return f"{about}: {self.get_kind_display()}"


class AlertDelivery(models.Model):
    """Every attempt to deliver an alert by email or webhook, kept as a log."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=20)
    target = models.CharField(max_length=500)
    attempt = models.IntegerField()
    ok = models.BooleanField()
    status_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]


class AuditEntry(models.Model):
    """Who decided what about data quality, and when: reviews and baseline changes. Append-only:
    the app writes entries and never changes or deletes them, and the admin only shows them."""

    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=50)
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    batch = models.ForeignKey("collection.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    baseline = models.ForeignKey(Baseline, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
