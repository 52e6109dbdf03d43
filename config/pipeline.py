"""The pipeline, written down in one place: ingest -> validate -> route, the sweeper that restarts it, and
`pipeline_run`, which takes one batch through the same steps in-process (the demo).

Each step is a task that takes a batch id and claims its work with a conditional UPDATE of the
batch's status, so starting the pipeline twice for one batch does the work once. `validate` gives
each batch its verdict (admitted or quarantined); a batch over SIEVE_VALIDATE_CHUNK_ROWS rows is
profiled in chunks by a chord, which `validate` replaces itself with, so the steps after it run
once the chord's merge has recorded the verdict. `route` queues an admitted batch's records in the
labeling projects its source feeds (and does nothing for a quarantined one). A batch an admin
approves later is routed when it becomes admitted (the `batch_admitted` signal).
"""
import logging

from celery import chain, shared_task
from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from collection import services as collection_services
from collection.failures import batch_step_failed
from collection.models import Batch
from collection.signals import batch_admitted, batch_received, batch_retried
from collection.tasks import ingest_batch
from labeling.selectors import batches_awaiting_route
from labeling.tasks import route_batch
from validation.tasks import validate_batch

log = logging.getLogger(__name__)


# Each step with the status it starts from, in order.
STEPS = [(Batch.Status.RECEIVED, ingest_batch), (Batch.Status.INGESTED, validate_batch),
         (Batch.Status.ADMITTED, route_batch)]


def pipeline_for(batch_id: int, *, from_status: str = Batch.Status.RECEIVED):
    """The canvas that takes one batch from `from_status` as far as the pipeline goes."""
    starts = [status for status, _ in STEPS]
    return chain(*(task.si(batch_id) for _, task in STEPS[starts.index(from_status):]))


def pipeline_start(batch_id: int, *, from_status: str = Batch.Status.RECEIVED) -> bool:
    """Enqueue the pipeline for a batch; False when the broker is unreachable (the sweeper retries)."""
    try:
        pipeline_for(batch_id, from_status=from_status).apply_async()
    except (BrokerError, OSError) as exc:
        log.warning("batch %s: broker unreachable (%s); the sweeper will enqueue it", batch_id, exc)
        return False
    except Exception:
        # The batch is committed whatever happens here; the sweeper enqueues it later.
        log.exception("batch %s: could not enqueue the pipeline; the sweeper will", batch_id)
        return False
    return True


def pipeline_run(batch_id: int, *, from_status: str = Batch.Status.RECEIVED) -> Batch:
    """Take one batch through the same steps here, in this process, and return it (the demo needs its verdict now).

    Each step's task runs locally (Task.apply), a large batch's chunks too; every step claims its batch first, so a
    worker that gets the batch's messages later finds the work done and does nothing. A step's error is raised.
    """
    starts = [status for status, _ in STEPS]
    for _, task in STEPS[starts.index(from_status):]:
        task.apply(args=(batch_id,), throw=True)
    return Batch.objects.get(pk=batch_id)


@receiver(batch_received)
def _start_on_receipt(sender, batch_id: int, **kwargs) -> None:
    pipeline_start(batch_id)


@receiver(batch_admitted)
def _route_on_approval(sender, batch_id: int, actor: str = "", **kwargs) -> None:
    # The pipeline's own admissions (task:validate) are routed by the next step of their chain; an
    # admin's approval (user:...) has no chain behind it, so it starts the route step here.
    if not actor.startswith("task:"):
        pipeline_start(batch_id, from_status=Batch.Status.ADMITTED)


@receiver(batch_retried)
def _start_on_retry(sender, batch_id: int, from_status: str, **kwargs) -> None:
    pipeline_start(batch_id, from_status=from_status)


@shared_task(name="config.pipeline.sweep_stalled_batches")
def sweep_stalled_batches() -> dict:
    """Re-enqueue batches the pipeline lost: a step never picked up (broker outage), or a worker died in one."""
    now = timezone.now()
    requeued = restarted = 0
    for batch in Batch.objects.stalled(now=now).only("pk", "status", "updated_at"):
        status = batch.status
        if status == Batch.Status.INGESTING:
            status = collection_services.batch_requeue_stalled(batch_id=batch.pk)
        elif status == Batch.Status.VALIDATING:
            # Validation writes nothing until its last transaction, so starting it over is safe. A worker lost
            # on it counts as a failure, so a batch that kills its worker every time ends (failures.py).
            status = batch_step_failed(
                batch_id=batch.pk, working=status, back=Batch.Status.INGESTED, actor="task:sweeper",
                step="validate", reason="validation did not finish in time", transient=False, step_claim="",
                where={"updated_at__lt": now - settings.SIEVE_STALLED_AFTER})
        if status in ("", Batch.Status.FAILED):
            continue
        if batch.status != status:
            requeued += 1
        # Touch it so the next sweep waits its turn again instead of piling up messages.
        with transaction.atomic():
            Batch.objects.filter(pk=batch.pk, status=status).update(updated_at=now)
        if pipeline_start(batch.pk, from_status=status):
            restarted += 1
    # Admitted batches whose route message was lost (a broker outage after an approval, say).
    for batch_id in batches_awaiting_route(older_than=settings.SIEVE_STALLED_AFTER, now=now):
        if pipeline_start(batch_id, from_status=Batch.Status.ADMITTED):
            restarted += 1
    return {"requeued": requeued, "restarted": restarted}
