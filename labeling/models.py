"""Raters, labeling projects, the work queue (items, leases), annotations, and feedback-to-label rules."""
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify


class Rater(models.Model):
    """A person who labels: a Django user with a kind and expertise domains."""

    class Kind(models.TextChoices):
        GENERALIST = "generalist", "Generalist"
        EXPERT = "expert", "Subject-matter expert"
        END_USER = "end_user", "End user"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GENERALIST)
    # Lower-case names, e.g. ["radiology", "payments"]; a list in JSON so SQLite stores it too.
    domains = models.JSONField(default=list, blank=True, help_text="Expertise domains, e.g. [\"payments\"].")
    is_active = models.BooleanField(default=True, help_text="An inactive rater gets no work.")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user__username"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["generalist", "expert", "end_user"]), name="rater_kind_known"),
        ]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_kind_display()})"


class ConsensusMethod(models.TextChoices):
    MAJORITY = "majority", "Majority vote"
    DAWID_SKENE = "dawid_skene", "Dawid-Skene"


def project_slug_free(name: str, *, exclude=None) -> str:
    """A slug made from a project's name that no other project has (`-2`, `-3`... when taken)."""
    projects = LabelingProject.objects
    base = slugify(name)[:190] or "project"
    slug, n = base, 1
    while projects.filter(slug=slug).exclude(pk=exclude).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


class LabelingProject(models.Model):
    """One question asked about the records of some sources, with its label kind, overlap and who may answer."""

    class LabelKind(models.TextChoices):
        SINGLE = "single_choice", "Single choice"
        MULTIPLE = "multiple_choice", "Multiple choice"
        RATING = "rating", "Rating scale"
        TEXT = "free_text", "Free text"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True, blank=True,
                            help_text="Short name for commands (rater_create --project); blank: from the name.")
    instructions = models.TextField(blank=True, help_text="Markdown, shown to raters (rendered safely).")
    label_kind = models.CharField(max_length=20, choices=LabelKind.choices, default=LabelKind.SINGLE)
    # [{"value": "spam", "label": "Spam", "hotkey": "1"}, ...] for the two choice kinds.
    choices = models.JSONField(default=list, blank=True)
    scale_min = models.IntegerField(default=1, help_text="Rating scale: lowest value.")
    scale_max = models.IntegerField(default=5, help_text="Rating scale: highest value.")
    text_max_length = models.PositiveIntegerField(default=2000, help_text="Free text: longest answer.")
    overlap = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(50)],
                                               help_text="How many raters label each item.")
    # A tie asks one more rater, up to this many extra; after that the item closes without a consensus.
    max_extra_raters = models.PositiveSmallIntegerField(default=2)
    # Empty lists mean "anyone": kinds from Rater.Kind, domains as in Rater.domains.
    allowed_kinds = models.JSONField(default=list, blank=True, help_text="Rater kinds that may label; empty: all.")
    domains = models.JSONField(default=list, blank=True,
                               help_text="A rater needs one of these domains; empty: no domain needed.")
    gold_rate = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                                  help_text="Share of served items that are gold (0 to 1).")
    lease_duration = models.DurationField(default=timedelta(minutes=15),
                                          help_text="How long a rater holds an item before it goes back to the queue.")
    feedback_counts = models.BooleanField(default=False,
                                          help_text="Process-feedback labels count toward consensus.")
    sources = models.ManyToManyField("collection.Source", blank=True, related_name="labeling_projects",
                                     help_text="Admitted batches of these sources feed the project.")
    members = models.ManyToManyField(Rater, through="Membership", related_name="projects", blank=True)
    # How the final label of an item is found. Dawid-Skene by default: on every real crowd set we hold
    # it is more accurate than the majority (docs/guides/label-quality.md); the majority still settles each
    # item on submit, and a Dawid-Skene run then re-decides the open and complete items it saw.
    consensus_method = models.CharField(max_length=20, choices=ConsensusMethod.choices,
                                        default=ConsensusMethod.DAWID_SKENE)
    # An item whose consensus confidence (majority share, or Dawid-Skene posterior) stays under this
    # after its overlap plus the extra raters goes to adjudication instead of waiting.
    min_confidence = models.FloatField(default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                                       help_text="Lowest consensus confidence (majority share or posterior) "
                                                 "an item may close with; below it, adjudication.")
    consensus_every = models.PositiveIntegerField(default=200, help_text="Dawid-Skene re-runs after this many "
                                                                         "new labels (0: only on schedule or demand).")
    kappa_min_shared = models.PositiveIntegerField(default=10, help_text="Cohen's kappa is shown for pairs of "
                                                                         "raters sharing at least this many items.")
    # Rater quality gate: below `min_gold_accuracy` after `min_gold_answers` gold answers, a rater is paused.
    min_gold_accuracy = models.FloatField(null=True, blank=True,
                                          validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                                          help_text="Pause a rater whose gold accuracy falls below this "
                                                    "(empty: never).")
    min_gold_answers = models.PositiveIntegerField(default=10, help_text="Gold answers before the gate applies.")
    # {"generalist": 12.0, "expert": 60.0, "end_user": 0.0}: cost of an hour of labeling per rater kind.
    hourly_rates = models.JSONField(default=dict, blank=True, help_text="Hourly rate per rater kind, "
                                                                        "e.g. {\"generalist\": 12, \"expert\": 60}.")
    currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_share"),
            models.CheckConstraint(condition=Q(scale_min__lt=F("scale_max")), name="project_scale_ordered"),
            models.CheckConstraint(condition=Q(lease_duration__gt=timedelta(0)), name="project_lease_positive"),
            models.CheckConstraint(condition=Q(min_confidence__gte=0) & Q(min_confidence__lte=1),
                                   name="project_min_confidence_share"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = project_slug_free(self.name, exclude=self.pk)
        super().save(*args, **kwargs)

    @property
    def expert_only(self) -> bool:
        return list(self.allowed_kinds or []) == [Rater.Kind.EXPERT]

    @property
    def max_needed(self) -> int:
        return self.overlap + self.max_extra_raters

    def choice_values(self) -> list:
        return [c["value"] for c in self.choices or []]

    def clean(self) -> None:
        """Choices are {value, label, hotkey} with distinct values and hotkeys; kinds are known ones."""
        errors = {}
        if self.label_kind in (self.LabelKind.SINGLE, self.LabelKind.MULTIPLE):
            problem = _choices_problem(self.choices)
            if problem:
                errors["choices"] = problem
        unknown = [k for k in self.allowed_kinds or [] if k not in Rater.Kind.values]
        if unknown or not isinstance(self.allowed_kinds, list):
            errors["allowed_kinds"] = f"unknown rater kinds {unknown}; use {Rater.Kind.values}"
        if not isinstance(self.domains, list) or not all(isinstance(d, str) and d for d in self.domains):
            errors["domains"] = "a list of domain names"
        if self.scale_min >= self.scale_max:
            errors["scale_max"] = "the highest rating must be above the lowest"
        rates = self.hourly_rates
        if not isinstance(rates, dict) or any(
                k not in Rater.Kind.values or isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0
                for k, v in rates.items()):
            errors["hourly_rates"] = f"a rate (a number, 0 or more) per rater kind {Rater.Kind.values}"
        if errors:
            raise ValidationError(errors)


def _choices_problem(choices) -> str | None:
    if not isinstance(choices, list) or len(choices) < 2:
        return "give at least two choices"
    values, hotkeys = set(), set()
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("value"), str) or not choice["value"]:
            return f"each choice is {{'value': ..., 'label': ..., 'hotkey': ...}}, not {choice!r}"
        hotkey = choice.get("hotkey") or ""
        if choice["value"] in values:
            return f"the value {choice['value']!r} is given twice"
        if hotkey and (len(hotkey) != 1 or hotkey in hotkeys or hotkey.lower() in RESERVED_HOTKEYS):
            return f"the hotkey {hotkey!r} is not one character, is taken, or is reserved ({sorted(RESERVED_HOTKEYS)})"
        values.add(choice["value"])
        hotkeys.add(hotkey)
    return None


# Keys the rater's page keeps for itself: S skips, Z undoes (Enter submits).
RESERVED_HOTKEYS = {"s", "z"}


class Membership(models.Model):
    """A rater belongs to a project: they see it and may get its items."""

    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="memberships")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="memberships")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    # A paused rater gets no work in the project (the gold-accuracy gate, or staff); staff resume them.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True, db_default="")
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", help_text="Empty when the gold-accuracy gate paused them.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "rater"], name="membership_once")]

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    def __str__(self) -> str:
        return f"{self.rater} in {self.project}"


class QueueItemQuerySet(models.QuerySet):
    def claimable(self):
        """Open, not gold, with a free slot: what `next` may hand out (read through the partial index below)."""
        return self.filter(OPEN_REGULAR, submitted_count__lt=F("needed") - F("leased_count"))


# The partial index over open regular items. It leaves the slot counters out on purpose: an update of
# the counters (every claim and submit) then touches no index and stays a HOT update. The items it
# holds that have no free slot are those with a live lease, at most one per rater and project, so a
# claim skips at most that many rows, whatever the size of the queue.
OPEN_REGULAR = Q(state="open", is_gold=False)


class QueueItem(models.Model):
    """A record in a project's queue, with its slots (needed, leased, submitted) and, once complete, its consensus.

    `needed` starts at the project's overlap and grows by one on a tie. `leased_count` counts live
    leases and `submitted_count` counted human annotations; a check constraint keeps their sum at or
    under `needed`, so no item is ever over-assigned. Gold items are served outside the slots: every
    fitting rater may answer each gold item once.
    """

    class State(models.TextChoices):
        OPEN = "open"
        # No confident consensus after the overlap and every extra rater: an expert or staff decides.
        ADJUDICATION = "adjudication", "Needs adjudication"
        COMPLETE = "complete"
        UNLABELABLE = "unlabelable", "Closed as unlabelable"

    class Decided(models.TextChoices):
        """What set the item's consensus."""
        MAJORITY = "majority", "Majority vote"
        DAWID_SKENE = "dawid_skene", "Dawid-Skene"
        ADJUDICATED = "adjudicated", "Adjudicated"

    # Indexed by the unique (project, record) and the partial indexes below, which all start with it.
    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="items", db_index=False)
    record = models.ForeignKey("collection.Record", on_delete=models.CASCADE, related_name="queue_items")
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True, help_text="The known answer of a gold item.")
    needed = models.PositiveSmallIntegerField(default=3)
    leased_count = models.PositiveSmallIntegerField(default=0)
    submitted_count = models.PositiveSmallIntegerField(default=0)
    feedback_count = models.PositiveIntegerField(default=0, help_text="Process-feedback labels on this item.")
    skipped_count = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    consensus = models.JSONField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True, help_text="Share of counted labels that agree with it.")
    confidence = models.FloatField(null=True, blank=True,
                                   help_text="The consensus's confidence: majority share or Dawid-Skene posterior.")
    decided_by = models.CharField(max_length=20, choices=Decided.choices, blank=True, db_default="")
    consensus_run = models.ForeignKey("ConsensusRun", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", db_index=False, help_text="The run that set the consensus.")
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = QueueItemQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "record"], name="queueitem_once_per_project"),
            models.CheckConstraint(condition=Q(submitted_count__lte=F("needed") - F("leased_count")),
                                   name="queueitem_never_over_assigned"),
            models.CheckConstraint(condition=Q(state__in=["open", "adjudication", "complete", "unlabelable"]),
                                   name="queueitem_state_known"),
            models.CheckConstraint(condition=Q(is_gold=False) | Q(gold_answer__isnull=False),
                                   name="queueitem_gold_has_answer"),
            models.CheckConstraint(condition=Q(agreement__isnull=True) | (Q(agreement__gte=0) & Q(agreement__lte=1)),
                                   name="queueitem_agreement_share"),
            models.CheckConstraint(condition=Q(confidence__isnull=True) | (Q(confidence__gte=0) & Q(confidence__lte=1)),
                                   name="queueitem_confidence_share"),
        ]
        indexes = [
            # `next` reads the head of this index: open items, oldest first (see OPEN_REGULAR).
            models.Index(fields=["project", "id"], condition=OPEN_REGULAR, name="queueitem_open"),
            models.Index(fields=["project", "id"], condition=Q(is_gold=True), name="queueitem_gold"),
            models.Index(fields=["project", "state"], name="queueitem_project_state"),
            models.Index(fields=["project", "id"], condition=Q(state="adjudication"), name="queueitem_adjudication"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of project {self.project_id}"


class Assignment(models.Model):
    """A rater's lease on an item: leased, then submitted, skipped, expired (lease ran out) or undone."""

    class State(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        EXPIRED = "expired"
        UNDONE = "undone"

    # States in which the rater has this item (so `next` never serves it to them again).
    HELD = ["leased", "submitted", "skipped"]

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    # Denormalised from the item: one live lease per rater and project is a constraint on this table.
    # Neither gets an index of its own: the indexes below start with them, and every index is paid
    # for on each claim and submit.
    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="+", db_index=False)
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.LEASED)
    is_gold = models.BooleanField(default=False)
    # True while this lease holds one of the item's slots (leased_count); an expired lease gives it back.
    holds_slot = models.BooleanField(default=False)
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-leased_at", "-id"]
        constraints = [
            # A reload, a double click or two tabs never burn a second item: one live lease per rater and project.
            models.UniqueConstraint(fields=["rater", "project"], condition=Q(state="leased"),
                                    name="assignment_one_live_lease"),
            models.UniqueConstraint(fields=["item", "rater"], condition=Q(state__in=["leased", "submitted", "skipped"]),
                                    name="assignment_item_once_per_rater"),
            models.CheckConstraint(condition=Q(state__in=["leased", "submitted", "skipped", "expired", "undone"]),
                                   name="assignment_state_known"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("leased_at")), name="assignment_lease_positive"),
            models.CheckConstraint(condition=Q(holds_slot=False) | Q(state="leased"),
                                   name="assignment_slot_only_while_leased"),
        ]
        indexes = [
            models.Index(fields=["project", "expires_at"], condition=Q(state="leased"), name="assignment_live"),
            models.Index(fields=["rater", "-finished_at"], name="assignment_rater_history"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LEASED and self.expires_at > timezone.now()


class Annotation(models.Model):
    """A label on an item: a rater's (human) or one mapped from process feedback (pseudonymous actor)."""

    class Provenance(models.TextChoices):
        HUMAN = "human"
        PROCESS_FEEDBACK = "process_feedback", "Process feedback"
        # Brought in from another tool (bulk import): a known rater's label without a lease.
        IMPORTED = "imported"

    # Both indexed by the composite indexes below, which start with them.
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="annotations", db_index=False)
    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="+", db_index=False)
    assignment = models.OneToOneField(Assignment, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="annotation")
    rater = models.ForeignKey(Rater, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations",
                              db_index=False)  # annotation_rater_recent starts with it
    actor = models.CharField(max_length=64, blank=True, help_text="Pseudonym of the feedback's actor.")
    provenance = models.CharField(max_length=20, choices=Provenance.choices, default=Provenance.HUMAN)
    value = models.JSONField()
    # Gold items: whether the value matched the known answer (rater quality).
    correct = models.BooleanField(null=True, blank=True)
    # Given while the item was gold: scores the rater, never counts toward the item's consensus,
    # even after the item stops being gold.
    is_gold = models.BooleanField(default=False, db_default=False)  # plain-SQL inserts leave it out
    # Both empty on human labels, so indexed only where set (partial indexes below).
    rule = models.ForeignKey("FeedbackRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             db_index=False)
    feedback_event = models.ForeignKey("collection.FeedbackEvent", null=True, blank=True, on_delete=models.CASCADE,
                                       related_name="+", db_constraint=False, db_index=False)
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True, help_text="Withdrawn by its rater (undo).")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "rater"],
                                    condition=Q(provenance="human", undone_at__isnull=True),
                                    name="annotation_one_per_rater_and_item"),
            models.UniqueConstraint(fields=["item", "feedback_event"], condition=Q(feedback_event__isnull=False),
                                    name="annotation_one_per_feedback_event"),
            models.UniqueConstraint(fields=["item", "rater"],
                                    condition=Q(provenance="imported", undone_at__isnull=True),
                                    name="annotation_one_import_per_rater_and_item"),
            models.CheckConstraint(
                condition=(Q(provenance="human", rater__isnull=False, assignment__isnull=False)
                           | Q(provenance="process_feedback", rater__isnull=True, feedback_event__isnull=False)
                           | Q(provenance="imported", rater__isnull=False, assignment__isnull=True)),
                name="annotation_provenance_matches_author"),
        ]
        indexes = [
            models.Index(fields=["item", "provenance"], name="annotation_item"),
            models.Index(fields=["rater", "-created_at"], name="annotation_rater_recent"),
            models.Index(fields=["project", "provenance"], name="annotation_project"),
            # The label export's cursor pages, a consensus run's "labels after the last run", the quality
            # figures' watermark: each reads a project's labels in id order.
            models.Index(fields=["project", "id"], name="annotation_project_id"),
            models.Index(fields=["feedback_event"], condition=Q(feedback_event__isnull=False),
                         name="annotation_feedback_event"),
            models.Index(fields=["rule"], condition=Q(rule__isnull=False), name="annotation_rule"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} on item {self.item_id}"


class RoutedBatch(models.Model):
    """A batch handed to a project's queue: written once, in the transaction that queued its records."""

    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="routed_batches")
    batch = models.ForeignKey("collection.Batch", on_delete=models.CASCADE, related_name="+")
    item_count = models.IntegerField(default=0, help_text="Items this batch added (records already queued not counted).")
    actor = models.CharField(max_length=150, blank=True, help_text="task:route, user:<name>, ...")
    routed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-routed_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "batch"], name="routedbatch_once")]

    def __str__(self) -> str:
        return f"batch {self.batch_id} -> project {self.project_id}"


class FeedbackRule(models.Model):
    """Turns process feedback into labels: `signal` `op` `threshold` -> `label` (or the event's own value)."""

    class Op(models.TextChoices):
        ANY = "any", "any value"
        EQ = "eq", "="
        NE = "ne", "≠"
        GT = "gt", ">"
        GTE = "gte", "≥"
        LT = "lt", "<"
        LTE = "lte", "≤"
        IN = "in", "one of"

    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="feedback_rules")
    name = models.CharField(max_length=200, blank=True)
    signal = models.CharField(max_length=100, help_text="rating, click, thumbs, correction or a source's own name.")
    op = models.CharField(max_length=5, choices=Op.choices, default=Op.ANY)
    threshold = models.JSONField(null=True, blank=True, help_text="Compared with the event's value (a list for 'in').")
    label = models.JSONField(null=True, blank=True, help_text="The resulting label; empty with 'use event value'.")
    use_event_value = models.BooleanField(default=False, help_text="The label is the event's value (a correction).")
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0, help_text="Rules are tried in this order; the first match wins.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(use_event_value=True) | Q(label__isnull=False),
                                   name="feedbackrule_has_a_label"),
            models.CheckConstraint(condition=Q(op="any") | Q(threshold__isnull=False),
                                   name="feedbackrule_op_has_threshold"),
        ]

    def __str__(self) -> str:
        target = "the event's value" if self.use_event_value else repr(self.label)
        condition = "any" if self.op == self.Op.ANY else f"{self.get_op_display()} {self.threshold!r}"
        return f"{self.signal} {condition} -> {target}"


class ConsensusRun(models.Model):
    """One Dawid-Skene (or majority) pass over a project's labels, kept so a training set can name it.

    `max_annotation_id`, `label_count` and `labels_sha256` say exactly which labels it saw (the
    counted, not withdrawn labels with an id up to the maximum, hashed in id order).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        LABELS = "labels", "Enough new labels"
        SCHEDULE = "schedule", "Schedule"
        DEMAND = "demand", "On demand"

    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="consensus_runs")
    method = models.CharField(max_length=20, choices=ConsensusMethod.choices, default=ConsensusMethod.DAWID_SKENE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.DEMAND)
    parameters = models.JSONField(default=dict, blank=True, help_text="tolerance, iteration cap, smoothing, ...")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    max_annotation_id = models.BigIntegerField(null=True, blank=True)
    label_count = models.IntegerField(default=0)
    labels_sha256 = models.CharField(max_length=64, blank=True)
    item_count = models.IntegerField(default=0)
    rater_count = models.IntegerField(default=0)
    classes = models.JSONField(default=list, blank=True)
    iterations = models.IntegerField(null=True, blank=True)
    converged = models.BooleanField(null=True, blank=True)
    log_likelihood = models.FloatField(null=True, blank=True)
    class_priors = models.JSONField(default=list, blank=True)
    # {rater id: K x K confusion matrix, rows = true class, in `classes` order}
    rater_confusion = models.JSONField(default=dict, blank=True)
    # {rater id: the rater's accuracy under the model}
    rater_accuracy = models.JSONField(default=dict, blank=True)
    items_changed = models.IntegerField(default=0, help_text="Items whose consensus this run changed.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One run waiting or running per project: a second request while one is pending is the same run.
            models.UniqueConstraint(fields=["project"], condition=Q(status__in=["queued", "running"]),
                                    name="consensusrun_one_pending_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.get_method_display()} run {self.pk} of project {self.project_id} ({self.status})"


class ConsensusRunItem(models.Model):
    """A run's decision on one item: its label, confidence and posterior over the run's classes."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="items", db_index=False)
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.JSONField(null=True)
    confidence = models.FloatField()
    posterior = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="consensusrunitem_once")]
        indexes = [models.Index(fields=["item", "run"], name="consensusrunitem_item")]


class Adjudication(models.Model):
    """A final decision on an item the raters could not settle: a label (overriding consensus) or unlabelable."""

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="adjudications")
    project = models.ForeignKey(LabelingProject, on_delete=models.CASCADE, related_name="+", db_index=False)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    value = models.JSONField(null=True, blank=True, help_text="The final label; empty when closed as unlabelable.")
    unlabelable = models.BooleanField(default=False)
    reason = models.TextField()
    previous_consensus = models.JSONField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(unlabelable=True, value__isnull=True)
                                   | Q(unlabelable=False, value__isnull=False),
                                   name="adjudication_label_or_unlabelable"),
        ]
        indexes = [models.Index(fields=["project", "-decided_at"], name="adjudication_project_recent")]

    def __str__(self) -> str:
        return f"adjudication of item {self.item_id}"
