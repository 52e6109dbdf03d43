"""Labels in and out through the services and commands: CSV and Parquet exports equal the database, imports
check every line, change nothing twice, take slots and settle their items."""
import io
import json
from datetime import datetime, timezone

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from collection.models import FeedbackEvent
from labeling import services
from labeling.models import Annotation, LabelingProject, QueueItem
from labeling.selectors.labels import labels_page
from labeling.services import labels_io
from labeling.services.labels_io import ImportLine
from tests.factories import CHOICES, batch_of_records

AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


def lines(*rows: dict) -> list[ImportLine]:
    return [ImportLine(n, row) for n, row in enumerate(rows, start=1)]


def fresh(item: QueueItem) -> QueueItem:
    return QueueItem.objects.get(pk=item.pk)


def label(rater, project, value):
    lease = services.item_next(rater=rater, project=project)
    assert lease is not None, "expected work"
    return services.assignment_submit(assignment=lease, value=value)[0]


@pytest.fixture
def labeled(project, queued, make_rater, source):
    """Labels of every provenance in `project`: human ones (one of them undone), a gold answer, a process-feedback
    label and an imported one."""
    alice, bob, carol, dave, erin = (make_rater(name) for name in ("alice", "bob", "carol", "dave", "erin"))
    label(alice, project, "positive")
    label(bob, project, "negative")
    label(carol, project, "neutral")
    again = services.annotation_undo_last(rater=carol, project=project)  # carol's first label stays, undone
    services.assignment_submit(assignment=again, value="positive")
    services.item_set_gold(item=queued[9], answer="positive")
    LabelingProject.objects.filter(pk=project.pk).update(gold_rate=1.0)
    project.refresh_from_db()
    gold = services.item_next(rater=dave, project=project)
    assert gold.item_id == queued[9].pk
    services.assignment_submit(assignment=gold, value="negative")
    LabelingProject.objects.filter(pk=project.pk).update(gold_rate=0.0)
    project.refresh_from_db()
    services.feedback_rule_create(project=project, signal="rating", op="gte", threshold=4, label="positive")
    FeedbackEvent.objects.create(source=source, idempotency_key="k1", external_id=queued[1].record.external_id,
                                 record=queued[1].record, signal="rating", value=5, actor="pseudo-a", occurred_at=AT)
    services.feedback_apply_rules(project=project)
    services.labels_import(project=project, lines=lines(
        {"external_id": queued[2].record.external_id, "rater": "erin", "value": "neutral",
         "created_at": AT.isoformat()}))
    return project


def database_rows(project) -> list[dict]:
    """Every label of the project read straight from the models, in the export's columns."""
    rows = []
    for a in (Annotation.objects.filter(project=project).select_related("item__record__source", "rater__user")
              .order_by("id")):
        rows.append({
            "annotation_id": a.pk, "item_id": a.item_id, "external_id": a.item.record.external_id,
            "source": a.item.record.source.name, "rater_id": a.rater_id,
            "rater_username": a.rater.user.username if a.rater else None,
            "rater_kind": a.rater.kind if a.rater else None, "actor": a.actor, "provenance": a.provenance,
            "rule_id": a.rule_id, "value": a.value, "created_at": a.created_at, "is_gold": a.is_gold,
            "correct": a.correct, "undone_at": a.undone_at, "item_state": a.item.state,
            "consensus": a.item.consensus,
        })
    return rows


def _plain(value):
    """A cell of a read file as a Python value (NaN and NaT as None, numpy scalars as Python ones)."""
    if value is None or (not isinstance(value, (list, str)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def test_every_label_is_exported_to_parquet_as_it_is_in_the_database(labeled):
    out = io.BytesIO()
    assert services.labels_write_parquet(project=labeled, out=out) == 7
    out.seek(0)
    frame = pd.read_parquet(out)
    got = [{k: _plain(v) if k != "value" else v for k, v in row.items()} for row in frame.to_dict("records")]
    expected = database_rows(labeled)
    assert [r["provenance"] for r in expected].count("human") == 5
    assert {r["provenance"] for r in expected} == {"human", "process_feedback", "imported"}
    assert any(r["undone_at"] for r in expected) and any(r["correct"] is False for r in expected)
    assert got == expected
    assert pq.ParquetFile(io.BytesIO(out.getvalue())).schema_arrow.metadata[b"sieve.values"] == b"typed"


def test_every_label_is_exported_to_csv_as_it_is_in_the_database(labeled):
    out = io.StringIO()
    assert services.labels_write_csv(project=labeled, out=out) == 7
    frame = pd.read_csv(io.StringIO(out.getvalue()), dtype=str, keep_default_na=False)
    expected = database_rows(labeled)
    cell = labels_io.label_cell
    assert frame.to_dict("records") == [{k: cell(v) for k, v in row.items()} for row in expected]
    feedback = next(r for r in frame.to_dict("records") if r["provenance"] == "process_feedback")
    assert (feedback["rater_id"], feedback["rater_username"], feedback["actor"]) == ("", "", "pseudo-a")


def test_a_multiple_choice_label_is_a_list_in_parquet_and_json_in_csv(source, make_rater):
    project = services.project_create(name="tags", label_kind="multiple_choice", choices=CHOICES, overlap=1,
                                      sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    label(make_rater(join=project), project, ["neutral", "positive"])
    out = io.BytesIO()
    services.labels_write_parquet(project=project, out=out)
    out.seek(0)
    row = pd.read_parquet(out).iloc[0]
    assert list(row["value"]) == ["positive", "neutral"] and list(row["consensus"]) == ["positive", "neutral"]
    text = io.StringIO()
    services.labels_write_csv(project=project, out=text)
    assert json.loads(pd.read_csv(io.StringIO(text.getvalue())).iloc[0]["value"]) == ["positive", "neutral"]


def test_a_value_that_no_longer_fits_the_label_kind_is_exported_as_json_text_rather_than_lost(labeled):
    LabelingProject.objects.filter(pk=labeled.pk).update(label_kind="rating")  # changed after labeling
    labeled.refresh_from_db()
    out = io.BytesIO()
    services.labels_write_parquet(project=labeled, out=out)
    out.seek(0)
    table = pq.read_table(out)
    assert table.schema.metadata[b"sieve.values"] == b"json"
    assert [json.loads(v) for v in table.column("value").to_pylist()] == [r["value"] for r in database_rows(labeled)]


def test_a_large_export_is_read_and_written_in_chunks_of_ids(labeled, monkeypatch):
    monkeypatch.setattr(labels_io.export, "PARQUET_ROW_GROUP", 3)
    out = io.BytesIO()
    services.labels_write_parquet(project=labeled, out=out)
    assert pq.ParquetFile(io.BytesIO(out.getvalue())).metadata.num_row_groups == 3  # 7 labels: 3 + 3 + 1
    pieces = list(labels_io.labels_csv_pieces(project=labeled, chunk=2))
    assert len(pieces) == 4 and pieces[0].startswith("annotation_id,item_id,")
    assert sum(p.count("\n") for p in pieces) == 8


def test_an_empty_project_exports_a_header_and_an_empty_table(source):
    project = services.project_create(name="nothing", choices=CHOICES, sources=[source])
    out = io.BytesIO()
    assert services.labels_write_parquet(project=project, out=out) == 0
    out.seek(0)
    assert len(pd.read_parquet(out)) == 0
    text = io.StringIO()
    services.labels_write_csv(project=project, out=text)
    assert text.getvalue().count("\n") == 1


def test_imported_labels_take_slots_and_settle_their_item(project, queued, make_rater):
    for name in ("ann", "ben", "cat"):
        make_rater(name)
    item = queued[0]
    first = services.labels_import(project=project, now=AT, lines=lines(
        {"external_id": item.record.external_id, "rater": "ann", "value": "positive"},
        {"external_id": item.record.external_id, "rater": "ben", "value": "positive"}))
    assert first == {"created": 2, "unchanged": 0, "items": 1}
    after = fresh(item)
    assert (after.state, after.submitted_count, after.needed) == ("open", 2, 3)
    # One slot is left: one rater is served the item, a second is not.
    served = [services.item_next(rater=make_rater(), project=project).item_id for _ in range(2)]
    assert served == [item.pk, queued[1].pk]
    services.labels_import(project=project, lines=lines(
        {"external_id": item.record.external_id, "rater": "cat", "value": "negative"}))
    after = fresh(item)
    # The live lease keeps its slot: `needed` grew to cover the third imported label.
    assert (after.submitted_count, after.leased_count, after.needed) == (3, 1, 4)
    imported = Annotation.objects.filter(item=item, provenance="imported").order_by("id")
    assert [(a.assignment_id, a.rater.user.username, a.created_at) for a in imported][:2] == [
        (None, "ann", AT), (None, "ben", AT)]


def test_imported_labels_that_agree_complete_the_item_with_their_consensus(project, queued, make_rater):
    for name in ("ann", "ben", "cat"):
        make_rater(name)
    ext = queued[3].record.external_id
    services.labels_import(project=project, lines=lines(
        *({"external_id": ext, "rater": name, "value": "negative"} for name in ("ann", "ben", "cat"))))
    item = fresh(queued[3])
    assert (item.state, item.consensus, item.submitted_count) == ("complete", "negative", 3)


def test_a_reimport_changes_nothing_and_another_value_is_a_conflict(project, queued, make_rater):
    make_rater("ann")
    line = {"external_id": queued[0].record.external_id, "rater": "ann", "value": "positive"}
    services.labels_import(project=project, lines=lines(line))
    assert services.labels_import(project=project, lines=lines(line)) == {"created": 0, "unchanged": 1, "items": 0}
    assert fresh(queued[0]).submitted_count == 1
    with pytest.raises(services.LabelsRejected) as rejected:
        services.labels_import(project=project, lines=lines({**line, "value": "negative"}))
    assert [(e["line"], e["code"], e["field"]) for e in rejected.value.errors] == [(1, "conflict", "value")]
    assert Annotation.objects.filter(provenance="imported").count() == 1


def test_a_rater_who_labeled_the_item_in_sieve_cannot_have_it_imported_too(project, queued, make_rater):
    ann = make_rater("ann")
    done = label(ann, project, "positive")
    with pytest.raises(services.LabelsRejected) as rejected:
        services.labels_import(project=project, lines=lines(
            {"external_id": done.item.record.external_id, "rater": "ann", "value": "positive"}))
    assert rejected.value.errors[0]["code"] == "already_labeled"


def test_a_gold_item_takes_no_imported_label(project, queued, make_rater):
    make_rater("ann")
    services.item_set_gold(item=queued[0], answer="positive")
    with pytest.raises(services.LabelsRejected) as rejected:
        services.labels_import(project=project, lines=lines(
            {"external_id": queued[0].record.external_id, "rater": "ann", "value": "positive"}))
    assert rejected.value.errors[0]["code"] == "gold_item"
    assert not Annotation.objects.exists()


def test_the_source_is_needed_when_the_project_has_several(project, queued, make_rater):
    from collection import services as collection

    second = collection.source_create(name="support-app", kind="app")
    project.sources.add(second)
    make_rater("ann")
    line = {"external_id": queued[0].record.external_id, "rater": "ann", "value": "positive"}
    with pytest.raises(services.LabelsRejected) as rejected:
        services.labels_import(project=project, lines=lines(line))
    assert rejected.value.errors[0]["field"] == "source"
    assert services.labels_import(project=project, lines=lines({**line, "source": "checkout-app"}))["created"] == 1


def test_csv_cells_are_read_by_the_label_kind(source, make_rater):
    project = services.project_create(name="stars", label_kind="rating", scale_min=1, scale_max=5, overlap=1,
                                      sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 2, prefix="s").pk)
    make_rater("ann", join=project)
    body = b"external_id,rater,value,created_at\ns-0,ann,4,2026-03-02T09:30:00Z\ns-1,ann,5,\n"
    assert services.labels_import(project=project, lines=services.labels_parse(body, fmt="csv"))["created"] == 2
    assert sorted(Annotation.objects.values_list("value", flat=True)) == [4, 5]


def test_the_commands_export_and_import_labels_with_the_same_service(labeled, project, queued, make_rater, tmp_path,
                                                                      capsys):
    target = tmp_path / "labels.parquet"
    call_command("labels_export", str(project.pk), "-o", str(target))
    assert len(pd.read_parquet(target)) == 7
    call_command("labels_export", str(project.pk), "--format", "csv", "-o", str(tmp_path / "labels.txt"))
    assert (tmp_path / "labels.txt").read_text().count("\n") == 8
    make_rater("fred")
    source_file = tmp_path / "history.ndjson"
    source_file.write_bytes(b"".join(orjson.dumps({"external_id": item.record.external_id, "rater": "fred",
                                                   "value": "neutral"}) + b"\n" for item in queued[4:8]))
    call_command("labels_import", str(project.pk), str(source_file))
    assert "4 labels imported, 0 unchanged" in capsys.readouterr().out
    source_file.write_bytes(source_file.read_bytes() + b'{"external_id": "nope", "rater": "fred", "value": "x"}\n')
    with pytest.raises(CommandError, match="2 problem"):
        call_command("labels_import", str(project.pk), str(source_file))
    assert "line 5: external_id: no current record" in capsys.readouterr().err
    assert Annotation.objects.filter(rater__user__username="fred").count() == 4


def test_a_page_of_labels_is_one_query(labeled, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = labels_page(project=labeled, limit=100)
    assert len(rows) == 7 and connection.vendor == "postgresql"


def test_a_rater_is_never_served_an_item_they_have_an_imported_label_on(project, queued, make_rater):
    ann = make_rater("ann")
    services.labels_import(project=project, lines=lines(
        *({"external_id": item.record.external_id, "rater": "ann", "value": "positive"} for item in queued[:2])))
    lease = services.item_next(rater=ann, project=project)
    assert lease.item_id == queued[2].pk  # not the first two items, whose slots are still free for others


def test_a_free_text_label_over_several_lines_survives_the_csv(source, make_rater):
    project = services.project_create(name="notes", label_kind="free_text", overlap=1, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    label(make_rater(join=project), project, 'first line,\nsecond "quoted" line')
    out = io.StringIO()
    assert services.labels_write_csv(project=project, out=out) == 1
    assert pd.read_csv(io.StringIO(out.getvalue())).iloc[0]["value"] == 'first line,\nsecond "quoted" line'


def test_an_import_stopped_before_settling_is_completed_by_running_it_again(project, queued, make_rater, monkeypatch):
    for name in ("ann", "ben", "cat"):
        make_rater(name)
    ext = queued[0].record.external_id
    rows = lines(*({"external_id": ext, "rater": name, "value": "positive"} for name in ("ann", "ben", "cat")))

    def crash(*args, **kwargs):
        raise RuntimeError("the process died after the labels were committed")

    monkeypatch.setattr(labels_io.importing, "_settle", crash)
    with pytest.raises(RuntimeError):
        services.labels_import(project=project, lines=rows)
    item = fresh(queued[0])
    assert (item.state, item.submitted_count, item.needed) == ("open", 3, 3)  # labelled, full, not settled
    monkeypatch.undo()
    assert services.labels_import(project=project, lines=rows) == {"created": 0, "unchanged": 3, "items": 0}
    assert (fresh(queued[0]).state, fresh(queued[0]).consensus) == ("complete", "positive")


def test_a_rater_labeling_the_item_right_now_cannot_have_it_imported(project, queued, make_rater):
    ann = make_rater("ann")
    lease = services.item_next(rater=ann, project=project)
    with pytest.raises(services.LabelsRejected) as rejected:
        services.labels_import(project=project, lines=lines(
            {"external_id": queued[0].record.external_id, "rater": "ann", "value": "positive"}))
    assert rejected.value.errors[0]["code"] == "leased" and lease.item_id == queued[0].pk
