"""The pipeline, written down in one place: ingest -> validate -> route, and the sweeper that restarts it.

Each step is a task that takes a batch id and claims its work with a conditional UPDATE of the
batch's status, so starting the pipeline twice for one batch does the work once. The validation
issue adds `validate` and the labeling issue `route`; until then a batch stops at `ingested`, and no
step pretends to have judged it.
"""
import logging

from celery import chain, shared_task
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from collection import services as collection_services
from collection.models import Batch
from collection.signals import batch_received
from collection.tasks import ingest_batch

log = logging.getLogger(__name__)


def pipeline_for(batch_id: int):
    """The canvas that takes one received batch as far as the pipeline goes."""
    return chain(ingest_batch.si(batch_id))


def pipeline_start(batch_id: int) -> bool:
    """Enqueue the pipeline for a batch; False when the broker is unreachable (the sweeper retries)."""
    try:
        pipeline_for(batch_id).apply_async()
    except (BrokerError, OSError) as exc:
        log.warning("batch %s: broker unreachable (%s); the sweeper will enqueue it", batch_id, exc)
        return False
    except Exception:
        # The batch is committed whatever happens here; the sweeper enqueues it later.
        log.exception("batch %s: could not enqueue the pipeline; the sweeper will", batch_id)
        return False
    return True


@receiver(batch_received)
def _start_on_receipt(sender, batch_id: int, **kwargs) -> None:
    pipeline_start(batch_id)


@shared_task(name="config.pipeline.sweep_stalled_batches")
def sweep_stalled_batches() -> dict:
    """Re-enqueue batches the pipeline lost: never picked up (broker outage), or a worker died mid-ingest."""
    now = timezone.now()
    requeued = restarted = 0
    for batch in Batch.objects.stalled(now=now).only("pk", "status", "updated_at"):
        if batch.status == Batch.Status.INGESTING:
            if not collection_services.batch_requeue_stalled(batch_id=batch.pk):
                continue
            requeued += 1
        # Touch it so the next sweep waits its turn again instead of piling up messages.
        with transaction.atomic():
            Batch.objects.filter(pk=batch.pk, status=Batch.Status.RECEIVED).update(updated_at=now)
        if pipeline_start(batch.pk):
            restarted += 1
    return {"requeued": requeued, "restarted": restarted}
