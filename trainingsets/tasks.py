"""Celery tasks of the trainingsets app: take ids, call one service."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from config.retry import PIPELINE_STEP

from .services import versions
from .services.erasure import ErasureFilesBusy, erasure_rewrite_files, erasures_resend_pending


@shared_task(bind=True, **PIPELINE_STEP)
def build_version(self, version_id: int) -> str:
    """Build a queued version. Idempotent: a version that is not queued is left alone."""
    return versions.version_build(version_id=version_id).status


@shared_task
def sweep_versions() -> dict:
    """Periodic (beat): re-send lost builds, restart or fail stalled ones."""
    return versions.versions_sweep()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(ErasureFilesBusy, OperationalError, InterfaceError),
             retry_backoff=5, retry_backoff_max=300, max_retries=6)
def rewrite_erased_files(self, erasure_id: int) -> str | None:
    """Mask a record erasure's payload lines and rewrite its Parquet copies. Idempotent: done files stay done."""
    erasure = erasure_rewrite_files(erasure_id=erasure_id, retryable=self.request.retries < self.max_retries)
    return erasure.status if erasure is not None else None


@shared_task
def resend_pending_erasures() -> int:
    """Periodic (beat): send the file rewrite again for erasures whose message was lost."""
    return erasures_resend_pending()
