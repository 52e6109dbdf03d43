"""Ingest: whole or nothing, once, with a columnar copy; the revision rule; linking feedback; the sweeper."""
import gzip
import io
from datetime import timedelta

import orjson
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from collection import services
from collection.models import Batch, FeedbackEvent, Record
from collection.storage import data_path
from config.pipeline import sweep_stalled_batches


def ndjson(ids, **features) -> bytes:
    return b"".join(
        orjson.dumps({"external_id": i, "features": {"x": n, "c": "ab"[n % 2], **features}, "label": n % 2,
                      "observed_at": "2026-11-01T00:00:00Z"}) + b"\n"
        for n, i in enumerate(ids)
    )


def receive(source, body: bytes, fmt="ndjson", gzipped=False) -> Batch:
    batch, created = services.batch_receive(source=source, body=io.BytesIO(body), fmt=fmt, gzipped=gzipped)
    assert created
    return batch


def test_ingest_writes_every_record_and_a_parquet_copy(source):
    batch = receive(source, ndjson([f"r{i}" for i in range(7)]))
    done = services.batch_ingest(batch_id=batch.pk)
    assert done.status == "ingested" and done.ingested_count == 7
    assert Record.objects.filter(batch=batch, is_current=True).count() == 7
    table = pq.read_table(data_path(done.columnar))
    assert table.num_rows == 7
    assert table.column_names == ["__external_id", "__observed_at", "__label", "x", "c"]
    assert table.column("x").to_pylist() == list(range(7))
    assert str(table.schema.field("x").type) == "int64" and str(table.schema.field("c").type) == "string"
    assert [t for _, t in done.transitions.values_list("from_status", "to_status")] == [
        "received", "ingesting", "ingested"]


def test_csv_json_and_gzip_payloads_ingest_alike(source):
    csv = receive(source, b"external_id,x,c\na,1,p\nb,2.5,q\n", "csv")
    array = receive(source, orjson.dumps([{"external_id": "c", "features": {"x": 1}}]), "json")
    zipped = receive(source, gzip.compress(ndjson(["d", "e"])), gzipped=True)
    for batch, count in ((csv, 2), (array, 1), (zipped, 2)):
        assert services.batch_ingest(batch_id=batch.pk).ingested_count == count
    assert pq.read_table(data_path(Batch.objects.get(pk=csv.pk).columnar)).column("x").to_pylist() == [1.0, 2.5]


def test_a_column_with_mixed_types_is_kept_as_text(source):
    body = b'{"external_id": "a", "features": {"v": 1}}\n{"external_id": "b", "features": {"v": "high"}}\n'
    batch = services.batch_ingest(batch_id=receive(source, body).pk)
    assert dict(batch.columns)["v"] == "mixed"
    assert pq.read_table(data_path(batch.columnar)).column("v").to_pylist() == ["1", "high"]


def test_a_payload_that_fails_in_the_worker_fails_whole_and_keeps_its_raw_bytes(source, settings):
    settings.SIEVE_INGEST_CHUNK_ROWS = 2  # so rows were already written when the bad line comes
    batch = receive(source, ndjson([f"r{i}" for i in range(6)]))
    corrupt = ndjson([f"r{i}" for i in range(5)]) + b'{"external_id": "r5", "features": {"x": oops}}\n'
    data_path(batch.payload).write_bytes(corrupt)  # as if the disk had changed it after upload
    done = services.batch_ingest(batch_id=batch.pk)
    assert done.status == "failed"
    assert done.error_line == 6 and "line 6" in done.error
    assert Record.objects.count() == 0
    assert data_path(batch.payload).read_bytes() == corrupt
    columnar = data_path(f"columnar/{source.pk}")
    assert not columnar.exists() or not any(columnar.iterdir())  # no copy, not even a partial one


def test_a_payload_changed_on_disk_to_repeat_an_id_fails_in_the_worker(source):
    batch = receive(source, ndjson(["a", "b", "c"]))
    data_path(batch.payload).write_bytes(ndjson(["a", "b", "a"]))
    done = services.batch_ingest(batch_id=batch.pk)
    assert (done.status, done.error_line) == ("failed", 3)
    assert "duplicate external_id 'a'" in done.error
    assert Record.objects.count() == 0


def test_ingesting_a_batch_twice_writes_its_records_once(source):
    batch = receive(source, ndjson(["a", "b", "c"]))
    services.batch_ingest(batch_id=batch.pk)
    again = services.batch_ingest(batch_id=batch.pk)
    assert again.status == "ingested" and again.attempts == 1
    assert Record.objects.count() == 3


def test_a_record_sent_again_becomes_the_current_revision(source):
    first = services.batch_ingest(batch_id=receive(source, ndjson(["a", "b"])).pk)
    second = services.batch_ingest(batch_id=receive(source, ndjson(["b", "c"], v=2)).pk)
    current = dict(Record.objects.current().values_list("external_id", "batch_id"))
    assert current == {"a": first.pk, "b": second.pk, "c": second.pk}
    assert Record.objects.filter(external_id="b").count() == 2  # the old revision is kept


def test_an_older_batch_ingested_late_does_not_replace_a_newer_revision(source):
    older = receive(source, ndjson(["a", "b"]))
    newer = receive(source, ndjson(["b"], v=2))
    services.batch_ingest(batch_id=newer.pk)
    services.batch_ingest(batch_id=older.pk)
    current = dict(Record.objects.current().values_list("external_id", "batch_id"))
    assert current == {"a": older.pk, "b": newer.pk}


def test_feedback_that_arrived_first_is_linked_when_its_record_arrives(source):
    moment = timezone.now()
    services.feedback_receive(source=source, events=[
        {"external_id": "a", "signal": "thumbs", "value": 1, "actor": "u", "occurred_at": moment,
         "idempotency_key": "k1"},
        {"external_id": "zzz", "signal": "thumbs", "value": 0, "actor": "u", "occurred_at": moment,
         "idempotency_key": "k2"},
    ])
    batch = services.batch_ingest(batch_id=receive(source, ndjson(["a", "b"])).pk)
    linked = FeedbackEvent.objects.get(idempotency_key="k1")
    assert linked.record == Record.objects.get(batch=batch, external_id="a")
    assert FeedbackEvent.objects.get(idempotency_key="k2").record is None


def test_the_sweeper_requeues_a_batch_whose_worker_died(source, celery_queue):
    batch = receive(source, ndjson(["a"]))
    assert services.batch_transition(batch_id=batch.pk, from_status="received", to_status="ingesting",
                                     actor="task:ingest")
    Batch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert sweep_stalled_batches()["requeued"] == 1
    assert Batch.objects.get(pk=batch.pk).status == "received"
    assert services.batch_ingest(batch_id=batch.pk).status == "ingested"


def test_the_sweeper_leaves_fresh_batches_alone(source, celery_queue):
    receive(source, ndjson(["a"]))
    assert sweep_stalled_batches() == {"requeued": 0, "restarted": 0}


def test_a_superseded_claim_cannot_commit_its_records(source, monkeypatch):
    """A worker presumed dead finishes after a retry took the batch over: its work is rolled back."""
    from collection import services as svc

    batch = receive(source, ndjson(["a", "b"]))
    real_rows = svc._ingest_rows

    def slow_worker_is_overtaken(b, partial):
        count = real_rows(b, partial)
        # Meanwhile the sweeper gave the batch to another worker, which claimed it.
        Batch.objects.filter(pk=b.pk).update(attempts=b.attempts + 1)
        return count

    monkeypatch.setattr(svc, "_ingest_rows", slow_worker_is_overtaken)
    done = svc.batch_ingest(batch_id=batch.pk)
    assert done.status == "ingesting"
    assert Record.objects.count() == 0


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_receiving_checks_the_whole_body_before_anything_is_kept(source, fmt):
    from collection.parsing import PayloadError

    body = ndjson(["a", "a"]) if fmt == "ndjson" else b"external_id,x\na,1\na,2\n"
    with pytest.raises(PayloadError):
        services.batch_receive(source=source, body=io.BytesIO(body), fmt=fmt, gzipped=False)
    assert Batch.objects.count() == 0


@pytest.mark.parametrize("insert", ["_feedback_insert_returning", "_feedback_insert_orm"])
def test_both_feedback_writers_store_link_and_skip_alike(source, insert):
    """The single-statement PostgreSQL writer and the portable one (the SQLite demo's) agree."""
    services.batch_ingest(batch_id=receive(source, ndjson(["known"])).pk)
    moment = timezone.now()
    events = [{"external_id": ext, "signal": "click", "value": None, "actor": "u", "occurred_at": moment,
               "idempotency_key": key} for ext, key in (("known", "k1"), ("unknown", "k2"), ("known", "k1"))]
    linked = getattr(services, insert)(source, events)
    assert linked == [Record.objects.get(external_id="known").pk, None]
    assert getattr(services, insert)(source, events) == []
    assert FeedbackEvent.objects.count() == 2


def test_when_arrow_cannot_read_the_payload_the_copy_is_built_from_the_records(source, monkeypatch):
    from collection.columnar import NdjsonParquetCopy

    def refuse(self):
        raise ValueError("Arrow refused")

    monkeypatch.setattr(NdjsonParquetCopy, "_convert", refuse)
    batch = services.batch_ingest(batch_id=receive(source, ndjson(["a", "b", "c"])).pk)
    assert batch.status == "ingested"
    assert pq.read_table(data_path(batch.columnar)).column("__external_id").to_pylist() == ["a", "b", "c"]


def test_the_arrow_and_record_built_copies_agree(source, monkeypatch, tmp_path):
    from collection.columnar import NdjsonParquetCopy

    body = ndjson(["a", "b"]) + b'{"external_id": "c", "features": {"x": 2.5, "flag": true, "tags": null}, ' \
        b'"observed_at": "2026-11-01T10:00:00+02:00", "label": 1}\n'
    fast = services.batch_ingest(batch_id=receive(source, body).pk)
    monkeypatch.setattr(NdjsonParquetCopy, "supports", classmethod(lambda cls, columns: False))
    other = services.source_create(name="second", kind="app")
    slow = services.batch_ingest(batch_id=receive(other, body).pk)
    assert pq.read_table(data_path(fast.columnar)).equals(pq.read_table(data_path(slow.columnar)))
