"""Erasure: a record's rows and an actor's feedback go, a tombstone without data stays, files are masked and
rewritten, versions are marked, and neither the next version nor a rebuild holds the record."""
import gzip
import io
import shutil
import threading
from datetime import datetime, timezone

import orjson
import pyarrow.parquet as pq
import pytest
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from collection import services as collection
from collection.models import Batch, FeedbackEvent, Record
from collection.storage import data_path
from labeling import services as labeling
from labeling.models import Adjudication, Annotation, Assignment, ConsensusRun, ConsensusRunItem, QueueItem
from tests.factories import build
from trainingsets.identity import actor_identity, record_identity
from trainingsets.models import Erasure
from trainingsets.services import trainingset_create, version_build, version_rebuild
from trainingsets.services.erasure import (
    ErasureFilesBusy,
    erasure_actor,
    erasure_record,
    erasure_retry,
    erasure_rewrite_files,
)
from trainingsets.services.errors import ErasureInvalid, ErasureNotFailed, NothingToErase, ReasonHoldsData
from validation.models import Alert, Anomaly, AuditEntry, Baseline, DailyProfile, ValidationRun
from validation.services import baseline_create_from_batches, baseline_create_from_file, batch_validate
from validation.stats.profile import Profile

AT = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
# What must never be seen again once erased: the record's id and a feature value of it, the actor's id.
PERSON = "customer-8c1f2e"
NAME = "Alice Liddell"
ACTOR = "user-4711-raw"


def row(external_id: str, n: int, *, name: str = "someone else", label: str = "ok") -> dict:
    return {"external_id": external_id, "features": {"name": name, "n": n}, "label": label,
            "observed_at": f"2026-11-0{1 + n % 9}T00:00:00Z"}


def rows_with_person(at: int, count: int = 5, **person) -> list[dict]:
    out = [row(f"other-{i}", i) for i in range(count)]
    out[at - 1] = row(PERSON, at, name=NAME, **person)
    return out


def encode(rows: list[dict], fmt: str) -> bytes:
    if fmt == "ndjson":
        return b"".join(orjson.dumps(r) + b"\n" for r in rows)
    if fmt == "json":
        return b"[\n" + b",\n".join(orjson.dumps(r) for r in rows) + b"\n]\n"
    lines = ["external_id,name,n,label,observed_at"]
    lines += [f'{r["external_id"]},"{r["features"]["name"]}",{r["features"]["n"]},{r["label"]},{r["observed_at"]}'
              for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def admitted(source, body: bytes, fmt: str = "ndjson", gzipped: bool = False) -> Batch:
    """A real batch: received (its payload kept on disk), ingested (records and a Parquet copy), admitted."""
    batch, _ = collection.batch_receive(source=source, body=io.BytesIO(gzip.compress(body) if gzipped else body),
                                        fmt=fmt, gzipped=gzipped)
    batch = collection.batch_ingest(batch_id=batch.pk)
    assert batch.status == "ingested", batch.error
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.ADMITTED)
    batch.refresh_from_db()
    return batch


def payload_text(batch: Batch) -> bytes:
    path = data_path(batch.payload)
    return gzip.decompress(path.read_bytes()) if batch.gzipped else path.read_bytes()


def parquet_ids(batch: Batch) -> list[str]:
    return pq.read_table(data_path(batch.columnar), columns=["__external_id"]).column(0).to_pylist()


def kept_anywhere() -> str:
    """Every tombstone, audit entry and alert, as text."""
    return "".join(serializers.serialize("json", model.objects.all()) for model in (Erasure, AuditEntry, Alert))


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("privacy-officer", is_staff=True)


@pytest.fixture
def raters(project):
    made = [labeling.rater_create(username=f"rater-{i}") for i in range(3)]
    labeling.project_add_raters(project=project, raters=made)
    return made


def label_everything(project, raters, value="ok") -> None:
    for rater in raters:
        while (lease := labeling.item_next(rater=rater, project=project)) is not None:
            labeling.assignment_submit(assignment=lease, value=value)


def send_feedback(source, external_id: str, actor: str, value=False, key: str | None = None) -> None:
    collection.feedback_receive(source=source, events=[{
        "external_id": external_id, "signal": "thumbs", "value": value, "actor": actor, "occurred_at": AT,
        "idempotency_key": key}])


# --- a record


def test_erasing_a_record_deletes_every_revision_with_its_labels_and_feedback_and_counts_them(
        source, project, raters, staff, caplog):
    caplog.set_level("DEBUG")
    first = admitted(source, encode(rows_with_person(2), "ndjson"))
    labeling.batch_route(batch_id=first.pk)
    second = admitted(source, encode(rows_with_person(1, count=2, label="fraud"), "ndjson"))  # a new revision
    labeling.batch_route(batch_id=second.pk)
    label_everything(project, raters)
    items = list(QueueItem.objects.filter(record__external_id=PERSON).order_by("id"))
    assert len(items) == 2
    Adjudication.objects.create(item=items[1], project=project, decided_by=staff, value="fraud", reason="ticket 9")
    run = ConsensusRun.objects.create(project=project, status=ConsensusRun.Status.DONE)
    ConsensusRunItem.objects.bulk_create([ConsensusRunItem(run=run, item=i, label="ok", confidence=0.9)
                                          for i in project.items.all()])
    labeling.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=False, label="fraud")
    send_feedback(source, PERSON, ACTOR)
    send_feedback(source, "other-0", ACTOR)
    labeling.feedback_apply_rules(project=project)
    others = {"records": Record.objects.exclude(external_id=PERSON).count(),
              "labels": Annotation.objects.exclude(item__in=items).count(),
              "feedback": FeedbackEvent.objects.exclude(external_id=PERSON).count()}

    erasure = erasure_record(source=source, external_id=PERSON, user=staff, reason="GDPR request, ticket 4711")

    assert not Record.objects.filter(external_id=PERSON).exists()
    assert not QueueItem.objects.filter(pk__in=[i.pk for i in items]).exists()
    assert not Annotation.objects.filter(item_id__in=[i.pk for i in items]).exists()
    assert not Assignment.objects.filter(item_id__in=[i.pk for i in items]).exists()
    assert not Adjudication.objects.exists()
    assert not ConsensusRunItem.objects.filter(item_id__in=[i.pk for i in items]).exists()
    assert not FeedbackEvent.objects.filter(external_id=PERSON).exists()
    assert others == {"records": Record.objects.count(), "labels": Annotation.objects.count(),
                      "feedback": FeedbackEvent.objects.count()}
    assert erasure.counts == {"revisions": 2, "feedback": 1, "queue_items": 2, "labels": 7, "assignments": 6,
                              "adjudications": 1, "consensus_results": 2, "batches": 2, "payload_files": 2,
                              "payload_lines": 2, "versions": 0, "validation_rows_scrubbed": 0}
    assert (erasure.kind, erasure.source, erasure.identity) == ("record", source, record_identity(source.pk, PERSON))
    assert (erasure.status, erasure.requested_by, erasure.reason) == ("files_pending", staff,
                                                                      "GDPR request, ticket 4711")
    assert [(f["batch"], f["lines"]) for f in erasure.files] == [(first.pk, [2]), (second.pk, [1])]
    audit = AuditEntry.objects.get(action="erasure")
    assert (audit.actor, audit.source) == ("user:privacy-officer", source)
    assert f"erasure {erasure.pk}" in audit.detail and "revisions 2" in audit.detail

    erasure_rewrite_files(erasure_id=erasure.pk)
    erasure.refresh_from_db()
    assert erasure.status == "done" and erasure.finished_at is not None
    assert (erasure.counts["payload_lines_masked"], erasure.counts["parquet_rows_removed"]) == (2, 2)
    for text in (PERSON, NAME, "Alice"):
        assert text not in kept_anywhere()
        assert text not in caplog.text


def without(items: list, index: int) -> list:
    return items[:index] + items[index + 1:]


def test_the_erased_lines_are_masked_in_every_payload_format_and_gone_from_the_parquet_copy(source, staff):
    batches = []
    for at, (fmt, gzipped) in enumerate([("ndjson", False), ("csv", False), ("json", False), ("ndjson", True)], 1):
        rows = rows_with_person(at, count=4)
        for n, other in enumerate(rows):
            if other["external_id"] != PERSON:
                other["external_id"] = f"{fmt}-{at}-{n}"
        batches.append(admitted(source, encode(rows, fmt), fmt, gzipped))  # the person's line or position: at
    before = {b.pk: (payload_text(b), parquet_ids(b)) for b in batches}
    # Each batch made a new revision of the person's record: the erasure finds all four.
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    assert erasure.counts["revisions"] == 4
    erasure_rewrite_files(erasure_id=erasure.pk)
    for at, batch in enumerate(batches, 1):
        text, (old_text, old_ids) = payload_text(batch), before[batch.pk]
        assert PERSON.encode() not in text and NAME.encode() not in text
        assert parquet_ids(batch) == [i for i in old_ids if i != PERSON] and len(old_ids) == 4
        if batch.format == "ndjson":
            lines, old_lines = text.split(b"\n"), old_text.split(b"\n")
            assert lines[at - 1] == orjson.dumps({"__erased": erasure.pk})
            assert without(lines, at - 1) == without(old_lines, at - 1)
        elif batch.format == "json":
            elements, old = orjson.loads(text), orjson.loads(old_text)
            assert elements[at - 1] == {"__erased": erasure.pk}
            assert without(elements, at - 1) == without(old, at - 1)
        else:
            lines, old_lines = text.split(b"\r\n"), old_text.split(b"\r\n")
            assert lines[at] == f"__erased:{erasure.pk}:{at + 1},,,,".encode()  # the header is line 1
            assert without(lines, at) == without(old_lines, at)
    assert data_path(batches[3].payload).read_bytes()[:2] == b"\x1f\x8b"  # still gzip
    assert Batch.objects.get(pk=batches[0].pk).sha256 == batches[0].sha256  # deduplication still knows the content


def test_a_batch_sent_again_as_a_duplicate_has_its_payload_masked_too(source, staff):
    body = encode(rows_with_person(3), "ndjson")
    original = admitted(source, body)
    duplicate, _ = collection.batch_receive(source=source, body=io.BytesIO(body), fmt="ndjson", gzipped=False)
    assert duplicate.status == "duplicate" and duplicate.duplicate_of_id == original.pk
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    assert [(f["batch"], f["duplicate_of"], f["columnar"]) for f in erasure.files] == [
        (original.pk, None, original.columnar), (duplicate.pk, original.pk, "")]
    erasure_rewrite_files(erasure_id=erasure.pk)
    assert payload_text(duplicate) == payload_text(original)
    assert PERSON.encode() not in payload_text(duplicate)


def test_rewriting_again_is_idempotent(source, staff):
    batch = admitted(source, encode(rows_with_person(2), "ndjson"))
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    done = erasure_rewrite_files(erasure_id=erasure.pk)
    files = (data_path(batch.payload).read_bytes(), data_path(batch.columnar).read_bytes())
    assert erasure_rewrite_files(erasure_id=erasure.pk).files == done.files  # a redelivered task: nothing to do
    # Run whole again, as after a crash that lost what it had noted: the lines are found masked, no row is left.
    Erasure.objects.filter(pk=erasure.pk).update(status="files_pending", files=erasure.files)
    again = erasure_rewrite_files(erasure_id=erasure.pk)
    entry = again.files[0]
    assert (entry["payload_rewritten"]["masked"], entry["payload_rewritten"]["already"]) == (0, 1)
    assert (entry["parquet_rewritten"]["rows_removed"], entry["parquet_rewritten"]["rewritten"]) == (0, False)
    assert (data_path(batch.payload).read_bytes(), data_path(batch.columnar).read_bytes()) == files
    assert again.status == "done"


def test_asking_again_returns_the_pending_erasure_then_finds_nothing_to_erase(source, staff):
    admitted(source, encode(rows_with_person(2), "ndjson"))
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    again = erasure_record(source=source, external_id=PERSON, user=staff)
    assert (erasure.created, again.created, again.pk) == (True, False, erasure.pk)
    erasure_rewrite_files(erasure_id=erasure.pk)
    with pytest.raises(NothingToErase) as refused:
        erasure_record(source=source, external_id=PERSON, user=staff)
    assert (refused.value.status, refused.value.code, refused.value.value) == (404, "nothing_to_erase", None)
    assert Erasure.objects.count() == 1 and AuditEntry.objects.filter(action="erasure").count() == 1


def test_a_record_known_only_by_its_feedback_is_erased_at_once(source, staff):
    send_feedback(source, PERSON, ACTOR)
    erasure = erasure_record(source=source, external_id=PERSON, user=None)
    assert (erasure.status, erasure.counts["feedback"], erasure.files) == ("done", 1, [])
    assert not FeedbackEvent.objects.exists()
    assert AuditEntry.objects.get(action="erasure").actor == "system"


def test_a_reason_that_names_the_record_is_refused_and_nothing_is_erased(source, staff):
    admitted(source, encode(rows_with_person(2), "ndjson"))
    with pytest.raises(ReasonHoldsData) as refused:
        erasure_record(source=source, external_id=PERSON, user=staff, reason=f"asked by {PERSON} by mail")
    assert refused.value.field == "reason" and PERSON not in str(refused.value)
    with pytest.raises(ErasureInvalid):
        erasure_record(source=source, external_id="", user=staff)
    assert Record.objects.filter(external_id=PERSON).exists() and not Erasure.objects.exists()


def test_the_file_rewrite_is_sent_to_the_workers_after_the_commit(source, staff, django_capture_on_commit_callbacks):
    admitted(source, encode(rows_with_person(2), "ndjson"))
    with django_capture_on_commit_callbacks() as callbacks:
        erasure_record(source=source, external_id=PERSON, user=staff)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        erasure_record(source=source, external_id="other-0", user=staff, enqueue_files=False)
    assert callbacks == []


def test_a_payload_that_no_longer_matches_fails_the_erasure_with_an_alert_and_a_retry_finishes_it(source, staff):
    batch = admitted(source, encode(rows_with_person(2), "ndjson"))
    original = data_path(batch.payload).read_bytes()
    data_path(batch.payload).write_bytes(encode([row("x", 0), row("y", 1), row("z", 2)], "ndjson"))
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    failed = erasure_rewrite_files(erasure_id=erasure.pk, retryable=True)  # not a fault that passes: no retry
    assert failed.status == "failed"
    assert failed.error == f"batch {batch.pk}: line 2 does not hold the erased record"
    alert = Alert.objects.get(kind=Alert.Kind.ERASURE_FAILED)
    assert alert.subject == f"erasure:{erasure.pk}" and alert.resolved_at is None
    assert PERSON not in kept_anywhere() and NAME not in kept_anywhere()
    with pytest.raises(ErasureNotFailed):
        erasure_retry(erasure=Erasure.objects.create(kind="record", identity="x", status="done"))

    data_path(batch.payload).write_bytes(original)  # the cause fixed
    erasure_retry(erasure=failed, enqueue_files=False)
    done = erasure_rewrite_files(erasure_id=erasure.pk)
    assert (done.status, done.error) == ("done", "")
    assert PERSON.encode() not in data_path(batch.payload).read_bytes()
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_file_fault_that_may_pass_is_retried_and_fails_the_erasure_on_the_last_attempt(source, staff):
    batch = admitted(source, encode(rows_with_person(2), "ndjson"))
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    folder = data_path(batch.payload).parent
    hidden = folder.with_name(folder.name + ".unmounted")
    folder.rename(hidden)  # as if the data disk were not mounted on this worker
    try:
        with pytest.raises(ErasureFilesBusy):
            erasure_rewrite_files(erasure_id=erasure.pk, retryable=True)
        assert Erasure.objects.get(pk=erasure.pk).status == "files_pending"
        last = erasure_rewrite_files(erasure_id=erasure.pk, retryable=False)
        assert last.status == "failed" and "is the data disk mounted?" in last.error
        assert Alert.objects.filter(kind=Alert.Kind.ERASURE_FAILED, subject=f"erasure:{erasure.pk}").exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        hidden.rename(folder)


def test_a_payload_deleted_from_its_folder_counts_as_missing_not_as_a_failure(source, staff):
    batch = admitted(source, encode(rows_with_person(2), "ndjson"))
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    data_path(batch.payload).unlink()
    done = erasure_rewrite_files(erasure_id=erasure.pk)
    assert done.status == "done" and done.files[0]["payload_rewritten"] == {"missing": True}
    assert done.counts["files_missing"] == 1 and done.counts["parquet_rows_removed"] == 1


def test_the_records_values_leave_validation_profiles_explanations_baselines_and_alerts(source, staff, tmp_path):
    village = "Alice's Village"  # a rare value: validation quotes it as an example
    reference = tmp_path / "reference.ndjson"
    reference.write_bytes(encode([{"external_id": f"ref-{i}", "features": {"city": ["Berlin", "Paris"][i % 2], "n": i,
                                                                            "device": ["ios", "web"][i % 2]},
                                   "label": "ok"} for i in range(200)], "ndjson"))
    baseline_create_from_file(source=source, path=reference)
    rows = [{"external_id": f"x{i}", "features": {"city": ["Berlin", "Paris"][i % 2], "n": i, "device": "ios"}}
            for i in range(20)]
    rows.append({"external_id": PERSON, "features": {"city": village, "n": 3, "device": "ios"}})
    # Eight unseen cities in 28 rows: a few alone are within what a 200-row reference leaves unseen by chance.
    rows += [{"external_id": f"x-{city}", "features": {"city": city, "n": 4, "device": "ios"}}
             for city in ("Zurich", "Oslo", "Lima", "Kyiv", "Quito", "Riga", "Sofia")]
    batch, _ = collection.batch_receive(source=source, body=io.BytesIO(encode(rows, "ndjson")), fmt="ndjson",
                                        gzipped=False)
    collection.batch_ingest(batch_id=batch.pk)
    assert batch_validate(batch_id=batch.pk).status == "quarantined"
    baseline_create_from_batches(source=source, batches=[Batch.objects.get(pk=batch.pk)], activate=False)
    validation = (ValidationRun, Anomaly, DailyProfile, Baseline, Alert)

    def held() -> str:
        return "".join(serializers.serialize("json", model.objects.all()) for model in validation)

    assert village in held() and repr(village) in Anomaly.objects.get(kind="out_of_domain").explanation
    run = ValidationRun.objects.get(batch=batch)
    rows_before = Profile.from_json(run.profile).n_rows

    erasure = erasure_record(source=source, external_id=PERSON, user=staff)

    for model in validation:
        assert "Village" not in serializers.serialize("json", model.objects.all()), model
    assert "(e.g. '[erased]', 'Kyiv', 'Lima')" in Anomaly.objects.get(kind="out_of_domain").explanation
    run.refresh_from_db()
    assert Profile.from_json(run.profile).n_rows == rows_before  # the counts stay: only the example went
    assert erasure.counts["validation_rows_scrubbed"] == 4  # the run, its anomaly, the day, the batch's baseline
    made = Profile.from_json(Baseline.objects.get(origin="batches").profile)
    # The bin stays, its name goes.
    assert made.spec.features["city"].vocab == ("Berlin", "Paris", "[erased #2]", "Kyiv", "Lima", "Oslo", "Quito",
                                                "Riga", "Sofia", "Zurich")
    assert made.spec.features["device"].vocab == ("ios",)  # a value 21 records share names no one: it stays
    assert "Berlin" in held()


# --- versions


@pytest.fixture
def batch_set(source):
    return trainingset_create(name="checkout-set", sources=[source], use_consensus=False)


def lineage_ids(version) -> list[str]:
    return pq.read_table(data_path(version.folder) / "lineage.parquet").column("external_id").to_pylist()


def split_ids(version) -> list[str]:
    folder = data_path(version.folder)
    return [i for name in version.manifest["split_names"]
            for i in pq.read_table(folder / f"{name}.parquet").column("external_id").to_pylist()]


def test_a_version_that_holds_the_record_is_marked_and_its_rebuild_leaves_the_row_out(source, staff, batch_set):
    admitted(source, encode(rows_with_person(3, count=30), "ndjson"))
    version = build(batch_set)
    assert version.is_built and PERSON in split_ids(version)
    other_set = trainingset_create(name="other-set", sources=[collection.source_create(name="other", kind="app")])
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    assert list(erasure.versions.all()) == [version] and erasure.counts["versions"] == 1
    assert not other_set.versions.exists()

    rebuilt = version_build(version_id=version_rebuild(version=version, user=staff).pk)
    assert rebuilt.is_built, rebuilt.error
    assert PERSON not in split_ids(rebuilt) and PERSON not in lineage_ids(rebuilt)
    assert sorted(split_ids(rebuilt)) == sorted(i for i in split_ids(version) if i != PERSON)


def test_the_next_version_leaves_out_a_record_sent_again_after_its_erasure(source, staff, batch_set):
    admitted(source, encode(rows_with_person(3, count=30), "ndjson"))
    erasure = erasure_record(source=source, external_id=PERSON, user=staff)
    erasure_rewrite_files(erasure_id=erasure.pk)
    again = [row(f"later-{i}", i) for i in range(10)] + [row(PERSON, 3, name=NAME)]
    admitted(source, encode(again, "ndjson"))
    assert Record.objects.filter(external_id=PERSON, is_current=True).exists()  # the source sent it again
    version = build(batch_set)
    assert version.is_built, version.error
    assert PERSON not in split_ids(version) and PERSON not in lineage_ids(version)
    assert "later-0" in split_ids(version) and version.manifest["excluded"]["erased"] == 1


# --- an actor's feedback


@pytest.fixture
def feedback_counts(project, source, raters):
    """Two items labeled by two raters each and by process feedback that counts; one thumbs-down is ACTOR's."""
    project.feedback_counts = True
    project.overlap = 2
    project.min_confidence = 0.7
    project.save()
    batch = admitted(source, encode([row("r1", 1), row("r2", 2)], "ndjson"))
    labeling.batch_route(batch_id=batch.pk)
    labeling.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=False, label="fraud")
    label_everything(project, raters[:2])
    send_feedback(source, "r1", ACTOR, key="a1")
    send_feedback(source, "r2", ACTOR, key="a2")
    send_feedback(source, "r2", "someone-else", key="b1")
    labeling.feedback_apply_rules(project=project)
    return project


def test_erasing_an_actor_removes_its_feedback_and_labels_and_resettles_the_items(source, staff, feedback_counts,
                                                                                   caplog):
    caplog.set_level("DEBUG")
    pseudonym = collection.actor_pseudonym(ACTOR)
    r1 = QueueItem.objects.get(record__external_id="r1")
    assert (r1.state, r1.feedback_count) == ("adjudication", 1)  # ok, ok, fraud: two thirds is not enough
    author = f"feedback:{pseudonym}"
    run = ConsensusRun.objects.create(project=feedback_counts, status="done", rater_accuracy={author: 0.7, "1": 0.9},
                                      rater_confusion={author: [[1, 0], [0, 1]]})

    erasure = erasure_actor(actor=ACTOR, user=staff, reason="account deleted")

    assert not FeedbackEvent.objects.filter(actor=pseudonym).exists()
    assert FeedbackEvent.objects.count() == 1
    assert not Annotation.objects.filter(actor=pseudonym).exists()
    assert Annotation.objects.filter(provenance="process_feedback").count() == 1
    r1.refresh_from_db()
    assert (r1.state, r1.consensus, r1.feedback_count) == ("complete", "ok", 0)  # the raters agree again
    r2 = QueueItem.objects.get(record__external_id="r2")
    assert r2.feedback_count == 1
    run.refresh_from_db()
    assert (run.rater_accuracy, run.rater_confusion) == ({"1": 0.9}, {})
    assert (erasure.kind, erasure.source, erasure.identity) == ("actor", None, actor_identity(pseudonym))
    assert (erasure.status, sorted(erasure.items)) == ("done", sorted([r1.pk, r2.pk]))
    assert {k: erasure.counts[k] for k in ("feedback", "labels", "items", "consensus_runs_scrubbed")} == {
        "feedback": 2, "labels": 2, "items": 2, "consensus_runs_scrubbed": 1}
    for text in (ACTOR, pseudonym):
        assert text not in kept_anywhere() and text not in caplog.text
    with pytest.raises(NothingToErase):
        erasure_actor(pseudonym=pseudonym, user=staff)


def test_an_actor_is_named_by_its_id_or_its_pseudonym_never_both(staff, db):
    with pytest.raises(ErasureInvalid):
        erasure_actor(user=staff)
    with pytest.raises(ErasureInvalid):
        erasure_actor(actor=ACTOR, pseudonym="ab" * 32, user=staff)
    with pytest.raises(ErasureInvalid) as refused:
        erasure_actor(pseudonym="not-hex", user=staff)
    assert refused.value.field == "pseudonym"
    with pytest.raises(ReasonHoldsData):
        erasure_actor(actor=ACTOR, user=staff, reason=f"{ACTOR} asked")


def test_a_version_labeled_through_the_actors_feedback_is_marked(source, staff, feedback_counts):
    batch_set = trainingset_create(name="feedback-set", sources=[source], projects=[feedback_counts],
                                   use_batch_labels=False, unlabeled="keep")
    version = build(batch_set)
    assert version.is_built, version.error
    erasure = erasure_actor(actor=ACTOR, user=staff)
    assert list(erasure.versions.all()) == [version]


# --- the command


def test_the_erase_command_erases_here_and_prints_counts_but_never_the_data(source, staff, monkeypatch):
    batch = admitted(source, encode(rows_with_person(2), "ndjson"))
    monkeypatch.setattr("sys.stdin", io.StringIO(PERSON + "\n"))
    out = io.StringIO()
    call_command("erase", source=source.name, external_id="-", reason="ticket 12", by=staff.username, stdout=out)
    text = out.getvalue()
    erasure = Erasure.objects.get()
    assert text.startswith(f"erasure {erasure.pk} (record): done\n")
    assert "  revisions: 1\n" in text and f"  batch {batch.pk}: payload 1 masked" in text
    assert "parquet 1 rows removed" in text
    assert PERSON not in text and NAME not in text
    assert PERSON.encode() not in data_path(batch.payload).read_bytes()
    with pytest.raises(CommandError, match="nothing of this record is left to erase"):
        call_command("erase", source=source.name, external_id=PERSON, stdout=io.StringIO())
    with pytest.raises(CommandError, match="give one of"):
        call_command("erase", stdout=io.StringIO())

    send_feedback(source, "other-0", ACTOR)
    out = io.StringIO()
    call_command("erase", pseudonym=collection.actor_pseudonym(ACTOR), stdout=out)
    assert "(actor): done" in out.getvalue() and "  feedback: 1\n" in out.getvalue()


def test_the_erase_command_retries_a_failed_erasure_and_fails_loudly(source, staff):
    batch = admitted(source, encode(rows_with_person(2), "ndjson"))
    original = data_path(batch.payload).read_bytes()
    data_path(batch.payload).write_bytes(encode([row("x", 0), row("y", 1)], "ndjson"))  # line 2 holds another
    with pytest.raises(CommandError, match="line 2 does not hold the erased record"):
        call_command("erase", source=source.name, external_id=PERSON, stdout=io.StringIO())
    erasure = Erasure.objects.get()
    assert erasure.status == "failed"
    data_path(batch.payload).write_bytes(original)
    out = io.StringIO()
    call_command("erase", retry=erasure.pk, stdout=out)
    assert out.getvalue().startswith(f"erasure {erasure.pk} (record): done\n")
    with pytest.raises(CommandError, match="has not failed"):
        call_command("erase", retry=erasure.pk, stdout=io.StringIO())


# --- two at once


def test_two_requests_to_erase_one_record_at_once_make_one_tombstone(transactional_db, source, staff):
    admitted(source, encode(rows_with_person(2), "ndjson"))
    start, made, errors = threading.Barrier(2), [], []

    def erase() -> None:
        try:
            start.wait(timeout=10)
            made.append(erasure_record(source=source, external_id=PERSON, user=staff, enqueue_files=False).pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=erase) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(made) == 2 and made[0] == made[1]
    assert Erasure.objects.count() == 1 and AuditEntry.objects.filter(action="erasure").count() == 1
