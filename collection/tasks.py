"""Celery tasks of the collection app: take an id, call one service."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services

# How every pipeline step runs: it is idempotent (it claims its batch), so it may ack late and be
# redelivered when its worker dies; only database faults that pass are retried.
PIPELINE_STEP = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "max_retries": 8,
}


@shared_task(bind=True, **PIPELINE_STEP)
def ingest_batch(self, batch_id: int) -> int:
    """Ingest one batch. Idempotent: a batch that is no longer `received` is left alone."""
    services.batch_ingest(batch_id=batch_id, actor="task:ingest")
    return batch_id
