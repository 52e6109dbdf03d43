"""Sources, their API keys, batches with their lifecycle, records and process-feedback events."""
from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone


class BatchOrderIndex(BrinIndex):
    """BRIN on PostgreSQL (tiny, nearly free on insert, right for columns that grow with insert order);
    a plain index elsewhere, since only PostgreSQL has BRIN."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return models.Index.create_sql(self, model, schema_editor, using=using, **kwargs)
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class Source(models.Model):
    class Kind(models.TextChoices):
        APP = "app", "App"
        SERVICE = "service", "Service"
        UPLOAD = "upload", "Upload"
        MODEL_OUTPUT = "model_output", "Model output"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.TextField(blank=True)
    expected_interval = models.DurationField(
        null=True, blank=True, help_text="How often a batch is expected; silence past it is an outage."
    )
    # Data made by another model compounds that model's errors: validation treats it with suspicion.
    from_model = models.BooleanField(default=False, help_text="Its data is another model's output.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class SourceKey(models.Model):
    """An API key for one source. Only a hash is stored; the key itself is shown once."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, to recognise it.")
    # SHA-256 is enough for keys with 256 bits of randomness; slow password hashes would only
    # slow every request down without making such a key harder to guess.
    hashed = models.CharField(max_length=64, unique=True)
    rate = models.CharField(
        max_length=20, blank=True, help_text="Rate limit for this key, e.g. 100/s or 6000/min; blank uses the default."
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = SourceKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source.name}:{self.prefix}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class BatchQuerySet(models.QuerySet):
    def stalled(self, *, now=None):
        """Batches the pipeline seems to have dropped: a step never picked up, or a worker died on it."""
        now = now or timezone.now()
        waiting = Q(status__in=[Batch.Status.RECEIVED, Batch.Status.INGESTED])
        working = Q(status__in=[Batch.Status.INGESTING, Batch.Status.VALIDATING])
        return self.filter(
            (waiting & Q(updated_at__lt=now - settings.SIEVE_RECEIVED_STALLED_AFTER))
            | (working & Q(updated_at__lt=now - settings.SIEVE_STALLED_AFTER))
        )


class Batch(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received"
        INGESTING = "ingesting"
        INGESTED = "ingested"
        VALIDATING = "validating"
        ADMITTED = "admitted"
        QUARANTINED = "quarantined"
        REJECTED = "rejected"
        FAILED = "failed"
        DUPLICATE = "duplicate"

    class Format(models.TextChoices):
        JSON = "json"
        NDJSON = "ndjson"
        CSV = "csv"

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="batches")
    key = models.ForeignKey(SourceKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    format = models.CharField(max_length=10, choices=Format.choices)
    gzipped = models.BooleanField(default=False)
    payload = models.CharField(max_length=300, help_text="Raw payload, as sent, relative to SIEVE_DATA_DIR.")
    payload_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, help_text="Of the uncompressed content.")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # [name, JSON type] per column in order of first appearance (a list: jsonb does not keep key order);
    # ingest builds the Parquet schema from it.
    columns = models.JSONField(default=list, blank=True)
    record_count = models.IntegerField(default=0, help_text="Rows found in the payload at upload.")
    ingested_count = models.IntegerField(default=0)
    columnar = models.CharField(max_length=300, blank=True, help_text="Parquet copy, relative to SIEVE_DATA_DIR.")
    error = models.TextField(blank=True)
    error_line = models.IntegerField(null=True, blank=True)
    attempts = models.IntegerField(default=0, help_text="How many times ingest claimed this batch.")
    failures = models.PositiveSmallIntegerField(
        default=0, help_text="Errors that will recur (the data, a bug, a worker lost) in pipeline steps since it "
                             "was received or retried; at SIEVE_PIPELINE_MAX_FAILURES the batch fails.")
    # A step whose work outlives one transaction (validation's chunks) names its claim here, so that work left over
    # from an earlier claim of the same batch cannot finish it.
    step_claim = models.CharField(max_length=32, blank=True, default="",
                                  help_text="The live claim's id of the step working on the batch, if it names one.")
    received_at = models.DateTimeField(default=timezone.now)
    ingest_started_at = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="batch_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["source", "sha256"]),
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["source", "-received_at"]),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.status})"

    @property
    def ingest_seconds(self) -> float | None:
        if self.ingest_started_at and self.ingested_at:
            return (self.ingested_at - self.ingest_started_at).total_seconds()
        return None


class BatchTransition(models.Model):
    """One change of a batch's status: who or what made it, and when. Append-only."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=150, help_text="task:<name>, user:<username>, api:<key prefix>, ...")
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]


class RecordQuerySet(models.QuerySet):
    def current(self):
        """The latest revision of each (source, external id)."""
        return self.filter(is_current=True)


class Record(models.Model):
    """One row of a batch. A later batch's row with the same external id is a new revision."""

    # Every index and deferred check costs time on a million-row COPY, so: no B-tree per foreign key
    # (a BRIN index on batch, whose rows arrive together, and the partial index below cover the
    # lookups), and no database-level FK checks (Django applies on_delete itself; the parents are
    # known to exist, the rows are written by one service that holds the batch).
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="records", db_index=False,
                              db_constraint=False)
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="records", db_index=False,
                               db_constraint=False)
    line = models.IntegerField(help_text="Line (NDJSON, CSV) or position (JSON array) in the payload, from 1.")
    external_id = models.CharField(max_length=200)
    features = models.JSONField(default=dict)
    observed_at = models.DateTimeField(null=True, blank=True)
    label = models.JSONField(null=True, blank=True)
    is_current = models.BooleanField(default=False)

    objects = RecordQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], condition=Q(is_current=True), name="record_one_current_revision"
            ),
        ]
        indexes = [BatchOrderIndex(fields=["batch"], name="record_batch_brin")]

    def __str__(self) -> str:
        return self.external_id


class FeedbackEvent(models.Model):
    """Process feedback (a rating, a click, a correction) about a record, from a source's users."""

    class Signal(models.TextChoices):
        RATING = "rating"
        CLICK = "click"
        THUMBS = "thumbs"
        CORRECTION = "correction"

    # Indexed through the unique and partial indexes below, which start with source. As for records,
    # no database-level FK checks on this hot insert path: Django applies on_delete itself.
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="feedback", db_index=False,
                               db_constraint=False)
    idempotency_key = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200, help_text="The record this is about.")
    # Linked when the record arrives, which may be after the feedback.
    record = models.ForeignKey(Record, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback",
                               db_constraint=False)
    signal = models.CharField(max_length=100, help_text="One of the standard signals or a source-defined name.")
    value = models.JSONField(null=True, blank=True)
    # Keyed hash of the actor's id: the raw id is never stored.
    actor = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "idempotency_key"], name="feedback_unique_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["source", "external_id"], condition=Q(record__isnull=True), name="feedback_unlinked"),
        ]

