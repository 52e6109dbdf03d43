"""The route step: an admitted batch's records become queue items of every project its source feeds, once."""
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from collection.models import Batch, Record

from ..models import LabelingProject, QueueItem, RoutedBatch
from .errors import RouteError

_QUEUE_SQL = f"""
INSERT INTO {QueueItem._meta.db_table}
    (project_id, record_id, is_gold, needed, leased_count, submitted_count, feedback_count, skipped_count,
     state, created_at)
SELECT %s, r.id, %s, %s, 0, 0, 0, 0, %s, %s
  FROM {Record._meta.db_table} r
 WHERE r.batch_id = %s AND r.is_current
 ORDER BY r.id
ON CONFLICT (project_id, record_id) DO NOTHING
"""


def items_queue_batch(*, project: LabelingProject, batch_id: int) -> int:
    """Queue the batch's current records in the project: one INSERT ... SELECT, records already queued
    left alone (ON CONFLICT DO NOTHING). Returns how many items were added."""
    with connection.cursor() as cursor:
        cursor.execute(_QUEUE_SQL, [project.pk, False, project.overlap, QueueItem.State.OPEN, timezone.now(),
                                    batch_id])
        return max(cursor.rowcount, 0)


def batch_add_to_project(*, project: LabelingProject, batch: Batch, actor: str) -> RoutedBatch | None:
    """Queue an admitted batch in one project, once: the RoutedBatch row and the items commit together.

    Returns the new RoutedBatch, or None when the batch was already routed to this project (a second
    run, a redelivered message or a racing worker does nothing). RouteError when it is not admitted.
    """
    if batch.status != Batch.Status.ADMITTED:
        raise RouteError(f"batch {batch.pk} is {batch.status}; only admitted batches are labeled",
                         field="batch", value=batch.pk)
    try:
        with transaction.atomic():
            # The unique (project, batch) row is the claim: a second transaction waits here, then fails.
            routed = RoutedBatch.objects.create(project=project, batch=batch, actor=actor)
            routed.item_count = items_queue_batch(project=project, batch_id=batch.pk)
            RoutedBatch.objects.filter(pk=routed.pk).update(item_count=routed.item_count)
    except IntegrityError:
        if RoutedBatch.objects.filter(project=project, batch=batch).exists():
            return None
        raise
    return routed


def batch_route(*, batch_id: int, actor: str = "task:route") -> list[RoutedBatch]:
    """The pipeline's route step: an admitted batch goes to every active project fed by its source.

    Does nothing for a batch that is not admitted (quarantined, rejected, gone) and nothing for a
    project it was already routed to, so running it twice, or after an approval, is safe.
    """
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None or batch.status != Batch.Status.ADMITTED:
        return []
    projects = LabelingProject.objects.filter(sources=batch.source_id, is_active=True).order_by("id")
    return [routed for project in projects
            if (routed := batch_add_to_project(project=project, batch=batch, actor=actor)) is not None]


def project_queue_admitted(*, project: LabelingProject, actor: str, batch_ids: list[int] | None = None) -> list[RoutedBatch]:
    """By hand: queue the project's sources' admitted batches not routed to it yet (or only `batch_ids`)."""
    if batch_ids is not None:
        batches = Batch.objects.filter(pk__in=batch_ids)
        unknown = sorted(set(batch_ids) - set(batches.values_list("pk", flat=True)))
        if unknown:
            raise RouteError(f"no batches {unknown}", field="batch", value=unknown)
    else:
        batches = Batch.objects.filter(status=Batch.Status.ADMITTED, source__in=project.sources.all())
    batches = batches.exclude(pk__in=RoutedBatch.objects.filter(project=project).values("batch_id"))
    return [routed for batch in batches.order_by("pk")
            if (routed := batch_add_to_project(project=project, batch=batch, actor=actor)) is not None]
