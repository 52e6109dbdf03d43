"""The pipeline end to end with real processes: a Celery worker, gunicorn, and a Redis that goes away."""
import json
import shutil
import signal
import threading

import orjson
import pytest
import requests
from django.db import connection

from collection.models import Batch, Record
from collection.tasks import ingest_batch
from tests.conftest import Process, free_port, start_web, start_worker, wait_for
from tests.factories import baseline_from_records, checkout_records

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def ndjson(n: int, prefix: str = "r") -> bytes:
    return b"".join(
        orjson.dumps({"external_id": f"{prefix}{i}", "features": {"x": i, "y": i * 0.5, "c": "abcd"[i % 4]},
                      "label": i % 2}) + b"\n"
        for i in range(n)
    )


def status_of(batch_id: int) -> str:
    return Batch.objects.get(pk=batch_id).status


DONE = {"admitted", "quarantined"}


def judged(batch_id: int) -> bool:
    """Ingested and validated: with no baseline, a batch ends quarantined ("no baseline")."""
    return status_of(batch_id) in DONE


def test_an_uploaded_batch_is_ingested_by_a_real_worker(worker, upload):
    batch_id = upload(ndjson(500))
    wait_for(lambda: judged(batch_id), timeout=60, what="the batch to be ingested and validated")
    assert Record.objects.filter(batch_id=batch_id).count() == 500
    batch = Batch.objects.get(pk=batch_id)
    assert batch.attempts == 1 and batch.ingested_count == 500


def test_a_redelivered_ingest_message_is_ingested_once(worker, upload):
    batch_id = upload(ndjson(300))
    # As if the broker had delivered the message again, three times: each delivery's result says it was handled.
    again = [ingest_batch.delay(batch_id) for _ in range(3)]
    wait_for(lambda: judged(batch_id), timeout=60, what="the batch to be ingested and validated")
    assert [result.get(timeout=30) for result in again] == [batch_id] * 3
    assert Record.objects.filter(batch_id=batch_id).count() == 300
    assert Batch.objects.get(pk=batch_id).attempts == 1


def records_being_written() -> bool:
    """Another connection holds a write lock on the records table: an ingest transaction is inserting rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                       "WHERE c.relname = %s AND l.mode = 'RowExclusiveLock' AND l.granted "
                       "AND l.pid <> pg_backend_pid())", [Record._meta.db_table])
        return cursor.fetchone()[0]


def test_a_worker_killed_mid_ingest_loses_and_duplicates_nothing(transactional_db, tmp_path, data_dir,
                                                                 celery_queue, source, upload):
    count = 300_000  # several seconds of ingest, so the kill lands inside it
    first = start_worker(tmp_path, data_dir=data_dir, queue=celery_queue)
    try:
        batch_id = upload(ndjson(count))
        wait_for(lambda: status_of(batch_id) == "ingesting", timeout=60, what="the ingest to start")
        wait_for(records_being_written, timeout=60, interval=0.02, what="the ingest to insert its records")
        assert status_of(batch_id) == "ingesting"
    finally:
        first.kill(signal.SIGKILL)
    assert Record.objects.filter(batch_id=batch_id).count() == 0  # its transaction died with it
    second = start_worker(tmp_path, data_dir=data_dir, queue=celery_queue, beat=True,
                          SIEVE_STALLED_AFTER=1, SIEVE_SWEEP_EVERY=1)
    try:
        wait_for(lambda: judged(batch_id), timeout=180, what="the batch to be ingested again")
    finally:
        second.stop()
    records = Record.objects.filter(batch_id=batch_id)
    assert records.count() == count
    assert records.values("external_id").distinct().count() == count
    batch = Batch.objects.get(pk=batch_id)
    assert batch.attempts == 2
    assert ("ingesting", "received") in set(batch.transitions.values_list("from_status", "to_status"))


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, on a free port, so the machine's Redis is never stopped."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = free_port()

    def start() -> Process:
        return Process([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", str(tmp_path)], env={}, log=tmp_path / "redis.log", ready="Ready to accept")

    server = {"proc": start()}
    yield port, server, start
    server["proc"].kill(signal.SIGTERM)


def test_an_upload_while_redis_is_down_is_accepted_and_ingested_when_it_is_back(
        transactional_db, tmp_path, data_dir, celery_queue, source, source_key, own_redis):
    port, server, start = own_redis
    redis_url = f"redis://127.0.0.1:{port}/0"
    web, url = start_web(tmp_path, data_dir=data_dir, queue=celery_queue, redis_url=redis_url)
    try:
        server["proc"].kill(signal.SIGTERM)
        response = requests.post(f"{url}/api/v1/batches", data=ndjson(200),
                                 headers={"Authorization": f"Bearer {source_key}",
                                          "Content-Type": "application/x-ndjson"}, timeout=30)
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]
        assert status_of(batch_id) == "received"
        server["proc"] = start()
        worker = start_worker(tmp_path, data_dir=data_dir, queue=celery_queue, redis_url=redis_url, beat=True,
                              SIEVE_RECEIVED_STALLED_AFTER=1, SIEVE_SWEEP_EVERY=1)
        try:
            wait_for(lambda: judged(batch_id), timeout=90, what="the batch to be ingested")
        finally:
            worker.stop()
    finally:
        web.stop()
    assert Record.objects.filter(batch_id=batch_id).count() == 200


def test_ten_concurrent_retries_with_one_idempotency_key_make_one_batch(live_server, celery_queue, source_key):
    body = ndjson(5000)
    results = []

    def send():
        response = requests.post(f"{live_server.url}/api/v1/batches", data=body, timeout=60, headers={
            "Authorization": f"Bearer {source_key}", "Content-Type": "application/x-ndjson",
            "Idempotency-Key": "nightly-2026-11-26"})
        results.append((response.status_code, response.json()["id"]))

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [code for code, _ in results] == [202] * 10
    assert len({batch_id for _, batch_id in results}) == 1
    assert Batch.objects.count() == 1


def test_a_clean_batch_is_admitted_and_a_drifted_one_quarantined_once_each(worker, source, upload, tmp_path):
    from validation.models import ValidationRun
    from validation.tasks import validate_batch

    baseline_from_records(source, tmp_path, checkout_records(5000, seed=0))
    clean = upload(checkout_records(3000, seed=1, prefix="c"))
    drifted = upload(checkout_records(3000, shift=4, seed=2, prefix="d"))
    for batch_id in (clean, drifted, clean, drifted):
        validate_batch.delay(batch_id)  # a validate message delivered again, early or late
    wait_for(lambda: judged(clean) and judged(drifted), timeout=90, what="both verdicts")
    assert (status_of(clean), status_of(drifted)) == ("admitted", "quarantined")
    run = ValidationRun.objects.get(batch_id=drifted)
    assert run.verdict == "fail" and ("distribution_drift", "amount") in {(a.kind, a.feature) for a in run.anomalies.all()}
    assert ValidationRun.objects.count() == 2
    transitions = list(Batch.objects.get(pk=drifted).transitions.values_list("to_status", flat=True))
    assert transitions == ["received", "ingesting", "ingested", "validating", "quarantined"]


def _records(rows: list[dict], prefix: str) -> bytes:
    # json, not orjson: the rows hold integers past 64 bits.
    return "".join(json.dumps({"external_id": f"{prefix}{i}", **row}) + "\n" for i, row in enumerate(rows)).encode()


EDGE_BATCHES = {
    "one row": [{"features": {"amount": 10.0, "country": "DE"}, "label": "ok"}],
    "four rows": [{"features": {"amount": 9.0 + i, "country": "FR"}, "label": "ok"} for i in range(4)],
    "list labels": [{"features": {"amount": 10.0 + i % 3, "country": "NL"}, "label": ["ok", "fraud"][: 1 + i % 2]}
                    for i in range(50)],
    "an all-null column": [{"features": {"amount": None, "country": "DE"}, "label": "ok"} for _ in range(50)],
    "one distinct value": [{"features": {"amount": 10.0, "country": "DE"}, "label": "ok"} for _ in range(300)],
    "extreme values": [{"features": {"amount": [1e308, -1e308, 5e-324][i % 3], "country": "DE"}, "label": "ok"}
                       for i in range(300)],
    "huge integers": [{"features": {"amount": 10**30 + i, "country": "DE"}, "label": "ok"} for i in range(30)],
    "no labels": [{"features": {"amount": 10.0 + i % 5, "country": "FR"}} for i in range(100)],
}


def test_every_odd_batch_ends_once_with_a_verdict(worker, source, upload, tmp_path):
    """Issue 12: batches that used to raise in validation (1-4 rows, list labels, ...) were retried forever.
    Each now gets its verdict on the first attempt, against a reference that has no label column."""
    from validation import services as validation
    from validation.models import ValidationRun

    reference = tmp_path / "train.ndjson"
    reference.write_bytes(b"".join(orjson.dumps({"external_id": f"t{i}", "features": {
        "amount": 10.0 + (i % 7), "country": ["DE", "FR", "NL"][i % 3]}}) + b"\n" for i in range(2000)))
    validation.baseline_create_from_file(source=source, path=reference)
    batches = {name: upload(_records(rows, f"{n}-")) for n, (name, rows) in
               enumerate(EDGE_BATCHES.items())}
    wait_for(lambda: all(judged(b) for b in batches.values()), timeout=120, what="every batch's verdict")
    for name, batch_id in batches.items():
        batch = Batch.objects.get(pk=batch_id)
        assert batch.attempts == 1, name
        assert "queued again" not in " ".join(batch.transitions.values_list("note", flat=True)), name
        assert ValidationRun.objects.filter(batch_id=batch_id).count() == 1, name
    extreme = ValidationRun.objects.get(batch_id=batches["extreme values"])
    assert extreme.verdict == "fail"
    assert ("out_of_range", "amount") in {(a.kind, a.feature) for a in extreme.anomalies.all()}


@pytest.mark.parametrize("chunk_rows", [0, 500], ids=["whole", "in-chunks"])
def test_pipeline_run_takes_a_batch_through_the_same_steps_in_process_once(db, data_dir, tmp_path, settings, source,
                                                                           chunk_rows):
    import pyarrow.parquet as pq

    from collection.storage import data_path
    from config.pipeline import pipeline_run
    from labeling.models import QueueItem
    from tests.factories import batch_received, project_make

    settings.SIEVE_INGEST_CHUNK_ROWS, settings.SIEVE_VALIDATE_CHUNK_ROWS = 500, chunk_rows
    baseline_from_records(source, tmp_path)
    project = project_make(source)
    # A JSON array's columnar copy has a row group per ingest chunk, along which validation splits it.
    batch = batch_received(source, b"[" + b",".join(checkout_records(2000, seed=3).splitlines()) + b"]", fmt="json")
    done = pipeline_run(batch.pk)
    assert done.status == Batch.Status.ADMITTED and done.validation.verdict == "pass"
    assert pq.ParquetFile(data_path(done.columnar)).num_row_groups == 4  # 4 chunks of 500 rows when split
    assert QueueItem.objects.filter(project=project).count() == 2000  # routed: the last step ran too
    steps = list(batch.transitions.order_by("id").values_list("to_status", "actor"))
    assert steps == [("received", "api"), ("ingesting", "task:ingest"), ("ingested", "task:ingest"),
                     ("validating", "task:validate"), ("admitted", "task:validate")]
    # Every step claims its batch: running the pipeline again (or a worker that gets its messages later) does nothing.
    assert pipeline_run(batch.pk).status == Batch.Status.ADMITTED
    assert batch.transitions.count() == 5 and QueueItem.objects.filter(project=project).count() == 2000
