"""Reads of individual labels: a project's labels page by page (by annotation id), and look-ups for assigning."""
from collections.abc import Iterator
from datetime import datetime

from ..models import Annotation, LabelingProject, QueueItem, Rater

# The columns of every label listing (API, CSV, Parquet), in order, each with the path it is read from:
# one query joins the item, its record and source, and the rater with their user.
LABEL_FIELDS = {
    "annotation_id": "id",
    "item_id": "item_id",
    "external_id": "item__record__external_id",
    "source": "item__record__source__name",
    "rater_id": "rater_id",
    "rater_username": "rater__user__username",
    "rater_kind": "rater__kind",
    "actor": "actor",
    "provenance": "provenance",
    "rule_id": "rule_id",
    "value": "value",
    "created_at": "created_at",
    "is_gold": "is_gold",
    "correct": "correct",
    "undone_at": "undone_at",
    "item_state": "item__state",
    "consensus": "item__consensus",
}
LABEL_COLUMNS = tuple(LABEL_FIELDS)
_PATHS = tuple(LABEL_FIELDS.values())


def labels_page(*, project: LabelingProject, after: int = 0, limit: int = 1000, provenance: str | None = None,
                rater: str | None = None, since: datetime | None = None,
                include_undone: bool = True) -> list[dict]:
    """Up to `limit` labels of the project with an annotation id above `after`, in id order, as dicts of
    LABEL_COLUMNS, in one query. `rater` is a username; `since` keeps labels created at or after it."""
    labels = Annotation.objects.filter(project_id=project.pk, id__gt=after)
    if provenance:
        labels = labels.filter(provenance=provenance)
    if rater:
        labels = labels.filter(rater__user__username=rater)
    if since is not None:
        labels = labels.filter(created_at__gte=since)
    if not include_undone:
        labels = labels.filter(undone_at__isnull=True)
    # Ordered by the primary key only: the page is a range scan of it, and ids only grow, so a cursor
    # that resumes after the last id never lists a label twice, whatever is added meanwhile.
    rows = labels.order_by("id").values_list(*_PATHS)[:limit]
    return [dict(zip(LABEL_COLUMNS, row)) for row in rows]


def labels_chunks(*, project: LabelingProject, chunk: int = 5000) -> Iterator[list[dict]]:
    """Every label of the project (undone ones too), in id order, `chunk` rows per query: memory stays
    bounded whatever the size of the project."""
    after = 0
    while True:
        rows = labels_page(project=project, after=after, limit=chunk)
        if not rows:
            return
        yield rows
        if len(rows) < chunk:
            return
        after = rows[-1]["annotation_id"]


def labels_count(*, project: LabelingProject) -> int:
    return Annotation.objects.filter(project_id=project.pk).count()


def item_for_staff(*, item_id: int) -> QueueItem | None:
    """An item with its project, for a staff action on it (assign)."""
    return QueueItem.objects.select_related("project").filter(pk=item_id).first()


def rater_by_username(*, username: str) -> Rater | None:
    return Rater.objects.select_related("user").filter(user__username=username).first()
