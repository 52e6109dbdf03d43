"""Chunked validation: a large batch profiled by several workers (a chord) gets the verdict one worker gives."""
import io
from pathlib import Path

import pytest
from celery import chain, signature

from collection import services as collection
from collection.models import Batch
from collection.signals import batch_received
from collection.storage import data_path
from config.pipeline import _start_on_receipt as start_on_receipt
from config.pipeline import pipeline_for
from tests import chain_probe
from tests.conftest import start_worker, wait_for
from tests.factories import baseline_from_records, checkout_records
from validation import profiling, services
from validation.models import Baseline, DailyProfile, ValidationRun
from validation.tasks import validate_batch

CHUNK_ROWS = 1000


@pytest.fixture
def small_row_groups(settings):
    """Row groups of 500 rows, so that a batch of a few thousand rows can be split along them."""
    settings.SIEVE_INGEST_CHUNK_ROWS = 500


def as_json_array(ndjson: bytes) -> bytes:
    # A JSON array's columnar copy is built from the parsed records, a row group per ingest chunk.
    return b"[" + b",".join(ndjson.splitlines()) + b"]"


def ingested(source, body: bytes) -> Batch:
    """A batch received and ingested in this process, without the pipeline that its receipt starts:
    with a worker running, that pipeline's validate would race the test's own chain for the claim."""
    batch_received.disconnect(start_on_receipt)
    try:
        batch = collection.batch_receive(source=source, body=io.BytesIO(as_json_array(body)), fmt="json",
                                         gzipped=False)[0]
    finally:
        batch_received.connect(start_on_receipt)
    return collection.batch_ingest(batch_id=batch.pk)


def baseline_for(source, tmp_path):
    return baseline_from_records(source, tmp_path, checkout_records(5000, seed=0))


def correct(batch, count: int) -> None:
    oks = list(batch.records.filter(label="ok").order_by("line").values_list("external_id", flat=True)[:count])
    from django.utils import timezone

    collection.feedback_receive(source=batch.source, events=[
        {"external_id": i, "signal": "correction", "value": "fraud", "actor": "ops", "occurred_at": timezone.now(),
         "idempotency_key": f"fix-{i}"} for i in oks])


def validated_in_chunks(batch_id: int) -> Batch:
    """The chord's work, step by step in this process: claim and plan, each chunk, the merge."""
    plan = services.batch_validate_claim(batch_id=batch_id, actor="task:validate", chunk_rows=CHUNK_ROWS)
    parts = [services.batch_validate_chunk(plan=plan, index=i) for i in range(len(plan["chunks"]))]
    assert len(parts) == 3
    # A chord may hand the parts back in any order.
    services.batch_validate_merge(plan=plan, parts=parts[::-1], actor="task:validate")
    return Batch.objects.get(pk=batch_id)


def test_chunks_follow_row_groups_and_balance_rows():
    assert profiling.plan_chunks([500] * 6, 1000) == [[0, 1], [2, 3], [4, 5]]
    assert profiling.plan_chunks([500] * 7, 1000) == [[0, 1], [2, 3], [4, 5], [6]]
    assert profiling.plan_chunks([3000], 1000) == [[0]]  # one row group cannot be split
    assert profiling.plan_chunks([900, 100, 100, 900], 1000) == [[0, 1], [2, 3]]
    assert profiling.plan_chunks([500] * 4, 0) == [[0, 1, 2, 3]]


def test_a_chunked_verdict_equals_the_single_worker_verdict(small_row_groups, source, tmp_path):
    other = collection.source_create(name="twin", kind="app")
    body = checkout_records(3000, shift=1.5, seed=3)
    whole_batch, chunked_batch = ingested(source, body), ingested(other, body)
    reference = baseline_for(source, tmp_path)
    # The very same baseline for the twin: a reference profiled twice differs in its KLL sketches' coin flips.
    services.baseline_activate(baseline=Baseline.objects.create(
        source=other, origin=reference.origin, profile=reference.profile, schema=reference.schema,
        row_count=reference.row_count))
    for batch in (whole_batch, chunked_batch):
        correct(batch, 300)  # feedback labels take part in both
    assert len(profiling.row_group_rows(data_path(chunked_batch.columnar))) == 6

    whole = services.batch_validate(batch_id=whole_batch.pk).validation
    chunked = validated_in_chunks(chunked_batch.pk).validation
    assert chunked.verdict == whole.verdict == "fail"
    assert chunked.report == whole.report
    assert chunked.report["feedback_labels"] == {"applied": 300, "replaced": 300}
    assert chunked.profile == whole.profile
    assert chunked.reasons == whole.reasons and chunked.batch.status == whole.batch.status == "quarantined"
    fields = ("kind", "feature", "metric", "value", "threshold", "severity", "explanation")
    assert list(chunked.anomalies.values_list(*fields)) == list(whole.anomalies.values_list(*fields))
    daily = {d.source_id: d for d in DailyProfile.objects.all()}
    assert daily[source.pk].profile == daily[other.pk].profile
    assert not data_path(f"{services.CHUNKS_DIR}/{chunked_batch.pk}").exists()  # the chunks' files are gone


def test_a_merge_delivered_again_records_nothing_more(small_row_groups, source, tmp_path):
    baseline_for(source, tmp_path)
    batch = ingested(source, checkout_records(3000, seed=4))
    plan = services.batch_validate_claim(batch_id=batch.pk, actor="task:validate", chunk_rows=CHUNK_ROWS)
    parts = [services.batch_validate_chunk(plan=plan, index=i) for i in range(len(plan["chunks"]))]
    services.batch_validate_merge(plan=plan, parts=parts, actor="task:validate")
    services.batch_validate_merge(plan=plan, parts=parts, actor="task:validate")
    assert ValidationRun.objects.filter(batch=batch).count() == 1
    assert list(batch.transitions.values_list("to_status", flat=True))[-2:] == ["validating", "admitted"]
    assert DailyProfile.objects.get().batch_count == 1


# --- with real workers


def test_work_left_from_an_earlier_claim_neither_gives_back_nor_decides_a_newer_one(small_row_groups, source,
                                                                                    tmp_path):
    baseline_for(source, tmp_path)
    batch = ingested(source, checkout_records(3000, seed=8))
    old = services.batch_validate_claim(batch_id=batch.pk, actor="task:validate", chunk_rows=CHUNK_ROWS)
    old_parts = [services.batch_validate_chunk(plan=old, index=i) for i in range(len(old["chunks"]))]
    # One chunk fails: the claim is given back, and the batch is claimed again (a retry, the sweeper).
    assert services.batch_validate_release(batch_id=batch.pk, actor="task:validate", error=RuntimeError("chunk 0 failed"),
                                           folder=old["folder"], claim=old["claim"])
    new = services.batch_validate_claim(batch_id=batch.pk, actor="task:validate", chunk_rows=CHUNK_ROWS)
    assert new["claim"] != old["claim"]
    # Another chunk of the old plan fails late: its give-back leaves the new claim alone.
    assert not services.batch_validate_release(batch_id=batch.pk, actor="task:validate", error=RuntimeError("chunk 2 failed"),
                                               folder=old["folder"], claim=old["claim"])
    # The old plan's merge arrives late: it decides nothing.
    services.batch_validate_merge(plan=old, parts=old_parts, actor="task:validate")
    assert status_of(batch.pk) == "validating" and not ValidationRun.objects.filter(batch=batch).exists()
    parts = [services.batch_validate_chunk(plan=new, index=i) for i in range(len(new["chunks"]))]
    services.batch_validate_merge(plan=new, parts=parts, actor="task:validate")
    assert judged(batch.pk) and ValidationRun.objects.filter(batch=batch).count() == 1
    assert Batch.objects.get(pk=batch.pk).step_claim == ""
    assert list(batch.transitions.values_list("to_status", flat=True)) == [
        "received", "ingesting", "ingested", "validating", "ingested", "validating", "admitted"]


@pytest.fixture
def chunking_worker(transactional_db, tmp_path, data_dir, celery_queue):
    """Two worker processes that split batches over CHUNK_ROWS rows and know the probe task."""
    proc = start_worker(tmp_path, data_dir=data_dir, queue=celery_queue, concurrency=2,
                        imports=("tests.chain_probe",), SIEVE_VALIDATE_CHUNK_ROWS=CHUNK_ROWS)
    yield proc
    proc.stop()


def status_of(batch_id: int) -> str:
    return Batch.objects.get(pk=batch_id).status


def judged(batch_id: int) -> bool:
    return status_of(batch_id) in {"admitted", "quarantined"}




@pytest.mark.worker
@pytest.mark.slow
def test_the_step_after_validate_runs_once_the_chunked_verdict_is_recorded(small_row_groups, chunking_worker,
                                                                           celery_queue, source, tmp_path):
    baseline_for(source, tmp_path)
    batch = ingested(source, checkout_records(3000, shift=4, seed=5))
    probe = signature("tests.chain_probe.batch_seen", args=(batch.pk,), immutable=True)
    result = chain(pipeline_for(batch.pk, from_status="ingested"), probe).apply_async()
    assert result.get(timeout=90) == ["quarantined", True]
    def ran_with_merge() -> list[str]:
        # Each task's run is recorded just after it returns: the merge's record may trail the probe's result.
        ran = chain_probe.runs(celery_queue, batch=batch.pk)
        return ran if "validation.tasks.validate_merge" in ran else []

    ran = wait_for(ran_with_merge, timeout=30, what="the merge's record")
    assert ran.count("validation.tasks.validate_chunk") >= 3


@pytest.mark.worker
@pytest.mark.slow
def test_a_chunked_batch_whose_validate_message_comes_twice_gets_one_run_and_one_transition(
        small_row_groups, chunking_worker, celery_queue, source, tmp_path):
    baseline_for(source, tmp_path)
    batch = ingested(source, checkout_records(3000, seed=6))
    deliveries = [validate_batch.delay(batch.pk) for _ in range(2)]  # the second as if the broker delivered it again
    wait_for(lambda: judged(batch.pk), timeout=90, what="the chunked verdict")
    assert [result.get(timeout=90) for result in deliveries] == [batch.pk] * 2  # both received and finished
    assert ValidationRun.objects.filter(batch=batch).count() == 1
    assert list(batch.transitions.values_list("to_status", flat=True)) == [
        "received", "ingesting", "ingested", "validating", "admitted"]
    wait_for(lambda: chain_probe.runs(celery_queue, batch=batch.pk).count("validation.tasks.validate_merge") >= 1,
             timeout=30, what="the merge's record")


def damage_row_groups(path: Path) -> bytes:
    """Zero every data page, keep the footer: the plan can be made, no chunk can be read. Returns the original."""
    original = path.read_bytes()
    footer = int.from_bytes(original[-8:-4], "little") + 8
    path.write_bytes(original[:4] + bytes(len(original) - 4 - footer) + original[-footer:])
    return original


@pytest.mark.worker
@pytest.mark.slow
def test_a_failed_chunk_gives_the_claim_back(small_row_groups, chunking_worker, source, tmp_path):
    baseline_for(source, tmp_path)
    batch = ingested(source, checkout_records(3000, seed=7))
    path = data_path(batch.columnar)
    original = damage_row_groups(path)
    validate_batch.delay(batch.pk)
    wait_for(lambda: batch.transitions.filter(from_status="validating", to_status="ingested").exists(), timeout=60,
             what="the claim to be given back")
    back = batch.transitions.get(from_status="validating", to_status="ingested")
    # A damaged file is an error that will recur: counted (collection/failures.py), then given back.
    assert back.actor == "task:validate" and back.note.startswith("validation: OSError")
    assert back.note.endswith("failure 1 of 3; queued again")
    assert status_of(batch.pk) == "ingested" and not ValidationRun.objects.filter(batch=batch).exists()
    path.write_bytes(original)  # the disk is repaired; the next validate (the sweeper's, say) succeeds
    validate_batch.delay(batch.pk)
    wait_for(lambda: judged(batch.pk), timeout=60, what="the verdict after the repair")
    assert ValidationRun.objects.filter(batch=batch).count() == 1
