"""Reads of the collection app that views and commands share."""
from django.db.models import QuerySet

from .models import Batch, BatchTransition, Source


def batch_list(*, source: Source | None = None, status: str | None = None, received_after=None,
               received_before=None) -> QuerySet[Batch]:
    batches = Batch.objects.select_related("source")
    if source is not None:
        batches = batches.filter(source=source)
    if status:
        batches = batches.filter(status=status)
    if received_after:
        batches = batches.filter(received_at__gte=received_after)
    if received_before:
        batches = batches.filter(received_at__lt=received_before)
    return batches


def source_get(*, name: str) -> Source | None:
    return Source.objects.filter(name=name).first()


def batch_get(*, batch_id: int) -> Batch | None:
    """One batch with its source, or None."""
    return Batch.objects.select_related("source").filter(pk=batch_id).first()


def batch_last_note(*, batch_id: int) -> str:
    """The note of a batch's latest transition: for a verdict, its reasons."""
    last = BatchTransition.objects.filter(batch_id=batch_id).order_by("-at", "-id").first()
    return last.note if last else ""
