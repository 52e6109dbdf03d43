"""Fixtures of the training-set tests: admitted batches of records, a project with consensus, a set, a version."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from collection.models import Batch, Record
from collection.parsing import LABEL_COLUMN, ColumnTypes
from labeling.models import LabelingProject, QueueItem
from trainingsets.services import trainingset_create, version_build, version_request

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def admitted_batch(source, rows: list[dict], *, status: str = Batch.Status.ADMITTED) -> Batch:
    """A batch of records made directly (ingest is collection's to test): each row is
    {"external_id", "features", "label"?, "observed_at"?}; a record already current becomes a new revision."""
    types = ColumnTypes()
    for row in rows:
        for name, value in row["features"].items():
            types.add(name, value)
        if "label" in row:
            types.add(LABEL_COLUMN, row["label"])
    batch = Batch.objects.create(source=source, status=status, format=Batch.Format.NDJSON, payload="test",
                                 sha256=uuid.uuid4().hex, record_count=len(rows), ingested_count=len(rows),
                                 columns=[[k, v] for k, v in types.summary().items()])
    ids = [row["external_id"] for row in rows]
    Record.objects.filter(source=source, external_id__in=ids, is_current=True).update(is_current=False)
    Record.objects.bulk_create([
        Record(batch=batch, source=source, line=i + 1, external_id=row["external_id"], features=row["features"],
               label=row.get("label"), observed_at=row.get("observed_at"), is_current=True)
        for i, row in enumerate(rows)
    ])
    return batch


def checkout_rows(n: int, *, prefix: str = "r", shift: float = 0.0, start: int = 0) -> list[dict]:
    """n records with an amount, a country and an observed time an hour apart."""
    countries = ["DE", "FR", "NL"]
    return [{"external_id": f"{prefix}{i}", "features": {"amount": 10.0 + shift + (i % 7), "country": countries[i % 3]},
             "observed_at": T0 + timedelta(hours=i)} for i in range(start, start + n)]


def settle(project, batch, label_of, *, confidence: float = 0.9, decided_by: str = QueueItem.Decided.DAWID_SKENE):
    """Queue the batch's records in the project with a complete consensus: label_of(record) -> label or None."""
    items = []
    for record in batch.records.order_by("id"):
        label = label_of(record)
        done = label is not None
        items.append(QueueItem(project=project, record=record, state=QueueItem.State.COMPLETE if done else "open",
                               consensus=label, confidence=confidence if done else None,
                               decided_by=decided_by if done else "", submitted_count=3 if done else 0))
    QueueItem.objects.bulk_create(items)


@pytest.fixture
def project(source):
    project = LabelingProject.objects.create(
        name=f"fraud-{uuid.uuid4().hex[:6]}", label_kind=LabelingProject.LabelKind.SINGLE,
        choices=[{"value": "ok", "label": "OK", "hotkey": "1"}, {"value": "fraud", "label": "Fraud", "hotkey": "2"}])
    project.sources.add(source)
    return project


@pytest.fixture
def labeled_set(source, project):
    """A set over 60 admitted records of `source`, each with a confident consensus in `project`."""
    batch = admitted_batch(source, checkout_rows(60))
    settle(project, batch, lambda r: "fraud" if int(r.external_id[1:]) % 5 == 0 else "ok")
    return trainingset_create(name=f"set-{uuid.uuid4().hex[:6]}", sources=[source], projects=[project])


def build(training_set, **kwargs):
    version = version_request(training_set=training_set, **kwargs)
    return version_build(version_id=version.pk)


@pytest.fixture
def built_version(labeled_set):
    """The first version of `labeled_set`, built in this process."""
    version = build(labeled_set)
    assert version.status == "published", version.error
    return version
