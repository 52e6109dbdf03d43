"""Celery tasks of the validation app: take an id, call one service."""
from celery import shared_task
from django.conf import settings

from collection.tasks import PIPELINE_STEP

from . import alerts, services


@shared_task(bind=True, **PIPELINE_STEP)
def validate_batch(self, batch_id: int) -> int:
    """Give an ingested batch its verdict. Idempotent: a batch that is no longer `ingested` is left alone."""
    services.batch_validate(batch_id=batch_id, actor="task:validate")
    return batch_id


@shared_task(bind=True, max_retries=None)
def deliver_alert(self, alert_id: int, channel: str) -> bool:
    """Deliver an alert by one channel, retrying with exponential backoff; every attempt is logged."""
    attempt = self.request.retries + 1
    if alerts.alert_deliver(alert_id=alert_id, channel=channel, attempt=attempt):
        return True
    if attempt > settings.SIEVE_ALERT_RETRIES:
        return False
    raise self.retry(countdown=min(2 ** (attempt - 1) * settings.SIEVE_ALERT_BACKOFF, 3600))


@shared_task
def check_silent_sources() -> dict:
    """Periodic (beat): alert on sources silent past their expected interval."""
    return alerts.sources_check_silence()
