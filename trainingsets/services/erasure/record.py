"""Erasing a record: every revision of (source, external id) with what hangs off it, in one transaction."""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from functools import partial

from django.db import transaction
from django.utils import timezone

from collection.models import Batch, FeedbackEvent, Record, Source
from collection.parsing import MAX_EXTERNAL_ID
from collection.storage import data_path

from ... import erasure_files
from ...identity import record_identity
from ...models import Erasure, TrainingSetVersion
from ..errors import ErasureInvalid, NothingToErase
from .examples import examples_scrub, rare_values
from .tombstone import (
    ERASE_LOCK,
    LINEAGE_FILE,
    audit,
    built_versions,
    counts_of,
    counts_text,
    enqueue,
    lock,
    reason_checked,
)

log = logging.getLogger(__name__)


def erasure_record(*, source: Source, external_id: str, user, reason: str = "",
                   enqueue_files: bool = True) -> Erasure:
    """Erase every revision of a record with its queue items, labels, leases, adjudications, consensus results
    and feedback; keep a tombstone; mark the versions that hold it; rewrite its batches' files after the commit.

    Refuses: ErasureInvalid (no source or id), ReasonHoldsData (the reason names the id), NothingToErase
    (nothing of it is left; an earlier erasure of it whose files are still pending is returned instead).
    `enqueue_files=False` leaves the file rewrite to the caller (the erase command runs it in-process).
    `erasure.created` says which: True for a new erasure, False for the pending one (an API answers 200).
    """
    if source is None or not isinstance(external_id, str) or not 0 < len(external_id) <= MAX_EXTERNAL_ID:
        raise ErasureInvalid(f"give a source and an external id of 1 to {MAX_EXTERNAL_ID} characters",
                             field="external_id")
    reason = reason_checked(reason, external_id)
    identity = record_identity(source.pk, external_id)
    # Taken before the versions are read: a build that ends after this moment checks the tombstone itself.
    started = timezone.now()
    with transaction.atomic():
        lock(ERASE_LOCK, identity)
        revisions = list(Record.objects.filter(source=source, external_id=external_id).select_for_update()
                         .order_by("batch_id").values_list("id", "batch_id", "line", "features"))
        events = list(FeedbackEvent.objects.filter(source=source, external_id=external_id)
                      .values_list("id", flat=True))
        versions = _versions_holding(source, external_id)
        marked = set(TrainingSetVersion.objects.filter(erasures__kind=Erasure.Kind.RECORD,
                                                       erasures__identity=identity).values_list("id", flat=True))
        if not revisions and not events and not {v.pk for v in versions} - marked:
            pending = Erasure.objects.filter(kind=Erasure.Kind.RECORD, identity=identity,
                                             status=Erasure.Status.FILES_PENDING).order_by("id").first()
            if pending is not None:
                pending.created = False
                return pending  # asked again while its files are being rewritten: the same erasure
            raise NothingToErase("nothing of this record is left to erase", field="external_id")
        files = _files(revisions)
        batch_ids = sorted({r[1] for r in revisions})
        columnar = {f["batch"]: f["columnar"] for f in files}
        rare = rare_values((columnar.get(batch_id), features) for _, batch_id, _, features in revisions)
        scrubbed = examples_scrub(values=rare, external_id=external_id, source_id=source.pk, batch_ids=batch_ids)
        deleted = Counter()
        # The feedback first (its labels go with it), so that events not linked to a revision go too.
        deleted.update(FeedbackEvent.objects.filter(pk__in=events).delete()[1])
        deleted.update(Record.objects.filter(pk__in=[r[0] for r in revisions]).delete()[1])
        counts = counts_of(deleted)
        counts.update(batches=len(batch_ids), payload_files=len(files),
                      payload_lines=sum(len(f["lines"]) for f in files), versions=len(versions),
                      validation_rows_scrubbed=scrubbed)
        erasure = Erasure.objects.create(
            kind=Erasure.Kind.RECORD, source=source, identity=identity, reason=reason, requested_by=user,
            counts=counts, files=files, created_at=started,
            # No files to rewrite (the record only had feedback): the erasure is complete with the commit.
            status=Erasure.Status.FILES_PENDING if files else Erasure.Status.DONE,
            finished_at=None if files else timezone.now())
        erasure.versions.set(versions)
        audit(erasure, user)
        if files and enqueue_files:
            transaction.on_commit(partial(enqueue, erasure.pk), robust=True)
    log.info("erasure %s: a record of source %s erased (%s)", erasure.pk, source.pk, counts_text(counts))
    erasure.created = True
    return erasure


def _files(revisions: list[tuple]) -> list[dict]:
    """What each batch's files must lose: the revisions' lines, in the batch's payload and in the payloads of
    batches sent again with the same content (kept as `duplicate`, never ingested). No data values."""
    lines = defaultdict(list)
    for _, batch_id, line, _ in revisions:
        lines[batch_id].append(line)
    fields = ("id", "payload", "format", "gzipped", "columnar", "duplicate_of_id")
    batches = list(Batch.objects.filter(pk__in=list(lines)).values(*fields))
    batches += list(Batch.objects.filter(duplicate_of__in=list(lines)).values(*fields))
    return [{"batch": b["id"], "duplicate_of": b["duplicate_of_id"],
             "lines": sorted(lines[b["duplicate_of_id"] or b["id"]]), "payload": b["payload"], "format": b["format"],
             "gzipped": b["gzipped"], "columnar": "" if b["duplicate_of_id"] else b["columnar"],
             "payload_rewritten": None, "parquet_rewritten": None}
            for b in sorted(batches, key=lambda b: b["id"])]


def _versions_holding(source: Source, external_id: str) -> list[TrainingSetVersion]:
    """The built versions of sets fed by the source whose lineage has a row of the record."""
    found = []
    for version in built_versions(source_ids=[source.pk]):
        path = data_path(version.folder) / LINEAGE_FILE
        # A built version without its lineage cannot show that it lacks the record: it is marked.
        if not path.exists() or erasure_files.lineage_holds_record(path, source_id=source.pk,
                                                                   external_ids=[external_id]):
            found.append(version)
    return found
