"""Building versions: stable splits, only admitted records, the label policy, the files, and how a build ends."""
import hashlib
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pyarrow.parquet as pq
import pytest
from django.db import OperationalError
from django.utils import timezone

from collection.models import Batch
from collection.storage import data_path
from labeling.models import Annotation, QueueItem
from tests.factories import admitted_batch, build, checkout_rows, settle
from trainingsets.identity import record_identity
from trainingsets.models import Erasure, TrainingSetVersion
from trainingsets.services import (
    VersionBuilding,
    trainingset_create,
    version_build,
    version_rebuild,
    version_request,
)
from trainingsets.services import versions as versions_service
from validation.models import Alert


def rows_of(version, split=None) -> list[dict]:
    folder = data_path(version.folder)
    names = [split] if split else version.manifest["split_names"]
    return [row for name in names for row in pq.read_table(folder / f"{name}.parquet").to_pylist()]


def splits_of(version) -> dict:
    return {row["external_id"]: row["split"] for row in rows_of(version)}


def test_a_records_split_never_changes_as_the_set_grows(source, project):
    first = admitted_batch(source, checkout_rows(500))
    settle(project, first, lambda r: "ok")
    training_set = trainingset_create(name="growing", sources=[source], projects=[project])
    v1 = build(training_set)
    second = admitted_batch(source, checkout_rows(1500, start=500))
    settle(project, second, lambda r: "fraud")
    v2 = build(training_set)
    before, after = splits_of(v1), splits_of(v2)
    assert len(before) == 500 and len(after) == 2000
    assert {k: after[k] for k in before} == before
    # The fractions hold on the whole (80/10/10 by hash): within a few points on 2,000 records.
    shares = {name: sum(1 for s in after.values() if s == name) / 2000 for name in ("train", "validation", "test")}
    assert abs(shares["train"] - 0.8) < 0.04 and abs(shares["test"] - 0.1) < 0.03, shares
    assert v2.manifest["split_names"] == ["train", "validation", "test"]


def test_another_set_with_its_own_key_splits_differently(source, project):
    batch = admitted_batch(source, checkout_rows(300))
    settle(project, batch, lambda r: "ok")
    a = build(trainingset_create(name="one", sources=[source], projects=[project]))
    b = build(trainingset_create(name="two", sources=[source], projects=[project]))
    assert splits_of(a) != splits_of(b)


def test_records_of_quarantined_rejected_or_failed_batches_never_enter(source, project):
    good = admitted_batch(source, checkout_rows(20, prefix="good"))
    held = admitted_batch(source, checkout_rows(20, prefix="held"), status=Batch.Status.QUARANTINED)
    rejected = admitted_batch(source, checkout_rows(20, prefix="rej"), status=Batch.Status.REJECTED)
    failed = admitted_batch(source, checkout_rows(20, prefix="bad"), status=Batch.Status.FAILED)
    # A record admitted once whose newer revision sits in a quarantined batch is out as well.
    admitted_batch(source, checkout_rows(5, prefix="good"), status=Batch.Status.QUARANTINED)
    for batch in (good, held, rejected, failed):
        settle(project, batch, lambda r: "ok")
    training_set = trainingset_create(name="admitted-only", sources=[source], projects=[project],
                                      unlabeled="keep")
    version = build(training_set)
    ids = set(splits_of(version))
    assert ids == {f"good{i}" for i in range(5, 20)}
    assert {b["id"] for b in version.manifest["batches"]} == {good.pk}
    # An approval admits the held batch: its records may enter the next version; the rejected never.
    Batch.objects.filter(pk=held.pk).update(status=Batch.Status.ADMITTED)
    ids = set(splits_of(build(training_set)))
    assert {f"held{i}" for i in range(20)} <= ids
    assert not any(i.startswith(("rej", "bad")) for i in ids)


def test_the_label_policy_takes_the_best_label_first(source, project, django_user_model):
    rows = checkout_rows(6)
    rows[4]["label"] = "from-batch"
    rows[5]["label"] = "from-batch"
    batch = admitted_batch(source, rows)
    records = {r.external_id: r for r in batch.records.all()}
    make = QueueItem.objects.create
    make(project=project, record=records["r0"], is_gold=True, gold_answer="fraud", state="complete",
         consensus="ok", confidence=0.99, decided_by="dawid_skene")
    make(project=project, record=records["r1"], state="complete", consensus="fraud", confidence=1.0,
         decided_by="adjudicated")
    make(project=project, record=records["r2"], state="complete", consensus="ok", confidence=0.95,
         decided_by="dawid_skene")
    weak = make(project=project, record=records["r3"], state="complete", consensus="ok", confidence=0.55,
                decided_by="majority")
    make(project=project, record=records["r4"], state="open")
    training_set = trainingset_create(name="policy", sources=[source], projects=[project], min_confidence=0.7)
    version = build(training_set)
    got = {r["external_id"]: (r["label"], r["label_confidence"]) for r in rows_of(version)}
    assert got == {"r0": ("fraud", 1.0), "r1": ("fraud", 1.0), "r2": ("ok", 0.95), "r4": ("from-batch", None),
                   "r5": ("from-batch", None)}
    assert version.manifest["excluded"]["no_label"] == 1  # r3: its consensus is below the policy's confidence
    origins = {}
    for split in version.manifest["splits"].values():
        for origin, count in split["origins"].items():
            origins[origin] = origins.get(origin, 0) + count
    assert origins == {"gold": 1, "adjudicated": 1, "consensus": 1, "batch": 2}
    # Feedback labels come before batch labels; without gold, a gold record is left out.
    from collection.models import FeedbackEvent

    event = FeedbackEvent.objects.create(source=source, idempotency_key="k1", external_id="r3",
                                         record=records["r3"], signal="correction", value="fraud",
                                         occurred_at=timezone.now())
    Annotation.objects.create(item=weak, project=project, provenance="process_feedback", value="fraud",
                              feedback_event=event, actor="p1")
    from trainingsets.services import trainingset_update

    trainingset_update(training_set=training_set, use_gold=False, unlabeled="keep")
    got = {r["external_id"]: r["label"] for r in rows_of(build(training_set))}
    assert "r0" not in got and got["r3"] == "fraud" and got["r4"] == "from-batch"


def test_a_time_split_follows_observed_time_and_leaves_out_records_without_one(source, project):
    rows = checkout_rows(48)
    rows[0]["observed_at"] = None
    batch = admitted_batch(source, rows)
    settle(project, batch, lambda r: "ok")
    training_set = trainingset_create(
        name="by-time", sources=[source], projects=[project], split_kind="time",
        split_cutoffs=[["train", "2026-01-02T00:00:00+00:00"], ["test", None]])
    version = build(training_set)
    got = rows_of(version)
    assert len(got) == 47 and version.manifest["excluded"]["no_observed_at"] == 1
    assert version.manifest["raters_per_item"] == {"3": 47}  # the record left out is not counted
    for row in got:
        before = row["observed_at"] < datetime(2026, 1, 2, tzinfo=dt_timezone.utc)
        assert row["split"] == ("train" if before else "test")


def test_a_group_split_keeps_each_group_in_one_split(source, project):
    rows = checkout_rows(300)
    for i, row in enumerate(rows):
        row["features"]["customer"] = f"c{i % 40}"
    batch = admitted_batch(source, rows)
    settle(project, batch, lambda r: "ok")
    training_set = trainingset_create(name="by-customer", sources=[source], projects=[project],
                                      split_kind="group", split_feature="customer",
                                      split_fractions=[["train", 0.5], ["test", 0.5]])
    seen = {}
    for row in rows_of(build(training_set)):
        assert seen.setdefault(row["customer"], row["split"]) == row["split"]
    assert set(seen.values()) == {"train", "test"}


def test_typed_columns_and_a_feature_named_like_a_meta_column(source, project):
    rows = [{"external_id": "a", "features": {"n": 1, "x": 1.5, "flag": True, "tags": ["p", "q"], "any": 1,
                                               "label": "feat"}, "observed_at": None},
            {"external_id": "b", "features": {"n": 2, "x": 2, "flag": False, "tags": "solo", "any": "two",
                                               "label": None}, "observed_at": None}]
    batch = admitted_batch(source, rows)
    settle(project, batch, lambda r: "ok")
    version = build(trainingset_create(name="typed", sources=[source], projects=[project],
                                       split_fractions=[["all", 1.0]]))
    table = pq.read_table(data_path(version.folder) / "all.parquet")
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {"external_id": "string", "source": "string", "observed_at": "timestamp[us, tz=UTC]",
                     "n": "int64", "x": "double", "flag": "bool", "tags": "list<element: string>", "any": "string",
                     "feature.label": "string", "label": "string", "label_confidence": "double", "split": "string"}
    got = {r["external_id"]: r for r in table.to_pylist()}
    assert got["a"]["tags"] == ["p", "q"] and got["b"]["tags"] == ["solo"]
    assert got["a"]["any"] == "1" and got["b"]["any"] == "two" and got["a"]["feature.label"] == "feat"
    assert {c["name"]: c["feature"] for c in version.manifest["schema"]}["feature.label"] == "label"


def test_the_same_data_gives_byte_identical_files_and_the_manifest_hash_proves_them(labeled_set, built_version):
    again = build(labeled_set)
    assert again.number == built_version.number + 1
    for name, entry in built_version.manifest["files"].items():
        first = data_path(built_version.folder) / name
        second = data_path(again.folder) / name
        assert first.read_bytes() == second.read_bytes()
        assert hashlib.sha256(first.read_bytes()).hexdigest() == entry["sha256"]
    assert again.content_sha256 == built_version.content_sha256
    listing = "".join(f"{e['sha256']}  {n}\n" for n, e in sorted(built_version.manifest["files"].items()))
    assert hashlib.sha256(listing.encode()).hexdigest() == built_version.content_sha256
    from trainingsets.selectors import version_diff

    assert version_diff(built_version, again)["added"] == 0


def test_the_manifest_says_where_the_rows_came_from(built_version, project):
    m = built_version.manifest
    assert m["rows"] == 60 and sum(s["rows"] for s in m["splits"].values()) == 60
    assert sum(s["labels"].get('"fraud"', 0) for s in m["splits"].values()) == 12
    assert m["projects"] == [{"id": project.pk, "name": project.name, "latest_consensus_run": None}]
    assert m["raters_per_item"] == {"3": 60}
    assert m["policy"]["min_confidence"] == 0.7 and m["split_rule"]["kind"] == "random"
    assert m["sieve_version"] and m["training_set"]["name"] == built_version.training_set.name
    assert (data_path(built_version.folder) / "manifest.json").exists()
    lineage = pq.read_table(data_path(built_version.folder) / "lineage.parquet").to_pylist()
    assert len(lineage) == 60 and {r["label_origin"] for r in lineage} == {"consensus"}
    for split in m["split_names"]:
        rows = [r for r in lineage if r["split"] == split]
        assert sorted(r["row"] for r in rows) == list(range(m["splits"][split]["rows"]))


def test_a_build_is_claimed_once_and_one_build_runs_per_set(labeled_set):
    version = version_request(training_set=labeled_set, idempotency_key="publish-1")
    assert version_request(training_set=labeled_set, idempotency_key="publish-1").pk == version.pk
    with pytest.raises(VersionBuilding):
        version_request(training_set=labeled_set)
    assert version_build(version_id=version.pk).status == "published"
    again = version_build(version_id=version.pk)
    kept = TrainingSetVersion.objects.get(pk=version.pk)
    assert again.status == "published" and again.finished_at == kept.finished_at


def test_a_build_that_breaks_fails_with_its_error_and_an_alert(labeled_set, monkeypatch):
    def broken(version, split_paths):
        raise RuntimeError("the gate broke")

    monkeypatch.setattr(versions_service, "_gate", broken)
    version = build(labeled_set)
    assert version.status == "failed" and "the gate broke" in version.error
    assert not data_path(f"trainingsets/{labeled_set.pk}").exists() or not any(
        data_path(f"trainingsets/{labeled_set.pk}").iterdir())
    alert = Alert.objects.get(kind=Alert.Kind.VERSION_FAILED, subject=f"trainingset:{labeled_set.pk}")
    assert "the gate broke" in alert.message
    monkeypatch.undo()
    assert build(labeled_set).status == "published"
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_lost_connection_puts_the_build_back_for_the_task_to_retry(labeled_set, monkeypatch):
    def lost(version, split_paths):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(versions_service, "_gate", lost)
    version = version_request(training_set=labeled_set)
    with pytest.raises(OperationalError):
        version_build(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "queued" and version.attempts == 1


def test_the_sweeper_restarts_a_stalled_build_then_fails_it(labeled_set, settings):
    version = version_request(training_set=labeled_set)
    old = timezone.now() - settings.SIEVE_VERSION_STALLED_AFTER - timedelta(seconds=1)
    TrainingSetVersion.objects.filter(pk=version.pk).update(status="building", attempts=1, updated_at=old)
    assert versions_service.versions_sweep()["retried"] == 1
    version.refresh_from_db()
    assert version.status == "queued"
    TrainingSetVersion.objects.filter(pk=version.pk).update(status="building", updated_at=old,
                                                            attempts=settings.SIEVE_VERSION_MAX_ATTEMPTS)
    assert versions_service.versions_sweep()["failed"] == 1
    version.refresh_from_db()
    assert version.status == "failed" and "stopped" in version.error
    assert Alert.objects.filter(kind=Alert.Kind.VERSION_FAILED, resolved_at__isnull=True).exists()


def test_an_erased_record_stays_out_and_a_marked_version_is_rebuilt_without_it(source, labeled_set,
                                                                               built_version):
    erasure = Erasure.objects.create(kind=Erasure.Kind.RECORD, source=source,
                                     identity=record_identity(source.pk, "r7"), status="done")
    erasure.versions.add(built_version)
    rebuilt = version_build(version_id=version_rebuild(version=built_version).pk)
    assert rebuilt.status == "published" and rebuilt.manifest["rebuilt_from"] == built_version.number
    assert "r7" not in splits_of(rebuilt) and len(splits_of(rebuilt)) == 59
    assert rebuilt.manifest["excluded"]["erased"] == 1
    assert {k: v for k, v in splits_of(built_version).items() if k != "r7"} == splits_of(rebuilt)
    # A record sent again after its erasure still stays out of new versions.
    fresh = build(labeled_set)
    assert "r7" not in splits_of(fresh) and fresh.manifest["excluded"]["erased"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_build_streams_with_copy_and_writes_the_same_bytes_as_a_cursor_build(source, project,
                                                                                      monkeypatch):
    """Outside a transaction (as in a worker) rows come through COPY on a thread; inside one, through a
    server-side cursor: the same data must give the same files, chunk boundaries included."""
    from django.db import transaction

    from trainingsets.build import rows as rows_module

    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 7)

    rows = checkout_rows(120)
    rows[3]["features"]["note"] = 'quote " and back\\slash and\nnewline'
    batch = admitted_batch(source, rows)
    settle(project, batch, lambda r: "ok")
    training_set = trainingset_create(name="two-ways", sources=[source], projects=[project])
    streamed = build(training_set)
    with transaction.atomic():
        cursored = build(training_set)
    assert streamed.status == cursored.status == "published"
    assert streamed.content_sha256 == cursored.content_sha256
    note = [r for r in rows_of(streamed) if r["external_id"] == "r3"][0]["note"]
    assert note == 'quote " and back\\slash and\nnewline'
