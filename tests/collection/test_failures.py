"""Issue 13, item 1: a pipeline step that keeps failing ends its batch `failed` with the error and an alert after
SIEVE_PIPELINE_MAX_FAILURES; faults that pass are not counted; staff can retry a failed batch after a fix."""
import io
from datetime import timedelta

import orjson
import pytest
from django.db import OperationalError
from django.utils import timezone

from collection import failures, services
from collection.models import Batch
from collection.storage import data_path
from config.pipeline import pipeline_start, sweep_stalled_batches
from tests.conftest import start_worker, wait_for
from tests.factories import baseline_from_records, checkout_records
from validation import services as validation
from validation.models import Alert, AuditEntry


def receive(source, body: bytes) -> Batch:
    return services.batch_receive(source=source, body=io.BytesIO(body), fmt="ndjson", gzipped=False)[0]


def ingest_fails(batch_id: int) -> None:
    with pytest.raises(FileNotFoundError):
        services.batch_ingest(batch_id=batch_id)


def test_a_fault_that_passes_is_retried_without_being_counted(source, settings):
    settings.SIEVE_PIPELINE_MAX_FAILURES = 2
    batch = receive(source, checkout_records(5))
    for _ in range(5):
        assert services.batch_transition(batch_id=batch.pk, from_status="received", to_status="ingesting",
                                         actor="test")
        assert failures.batch_step_failed(batch_id=batch.pk, working="ingesting", back="received", actor="test",
                                          step="ingest", reason="database away",
                                          transient=failures.is_transient(OperationalError("gone"))) == "received"
    assert Batch.objects.get(pk=batch.pk).failures == 0


def test_an_ingest_that_keeps_failing_ends_failed_with_its_error_and_an_alert(
        source, settings, django_capture_on_commit_callbacks):
    settings.SIEVE_PIPELINE_MAX_FAILURES = 3
    batch = receive(source, checkout_records(5))
    data_path(batch.payload).unlink()  # an error that recurs on every attempt
    for attempt in (1, 2):
        ingest_fails(batch.pk)
        batch.refresh_from_db()
        assert (batch.status, batch.failures) == ("received", attempt)
        assert not Alert.objects.filter(kind=Alert.Kind.INGEST_FAILED).exists()
    with django_capture_on_commit_callbacks(execute=True):
        ingest_fails(batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.failures) == ("failed", 3)
    assert batch.error.startswith("ingest: FileNotFoundError")
    alert = Alert.objects.get(kind=Alert.Kind.INGEST_FAILED, source=source)
    assert f"batch {batch.pk}" in alert.message and "FileNotFoundError" in alert.message
    notes = list(batch.transitions.values_list("note", flat=True))
    assert notes[-1].endswith("failure 3 of 3: failed") and "failure 1 of 3; queued again" in notes[-5]
    # A failed batch is left alone by the sweeper: it has ended.
    Batch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert sweep_stalled_batches() == {"requeued": 0, "restarted": 0}


def test_a_validation_that_keeps_failing_ends_failed_and_a_retry_after_the_fix_validates_it(
        source, settings, tmp_path, admin_user, celery_queue, django_capture_on_commit_callbacks):
    settings.SIEVE_PIPELINE_MAX_FAILURES = 2
    baseline_from_records(source, tmp_path, checkout_records(500))
    batch = services.batch_ingest(batch_id=receive(source, checkout_records(300, seed=3)).pk)
    parquet = data_path(batch.columnar)
    kept = parquet.read_bytes()
    parquet.unlink()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            with pytest.raises(FileNotFoundError):
                validation.batch_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.error.startswith("validation: FileNotFoundError")
    assert Alert.objects.filter(kind=Alert.Kind.VALIDATION_FAILED, source=source, resolved_at__isnull=True).exists()
    parquet.write_bytes(kept)  # the fix
    assert validation.batch_retry(batch_id=batch.pk, user=admin_user) == "ingested"
    batch.refresh_from_db()
    assert (batch.status, batch.failures, batch.error) == ("ingested", 0, "")
    assert AuditEntry.objects.filter(action="batch_retried", batch_id=batch.pk).exists()
    assert not Alert.objects.filter(kind=Alert.Kind.VALIDATION_FAILED, resolved_at__isnull=True).exists()
    assert validation.batch_validate(batch_id=batch.pk).status == "admitted"
    with pytest.raises(services.BatchNotFailed):
        validation.batch_retry(batch_id=batch.pk, user=admin_user)


def test_a_batch_whose_worker_is_lost_every_time_ends_failed(source, settings, celery_queue):
    settings.SIEVE_PIPELINE_MAX_FAILURES = 2
    batch = receive(source, checkout_records(3))
    for expected in ("received", "failed"):
        assert services.batch_transition(batch_id=batch.pk, from_status="received", to_status="ingesting",
                                         actor="task:ingest")
        Batch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - timedelta(hours=1))
        sweep_stalled_batches()
        assert Batch.objects.get(pk=batch.pk).status == expected
    assert Batch.objects.get(pk=batch.pk).error == "ingest: its worker is gone"


@pytest.mark.worker
def test_with_a_real_worker_and_sweeper_a_broken_batch_ends_and_a_retried_one_is_judged(
        transactional_db, tmp_path, data_dir, celery_queue, source, admin_user):
    """Before: an ingest that raised gave its batch back, and the sweeper retried it every sweep, forever."""
    batch = receive(source, checkout_records(20))
    payload = data_path(batch.payload)
    kept = payload.read_bytes()
    payload.unlink()
    worker = start_worker(tmp_path, data_dir=data_dir, queue=celery_queue, beat=True, SIEVE_SWEEP_EVERY=1,
                          SIEVE_RECEIVED_STALLED_AFTER=1, SIEVE_PIPELINE_MAX_FAILURES=3)
    try:
        pipeline_start(batch.pk)
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "failed", timeout=60,
                 what="the broken batch to end failed")
        batch.refresh_from_db()
        assert batch.failures == 3 and batch.attempts == 3
        wait_for(lambda: Alert.objects.filter(kind=Alert.Kind.INGEST_FAILED, source=source).exists(), timeout=30,
                 what="the alert, raised after the commit")
        payload.write_bytes(kept)
        validation.batch_retry(batch_id=batch.pk, user=admin_user)
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status in ("admitted", "quarantined"), timeout=60,
                 what="the retried batch's verdict")
    finally:
        worker.stop()
    assert orjson.loads(kept.splitlines()[0])["external_id"] == "r0"
