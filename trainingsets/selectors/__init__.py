"""Reads of the training-set app that the API, the pages and the commands share: which sets a user may read,
their versions, a version's erasure marks, and (in submodules) the diff of two versions and a row's lineage."""
from django.db.models import Prefetch, Q, QuerySet

from ..models import Erasure, TrainingSet, TrainingSetVersion
from .diff import version_diff
from .lineage import version_lineage

__all__ = [
    "trainingset_list_for", "trainingset_get_for", "trainingset_can_publish", "version_list", "version_get",
    "version_previous", "version_in_progress", "version_erasure_marks",
    "version_diff", "version_lineage", "erasure_get",
]

# The columns a list of versions shows; the manifest, profile and gate report can each be megabytes.
LIST_FIELDS = ("id", "training_set_id", "number", "status", "rebuilt_from_id", "comment", "rows_total",
               "rows_written", "content_sha256", "gate_verdict", "error", "created_at", "started_at", "finished_at",
               "updated_at", "decided_at", "decision_comment")


def _reader_sets(user) -> Q:
    """Sets the user owns or reads through one of the set's reader groups (a subquery: no duplicate rows)."""
    through = TrainingSet.reader_groups.through
    by_group = through.objects.filter(group__user=user).values("trainingset_id")
    return Q(owner_id=user.pk) | Q(pk__in=by_group)


def trainingset_list_for(user) -> QuerySet[TrainingSet]:
    """The sets a user may read: every set for staff, else the sets they own or whose reader groups they are in;
    with their sources, projects, reader groups and published versions (newest first) prefetched."""
    sets = TrainingSet.objects.select_related("owner").prefetch_related(
        "sources", "projects", "reader_groups",
        Prefetch("versions", to_attr="published_versions",
                 queryset=TrainingSetVersion.objects.published().only(*LIST_FIELDS).order_by("-number")),
    )
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False) or user.pk is None:
        return sets.none()
    if user.is_staff:
        return sets
    return sets.filter(_reader_sets(user))


def trainingset_get_for(user, pk: int) -> TrainingSet | None:
    """A set the user may read, or None: another set's existence is never confirmed (the API answers 404)."""
    return trainingset_list_for(user).filter(pk=pk).first()


def trainingset_can_publish(user, training_set: TrainingSet) -> bool:
    """Staff and the set's owner publish versions and edit the set; its readers only read."""
    return bool(user.is_staff or (training_set.owner_id is not None and training_set.owner_id == user.pk))


def version_list(training_set: TrainingSet) -> QuerySet[TrainingSetVersion]:
    """A set's versions, newest first, without their manifests (see `version_get` for one whole version)."""
    return TrainingSetVersion.objects.filter(training_set=training_set).only(*LIST_FIELDS).order_by("-number")


def trainingset_list_with_latest(user) -> QuerySet[TrainingSet]:
    """`trainingset_list_for` with each set's newest version of any status as `latest` (a list of at most one):
    the list page says what is building or held, too."""
    latest = Prefetch("versions", to_attr="latest",
                      queryset=TrainingSetVersion.objects.only(*LIST_FIELDS).order_by("-number")[:1])
    return trainingset_list_for(user).prefetch_related(latest)


def version_list_with_authors(training_set: TrainingSet) -> QuerySet[TrainingSetVersion]:
    """`version_list` with who asked for each version (the set page's table)."""
    return version_list(training_set).select_related("created_by").only(*LIST_FIELDS, "created_by__username")


def version_list_before(training_set: TrainingSet, version: TrainingSetVersion, *,
                        limit: int) -> list[TrainingSetVersion]:
    """Up to `limit` built versions of the set older than `version`, newest first (what it can be compared with)."""
    older = version_list(training_set).filter(number__lt=version.number)[:limit]
    return [v for v in older if v.is_built]


def version_get(training_set: TrainingSet, number: int) -> TrainingSetVersion | None:
    """One version of a set by its number, whole (manifest included), or None."""
    return (TrainingSetVersion.objects.filter(training_set=training_set, number=number)
            .select_related("training_set", "decided_by", "created_by", "rebuilt_from").first())


def version_previous(version: TrainingSetVersion) -> TrainingSetVersion | None:
    """The latest published version numbered below this one: what a diff compares with by default."""
    return (TrainingSetVersion.objects.published()
            .filter(training_set_id=version.training_set_id, number__lt=version.number)
            .select_related("training_set").order_by("-number").first())


def version_in_progress(training_set: TrainingSet) -> TrainingSetVersion | None:
    """The set's version that is queued or building (at most one: a constraint says so), or None."""
    return (TrainingSetVersion.objects.filter(training_set=training_set, status__in=[
        TrainingSetVersion.Status.QUEUED, TrainingSetVersion.Status.BUILDING]).only(*LIST_FIELDS).first())


def version_erasure_marks(version: TrainingSetVersion) -> dict | None:
    """Erasures that mark the version (its files hold data erased since), or None when it is unmarked:
    `rows` counts the erased records (each was one row), `erasures` lists the tombstones, never what they erased."""
    erasures = list(Erasure.objects.filter(versions=version).only("id", "kind", "status", "created_at")
                    .order_by("created_at", "id"))
    if not erasures:
        return None
    return {
        "rows": sum(1 for e in erasures if e.kind == Erasure.Kind.RECORD),
        "erasures": [{"id": e.pk, "kind": e.kind, "status": e.status, "created_at": e.created_at} for e in erasures],
    }


def erasure_get(pk: int) -> Erasure | None:
    """An erasure with its source and requester, or None."""
    return Erasure.objects.select_related("source", "requested_by").filter(pk=pk).first()
