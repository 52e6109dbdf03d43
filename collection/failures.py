"""What a pipeline step does when it fails: a fault that passes (the database or the broker away for a while) gives
the batch back to be tried again; an error that will recur (the data, a bug, a worker lost on it) is counted, and at
SIEVE_PIPELINE_MAX_FAILURES the batch ends `failed` with the error, and an alert is raised (batch_failed)."""
import logging

from django.conf import settings
from django.db import transaction

from config.retry import TRANSIENT

from . import signals
from .models import Batch
from .transitions import batch_transition

log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """True for a fault that passes (retry it); False for an error that will recur (count it). A worker being
    stopped (SystemExit, KeyboardInterrupt) is a fault that passes: the batch is not to blame."""
    return isinstance(exc, TRANSIENT) or not isinstance(exc, Exception)


def describe(exc: BaseException) -> str:
    """The error as a batch records it: its type and message, at most 1,000 characters."""
    text = str(exc).strip()
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:1000]


def batch_step_failed(*, batch_id: int, working: str, back: str, actor: str, step: str, reason: str,
                      transient: bool, where: dict | None = None, **fields) -> str:
    """Give back or end a batch whose step failed while it was `working`; returns its new status, or "" when it was
    no longer `working` (under `where`): another worker or the sweeper has dealt with it.

    A transient fault goes back to `back` uncounted. Otherwise the batch's failures are counted in the same
    transaction: below the limit it goes back to `back` (the sweeper or a retry tries again), at the limit it ends
    `failed` with `reason` as its error, and `batch_failed` is sent after the commit (validation raises an alert).
    `fields` are written with the transition (a validation claim cleared, say).
    """
    if transient:
        moved = batch_transition(batch_id=batch_id, from_status=working, to_status=back, actor=actor,
                                 note=f"{reason}; queued again", where=where, **fields)
        return back if moved else ""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(pk=batch_id, status=working, **(where or {})).first()
        if batch is None:
            return ""
        failures, limit = batch.failures + 1, settings.SIEVE_PIPELINE_MAX_FAILURES
        if failures < limit:
            batch_transition(batch_id=batch_id, from_status=working, to_status=back, actor=actor,
                             note=f"{reason}; failure {failures} of {limit}; queued again", failures=failures,
                             **fields)
            return back
        batch_transition(batch_id=batch_id, from_status=working, to_status=Batch.Status.FAILED, actor=actor,
                         note=f"{reason}; failure {failures} of {limit}: failed", failures=failures,
                         error=reason, **fields)
        transaction.on_commit(lambda: signals.batch_failed.send(sender=Batch, batch_id=batch_id, step=step))
    log.error("batch %s failed in %s after %s failures: %s", batch_id, step, failures, reason)
    return Batch.Status.FAILED
