"""A row's lineage: from a version's lineage file (read with a pyarrow filter) back to its record revision, batch,
validation run, source, every label with its rater's pseudonym, the consensus run and the adjudications."""
import json
from pathlib import Path

import pyarrow.parquet as pq
from django.db.models import Count, Q

from collection.models import Batch, Record, Source
from collection.services import actor_pseudonym
from collection.storage import data_path
from labeling.models import Adjudication, Annotation, ConsensusRun, ConsensusRunItem, QueueItem
from validation.models import ValidationRun

from ..build.writer import LINEAGE_FILE
from ..identity import record_identity
from ..models import Erasure, TrainingSetVersion
from ..services.errors import LineageMissing, VersionNotReady

PSEUDONYM_LENGTH = 12


def lineage_path(version: TrainingSetVersion) -> Path:
    """The version's lineage file; VersionNotReady when it has none yet (queued, building, failed),
    LineageMissing when a built version's file is not on disk."""
    if not version.is_built or not version.folder:
        raise VersionNotReady(f"version {version.number} is {version.status}: it has no files to read",
                              field="version", value=version.number)
    path = data_path(version.folder) / LINEAGE_FILE
    if not path.is_file():
        raise LineageMissing(f"the lineage file of version {version.number} is not on disk", field="file",
                             value=LINEAGE_FILE)
    return path


def rater_pseudonym(rater_id: int) -> str:
    """A rater as readers of a set see them: a stable keyed hash of the rater's id, never the username."""
    return actor_pseudonym(f"rater:{rater_id}")[:PSEUDONYM_LENGTH]


def user_pseudonym(user_id: int) -> str:
    """A staff member (an adjudicator) as readers of a set see them: a stable keyed hash of the user's id."""
    return actor_pseudonym(f"user:{user_id}")[:PSEUDONYM_LENGTH]


def label_value(text: str | None):
    """A label's JSON text (as the lineage file keeps it) as its value; text that is not JSON as it is."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _project_ids(version: TrainingSetVersion) -> set[int]:
    """The projects the version drew from (its manifest), else the set's projects today."""
    ids = {p["id"] for p in version.manifest.get("projects", []) if isinstance(p, dict) and "id" in p}
    return ids or set(version.training_set.projects.values_list("pk", flat=True))


def _record(row: dict, records: dict) -> dict:
    record = records.get(row["record_id"])
    if record is None:
        # Erased since the build: only the tombstone is left, found by the keyed hash of the identity.
        erasure = (Erasure.objects.filter(kind=Erasure.Kind.RECORD,
                                          identity=record_identity(row["source_id"], row["external_id"]))
                   .only("id", "created_at", "status").order_by("-created_at", "-id").first())
        return {"id": row["record_id"], "erased": True,
                "erasure": None if erasure is None else {"id": erasure.pk, "created_at": erasure.created_at,
                                                         "status": erasure.status}}
    ranks = Record.objects.filter(source_id=record.source_id, external_id=record.external_id).aggregate(
        revision=Count("id", filter=Q(id__lte=record.pk)), revisions=Count("id"))
    return {"id": record.pk, "erased": False, "revision": ranks["revision"], "revisions": ranks["revisions"],
            "current": record.is_current, "observed_at": record.observed_at}


def _label(annotation: Annotation) -> dict:
    rater = annotation.rater
    return {
        "id": annotation.pk, "item_id": annotation.item_id, "project_id": annotation.project_id,
        "value": annotation.value, "provenance": annotation.provenance,
        "rater": None if rater is None else rater_pseudonym(rater.pk),
        "rater_kind": rater.kind if rater is not None else annotation.provenance,
        "actor": annotation.actor or None,
        "is_gold": annotation.is_gold, "created_at": annotation.created_at,
        "undone": annotation.undone_at is not None, "undone_at": annotation.undone_at,
    }


def _consensus(row: dict) -> dict | None:
    run_id = row.get("consensus_run_id")
    if run_id is None:
        return None
    run = ConsensusRun.objects.filter(pk=run_id).only("id", "method", "finished_at").first()
    if run is None:
        return {"id": run_id, "method": None, "finished_at": None, "label": None, "confidence": None,
                "posterior": None}
    decision = (ConsensusRunItem.objects.filter(run_id=run_id, item_id=row.get("item_id"))
                .only("label", "confidence", "posterior").first())
    return {"id": run.pk, "method": run.method, "finished_at": run.finished_at,
            "label": None if decision is None else decision.label,
            "confidence": None if decision is None else decision.confidence,
            "posterior": None if decision is None else decision.posterior}


def version_lineage(version: TrainingSetVersion, external_id: str, source: str | None = None) -> list[dict]:
    """Every row of the version with this external id (of the named source, if given), each traced back: the
    record revision (or its tombstone, if erased since), batch, validation run, source, the labels and
    adjudications on the record's items in the set's projects, and the consensus run that settled the row.
    Raters and adjudicators appear as pseudonyms. An empty list when the version has no such row."""
    filters = [("external_id", "=", external_id)]
    if source is not None:
        source_id = Source.objects.filter(name=source).values_list("pk", flat=True).first()
        if source_id is None:
            return []
        filters.append(("source_id", "=", source_id))
    rows = pq.read_table(lineage_path(version), filters=filters).to_pylist()
    if not rows:
        return []

    record_ids = {row["record_id"] for row in rows}
    records = {r.pk: r for r in Record.objects.filter(pk__in=record_ids)
               .only("id", "source_id", "external_id", "is_current", "observed_at")}
    batches = {b.pk: b for b in Batch.objects.filter(pk__in={row["batch_id"] for row in rows})
               .only("id", "status", "received_at", "source_id")}
    runs = {v.batch_id: v for v in ValidationRun.objects.filter(batch_id__in=batches).only("id", "verdict", "batch_id")}
    sources = dict(Source.objects.filter(pk__in={row["source_id"] for row in rows}).values_list("pk", "name"))
    projects = _project_ids(version)
    items = list(QueueItem.objects.filter(record_id__in=records, project_id__in=projects)
                 .select_related("project").order_by("id"))
    labels = list(Annotation.objects.filter(item_id__in=[i.pk for i in items]).select_related("rater")
                  .order_by("created_at", "id"))
    adjudications = list(Adjudication.objects.filter(item_id__in=[i.pk for i in items]).order_by("decided_at", "id"))

    traced = []
    for row in sorted(rows, key=lambda r: (r["source_id"], r["split"], r["row"])):
        batch = batches.get(row["batch_id"])
        run = runs.get(row["batch_id"])
        mine = [i for i in items if i.record_id == row["record_id"]]
        ids = {i.pk for i in mine}
        traced.append({
            "external_id": row["external_id"],
            "source": {"id": row["source_id"], "name": sources.get(row["source_id"])},
            "split": row["split"], "row": row["row"],
            "label": label_value(row.get("label")), "label_confidence": row.get("label_confidence"),
            "label_origin": row.get("label_origin"),
            "record": _record(row, records),
            "batch": None if batch is None else {"id": batch.pk, "status": batch.status,
                                                 "received_at": batch.received_at},
            "validation_run": None if run is None else {"id": run.pk, "verdict": run.verdict},
            "item_id": row.get("item_id"), "project_id": row.get("project_id"),
            "consensus_run": _consensus(row),
            "items": [{"id": i.pk, "project": {"id": i.project_id, "name": i.project.name}, "state": i.state,
                       "is_gold": i.is_gold, "consensus": i.consensus, "confidence": i.confidence,
                       "decided_by": i.decided_by} for i in mine],
            "labels": [_label(a) for a in labels if a.item_id in ids],
            "adjudications": [{"id": a.pk, "item_id": a.item_id, "decided_at": a.decided_at, "reason": a.reason,
                               "unlabelable": a.unlabelable, "value": a.value,
                               "adjudicator": user_pseudonym(a.decided_by_id)}
                              for a in adjudications if a.item_id in ids],
        })
    return traced
