"""Celery tasks of the collection app: take an id, call one service."""
from celery import shared_task

from config.retry import PIPELINE_STEP

from . import services


@shared_task(bind=True, **PIPELINE_STEP)
def ingest_batch(self, batch_id: int) -> int:
    """Ingest one batch. Idempotent: a batch that is no longer `received` is left alone."""
    services.batch_ingest(batch_id=batch_id, actor="task:ingest")
    return batch_id
