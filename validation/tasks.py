"""Celery tasks of the validation app: take an id, call one service."""
from celery import Task, chord, shared_task
from django.conf import settings

from config.retry import PIPELINE_STEP

from . import alerts, services

ACTOR = "task:validate"


@shared_task(bind=True, **PIPELINE_STEP)
def validate_batch(self, batch_id: int) -> int:
    """Give an ingested batch its verdict. Idempotent: a batch that is no longer `ingested` is left alone.

    A batch over SIEVE_VALIDATE_CHUNK_ROWS rows becomes a chord: its chunks are profiled by any free
    workers and `validate_merge` records the verdict. This task is replaced by that chord, so the
    steps chained after it (route) move behind the merge and see the verdict.
    """
    plan = services.batch_validate_claim(batch_id=batch_id, actor=ACTOR,
                                         chunk_rows=settings.SIEVE_VALIDATE_CHUNK_ROWS)
    if plan is None:
        return batch_id
    if not plan["chunks"]:
        services.batch_validate_whole(plan=plan, actor=ACTOR)
        return batch_id
    chunks = [validate_chunk.si(plan=plan, index=i) for i in range(len(plan["chunks"]))]
    return self.replace(chord(chunks, validate_merge.s(plan=plan)))  # raises Ignore on a worker


class ClaimedStep(Task):
    """A step working on a claimed batch: when it fails for good, the claim is given back (or the batch ends
    failed, for an error that keeps recurring: collection/failures.py)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        plan = kwargs["plan"]
        services.batch_validate_release(batch_id=plan["batch"], actor=ACTOR, folder=plan["folder"],
                                        claim=plan.get("claim"), error=exc)


@shared_task(bind=True, base=ClaimedStep, **PIPELINE_STEP)
def validate_chunk(self, *, plan: dict, index: int) -> dict:
    """Profile one chunk of a claimed batch (a header task of the chord)."""
    return services.batch_validate_chunk(plan=plan, index=index)


@shared_task(bind=True, base=ClaimedStep, **PIPELINE_STEP)
def validate_merge(self, parts: list[dict], *, plan: dict) -> int:
    """Merge the chunks' profiles and record the verdict (the chord's callback). Idempotent."""
    services.batch_validate_merge(plan=plan, parts=parts, actor=ACTOR)
    return plan["batch"]


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
