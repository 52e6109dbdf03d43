"""Input and output shapes of the training-set API: sets, versions, decisions, the diff of two versions and a
row's lineage. Raters and adjudicators only ever appear as pseudonyms."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from collection.models import Source
from labeling.models import LabelingProject

from .models import GateOn, SplitKind, TrainingSet, TrainingSetVersion, Unlabeled


class ErrorSerializer(serializers.Serializer):
    """Every refusal: a code to branch on, a sentence for people, and where the problem is when it has a place."""

    error = serializers.CharField(help_text="A stable code: not_found, not_allowed, version_building, "
                                            "version_not_ready, format_not_built, unknown_split, ...")
    detail = serializers.CharField()
    field = serializers.CharField(required=False)
    value = serializers.JSONField(required=False)


class BuildingErrorSerializer(ErrorSerializer):
    version = serializers.IntegerField(help_text="The number of the version being built.")


class NamedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class LatestSerializer(serializers.Serializer):
    """The newest published version of a set, in short."""

    number = serializers.IntegerField()
    rows = serializers.IntegerField(source="rows_total")
    content_sha256 = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainingSetSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField(help_text="The owner's username, or null.")
    sources = NamedSerializer(many=True)
    projects = NamedSerializer(many=True)
    reader_groups = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True,
                                                 help_text="Their members may read the set.")
    policy = serializers.SerializerMethodField(help_text="Which labels count: gold, adjudicated, consensus at or "
                                                         "above min_confidence, feedback, batch labels; and what "
                                                         "happens to a record without one (unlabeled: drop|keep).")
    split_rule = serializers.SerializerMethodField(help_text="kind (random|time|group) with fractions, cutoffs or "
                                                             "the group feature.")
    latest_published = serializers.SerializerMethodField()

    class Meta:
        model = TrainingSet
        fields = ["id", "name", "description", "owner", "sources", "projects", "reader_groups", "policy",
                  "split_rule", "formats", "gate_on", "created_at", "latest_published"]

    def get_owner(self, training_set) -> str | None:
        return training_set.owner.get_username() if training_set.owner_id else None

    def get_policy(self, training_set) -> dict:
        return training_set.policy()

    def get_split_rule(self, training_set) -> dict:
        return training_set.split_rule()

    @extend_schema_field(LatestSerializer(allow_null=True))
    def get_latest_published(self, training_set):
        published = getattr(training_set, "published_versions", None)
        if published is None:
            published = list(training_set.versions.published().order_by("-number")[:1])
        return LatestSerializer(published[0]).data if published else None


class TrainingSetInSerializer(serializers.Serializer):
    """A new set (POST) or the fields to change (PATCH). The split rule cannot change once a version is kept."""

    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True)
    sources = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Source.objects.all(),
                                           help_text="Source names.")
    projects = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=LabelingProject.objects.all(),
                                                  help_text="Labeling project ids whose labels the set takes.")
    reader_groups = serializers.SlugRelatedField(slug_field="name", many=True, required=False,
                                                 queryset=Group.objects.all(), help_text="Group names.")
    owner = serializers.SlugRelatedField(slug_field="username", required=False, allow_null=True,
                                         queryset=get_user_model().objects.filter(is_active=True),
                                         help_text="A username; default: you.")
    use_gold = serializers.BooleanField(required=False)
    use_adjudicated = serializers.BooleanField(required=False)
    use_consensus = serializers.BooleanField(required=False)
    min_confidence = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    use_feedback = serializers.BooleanField(required=False)
    use_batch_labels = serializers.BooleanField(required=False)
    unlabeled = serializers.ChoiceField(choices=Unlabeled.choices, required=False)
    split_kind = serializers.ChoiceField(choices=SplitKind.choices, required=False)
    split_fractions = serializers.JSONField(required=False, help_text='[["train", 0.8], ["test", 0.2]]')
    split_cutoffs = serializers.JSONField(required=False,
                                          help_text='[["train", "2024-01-01T00:00:00Z"], ["test", null]]')
    split_feature = serializers.CharField(required=False, allow_blank=True)
    formats = serializers.ListField(child=serializers.ChoiceField(choices=["parquet", "csv", "jsonl"]),
                                    required=False, help_text="parquet always, csv and jsonl if named.")
    gate_on = serializers.ChoiceField(choices=GateOn.choices, required=False)


class ProgressSerializer(serializers.Serializer):
    written = serializers.IntegerField()
    total = serializers.IntegerField()


class VersionSerializer(serializers.ModelSerializer):
    """A version in a list: its state and size, not its manifest."""

    rows = serializers.IntegerField(source="rows_total")
    progress = serializers.SerializerMethodField(help_text="Rows written of the total while it builds.")
    rebuilt_from = serializers.SerializerMethodField(help_text="The version this one rebuilt without erased rows.")

    class Meta:
        model = TrainingSetVersion
        fields = ["number", "status", "rows", "progress", "content_sha256", "gate_verdict", "comment",
                  "rebuilt_from", "error", "created_at", "started_at", "finished_at"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, version):
        written, total = self.context["progress"](version)
        return {"written": written, "total": total}

    def get_rebuilt_from(self, version) -> int | None:
        if version.rebuilt_from_id is None:
            return None
        numbers = self.context.get("numbers") or {}
        if version.rebuilt_from_id in numbers:  # a list knows its own numbers: no query per row
            return numbers[version.rebuilt_from_id]
        return version.rebuilt_from.number


class FileLinkSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="<split>.<format>")
    url = serializers.URLField()
    sha256 = serializers.CharField()
    bytes = serializers.IntegerField()
    rows = serializers.IntegerField(allow_null=True)


class ErasureMarkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class ErasedSerializer(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Rows whose record was erased since the build (served in its files "
                                              "until a rebuild without them).")
    erasures = ErasureMarkSerializer(many=True)


class DecisionSerializer(serializers.Serializer):
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()
    comment = serializers.CharField(allow_blank=True)


class VersionDetailSerializer(VersionSerializer):
    """A whole version: its manifest, gate report, files, the decision on it and any erasure marking it."""

    manifest = serializers.JSONField(help_text="Counts per split, label distribution, batches with their verdicts, "
                                               "projects, consensus runs, schema, policy, split rule, files with "
                                               "their SHA-256 and content_sha256 (see docs/guides/training-sets.md).")
    gate_report = serializers.JSONField()
    files = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()
    erased = serializers.SerializerMethodField(help_text="Null unless an erasure marks this version.")

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "manifest", "gate_report", "files", "decision", "erased"]

    @extend_schema_field(FileLinkSerializer(many=True))
    def get_files(self, version):
        return self.context.get("files", [])

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, version):
        if version.decided_at is None:
            return None
        return {"by": version.decided_by.get_username() if version.decided_by_id else None,
                "at": version.decided_at, "comment": version.decision_comment}

    @extend_schema_field(ErasedSerializer(allow_null=True))
    def get_erased(self, version):
        marks = self.context.get("erased")
        return None if marks is None else ErasedSerializer(marks).data


class PublishInSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                    help_text="Why this version is published.")


class DecisionInSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="",
                                    help_text="Required to approve.")


class BaselineOutSerializer(serializers.Serializer):
    baselines = serializers.ListField(child=serializers.DictField(), help_text="The new active baseline of each "
                                                                               "source: id, source, name.")


class DiffExampleSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    source = serializers.CharField()
    split = serializers.CharField()
    old_split = serializers.CharField(allow_null=True)
    new_split = serializers.CharField(allow_null=True)
    old_label = serializers.JSONField(allow_null=True)
    new_label = serializers.JSONField(allow_null=True)


class DiffSplitSerializer(serializers.Serializer):
    old_rows = serializers.IntegerField()
    new_rows = serializers.IntegerField()
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    relabeled = serializers.IntegerField()
    moved_in = serializers.IntegerField()
    moved_out = serializers.IntegerField()


class DiffSideSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    rows = serializers.IntegerField()


class RelabelPairSerializer(serializers.Serializer):
    old_label = serializers.JSONField(allow_null=True)
    new_label = serializers.JSONField(allow_null=True)
    count = serializers.IntegerField()


class DiffExamplesSerializer(serializers.Serializer):
    added = DiffExampleSerializer(many=True)
    removed = DiffExampleSerializer(many=True)
    relabeled = DiffExampleSerializer(many=True)
    moved_split = DiffExampleSerializer(many=True)


class DiffSerializer(serializers.Serializer):
    """Rows matched by source and external id between two versions of a set."""

    old = DiffSideSerializer()
    new = DiffSideSerializer()
    added = serializers.IntegerField(help_text="Rows only in the new version.")
    removed = serializers.IntegerField(help_text="Rows only in the old version.")
    relabeled = serializers.IntegerField(help_text="Rows in both with another label (unlabeled counts as one).")
    moved_split = serializers.IntegerField(help_text="Rows in both in another split: 0 under a stable split rule.")
    unchanged = serializers.IntegerField()
    splits = serializers.DictField(child=DiffSplitSerializer(), help_text="Per split: added, relabeled, moved_in "
                                                                          "by the new split; removed, moved_out by "
                                                                          "the old one.")
    relabel_pairs = RelabelPairSerializer(many=True, help_text="The most frequent label changes.")
    examples = DiffExamplesSerializer(help_text="Up to 10 rows of each kind, in file order.")


class LineageLabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    value = serializers.JSONField()
    provenance = serializers.CharField(help_text="human, process_feedback or imported.")
    rater = serializers.CharField(allow_null=True, help_text="A stable pseudonym of the rater, never the username.")
    rater_kind = serializers.CharField(help_text="generalist, expert, end_user; process_feedback for feedback.")
    actor = serializers.CharField(allow_null=True, help_text="Process feedback: the actor's pseudonym.")
    is_gold = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    undone = serializers.BooleanField()
    undone_at = serializers.DateTimeField(allow_null=True)


class LineageAdjudicationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    decided_at = serializers.DateTimeField()
    reason = serializers.CharField()
    unlabelable = serializers.BooleanField()
    value = serializers.JSONField(allow_null=True)
    adjudicator = serializers.CharField(help_text="A stable pseudonym of the staff member.")


class LineageRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    erased = serializers.BooleanField()
    revision = serializers.IntegerField(required=False, help_text="1 for the first revision of the record.")
    revisions = serializers.IntegerField(required=False)
    current = serializers.BooleanField(required=False, help_text="Still the record's current revision.")
    observed_at = serializers.DateTimeField(required=False, allow_null=True)
    erasure = serializers.DictField(required=False, allow_null=True, help_text="Erased: the tombstone (id, "
                                                                               "created_at, status).")


class LineageBatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    received_at = serializers.DateTimeField()


class LineageRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    verdict = serializers.CharField()


class LineageConsensusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.CharField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    label = serializers.JSONField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    posterior = serializers.JSONField(allow_null=True, help_text="The item's posterior over the run's classes.")


class LineageItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = NamedSerializer()
    state = serializers.CharField()
    is_gold = serializers.BooleanField()
    consensus = serializers.JSONField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    decided_by = serializers.CharField(allow_blank=True)


class LineageRowSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    source = NamedSerializer()
    split = serializers.CharField()
    row = serializers.IntegerField(help_text="The row's index in its split file.")
    label = serializers.JSONField(allow_null=True)
    label_confidence = serializers.FloatField(allow_null=True)
    label_origin = serializers.CharField(help_text="gold, adjudicated, consensus, feedback, batch or none.")
    record = LineageRecordSerializer()
    batch = LineageBatchSerializer(allow_null=True)
    validation_run = LineageRunSerializer(allow_null=True)
    item_id = serializers.IntegerField(allow_null=True, help_text="The queue item that gave the label.")
    project_id = serializers.IntegerField(allow_null=True)
    consensus_run = LineageConsensusSerializer(allow_null=True)
    items = LineageItemSerializer(many=True)
    labels = LineageLabelSerializer(many=True)
    adjudications = LineageAdjudicationSerializer(many=True)


class LineageSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    external_id = serializers.CharField()
    rows = LineageRowSerializer(many=True)
