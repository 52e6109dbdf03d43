"""Training sets: what feeds them (sources, projects, a label policy, a split rule), their immutable
versions with a manifest and files, the staff's decision on a version the gate held, and erasures."""
import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


def _split_key() -> str:
    return secrets.token_hex(32)


def default_fractions() -> list:
    return [["train", 0.8], ["validation", 0.1], ["test", 0.1]]


def default_formats() -> list:
    return ["parquet", "csv", "jsonl"]


class SplitKind(models.TextChoices):
    """How a record's split is chosen: always from its identity (or its group's), never from its position."""

    RANDOM = "random", "Random, by a keyed hash of source and external id"
    TIME = "time", "By time (observed_at) against cutoffs"
    GROUP = "group", "By group: a keyed hash of one feature's value"


class Unlabeled(models.TextChoices):
    DROP = "drop", "Leave the record out"
    KEEP = "keep", "Keep it, unlabeled"


class GateOn(models.TextChoices):
    """Which gate verdicts hold a version for a staff decision (as a source's quarantine policy)."""

    ERRORS = "fail", "Errors (a warning publishes and is shown)"
    WARNINGS = "warn", "Warnings and errors"


class TrainingSet(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="training_sets")
    sources = models.ManyToManyField("collection.Source", related_name="training_sets")
    projects = models.ManyToManyField("labeling.LabelingProject", blank=True, related_name="training_sets")
    # Who may read the set's versions and files besides its owner and staff.
    reader_groups = models.ManyToManyField(Group, blank=True, related_name="+",
                                           help_text="Members of these groups may read the set's versions and files.")
    # --- the label policy: which labels count, best first (docs/guides/training-sets.md)
    use_gold = models.BooleanField(default=True, help_text="Gold items enter with their known answer; "
                                   "off: records that are gold items are left out.")
    use_adjudicated = models.BooleanField(default=True)
    use_consensus = models.BooleanField(default=True)
    min_confidence = models.FloatField(default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                                       help_text="A consensus counts at or above this confidence.")
    use_feedback = models.BooleanField(default=True, help_text="Process-feedback labels.")
    use_batch_labels = models.BooleanField(default=True, help_text="Labels that arrived with the batch.")
    unlabeled = models.CharField(max_length=10, choices=Unlabeled.choices, default=Unlabeled.DROP)
    # --- the split rule; fixed once a version is published, so that no record changes split
    split_kind = models.CharField(max_length=10, choices=SplitKind.choices, default=SplitKind.RANDOM)
    # [[name, fraction], ...] summing to 1 (random, group), or [[name, "ISO time" | null], ...] with
    # increasing cutoffs and null last (time): a record observed before a cutoff takes that split.
    split_fractions = models.JSONField(default=default_fractions)
    split_cutoffs = models.JSONField(default=list, blank=True)
    split_feature = models.CharField(max_length=200, blank=True, help_text="The group feature (group rule).")
    split_key = models.CharField(max_length=64, default=_split_key, editable=False,
                                 help_text="The secret of the keyed hash; never changes.")
    formats = models.JSONField(default=default_formats, help_text="Files built per split: parquet, csv, jsonl.")
    gate_on = models.CharField(max_length=10, choices=GateOn.choices, default=GateOn.ERRORS)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def policy(self) -> dict:
        """The label policy as plain data (the manifest keeps it)."""
        return {"gold": self.use_gold, "adjudicated": self.use_adjudicated, "consensus": self.use_consensus,
                "min_confidence": self.min_confidence, "feedback": self.use_feedback,
                "batch_labels": self.use_batch_labels, "unlabeled": self.unlabeled}

    def split_rule(self) -> dict:
        """The split rule as plain data (the manifest keeps it; the key stays secret)."""
        rule = {"kind": self.split_kind}
        if self.split_kind == SplitKind.TIME:
            rule["cutoffs"] = self.split_cutoffs
        else:
            rule["fractions"] = self.split_fractions
        if self.split_kind == SplitKind.GROUP:
            rule["feature"] = self.split_feature
        return rule

    def split_names(self) -> list[str]:
        pairs = self.split_cutoffs if self.split_kind == SplitKind.TIME else self.split_fractions
        return [name for name, _ in pairs]


class VersionQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=TrainingSetVersion.Status.PUBLISHED)


class TrainingSetVersion(models.Model):
    """One build of a set: immutable once built. queued -> building -> published | review | failed;
    review -> published (approved) | rejected."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        BUILDING = "building"
        REVIEW = "review", "Awaiting review"
        PUBLISHED = "published"
        REJECTED = "rejected"
        FAILED = "failed"

    training_set = models.ForeignKey(TrainingSet, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    # A rebuild of a marked version without its erased rows copies that version's files, not the database.
    rebuilt_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    comment = models.TextField(blank=True, help_text="Why it was published.")
    folder = models.CharField(max_length=300, blank=True, help_text="Its files, relative to SIEVE_DATA_DIR.")
    rows_total = models.BigIntegerField(default=0)
    rows_written = models.BigIntegerField(default=0)
    manifest = models.JSONField(default=dict, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    # The version's own profile (versioned JSON, its own bins): it can become a baseline without another pass.
    profile = models.TextField(blank=True)
    gate_verdict = models.CharField(max_length=20, blank=True)
    gate_report = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.IntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = VersionQuerySet.as_manager()

    class Meta:
        ordering = ["training_set", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["training_set", "number"], name="version_number_once_per_set"),
            models.UniqueConstraint(fields=["training_set", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False), name="version_unique_idempotency_key"),
            models.UniqueConstraint(fields=["training_set"], condition=Q(status__in=["queued", "building"]),
                                    name="version_one_build_per_set"),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="version_status_updated")]

    def __str__(self) -> str:
        return f"{self.training_set.name} v{self.number}"

    @property
    def is_built(self) -> bool:
        return self.status in (self.Status.REVIEW, self.Status.PUBLISHED, self.Status.REJECTED)

    @property
    def readable(self) -> bool:
        """Its files may be downloaded: built, and not rejected."""
        return self.status in (self.Status.REVIEW, self.Status.PUBLISHED)


class Erasure(models.Model):
    """A tombstone: what was erased, when and by whom, never the data itself.

    A record's identity is kept only as a keyed hash (of source and external id), which lets a later
    version leave the identity out without Sieve keeping the id; an actor's as its pseudonym's hash.
    """

    class Kind(models.TextChoices):
        RECORD = "record"
        ACTOR = "actor", "Actor's feedback"

    class Status(models.TextChoices):
        # The database rows go in the request's transaction; payload and Parquet copies follow in a task.
        FILES_PENDING = "files_pending", "Files being rewritten"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    source = models.ForeignKey("collection.Source", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    identity = models.CharField(max_length=64, db_index=True, help_text="Keyed hash of what was erased.")
    reason = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    # What went: counts only ({"revisions": 2, "labels": 5, "feedback": 1, "payload_lines": 2, ...}).
    counts = models.JSONField(default=dict, blank=True)
    # Batches whose raw payload or Parquet copy held the data, with what was done to each file.
    files = models.JSONField(default=list, blank=True)
    # An actor's erasure: the queue items whose labels it removed; a rebuild leaves out the rows they labeled.
    items = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.FILES_PENDING)
    error = models.TextField(blank=True)
    versions = models.ManyToManyField(TrainingSetVersion, blank=True, related_name="erasures",
                                      help_text="Versions whose files held the erased data.")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"erasure {self.pk} ({self.kind})"
