"""Celery tasks of the validation app: take an id, call one service."""
from celery import shared_task

from collection.tasks import PIPELINE_STEP

from . import services


@shared_task(bind=True, **PIPELINE_STEP)
def validate_batch(self, batch_id: int) -> int:
    """Give an ingested batch its verdict. Idempotent: a batch that is no longer `ingested` is left alone."""
    services.batch_validate(batch_id=batch_id, actor="task:validate")
    return batch_id
