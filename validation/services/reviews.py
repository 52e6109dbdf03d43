"""An admin's decisions on a batch: approve or reject a quarantined one, retry a failed one, make one the baseline."""
from django.db import transaction

from collection.models import Batch
from collection.services import batch_retry as batch_retry_failed
from collection.services import batch_transition
from validation import alerts
from validation.models import Alert, Baseline

from .audit import actor_label, audit_record
from .baselines import baseline_create_from_batches


class ReviewError(ValueError):
    """A review that cannot be applied (the batch is not quarantined, say)."""


def batch_review(*, batch_id: int, user, approve: bool, comment: str = "") -> Batch:
    """An admin's decision on a quarantined batch: approve admits it, reject rejects it.

    Recorded as the batch's transition with the admin's name, the time and the comment, with its audit entry and
    the quarantine alert's resolution in the same transaction; a second decision on the same batch is refused,
    since it is no longer quarantined.
    """
    target = Batch.Status.ADMITTED if approve else Batch.Status.REJECTED
    with transaction.atomic():
        decided = batch_transition(batch_id=batch_id, from_status=Batch.Status.QUARANTINED, to_status=target,
                                   actor=f"user:{user.get_username()}",
                                   note=f"{'approved' if approve else 'rejected'}: {comment}".rstrip(": "))
        batch = Batch.objects.get(pk=batch_id)
        if not decided:
            raise ReviewError(f"batch {batch_id} is {batch.status}, not quarantined")
        audit_record(actor=actor_label(user), action="batch_approved" if approve else "batch_rejected",
                     source_id=batch.source_id, batch_id=batch.pk, detail=comment)
        if not Batch.objects.filter(source_id=batch.source_id, status=Batch.Status.QUARANTINED).exists():
            alerts.alert_resolve(source_id=batch.source_id, kind=Alert.Kind.QUARANTINE)  # the queue is clear
    return batch


def batch_retry(*, batch_id: int, user) -> str:
    """A staff member gives a failed batch back to the pipeline after a fix (collection.services.batch_retry),
    recorded in the audit log; once none of its source's batches is failed, the failure alerts are resolved.
    Returns where the batch starts again."""
    back = batch_retry_failed(batch_id=batch_id, actor=f"user:{user.get_username()}")
    source_id = Batch.objects.only("source_id").get(pk=batch_id).source_id
    audit_record(actor=actor_label(user), action="batch_retried", source_id=source_id, batch_id=batch_id, detail=back)
    if not Batch.objects.filter(source_id=source_id, status=Batch.Status.FAILED).exists():
        for kind in (Alert.Kind.INGEST_FAILED, Alert.Kind.VALIDATION_FAILED):
            alerts.alert_resolve(source_id=source_id, kind=kind)
    return back


def batch_make_baseline(*, batch_id: int, user) -> Baseline:
    """"Make this the baseline" for a batch quarantined for want of one: its data becomes the source's
    active baseline, and the batch is admitted, both recorded with who and when, in one transaction that holds
    the batch, so a concurrent review either comes first (and this is refused) or waits."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().select_related("source").get(pk=batch_id)
        if batch.status != Batch.Status.QUARANTINED or not batch.columnar:
            raise ReviewError(
                f"batch {batch_id} is {batch.status}: only a quarantined, ingested batch can be made the baseline")
        baseline = baseline_create_from_batches(source=batch.source, batches=[batch], name=f"from batch {batch.pk}",
                                                created_by=user)
        batch_review(batch_id=batch.pk, user=user, approve=True, comment=f"made baseline {baseline.pk}")
    return baseline
